--- ipk.kubo.blocks: blocks, DAGs and pins on the node: block put/get/stat
-- (every block fetched is verified against its CID), CAR import/export
-- (verified before it is sent or kept), pin add/rm/ls. Methods of the
-- ipk.kubo client.
local cid = require "ipk.cid"
local car = require "ipk.car"
local core = require "ipk.core"
local rpc = require "ipk.kubo.rpc"
local fs = require "ipk.fs"
local lib = core.lib

local type, tostring, tonumber, ipairs, pairs = type, tostring, tonumber, ipairs, pairs

local M = {}

--- Client methods (ipk.kubo puts them on the client).
local Client = {}
M.methods = Client

local function verify(c, data)
  local rc = lib.ipk_car_verify(c, data, #data)
  if rc == 1 then return true end
  if rc < 0 then return nil, "block " .. cid.format(c) .. ": unsupported multihash", "EHASH" end
  return nil, "block " .. cid.format(c) .. ": the node's bytes do not match the CID", "EVERIFY"
end
M.verify = verify

--- Store a block on the node; the CID is computed locally and must be the
-- one the node reports.
-- @param data bytes
-- @param o {codec = "raw" (default) | "dag-pb" | "dag-cbor", version = 1 (0 for dag-pb v0)}
-- @return cid string | nil, msg, name
function Client:block_put(data, o)
  o = o or {}
  local codec = o.codec or "raw"
  local code = cid.codec[codec]
  if not code then return nil, "block put: unknown codec '" .. tostring(codec) .. "'", "EINVAL" end
  local version = o.version or 1
  local c, msg, name = cid.of(version, code, data)
  if not c then return nil, msg, name end
  local res
  res, msg, name = self:json("block/put", {
    { "format", version == 0 and "v0" or codec }, { "cid-codec", codec }, { "mhtype", "sha2-256" },
    { "pin", o.pin and "true" or nil },
  }, { body = { data }, multipart = { field = "file", filename = "block" } })
  if not res then return nil, msg, name end
  local got = rpc.reply_cid(res.Key)
  if not got or not cid.equal(got, c) then
    return nil, "kubo: block/put: the node stored " .. tostring(res.Key) .. ", expected " .. cid.format(c), "EVERIFY"
  end
  return cid.format(c)
end

--- A timeout or not-found reply as ENOBLOCK (other errors unchanged).
local function not_found(path, s, msg, name, timeout)
  if name == "ETIMEDOUT" or (name == "EREMOTE" and (msg:find("deadline", 1, true)
      or msg:find("[Tt]imeout") or msg:find("timed out", 1, true) or msg:find("not found", 1, true) or msg:find("aborted", 1, true))) then
    return nil, "kubo: " .. path .. ": block " .. s .. " not found on the node within " .. timeout .. " s", "ENOBLOCK"
  end
  return nil, msg, name
end

--- Fetch a block and verify it against its CID.
-- @param o {timeout = s to find it (default block_timeout)}
-- @return bytes | nil, msg, name ("ENOBLOCK", "EVERIFY", ...)
function Client:block_get(c, o)
  local cc, s, wname = rpc.want(c)
  if not cc then return nil, s, wname end
  local t = (o and o.timeout) or self.block_timeout
  local res, msg, name = self:call("block/get", { { "arg", s }, { "timeout", t .. "s" } },
    { timeout = t + 5, idempotent = true, max_body = 8 * 1048576 })
  if not res then return not_found("block/get", s, msg, name, t) end
  local ok, vmsg, vname = verify(cc, res.body)
  if not ok then return nil, "kubo: " .. vmsg, vname end
  return res.body
end

--- Block size: {Key=cid string, Size=n}.
function Client:block_stat(c, o)
  local cc, s, wname = rpc.want(c)
  if not cc then return nil, s, wname end
  local t = (o and o.timeout) or self.block_timeout
  local res, msg, name = self:json("block/stat", { { "arg", s }, { "timeout", t .. "s" } },
    { timeout = t + 5, idempotent = true })
  if not res then return not_found("block/stat", s, msg, name, t) end
  local size = tonumber(res.Size)
  if not size then return nil, "kubo: block/stat: reply has no Size: " .. tostring(res.Size), "EFORMAT" end
  return { Key = s, Size = size }
end

--- Verify a CAR locally, then import it into the node (pins its roots
-- unless pin_roots=false). A file that does not verify is never sent.
-- @return {roots={...}, blocks=n} | nil, msg, name
function Client:dag_import(path, o)
  o = o or {}
  local info, msg, name = car.import(path, { zero_len_eof = o.zero_len_eof })
  if not info then return nil, msg, name end
  local res
  res, msg, name = self:call("dag/import", { { "pin-roots", o.pin_roots == false and "false" or "true" } }, {
    body = { { file = path } }, multipart = { field = "file", filename = "import.car" },
    timeout = 0, idle_timeout = 300,
  })
  if not res then return nil, msg, name end
  local lines, lmsg, lname = rpc.ndjson("dag/import", res.body)
  if not lines then return nil, lmsg, lname end
  local confirmed = 0
  for _, l in ipairs(lines) do
    if type(l) == "table" and type(l.Root) == "table" then confirmed = confirmed + 1 end
    if type(l) == "table" and type(l.Root) == "table" and l.Root.PinErrorMsg and l.Root.PinErrorMsg ~= "" then
      return nil, "kubo: dag/import: pinning " .. tostring(rpc.reply_cid(l.Root.Cid) and cid.format(rpc.reply_cid(l.Root.Cid)))
        .. " failed: " .. tostring(l.Root.PinErrorMsg), "EREMOTE"
    end
  end
  -- A 200 with a body that confirms no root (garbage, an empty stream) is
  -- not a successful import.
  if o.pin_roots ~= false and #info.roots > 0 and confirmed == 0 then
    return nil, "kubo: dag/import: the node's reply confirms no root (" .. #res.body .. " bytes); nothing is known to be imported",
      "EREMOTE"
  end
  return info
end

--- Export the DAG under c as a CAR into path, verified: the stream goes
-- to a temp file, every block is checked (and the root must be the one
-- asked for) before it is renamed into place.
-- @return {roots=, blocks=, bytes=} | nil, msg, name
function Client:dag_export(c, path, o)
  local cc, s, wname = rpc.want(c)
  if not cc then return nil, s, wname end
  o = o or {}
  local tmp = path .. ".ipk-part"
  local fd, ferr, fname = fs.create(tmp, { mode = 420 })
  if not fd then return nil, "dag export: " .. tostring(ferr), fname end
  local t = o.timeout or self.block_timeout
  local res, msg, name = self:call("dag/export", { { "arg", s }, { "timeout", t .. "s" } },
    { sink_fd = fd, timeout = 0, idle_timeout = t + 5 })
  fs.close(fd)
  if not res then os.remove(tmp); return not_found("dag/export", s, msg, name, t) end
  local info
  info, msg, name = car.import(tmp, {})
  if not info then os.remove(tmp); return nil, "kubo: dag/export: " .. msg, name end
  if #info.roots ~= 1 or not cid.equal(cid.parse(info.roots[1]), cc) then
    os.remove(tmp)
    return nil, "kubo: dag/export: the node's CAR has roots " .. table.concat(info.roots, ",") .. ", expected " .. s, "EVERIFY"
  end
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp); return nil, "dag export: " .. tostring(rerr), "EIO" end
  return info
