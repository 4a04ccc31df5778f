--- ipk.backend.kubo: the protocol (ipk.backend) over a node's Kubo RPC API
-- (the ipk.kubo client). CIDs are always computed locally: add imports with
-- ipk's importer and ships a CAR (dag/import), put sends the block with the
-- codec and multihash of its CID and checks the node's answer, get verifies
-- every byte. Blocks the node cannot take in a CAR (js-ipfs refuses DAG-JSON
-- CARs) go by block/put (ipk.backend.transfer decides).
-- Works on Kubo and on the js-ipfs node of the specs: where they differ the
-- request carries both spellings (format= next to cid-codec=).
-- A bare kubo backend has no local tier: blocks(), cat with a function
-- writer and save need the tiered cache in front (runtime.backend() always
-- puts it there).
local backend = require "ipk.backend.util"
local kubo = require "ipk.kubo"
local cid = require "ipk.cid"
local json = require "ipk.json"

local type, tostring, ipairs, pairs, setmetatable, tonumber = type, tostring, ipairs, pairs, setmetatable, tonumber

local M = {}

local K = {}
K.__index = K

--- Codec and multihash names as block/put wants them.
M.CODEC_NAMES = { [0x55] = "raw", [0x70] = "dag-pb", [0x71] = "dag-cbor", [0x0129] = "dag-json" }
M.HASH_NAMES = { [0x12] = "sha2-256", [0x13] = "sha2-512", [0x00] = "identity", [0xb220] = "blake2b-256",
                 [0x16] = "sha3-256", [0x1b] = "keccak-256" }

--- A kubo backend.
-- @param o {url=, auth=, client = an ipk.kubo client (instead of url),
--   has_timeout = s a `has` waits for the node to find a block (default 2)}
function M.new(o)
  local client = o.client
  if not client then
    local ok, c = pcall(kubo.new, { url = o.url, auth = o.auth, timeout = o.timeout, block_timeout = o.block_timeout })
    if not ok then return nil, tostring(c):gsub("^kubo%.new: ", "kubo: "), "EINVAL" end
    client = c
  end
  return setmetatable({ kind = "kubo", writable = true, client = client, url = client.url,
                        has_timeout = o.has_timeout or 2 }, K)
end

function K:describe() return "kubo node " .. self.url end

