--- ipk.dagjson: DAG-JSON (IPLD codec 0x0129) for run records, registry
-- entries and step keys. It is ipk.json's encoder and decoder (one rule for
-- numbers, strings, key order and arrays: see ipk/json.lua) with the DAG-JSON
-- additions: links as {"/": "<cid>"}, map keys must be strings, and maps
-- whose first key is "/" with a string value are reserved for links
-- (https://ipld.io/specs/codecs/dag-json/spec/). The same value always
-- encodes to the same bytes, so its CID is a key.
-- Errors: encode, decode and cid return nil, msg, name; they never raise on
-- their input (EINVAL a value DAG-JSON cannot hold, EFORMAT malformed text
-- or a bad link, ERANGE a number out of range). Misuse raises.
local json = require "ipk.json"
local cidmod = require "ipk.cid"

local M = {}

local type, pairs, next, error, getmetatable, setmetatable = type, pairs, next, error, getmetatable, setmetatable

--- Multicodec of DAG-JSON.
M.codec = 0x0129

local LINK = { __name = "ipk.dagjson.link" }

--- A link to cid (a CID string) as a value in a record.
function M.link(cid)
  if type(cid) ~= "string" then error("dagjson.link: CID string expected", 2) end
  return setmetatable({ ["/"] = cid }, LINK)
end

--- The CID string of a link value, or nil.
function M.is_link(v)
  if type(v) == "table" and getmetatable(v) == LINK then return v["/"] end
  return nil
end

--- Mark t as a list (so {} encodes as []); the same mark as ipk.json.array.
M.array = json.array
M.null = json.null

local ENC_OPTS = { dag = true, link = M.is_link, prefix = "dagjson" }

--- Canonical bytes of v.
-- @return string, or nil, "dagjson: ... at $.path", name (EINVAL: functions,
--   cdata, NaN/inf, cycles, non-string keys, bad UTF-8, a reserved "/" map)
function M.encode(v)
  return json.encode(v, ENC_OPTS)
end

--- Same as encode (kept for callers written when encode raised).
M.try_encode = M.encode

-- Turn {"/": "<cid>"} maps back into link values; checks the CID.
local function relink(v)
  if type(v) ~= "table" or v == json.null then return v end
  local l = v["/"]
  if type(l) == "string" then
    if next(v, next(v)) == nil then
      if not cidmod.parse(l) then return nil, "dagjson: invalid CID '" .. l .. "' in a link", "EFORMAT" end
      return M.link(l)
    end
    -- more than one key: reserved (invalid) only when "/" sorts first
    local first = true
    for k in pairs(v) do
      if k < "/" then first = false break end
    end
    if first then return nil, "dagjson: a map whose first key is \"/\" with a string value must hold only a link", "EFORMAT" end
  end
  for k, x in pairs(v) do
    local y, msg, name = relink(x)
    if y == nil then return nil, msg, name end
    v[k] = y
  end
  return v
end

-- Records ipk writes never hold an integer beyond 2^53 (the encoder writes
-- such values as floats), so one in a record is refused, not rounded.
local DEC_OPTS = { prefix = "dagjson", exact_ints = true }

--- Decode DAG-JSON bytes; links come back as link values, lists marked as arrays.
-- @return value, or nil, msg, name (EFORMAT, ERANGE)
function M.decode(s)
  if type(s) ~= "string" then error("dagjson.decode: string expected", 2) end
  local v, msg, name = json.decode(s, DEC_OPTS)
  if v == nil then return nil, msg, name end
  local r, rmsg = relink(v)
  if r == nil then return nil, rmsg, "EFORMAT" end
  return r
end

--- CIDv1 (dag-json, sha2-256) string of v's canonical bytes, and the bytes.
-- @return cid, bytes; or nil, msg, name
function M.cid(v)
  local bytes, msg, name = M.encode(v)
  if not bytes then return nil, msg, name end
  local c, cmsg, cname = cidmod.of(1, M.codec, bytes)
  if not c then return nil, cmsg, cname end
  return cidmod.format(c), bytes
end

return M
