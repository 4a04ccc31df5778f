--- ipk.json: JSON through lua-cjson with ipk's settings.
-- Numbers keep 14 significant digits (lua-cjson's maximum); arrays
-- and objects are told apart by ipk.json.array.
local cjson = require "cjson"

local M = {}
local enc = cjson.new()
enc.encode_number_precision(14)
enc.encode_sparse_array(true)
local dec = cjson.new()

--- Mark a Lua table as a JSON array (so {} encodes as []).
function M.array(t)
  return setmetatable(t or {}, enc.array_mt or cjson.array_mt)
end

--- Encode a value; keys of objects come out sorted for stable output.
function M.encode(v)
  return enc.encode(v)
end

--- Decode a JSON string; returns value or nil, msg.
function M.decode(s)
  local ok, v = pcall(dec.decode, s)
  if not ok then return nil, tostring(v) end
  return v
end

--- A copy of v with only JSON-representable values: cdata, functions,
-- userdata, threads and cycles are dropped; strings longer than max_string
-- (default 4096 bytes, e.g. model bytes) are replaced by "<N bytes>".
function M.sanitize(v, max_string, seen)
  local t = type(v)
  if t == "string" then
    max_string = max_string or 4096
    if #v > max_string then return "<" .. #v .. " bytes>" end
    return v
  end
  if t == "number" or t == "boolean" or v == nil then return v end
  if t ~= "table" then return nil end
  seen = seen or {}
  if seen[v] then return nil end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do
    if type(k) == "string" or type(k) == "number" then out[k] = M.sanitize(x, max_string, seen) end
  end
  seen[v] = nil
  return setmetatable(out, getmetatable(v))
end

M.null = cjson.null
return M
