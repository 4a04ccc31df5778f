--- ipk.gateway: a read-only backend over an HTTP trustless gateway
-- (ipfs/specs http-gateways/trustless-gateway.md): `GET /ipfs/CID?format=raw`
-- for one block, `?format=car` for a DAG. Nothing the gateway sends is
-- trusted: every block is verified against its CID, a CAR must have the
-- requested root, and a mismatch is an error (EVERIFY) with nothing kept.
local http = require "ipk.http"
local cid = require "ipk.cid"
local car = require "ipk.car"
local kubo = require "ipk.kubo"
local fs = require "ipk.fs"

local type, error, setmetatable = type, error, setmetatable

local M = {}

local Gw = {}
Gw.__index = Gw

--- A gateway client. o: {url = "http://host:port", timeout = s (default 60)}.
function M.new(o)
  if type(o) == "string" then o = { url = o } end
  if type(o) ~= "table" or type(o.url) ~= "string" or not o.url:match("^https?://[^/]+") then
    error("gateway.new: {url = http://HOST[:PORT]} expected", 2)
  end
  return setmetatable({ url = o.url:gsub("/+$", ""), timeout = o.timeout or 60, kind = "gateway" }, Gw)
end

local function want(c)
  local p, msg, name = c, nil, nil
  if type(c) == "string" then p, msg, name = cid.parse(c) end
  if not p then return nil, "CID " .. tostring(c) .. ": " .. tostring(msg), name end
  return p, cid.format(p)
end

local function status_error(what, res)
  local body = (res.body or ""):gsub("%s+$", "")
  if #body > 200 then body = body:sub(1, 200) .. "…" end
  local name = res.status == 404 and "ENOBLOCK" or "EREMOTE"
  return nil, "gateway: " .. what .. ": HTTP " .. res.status .. (body ~= "" and (": " .. body) or ""), name
end

--- One block, verified.
-- @return bytes | nil, msg, name
function Gw:block_get(c)
  local cc, s, wname = want(c)
  if not cc then return nil, s, wname end
  local res, msg, name = http.request {
    method = "GET", url = self.url .. "/ipfs/" .. s .. "?format=raw",
    headers = { "Accept: application/vnd.ipld.raw" }, timeout = self.timeout,
    max_body = 8 * 1048576, idempotent = true,
  }
  if not res then return nil, msg, name end
  if res.status ~= 200 then return status_error(s, res) end
  local ok, vmsg, vname = kubo.verify(cc, res.body)
  if not ok then return nil, "gateway: " .. vmsg, vname end
  return res.body
end

--- The DAG under c as a verified CAR file at path (temp file, verified,
-- then renamed; removed on any failure).
-- @return {roots=, blocks=, bytes=} | nil, msg, name
function Gw:dag_export(c, path)
  local cc, s, wname = want(c)
  if not cc then return nil, s, wname end
  local tmp = path .. ".ipk-part"
  local fd, ferr, fname = fs.create(tmp, { mode = 420 })
  if not fd then return nil, "gateway: " .. tostring(ferr), fname end
  local res, msg, name = http.request {
    method = "GET", url = self.url .. "/ipfs/" .. s .. "?format=car",
    headers = { "Accept: application/vnd.ipld.car" }, sink_fd = fd, idle_timeout = self.timeout,
  }
  fs.close(fd)
  if not res then os.remove(tmp); return nil, msg, name end
  if res.status ~= 200 then os.remove(tmp); return status_error(s, res) end
  local info
  info, msg, name = car.import(tmp, {})
  if not info then os.remove(tmp); return nil, "gateway: " .. msg, name end
  if #info.roots < 1 or not cid.equal(cid.parse(info.roots[1]), cc) then
    os.remove(tmp)
    return nil, "gateway: the CAR for " .. s .. " has roots " .. table.concat(info.roots, ","), "EVERIFY"
  end
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp); return nil, "gateway: " .. tostring(rerr), "EIO" end
  return info
end

local function read_only(what)
  return nil, "gateway: " .. what .. ": a gateway backend is read-only", "EUNSUPP"
end

function Gw.add() return read_only("add") end
function Gw.pin_add() return read_only("pin add") end
function Gw.pin_rm() return read_only("pin rm") end
function Gw.pin_ls() return read_only("pin ls") end
function Gw.dag_import() return read_only("dag import") end
function Gw.block_put() return read_only("block put") end

return M
