--- ipk.json: the one JSON codec of ipk. CLI output, database columns, Kubo
-- replies and (through ipk.dagjson) run records and registry entries all go
-- through this encoder and this decoder, so they follow one rule.
--
-- Encoding (DAG-JSON's canonical form, https://ipld.io/specs/codecs/dag-json/spec/):
--  * no whitespace; object keys sorted by their bytes;
--  * strings must be valid UTF-8; '"' and '\' are escaped, control bytes
--    below 0x20 as \b \f \n \r \t or \u00xx (lower-case hex); nothing else is
--    escaped (the same bytes JSON.stringify writes);
--  * numbers: a value with no fraction and |v| <= 2^53 is an integer ("-0"
--    is "0"); every other finite value is a float: the shortest digits that
--    read back to the same double, laid out as ECMAScript's Number#toString
--    (exponent form below 1e-6 and from 1e21), with ".0" added when that
--    has neither '.' nor 'e', so a float never reads back as an integer;
--    NaN and infinities are not JSON: encoding them is an error;
--  * arrays: a table marked with M.array is an array (decode marks every
--    array it makes, so [] round-trips); an unmarked table is an array when
--    it is a non-empty sequence 1..n, else an object. An empty list must be
--    marked: json.array{} encodes as [], {} as {}.
--
-- Decoding: RFC 8259 text, strictly: UTF-8 checked, no trailing commas,
-- duplicate keys refused, numbers that overflow a double refused; integers
-- beyond 2^53 (which a double cannot hold exactly) refused on request
-- (opts.exact_ints: ipk.dagjson asks), else read as the nearest double. null decodes as
-- M.null (a value, so it survives in tables). Nesting is limited to 1000.
--
-- Errors: encode and decode never raise on their input; they return
-- nil, msg, name (luv's triple). Names: EINVAL (a value JSON cannot hold:
-- NaN, a function, a cycle, bad UTF-8), EFORMAT (malformed text), ERANGE
-- (a number out of range). Messages say where ("at $.metrics.acc", "at byte 17").
local M = {}

local type, pairs, tostring, tonumber, getmetatable, setmetatable =
  type, pairs, tostring, tonumber, getmetatable, setmetatable
local format, concat, sort, floor, huge = string.format, table.concat, table.sort, math.floor, math.huge
local find, sub, byte, char, gsub = string.find, string.sub, string.byte, string.char, string.gsub

local core = require "ipk.core"
local fmt_num, ffi_string = core.lib.ipk_table_fmt_num, core.ffi.string
local numbuf = core.ffi.new("char[32]")

local MAX_DEPTH = 1000

--- JSON null as a value (so it survives in tables): decode returns it,
-- encode writes it as null.
M.null = setmetatable({}, { __name = "ipk.json.null", __tostring = function() return "null" end,
  __newindex = function() error("json.null is read-only", 2) end })
local NULL = M.null

local ARRAY_MT = { __name = "ipk.json.array" }

--- Mark t (default: a new table) as a JSON array, so {} encodes as []. Returns t.
function M.array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then error("json.array: table expected, got " .. type(t), 2) end
  return setmetatable(t, ARRAY_MT)
end

--- True when t is marked as an array (by M.array or by decode).
function M.is_array(t)
  return type(t) == "table" and getmetatable(t) == ARRAY_MT
end

-- Pre-encoded JSON values (json.raw): spliced verbatim by encode.
local RAW_MT = { __name = "ipk.json.raw" }

--- A value whose JSON text is already known (e.g. a table's column
-- statistics written by C, core/src/table.c): encode splices the text as
-- is, sanitize keeps it. The text must be one valid JSON value written by
-- this module's rule (C's ipk_table_fmt_num follows it; json_spec checks)
-- for the output to stay canonical.
function M.raw(text)
  if type(text) ~= "string" then error("json.raw: string expected", 2) end
  return setmetatable({ text }, RAW_MT)
end

--- The text of a json.raw value, or nil for anything else.
function M.raw_text(v)
  if type(v) == "table" and getmetatable(v) == RAW_MT then return v[1] end
  return nil
