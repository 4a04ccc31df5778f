--- ipk.dagjson: canonical DAG-JSON (IPLD codec 0x0129) for run records and
-- step keys. Canonical form: map keys sorted bytewise, no whitespace,
-- integers without a fraction, floats with one (shortest of %.14g/%.17g
-- that round-trips), links as {"/": "<cid>"} (IPLD DAG-JSON spec).
-- The same value always encodes to the same bytes, so its CID is a key.
local cjson = require "cjson"
local raw_text = require("ipk.json").raw_text
local cidmod = require "ipk.cid"

local M = {}

local type, pairs, ipairs, tostring, error, getmetatable, setmetatable, floor, huge =
  type, pairs, ipairs, tostring, error, getmetatable, setmetatable, math.floor, math.huge
local sort, concat, format, byte = table.sort, table.concat, string.format, string.byte

--- Multicodec of DAG-JSON.
M.codec = 0x0129

local LINK = {}

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

local ARRAY_MT = cjson.array_mt or {}  -- lua-cjson 2.1.0 has none: our own tag

--- Mark t as a list (so {} encodes as []).
function M.array(t) return setmetatable(t or {}, ARRAY_MT) end

local esc = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
              ["\r"] = "\\r", ["\t"] = "\\t" }
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return esc[c] or format("\\u%04x", byte(c))
  end) .. '"'
end

local function number(n)
  if n ~= n or n == huge or n == -huge then error("dagjson: NaN and infinities are not allowed", 0) end
  if n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then return format("%d", n) end
  local s = format("%.14g", n)
  if tonumber(s) ~= n then s = format("%.17g", n) end
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return s
end

local function is_list(t)
  if getmetatable(t) == ARRAY_MT then return true end
  local n = #t
  if n == 0 then return false end
  local c = 0
  for _ in pairs(t) do c = c + 1 end
  return c == n
end

local function enc(v, out, path, seen)
  local t = type(v)
  if t == "string" then out[#out + 1] = quote(v)
  elseif t == "number" then out[#out + 1] = number(v)
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == cjson.null then out[#out + 1] = "null"
  elseif raw_text(v) then out[#out + 1] = raw_text(v) -- pre-encoded (ipk.json.raw)
  elseif t == "table" then
    if seen[v] then error("dagjson: cycle at " .. path, 0) end
    seen[v] = true
    local l = M.is_link(v)
    if l then out[#out + 1] = '{"/":' .. quote(l) .. "}"
    elseif is_list(v) then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        enc(x, out, path .. "[" .. i .. "]", seen)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("dagjson: non-string key " .. tostring(k) .. " at " .. path, 0) end
        keys[#keys + 1] = k
      end
      sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = quote(k)
        out[#out + 1] = ":"
        enc(v[k], out, path .. "." .. k, seen)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  else
    error("dagjson: cannot encode a " .. t .. " at " .. path, 0)
  end
end

--- Canonical bytes of v. Raises "dagjson: ..." on values IPLD cannot hold
-- (functions, cdata, NaN, cycles, non-string keys).
function M.encode(v)
  local out = {}
  enc(v, out, "$", {})
  return concat(out)
end

--- Like encode but returns nil, msg instead of raising.
function M.try_encode(v)
  local ok, s = pcall(M.encode, v)
  if ok then return s end
  return nil, s
end

local function relink(v)
  if type(v) ~= "table" then return v end
  local l = v["/"]
  if type(l) == "string" and next(v, next(v)) == nil and next(v) == "/" then return M.link(l) end
  for k, x in pairs(v) do v[k] = relink(x) end
  return v
end

local dec = cjson.new()
if dec.decode_array_with_array_mt then dec.decode_array_with_array_mt(true) end

--- Decode DAG-JSON bytes; links come back as link values.
-- @return value or nil, msg
function M.decode(s)
  local ok, v = pcall(dec.decode, s)
  if not ok then return nil, "dagjson: " .. tostring(v) end
  return relink(v)
end

--- CIDv1 (dag-json, sha2-256) string of v's canonical bytes, and the bytes.
function M.cid(v)
  local bytes = M.encode(v)
  return cidmod.format(assert(cidmod.of(1, M.codec, bytes))), bytes
end

return M
