--- ipk.json: JSON for ipk's results and records.
-- Encoding is ipk's own so output is deterministic: object keys sorted
-- bytewise, numbers in the shortest form that reads back to the same double
-- (RFC 8259; NaN/inf are not JSON and raise). Decoding uses lua-cjson.
-- Arrays and objects are told apart by ipk.json.array (so {} can be []).
local cjson = require "cjson"

local M = {}
local dec = cjson.new()
local ARRAY_MT = cjson.array_mt or {}

local type, pairs, ipairs, tostring, tonumber, getmetatable, setmetatable =
  type, pairs, ipairs, tostring, tonumber, getmetatable, setmetatable
local format, concat, sort, floor = string.format, table.concat, table.sort, math.floor

--- Mark a Lua table as a JSON array (so {} encodes as []).
function M.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

-- Pre-encoded JSON values (json.raw): spliced verbatim by encode.
local RAW_MT = {}

--- A value whose JSON text is already known (e.g. a table's column
-- statistics written by C): encode splices text as is, sanitize keeps it.
-- The text must be one valid JSON value in this module's canonical form
-- (sorted keys, numbers as num() below) for encode to stay canonical.
function M.raw(text)
  if type(text) ~= "string" then error("json.raw: string expected", 2) end
  return setmetatable({ text }, RAW_MT)
end

--- The text of a json.raw value, or nil for anything else.
function M.raw_text(v)
  if type(v) == "table" and getmetatable(v) == RAW_MT then return v[1] end
  return nil
end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
              ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function esc_str(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESC[c] or format("\\u%04x", c:byte())
  end) .. '"'
end

local function num(v)
  if v ~= v or v == math.huge or v == -math.huge then error("json: cannot encode " .. tostring(v), 0) end
  if v == floor(v) and v > -2^53 and v < 2^53 then return format("%d", v) end
  for p = 15, 17 do
    local s = format("%." .. p .. "g", v)
    if tonumber(s) == v then return s end
  end
  return format("%.17g", v)
end

local function is_array(t)
  if getmetatable(t) == ARRAY_MT then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function enc(v, out, depth)
  local t = type(v)
  if t == "string" then out[#out + 1] = esc_str(v)
  elseif t == "number" then out[#out + 1] = num(v)
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == cjson.null then out[#out + 1] = "null"
  elseif t == "table" and getmetatable(v) == RAW_MT then out[#out + 1] = v[1]
  elseif t == "table" then
    if depth > 100 then error("json: nesting deeper than 100 (a cycle?)", 0) end
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        enc(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and type(k) ~= "number" then error("json: cannot encode a " .. type(k) .. " key", 0) end
        keys[#keys + 1] = tostring(k)
      end
      sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = esc_str(k)
        out[#out + 1] = ":"
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        enc(x, out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  else
    error("json: cannot encode a " .. t, 0)
  end
end

--- Encode a value: object keys sorted, so the same value always gives the
-- same text. Raises on cdata, functions, NaN/inf and cycles.
function M.encode(v)
  local out = {}
  enc(v, out, 0)
  return concat(out)
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
  if getmetatable(v) == RAW_MT then return v end
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