end

--- Pin c (recursive unless o.recursive == false); the node fetches what it lacks.
-- @return list of pinned CID strings | nil, msg, name
function Client:pin_add(c, o)
  local cc, s, wname = rpc.want(c)
  if not cc then return nil, s, wname end
  local res, msg, name = self:json("pin/add", { { "arg", s },
    { "recursive", (o and o.recursive == false) and "false" or "true" } }, { timeout = (o and o.timeout) or 0 })
  if not res then return nil, msg, name end
  local pins, pmsg, pname = rpc.field("pin/add", res, "Pins", "table", {})
  if not pins then return nil, pmsg, pname end
  local out = {}
  for _, p in ipairs(pins) do local pc = rpc.reply_cid(p); out[#out + 1] = pc and cid.format(pc) or tostring(p) end
  return out
end

--- Unpin c. @return list of unpinned CIDs | nil, msg, name
function Client:pin_rm(c)
  local cc, s, wname = rpc.want(c)
  if not cc then return nil, s, wname end
  local res, msg, name = self:json("pin/rm", { { "arg", s } })
  if not res then return nil, msg, name end
  return rpc.field("pin/rm", res, "Pins", "table", {})
end

--- Pins: map canonical CID string -> type ("recursive", "direct", "indirect").
-- @param o {type = "all"|"recursive"|"direct"|"indirect", cid = only this one}
function Client:pin_ls(o)
  o = o or {}
  local params = { { "type", o.type or "recursive" } }
  if o.cid then params[#params + 1] = { "arg", o.cid } end
  local res, msg, name = self:call("pin/ls", params, { idempotent = true })
  if not res then return nil, msg, name end
  local out = {}
  -- Kubo answers {"Keys":{cid:{Type}}}; with stream=true one {"Cid","Type"} per line.
  local objs, jmsg, jname = rpc.ndjson("pin/ls", res.body)
  if not objs then return nil, jmsg, jname end
  for _, obj in ipairs(objs) do
    if type(obj) ~= "table" then return nil, "kubo: pin/ls: unexpected reply " .. tostring(obj), "EFORMAT" end
    if obj.Keys then
      if type(obj.Keys) ~= "table" then return nil, "kubo: pin/ls: Keys is not an object", "EFORMAT" end
      for k, v in pairs(obj.Keys) do
        if type(v) ~= "table" then return nil, "kubo: pin/ls: entry " .. tostring(k) .. " is not an object", "EFORMAT" end
        local pc = cid.parse(tostring(k))
        out[pc and cid.format(pc) or tostring(k)] = v.Type
      end
    elseif obj.Cid then
      local pc = rpc.reply_cid(obj.Cid)
      out[pc and cid.format(pc) or tostring(obj.Cid)] = obj.Type
    end
  end
  return out
end

return M