local function ndjson(body)
  local out = {}
  for line in (body or ""):gmatch("[^\n]+") do
    local v = json.decode(line)
    if type(v) == "table" then out[#out + 1] = v end
  end
  return out
end

local function same_block(a, b)
  -- v0 and v1 of one dag-pb block are the same block on every node
  return a ~= nil and b ~= nil and a.codec == b.codec and cid.equal(cid.to_v1(a), cid.to_v1(b))
end

--- Store one block with its CID's codec and multihash.
function K:put(c, bytes)
  if type(bytes) ~= "string" then error("backend put: bytes must be a string", 2) end
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  if not cid.verify(p, bytes) then
    return nil, "put " .. s .. ": the bytes do not match the CID", "EVERIFY"
  end
  local codec, hash = M.CODEC_NAMES[tonumber(p.codec)], M.HASH_NAMES[tonumber(p.mh.code)]
  if not codec then return nil, ("put %s: codec 0x%x has no block/put name"):format(s, tonumber(p.codec)), "EUNSUPP" end
  if not hash then return nil, ("put %s: multihash 0x%x has no block/put name"):format(s, tonumber(p.mh.code)), "EUNSUPP" end
  local v0 = tonumber(p.version) == 0
  local res, msg, name = self.client:json("block/put", {
    { "format", v0 and "v0" or codec }, { "cid-codec", codec }, { "mhtype", hash },
    { "mhlen", tonumber(p.mh.len) }, { "version", v0 and 0 or 1 },
  }, { body = { bytes }, multipart = { field = "file", filename = "block" } })
  if not res then return nil, msg, name end
  local got = type(res.Key) == "string" and cid.parse(res.Key) or nil
  if not same_block(got, p) then
    return nil, "kubo: block/put: the node stored " .. tostring(res.Key) .. ", expected " .. s, "EVERIFY"
  end
  return true
end

function K:get(c, o) return self.client:block_get(c, o) end

function K:has(c, o)
  local r, msg, name = self.client:block_stat(c, { timeout = (o and o.timeout) or self.has_timeout })
  if r then return true end
  if name == "ENOBLOCK" then return false end
  return nil, msg, name
end

function K:stat(c, o)
  local r, msg, name = self.client:block_stat(c, o)
  if not r then return nil, msg, name end
  return { cid = r.Key, size = r.Size }
end

function K:delete(c)
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  local res, msg, name = self.client:call("block/rm", { { "arg", s } })
  if not res then return nil, msg, name end
  for _, l in ipairs(ndjson(res.body)) do
    if l.Error and l.Error ~= "" then
      local nf = tostring(l.Error):find("not found", 1, true)
      return nil, "kubo: block/rm " .. s .. ": " .. tostring(l.Error), nf and "ENOBLOCK" or "EREMOTE"
    end
  end
  return true
end

function K:pin_add(c, o)
  o = o or {}
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  -- name= is Kubo's pin name (0.26+); js-ipfs strips unknown options.
  local res, msg, name = self.client:json("pin/add", { { "arg", s },
    { "recursive", o.recursive == false and "false" or "true" }, { "name", o.name } },
    { timeout = o.timeout or 0 })
  if not res then return nil, msg, name end
  return true
end

function K:pin_rm(c)
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  local res, msg, name = self.client:pin_rm(s)
  if not res then
    if msg and msg:find("not pinned", 1, true) then return nil, "kubo: pin rm: " .. s .. " is not pinned", "ENOENT" end
    return nil, msg, name
  end
  return true
end

function K:pin_ls(o)
  o = o or {}
  local arg
  if o.cid then
    local p, s = backend.want(o.cid)
    if not p then return nil, s, "ECID" end
    arg = s
  end
  -- the default: the pins someone made (recursive and direct), as on the
  -- embedded store; "indirect" and "all" are asked for explicitly
  local types = o.type and { o.type } or { "recursive", "direct" }
  local out = {}
  for _, t in ipairs(types) do
    local map, msg, name = self.client:pin_ls({ type = t, cid = arg })
    if not map then
      if not (arg and msg and msg:find("not pinned", 1, true)) then return nil, msg, name end
      map = {}
    end
    for k, ty in pairs(map) do out[#out + 1] = { cid = k, type = ty } end
  end
  return backend.sort_pins(out)
end

function K:pin_has(c)
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  local list, msg, name = self:pin_ls({ cid = s })
  if not list then return nil, msg, name end
  for _, x in ipairs(list) do
    if (x.type == "recursive" or x.type == "direct") and same_block(cid.parse(x.cid), p) then return true end
  end
  return false
end

function K:import_car(path, o)
  o = o or {}
  return self.client:dag_import(path, { pin_roots = o.pin_roots, zero_len_eof = o.zero_len_eof })
end

function K:export_dag(c, path, o) return self.client:dag_export(c, path, o) end

function K:add(path, o)
  o = o or {}
  local uo = {}
  for k, v in pairs(o) do if k ~= "name" then uo[k] = v end end
  return self.client:add(path, uo)
end

function K:add_bytes(s, o)
  local tmp = os.tmpname()
  local f = io.open(tmp, "wb")
  f:write(s)
  f:close()
  local res, msg, name = self:add(tmp, o)
  os.remove(tmp)
  if not res then return nil, msg, name end
  return res.root, res.size
end

function K:cat(c, out, o)
  o = o or {}
  local co = { offset = o.offset, length = o.length, retries = o.retries }
  if type(out) == "number" then co.fd = out
  elseif type(out) == "function" then co.write = out
  else co.write = function(s) return out:write(s) end end
  -- The node's cat streams bytes it has not let us verify block by block;
  -- a cache in front gives verified cat (runtime.backend() does that).
  local n, msg, name = self.client:cat(c, co)
  if not n then return nil, msg, name end
  return true
end

function K.save() return nil, "kubo: save needs a local tier: use the tiered cache in front", "EUNSUPP" end
function K.blocks() return nil, "kubo: no local block view: use the tiered cache in front", "EUNSUPP" end

--- The node's own gc (repo/gc).
function K:gc()
  local res, msg, name = self.client:call("repo/gc", nil, { timeout = 0, idle_timeout = 300 })
  if not res then return nil, msg, name end
  local n = 0
  for _, l in ipairs(ndjson(res.body)) do
    if l.Error and l.Error ~= "" then return nil, "kubo: repo/gc: " .. tostring(l.Error), "EREMOTE" end
    if l.Key then n = n + 1 end
  end
  return { removed = n }
end

function K.close() end

return M
