-- fuzz/lua/json.lua: invariants of ipk.json.decode and ipk.dagjson.decode,
-- run by fuzz/fuzz_json.c on every input. Each decoder returns a value or
-- nil, msg and never raises. A decoded value encodes (JSON is a subset of
-- what the encoders take), the encoding decodes to an equal value, and
-- encoding is a fixed point (the same value gives the same bytes, which is
-- what makes DAG-JSON CIDs keys).
local json = require "ipk.json"
local dagjson = require "ipk.dagjson"

local function fail(fmt, ...)
  error(string.format(fmt, ...), 0)
end

local function show(s)
  s = tostring(s)
  if #s > 200 then s = s:sub(1, 200) .. "..." end
  return (s:gsub("[^\32-\126]", function(c) return ("\\x%02x"):format(c:byte()) end))
end

-- Deep equality of decoded values (NaN equals NaN: decoders may produce it
-- only if they accept it, which the encode step then reports).
local function equal(a, b, depth)
  if depth > 2000 then return true end
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return a == b or (a ~= a and b ~= b) end
  if type(a) ~= "table" then return a == b end
  local la, lb = dagjson.is_link(a), dagjson.is_link(b)
  if la or lb then return la == lb end
  for k, v in pairs(a) do
    if not equal(v, b[k], depth + 1) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function check(name, m, input)
  local ok, v, msg = pcall(m.decode, input)
  if not ok then fail("%s.decode raised %s on %s", name, show(v), show(input)) end
  if v == nil then
    if type(msg) ~= "string" or msg == "" then
      fail("%s.decode returned nil without a message on %s", name, show(input))
    end
    return
  end
  local eok, enc, emsg = pcall(m.encode, v)
  if not eok then
    fail("%s: decoded %s but encoding it raised %s", name, show(input), show(enc))
  end
  if enc == nil then fail("%s: decoded %s but cannot encode it: %s", name, show(input), show(emsg)) end
  local v2, msg2 = m.decode(enc)
  if v2 == nil then fail("%s: own encoding %s does not decode: %s", name, show(enc), show(msg2)) end
  if not equal(v, v2, 0) then fail("%s: %s changed through encode/decode (%s)", name, show(input), show(enc)) end
  local enc2 = m.encode(v2)
  if enc2 ~= enc then fail("%s: encoding not a fixed point: %s vs %s", name, show(enc), show(enc2)) end
end

return function(input)
  check("ipk.json", json, input)
  check("ipk.dagjson", dagjson, input)
end
