-- Conformance of the safetensors reader over fixtures/safetensors (valid
-- cases parse with the listed tensors, invalid ones are rejected; the
-- normative:false cases follow the reference crate, as their `expected`
-- says), and the canonical writer: same tensors in any order give the same
-- bytes, write -> parse round-trips, and the reference crate's own writer
-- output is reproduced byte for byte.
local core = require "ipk.core"
local lib, ffi = core.lib, core.ffi

local fixtures = support.fixtures()
local doc = fixtures and support.json_file(fixtures .. "/safetensors/safetensors_cases.json")
local json_null = require("cjson").null

-- Parses a file; returns handle (gc'd), the buffer that backs it, its data
-- start, or nil, msg, name.
local function parse_bytes(s)
  local buf = ffi.new("uint8_t[?]", math.max(#s, 1))
  ffi.copy(buf, s, #s)
  local out, eb = ffi.new("ipk_st_file_t *[1]"), core.errbuf()
  local rc = lib.ipk_safetensors_parse(buf, #s, out, eb)
  local ok, msg, name = core.check(rc, eb)
  if not ok then
    assert.is_true(out[0] == nil, "no handle on failure")
    return nil, msg, name
  end
  local f = ffi.gc(out[0], lib.ipk_safetensors_free)
  local n = 0
  for i = 7, 0, -1 do n = n * 256 + buf[i] end
  return f, buf, 8 + n
end

local function tensors_of(f)
  local list = {}
  for i = 0, tonumber(lib.ipk_safetensors_count(f)) - 1 do
    list[#list + 1] = lib.ipk_safetensors_tensor(f, i)
  end
  return list
end

local function shape_list(t)
  local s = {}
  for d = 0, t.ndim - 1 do s[#s + 1] = tonumber(t.shape[d]) end
  return s
end

local function hex(ptr, n)
  local p = ffi.cast("const uint8_t *", ptr)
  local h = {}
  for i = 0, tonumber(n) - 1 do h[#h + 1] = ("%02x"):format(p[i]) end
  return table.concat(h)
end

local function check_parsed(f, buf, data_start, parsed, values)
  local list = tensors_of(f)
  assert.are.equal(#parsed.tensors, #list)
  for i, want in ipairs(parsed.tensors) do
    local t = list[i]
    assert.are.equal(want.name, ffi.string(t.name))
    assert.are.equal(want.dtype, ffi.string(lib.ipk_dtype_name(t.dtype)))
    assert.are.same(want.shape, shape_list(t))
    local begin = ffi.cast("const uint8_t *", t.data) - (buf + data_start)
    assert.are.same(want.data_offsets, { tonumber(begin), tonumber(begin) + tonumber(t.nbytes) })
    assert.are.equal(t, lib.ipk_safetensors_find(f, want.name))
  end
  if parsed.metadata ~= nil and parsed.metadata ~= json_null then
    for k, v in pairs(parsed.metadata) do
      local got = lib.ipk_safetensors_meta(f, k)
      assert.is_true(got ~= nil, "metadata " .. k)
      assert.are.equal(v, ffi.string(got))
    end
  end
  for _, want in ipairs(values or {}) do
    if want.data_hex then
      local t = lib.ipk_safetensors_find(f, want.name)
      assert.are.equal(want.data_hex, hex(t.data, t.nbytes))
    end
  end
end

-- Element reader for value checks (upstream samples).
local readers = {
  U8 = "uint8_t", I8 = "int8_t", U16 = "uint16_t", I16 = "int16_t", U32 = "uint32_t",
  I32 = "int32_t", F32 = "float", F64 = "double", I64 = "int64_t", U64 = "uint64_t",
}
local function f16(h)
  local s, e, m = bit.rshift(h, 15), bit.band(bit.rshift(h, 10), 31), bit.band(h, 1023)
  local v
  if e == 0 then v = m * 2 ^ -24 elseif e == 31 then v = m == 0 and math.huge or 0 / 0
  else v = (1 + m / 1024) * 2 ^ (e - 15) end
  return s == 1 and -v or v
end
local function values_of(t)
  local dt = ffi.string(lib.ipk_dtype_name(t.dtype))
  local out = {}
  if dt == "F16" then
    local p = ffi.cast("const uint8_t *", t.data)
    for i = 0, tonumber(t.nbytes) / 2 - 1 do out[#out + 1] = f16(p[2 * i] + 256 * p[2 * i + 1]) end
    return out
  end
  local ct = assert(readers[dt], dt)
  local p = ffi.cast("const " .. ct .. " *", t.data)
  for i = 0, tonumber(t.nbytes) / ffi.sizeof(ct) - 1 do out[#out + 1] = tonumber(p[i]) end
  return out
end

-- Writes the tensors of a parsed file in the given order.
local function write(list, order, meta)
  local n = #list
  local arr = ffi.new("ipk_st_tensor_t[?]", math.max(n, 1))
  for i, j in ipairs(order) do arr[i - 1] = list[j][0] end
  local keys, vals = {}, {}
  for k, v in pairs(meta or {}) do keys[#keys + 1], vals[#vals + 1] = k, v end
  local ck = ffi.new("const char *[?]", math.max(#keys, 1), keys)
  local cv = ffi.new("const char *[?]", math.max(#vals, 1), vals)
  local out, len, eb = ffi.new("uint8_t *[1]"), ffi.new("size_t[1]"), core.errbuf()
  local rc = lib.ipk_safetensors_write(arr, n, ck, cv, #keys, out, len, eb)
  assert(core.check(rc, eb, "write"))
  local s = ffi.string(out[0], len[0])
  ffi.C.free(out[0])
  return s
end

local function meta_of(parsed)
  if parsed.metadata == nil or parsed.metadata == json_null then return {} end
  return parsed.metadata
end

describe("safetensors: fixtures conformance", function()
  if not doc then
    pending("fixtures/safetensors absent (set IPK_FIXTURES); skipped")
    return
  end

  for _, case in ipairs(doc.cases) do
    local name = case.file:match("([^/]+)%.safetensors$")
    local label = ("%s (%s%s)"):format(name, case.expected, case.normative and "" or ", reference behaviour")
    it(label, function()
      local bytes = support.read(fixtures .. "/" .. case.file)
      local f, buf, data_start = parse_bytes(bytes)
      if case.expected == "valid" then
        assert.is_truthy(f, buf)
        check_parsed(f, buf, data_start, case.parsed, case.tensors)
      else
        assert.is_nil(f, "accepted an invalid file")
        assert.is_string(buf) -- the message
        assert.is_truthy(buf:find("safetensors", 1, true))
      end
    end)
  end

  for _, s in ipairs(doc.upstream_samples) do
    it("upstream sample " .. s.file:match("[^/]+$"), function()
      local f, buf, data_start = parse_bytes(support.read(fixtures .. "/" .. s.file))
      assert.is_truthy(f, buf)
      assert.are.equal("a", ffi.string(lib.ipk_safetensors_meta(f, "test")))
      check_parsed(f, buf, data_start, s, nil)
      for _, want in ipairs(s.tensors) do
        assert.are.same(want.values, values_of(lib.ipk_safetensors_find(f, want.name)))
      end
    end)
  end
end)

describe("safetensors: canonical write", function()
  if not doc then
    pending("fixtures/safetensors absent (set IPK_FIXTURES); skipped")
    return
  end

  -- files written by the reference crate's serializer (its unit tests)
  local reference_written = {
    v_empty_header = true, v_metadata_only = true, v_f32_serialization = true,
    v_f4_two_elements = true,
  }

  for _, case in ipairs(doc.cases) do
    if case.expected == "valid" then
      local name = case.file:match("([^/]+)%.safetensors$")
      it(name .. ": any order gives the same bytes; round trip", function()
        local bytes = support.read(fixtures .. "/" .. case.file)
        local f = assert(parse_bytes(bytes))
        local list = tensors_of(f)
        local fwd, rev = {}, {}
        for i = 1, #list do fwd[i], rev[#list + 1 - i] = i, i end
        local meta = meta_of(case.parsed)
        local a, b = write(list, fwd, meta), write(list, rev, meta)
        assert.are.equal(a, b)
        local n = 0
        for i = 8, 1, -1 do n = n * 256 + a:byte(i) end
        assert.are.equal(0, n % 8)
        local g, gbuf = parse_bytes(a)
        assert.is_truthy(g, gbuf)
        local back = tensors_of(g)
        assert.are.equal(#list, #back)
        for _, t in ipairs(list) do
          local u = lib.ipk_safetensors_find(g, t.name)
          assert.is_true(u ~= nil)
          assert.are.equal(t.dtype, u.dtype)
          assert.are.same(shape_list(t), shape_list(u))
          assert.are.equal(hex(t.data, t.nbytes), hex(u.data, u.nbytes))
        end
        for k, v in pairs(meta) do assert.are.equal(v, ffi.string(lib.ipk_safetensors_meta(g, k))) end
        -- writing the parse of canonical bytes is a fixed point
        assert.are.equal(a, write(back, fwd, meta))
        if reference_written[name] then assert.are.equal(bytes, a) end
      end)
    end
  end
end)
