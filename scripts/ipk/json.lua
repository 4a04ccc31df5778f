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

M.null = cjson.null
return M