end

------------------------------------------------------------------------------
-- UTF-8

-- Position of the first byte of an invalid UTF-8 sequence in s[i..j], or nil.
-- Rejects overlong forms, surrogates (U+D800..DFFF) and code points > U+10FFFF.
local function utf8_bad(s, i, j)
  while true do
    i = find(s, "[\128-\255]", i)
    if not i or i > j then return nil end
    local c = byte(s, i)
    local len
    if c >= 0xC2 and c <= 0xDF then len = 1
    elseif c >= 0xE0 and c <= 0xEF then len = 2
    elseif c >= 0xF0 and c <= 0xF4 then len = 3
    else return i end
    if i + len > j then return i end
    local c1 = byte(s, i + 1)
    if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F)
      or (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F) then return i end
    for k = i + 1, i + len do
      local b = byte(s, k)
      if b < 0x80 or b > 0xBF then return i end
    end
    i = i + len + 1
  end
end

--- Position of the first invalid UTF-8 byte of s, or nil when s is valid.
function M.utf8_invalid(s) return utf8_bad(s, 1, #s) end

------------------------------------------------------------------------------
-- Encoding

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
              ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
for c = 0, 31 do
  local ch = char(c)
  if not ESC[ch] then ESC[ch] = format("\\u%04x", c) end
end

-- The quoted string, or nil, byte position of bad UTF-8.
local function quote(s)
  if not find(s, '[%z\1-\31"\\\128-\255]') then return '"' .. s .. '"' end
  local bad = utf8_bad(s, 1, #s)
  if bad then return nil, bad, "EINVAL" end
  return '"' .. gsub(s, '[%z\1-\31"\\]', ESC) .. '"'
end

--- The canonical text of number v (the rule in the module comment), or
-- nil, msg, "EINVAL" for NaN and infinities. One implementation of the
-- rule, in C (ipk_table_fmt_num, core/src/table.c), which also writes the
-- statistics spliced in with json.raw: Lua's own %e formatting was 5x
-- slower, and two copies of a rule drift.
function M.number(v)
  if v ~= v or v == huge or v == -huge then
    return nil, "cannot encode " .. tostring(v) .. " (NaN and infinities are not JSON)", "EINVAL"
  end
  fmt_num(v, numbuf)
  return ffi_string(numbuf)
end
local number = M.number

-- Path of the value being encoded, for messages: "$", "$.a", "$.a[2]".
local function path_of(stack, depth)
  local parts = { "$" }
  for i = 1, depth do
    local k = stack[i]
    if type(k) == "number" then parts[#parts + 1] = "[" .. k .. "]"
    else parts[#parts + 1] = "." .. tostring(k) end
  end
  return concat(parts)
end

local function is_seq(t)
  local n = #t
  if n == 0 then return false end
  local c = 0
  for _ in pairs(t) do c = c + 1 end
  return c == n
end

-- Encoder state: opts.dag (DAG-JSON: string keys only, links, reserved
-- namespace), opts.link (function(v) -> cid string | nil), opts.prefix.
local function encoder(opts)
  local out, n = {}, 0
  local stack, seen = {}, {}
  local dag, link_of = opts.dag, opts.link
  local failure

  local function fail(depth, msg, name)
    failure = { msg = (opts.prefix or "json") .. ": " .. msg .. " at " .. path_of(stack, depth), name = name or "EINVAL" }
    return false
  end

  local enc
  -- The text of key k, or nil after recording the failure.
  local function key_text(k, depth)
    if type(k) == "string" then return k end
    if type(k) == "number" and not dag then
      local s, msg = number(k)
      if not s then fail(depth, "key: " .. msg) return nil end
      return s
    end
    fail(depth, "cannot encode a " .. type(k) .. " key " .. (dag and "(DAG-JSON keys are strings) " or "") .. tostring(k))
    return nil
  end

  enc = function(v, depth)
    local t = type(v)
    if t == "string" then
      local q, bad = quote(v)
      if not q then return fail(depth, "string is not valid UTF-8 (byte " .. bad .. ")") end
      n = n + 1; out[n] = q
    elseif t == "number" then
      local s, msg = number(v)
      if not s then return fail(depth, msg) end
      n = n + 1; out[n] = s
    elseif t == "boolean" then n = n + 1; out[n] = v and "true" or "false"
    elseif v == NULL or v == nil then n = n + 1; out[n] = "null"
    elseif t == "table" and getmetatable(v) == RAW_MT then n = n + 1; out[n] = v[1]
    elseif t == "table" then
      if seen[v] then return fail(depth, "cycle (a table contains itself)") end
      if depth >= MAX_DEPTH then return fail(depth, "nesting deeper than " .. MAX_DEPTH) end
      local l = link_of and link_of(v)
      if l then
        local q, bad = quote(l)
        if not q then return fail(depth, "link is not valid UTF-8 (byte " .. bad .. ")") end
        n = n + 1; out[n] = '{"/":' .. q .. "}"
        return true
      end
      seen[v] = true
      if getmetatable(v) == ARRAY_MT or is_seq(v) then
        n = n + 1; out[n] = "["
        for i = 1, #v do
          if i > 1 then n = n + 1; out[n] = "," end
          stack[depth + 1] = i
          if not enc(v[i], depth + 1) then return false end
        end
        n = n + 1; out[n] = "]"
      else
        local keys, map = {}, {}
        for k in pairs(v) do
          local s = key_text(k, depth)
          if not s then return false end
          if map[s] ~= nil then return fail(depth, "two keys encode as \"" .. s .. "\"") end
          map[s] = k
          keys[#keys + 1] = s
        end
        sort(keys)
        if dag and type(v["/"]) == "string" and #keys > 1 and keys[1] == "/" then
          return fail(depth, "a map whose first key is \"/\" with a string value is reserved for links in DAG-JSON")
        end
        n = n + 1; out[n] = "{"
        for i = 1, #keys do
          local s = keys[i]
          if i > 1 then n = n + 1; out[n] = "," end
          stack[depth + 1] = s
          local q, bad = quote(s)
          if not q then return fail(depth + 1, "key is not valid UTF-8 (byte " .. bad .. ")") end
          n = n + 1; out[n] = q
          n = n + 1; out[n] = ":"
          if not enc(v[map[s]], depth + 1) then return false end
        end
        n = n + 1; out[n] = "}"
      end
      seen[v] = nil
    else
      return fail(depth, "cannot encode a " .. t)
    end
    return true
  end

  return function(v)
    if enc(v, 0) then return concat(out, "", 1, n) end
    return nil, failure.msg, failure.name
  end
end

--- Encode v as JSON text (the rule in the module comment).
-- @param opts optional {dag = true (string keys only, reserved "/" maps),
--   link = function(t) -> CID string or nil, prefix = "dagjson"} (for ipk.dagjson)
-- @return string, or nil, msg, "EINVAL" (NaN/inf, functions, cdata, cycles,
--   bad UTF-8, non-string keys in DAG mode); never raises on v.
function M.encode(v, opts)
  return encoder(opts or {})(v)
end

------------------------------------------------------------------------------
-- Decoding

local decode_value
-- Set by M.decode for one (synchronous, non-yielding) call.
local exact_ints = false

local function derr(prefix, what, pos, name)
  return nil, prefix .. ": " .. what .. " at byte " .. pos, name or "EFORMAT"
end

local function skip_ws(s, pos)
  return find(s, "[^ \t\r\n]", pos) or #s + 1
end

-- True when integer text (optional sign, digits) is beyond 2^53 in
-- magnitude; decided on the digits, because tonumber would round
-- 9007199254740993 to 2^53 and hide it.
local function int_text_too_big(text)
  local d = text:match("^%s*[-+]?0*(%d+)%s*$")
  if not d then return false end
  return #d > 16 or (#d == 16 and d > "9007199254740992")
end

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
              0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local SIMPLE = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

-- s[pos] is '"'. Returns string, next pos; or nil, msg, name.
local function decode_string(s, pos, prefix)
  local start = pos + 1
  local q = find(s, '["\\%z\1-\31]', start)
  if q and byte(s, q) == 34 then -- fast path: no escapes
    local str = sub(s, start, q - 1)
    -- checked on the piece, not on s (a search of s would run to its end: quadratic)
    local bad = find(str, "[\128-\255]") and utf8_bad(str, 1, #str)
    if bad then return derr(prefix, "invalid UTF-8 in string", start + bad - 1) end
    return str, q + 1
  end
  local parts, np, i = {}, 0, start
  while true do
    q = find(s, '["\\%z\1-\31]', i)
    if not q then return derr(prefix, "unterminated string", pos) end
    if q > i then
      local piece = sub(s, i, q - 1)
      local bad = find(piece, "[\128-\255]") and utf8_bad(piece, 1, #piece)
      if bad then return derr(prefix, "invalid UTF-8 in string", i + bad - 1) end
      np = np + 1; parts[np] = piece
    end
    local c = byte(s, q)
    if c == 34 then return concat(parts, "", 1, np), q + 1 end
    if c < 32 then return derr(prefix, "control byte in string (escape it)", q) end
    local e = sub(s, q + 1, q + 1)
    if SIMPLE[e] then
      np = np + 1; parts[np] = SIMPLE[e]
      i = q + 2
    elseif e == "u" then
      local h = sub(s, q + 2, q + 5)
      if not find(h, "^%x%x%x%x$") then return derr(prefix, "bad \\u escape", q) end
      local cp = tonumber(h, 16)
      i = q + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local h2 = s:match("^\\u(%x%x%x%x)", i)
        local lo = h2 and tonumber(h2, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then return derr(prefix, "lone surrogate \\u" .. h, q) end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
        i = i + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        return derr(prefix, "lone surrogate \\u" .. h, q)
      end
      np = np + 1; parts[np] = utf8_char(cp)
    else
      return derr(prefix, "bad escape '\\" .. e .. "'", q)
    end
  end
end

local function decode_number(s, pos, prefix)
  local _, e = find(s, "^-?0", pos)
  if not e then _, e = find(s, "^-?[1-9]%d*", pos) end
  if not e then return derr(prefix, "unexpected '" .. sub(s, pos, pos) .. "'", pos) end
  local int = true
  local _, fe = find(s, "^%.%d+", e + 1)
  if fe then e, int = fe, false elseif sub(s, e + 1, e + 1) == "." then
    return derr(prefix, "a digit must follow '.'", e + 1)
  end
  local _, xe = find(s, "^[eE][-+]?%d+", e + 1)
  if xe then e, int = xe, false elseif find(s, "^[eE]", e + 1) then
    return derr(prefix, "a digit must follow the exponent", e + 1)
  end
  local text = sub(s, pos, e)
  local v = tonumber(text)
  if v == nil then
    -- Valid JSON that LuaJIT's tonumber refuses: an exponent too long for
    -- its scanner (1e999999999). The value is what strtod gives: zero when
    -- the digits are all zero or the exponent is negative (underflow),
    -- beyond range otherwise. (Found by fuzz/fuzz_json.c: decode returned
    -- nil without a message.)
    local neg, mant, esign = text:match("^(-?)([%d.]+)[eE]([-+]?)")
    if not mant:find("[1-9]") or esign == "-" then
      v = neg == "-" and -0.0 or 0
    else
      v = huge
    end
  end
  if v == huge or v == -huge then return derr(prefix, "number " .. text .. " is beyond a double's range", pos, "ERANGE") end
  if int and exact_ints and int_text_too_big(text) then
    return derr(prefix, "integer " .. text .. " is beyond 2^53 (a double cannot hold it exactly)", pos, "ERANGE")
  end
  return v, e + 1
end

local LITERALS = { t = { "true", true }, f = { "false", false }, n = { "null", NULL } }

decode_value = function(s, pos, depth, prefix)
  pos = skip_ws(s, pos)
  local c = sub(s, pos, pos)
  if c == "{" then
    if depth >= MAX_DEPTH then return derr(prefix, "nesting deeper than " .. MAX_DEPTH, pos) end
    local obj = {}
    pos = skip_ws(s, pos + 1)
    if sub(s, pos, pos) == "}" then return obj, pos + 1 end
    while true do
      if sub(s, pos, pos) ~= '"' then return derr(prefix, "expected a string key", pos) end
      local kpos = pos
      local k, p2, name = decode_string(s, pos, prefix)
      if not k then return nil, p2, name end
      pos = skip_ws(s, p2)
      if sub(s, pos, pos) ~= ":" then return derr(prefix, "expected ':' after a key", pos) end
      local v, p3, n3 = decode_value(s, pos + 1, depth + 1, prefix)
      if v == nil then return nil, p3, n3 end
      if obj[k] ~= nil then return derr(prefix, "duplicate key \"" .. k .. "\"", kpos) end
      obj[k] = v
      pos = skip_ws(s, p3)
      c = sub(s, pos, pos)
      if c == "}" then return obj, pos + 1 end
      if c ~= "," then return derr(prefix, "expected ',' or '}'", pos) end
      pos = skip_ws(s, pos + 1)
    end
  elseif c == "[" then
    if depth >= MAX_DEPTH then return derr(prefix, "nesting deeper than " .. MAX_DEPTH, pos) end
    local arr, n = setmetatable({}, ARRAY_MT), 0
    pos = skip_ws(s, pos + 1)
    if sub(s, pos, pos) == "]" then return arr, pos + 1 end
    while true do
      local v, p2, n2 = decode_value(s, pos, depth + 1, prefix)
      if v == nil then return nil, p2, n2 end
      n = n + 1; arr[n] = v
      pos = skip_ws(s, p2)
      c = sub(s, pos, pos)
      if c == "]" then return arr, pos + 1 end
      if c ~= "," then return derr(prefix, "expected ',' or ']'", pos) end
      pos = pos + 1
    end
  elseif c == '"' then
    return decode_string(s, pos, prefix)
  elseif c == "" then
    return derr(prefix, "unexpected end of input", pos)
  else
    local lit = LITERALS[c]
    if lit then
      if sub(s, pos, pos + #lit[1] - 1) ~= lit[1] then return derr(prefix, "unexpected '" .. c .. "'", pos) end
      return lit[2], pos + #lit[1]
    end
    return decode_number(s, pos, prefix)
  end
end

--- Decode JSON text (the rules in the module comment).
-- @param s string
-- @param opts optional {prefix = "json" (message prefix; ipk.dagjson passes
--   "dagjson"), exact_ints = false}. With exact_ints an integer literal beyond
--   2^53 is refused (ERANGE); without it, it reads as the nearest double, as
--   JSON.parse does (user data such as 64-bit IDs in JSON lines stays readable).
-- @return value (arrays marked, null as M.null), or nil, msg, name
--   (EFORMAT malformed, ERANGE number out of range, EINVAL s not a string)
function M.decode(s, opts)
  local prefix = opts and opts.prefix or "json"
  if type(s) ~= "string" then return nil, prefix .. ": cannot decode a " .. type(s) .. " (text expected)", "EINVAL" end
  exact_ints = opts and opts.exact_ints or false
  local v, pos, name = decode_value(s, 1, 0, prefix)
  if v == nil then return nil, pos, name end
  pos = skip_ws(s, pos)
  if pos <= #s then return derr(prefix, "trailing data after the value", pos) end
  return v
end

------------------------------------------------------------------------------

--- A copy of v with only JSON-representable values, for display (run
-- results, stored statistics): NaN and infinities become the strings
-- "NaN", "Infinity" and "-Infinity" (Python's and JavaScript's spelling)
-- and a table met again inside itself "<cycle>", so a value that is there
-- never silently vanishes (a step returning {loss = NaN} showed as {});
-- cdata, functions, userdata and threads are dropped; strings longer than
-- max_string (default 4096 bytes, e.g. model bytes) are replaced by
-- "<N bytes>", strings that are not UTF-8 by "<N bytes, not UTF-8>".
-- Array marks are kept. A table nested deeper than MAX_DEPTH is replaced
-- by "<nested deeper than N levels>" (a 100000-deep step output was a
-- "stack overflow" with json.lua's file:line).
function M.sanitize(v, max_string, seen, depth)
  local t = type(v)
  if t == "string" then
    max_string = max_string or 4096
    if #v > max_string then return "<" .. #v .. " bytes>" end
    if utf8_bad(v, 1, #v) then return "<" .. #v .. " bytes, not UTF-8>" end
    return v
  end
  if t == "number" then
    if v ~= v then return "NaN" end
    if v == huge then return "Infinity" end
    if v == -huge then return "-Infinity" end
    return v
  end
  if t == "boolean" or v == nil or v == NULL then return v end
  if t ~= "table" then return nil end
  if getmetatable(v) == RAW_MT then return v end
  depth = (depth or 0) + 1
  if depth > MAX_DEPTH then return "<nested deeper than " .. MAX_DEPTH .. " levels>" end
  seen = seen or {}
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do
    if type(k) == "string" or (type(k) == "number" and k == k and k ~= huge and k ~= -huge) then
      out[k] = M.sanitize(x, max_string, seen, depth)
    end
  end
  seen[v] = nil
  return setmetatable(out, getmetatable(v))
end

--- Check that every number in v (recursively) is finite, for values that
-- will be stored (metrics, params). A Lua number is a double and the
-- encoder writes every finite double exactly, so only NaN and infinities
-- are refused here; integer TEXT beyond 2^53 is refused where it is parsed
-- (M.parse_number, M.decode), the only place precision can be lost.
-- @param what name for messages ("metric", "params")
-- @return true, or nil, "WHAT.PATH is nan: ...", "EINVAL"
function M.check_numbers(v, what, path, seen, depth)
  path = path or ""
  local t = type(v)
  if t == "number" then
    if v ~= v or v == huge or v == -huge then
      return nil, ("%s%s is %s: NaN and infinities cannot be stored (JSON has no such numbers)")
        :format(what, path, tostring(v)), "EINVAL"
    end
  elseif t == "table" and v ~= NULL then
    depth = (depth or 0) + 1
    if depth > MAX_DEPTH then
      return nil, ("%s%s: nested deeper than %d levels"):format(what, path:sub(1, 200), MAX_DEPTH), "ERANGE"
    end
    seen = seen or {}
    if seen[v] then return true end
    seen[v] = true
    for k, x in pairs(v) do
      local p = path .. (type(k) == "number" and ("[" .. tostring(k) .. "]") or ("." .. tostring(k)))
      local ok, msg, name = M.check_numbers(x, what, p, seen, depth)
      if not ok then return nil, msg, name end
    end
  end
  return true
end

--- Parse a number given as text (a CLI flag, a recipe param): like
-- tonumber, but refuses what cannot be stored exactly.
-- @return number, or nil, msg, name (EINVAL not a number or not finite;
--   ERANGE an integer beyond 2^53)
function M.parse_number(text)
  local v = type(text) == "string" and tonumber(text) or nil
  if not v then return nil, "'" .. tostring(text) .. "' is not a number", "EINVAL" end
  if v ~= v or v == huge or v == -huge then
    return nil, "'" .. text .. "' is not finite (NaN and infinities cannot be stored)", "EINVAL"
  end
  if int_text_too_big(text) then
    return nil, "'" .. text .. "' is an integer beyond 2^53 (it would be stored as " .. format("%.17g", v)
      .. "); give it as a string", "ERANGE"
  end
  return v
end

--- A number given as a number or as text (a library option, a CLI flag),
-- checked as a stored value would be: finite, and integer text within 2^53.
-- @return number, or nil, msg, name (EINVAL, ERANGE)
function M.to_number(v)
  if type(v) == "string" then return M.parse_number(v) end
  if type(v) ~= "number" then return nil, "expected a number, got " .. type(v), "EINVAL" end
  if v ~= v or v == huge or v == -huge then
    return nil, tostring(v) .. " is not finite (NaN and infinities cannot be stored)", "EINVAL"
  end
  return v
end

return M
