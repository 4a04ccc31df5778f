-- ipk.fl.tensors: named typed tensor sets, safetensors round trip, the
-- f64 conversions and their rounding rule (F16/BF16 round to nearest even
-- incl. subnormals, inf, NaN; integers half to even, range-checked),
-- finite checks and layout checks naming the tensor.
local T = require "ipk.fl.tensors"
local ffi = require "ffi"

local fixtures = support.fixtures()

local function bits64(x)
  local u = ffi.new("union { double d; uint64_t u; }")
  u.d = x
  return u.u
end

describe("fl.tensors", function()
  it("builds a set, writes and reads safetensors with shapes, dtypes, rank 0 and metadata", function()
    local s = T.new { ["ipk.model"] = "test" }
    local w = assert(T.from_f64("fc.weight", "F32", { 2, 3 }, { 1, 2, 3, 4, 5, 6.5 }))
    s:add(w)
    s:add(assert(T.from_f64("bn.num_batches_tracked", "I64", {}, { 100 })))
    s:add(assert(T.from_f64("h", "F16", { 2 }, { 1.5, -0.0 })))
    s:add(assert(T.from_f64("b", "BF16", { 1 }, { 3 })))
    s:add(assert(T.from_f64("flag", "BOOL", { 3 }, { 1, 0, 1 })))
    s:add(assert(T.from_f64("d", "F64", { 1, 1 }, { 0.1 })))
    assert.are.equal(1, s.tensors["bn.num_batches_tracked"].count)
    assert.are.same({}, s.tensors["bn.num_batches_tracked"].shape)
    local bytes = assert(s:to_safetensors())
    local r = assert(T.from_safetensors(bytes))
    assert.are.equal(6, r:count())
    assert.are.equal("test", r.metadata["ipk.model"])
    for _, n in ipairs(s.names) do
      local a, b = s.tensors[n], r.tensors[n]
      assert.are.equal(a.dtype, b.dtype)
      assert.are.same(a.shape, b.shape)
      assert.are.same(T.values(a), T.values(b))
    end
    assert.are.same({ 1, 2, 3, 4, 5, 6.5 }, T.values(r.tensors["fc.weight"]))
    assert.are.equal(100, tonumber(r.tensors["bn.num_batches_tracked"].ptr[0]))
    assert.is_true(ffi.istype("int64_t*", r.tensors["bn.num_batches_tracked"].ptr))
    assert.is_true(ffi.istype("float*", r.tensors["fc.weight"].ptr))
    -- canonical: the same set writes the same bytes
    assert.are.equal(bytes, assert(r:to_safetensors()))
  end)

  it("borrows the bytes read-only when asked (no copy; writes raise)", function()
    local s = T.new()
    s:add(assert(T.from_f64("x", "F32", { 3 }, { 1, 2, 3 })))
    s:add(assert(T.from_f64("n", "I64", {}, { 5 })))
    local bytes = assert(s:to_safetensors())
    local b = assert(T.from_safetensors(bytes, "b", { borrow = true }))
    assert.are.same({ 1, 2, 3 }, T.values(b.tensors.x))
    assert.are.same({ 5 }, T.values(b.tensors.n))
    assert.are.equal(bytes, b.tensors.x.buf)
    assert.has_error(function() b.tensors.x.ptr[0] = 7 end)
    assert.are.equal(bytes, assert(b:to_safetensors()))
    local c = b:copy()
    c.tensors.x.ptr[0] = 7
    assert.are.same({ 1, 2, 3 }, T.values(b.tensors.x))
  end)

  it("copies own storage", function()
    local s = T.new()
    s:add(assert(T.from_f64("x", "F32", { 2 }, { 1, 2 })))
    local c = s:copy()
    c.tensors.x.ptr[0] = 7
    assert.are.equal(1, s.tensors.x.ptr[0])
    assert.are.equal(7, c.tensors.x.ptr[0])
  end)

  it("refuses bad files and unsupported dtypes with a message and a name", function()
    local s, err, name = T.from_safetensors("\1\0\0", "u.safetensors")
    assert.is_nil(s)
    assert.matches("u.safetensors", err)
    assert.is_string(name)
    local t; t, err, name = T.tensor("q", "F8_E4M3", { 2 })
    assert.is_nil(t)
    assert.are.equal("EUNSUPP", name)
    assert.matches("q", err)
  end)

  it("rounds F16 from f64 to nearest even, subnormals, overflow and NaN included", function()
    local cases = {
      { 0, 0x0000 }, { -0.0, 0x8000 }, { 1, 0x3c00 }, { 65504, 0x7bff },
      { 65519.99, 0x7bff }, { 65520, 0x7c00 }, { 1e300, 0x7c00 }, { -math.huge, 0xfc00 },
      { 2 ^ -24, 0x0001 }, { 2 ^ -25, 0x0000 },            -- tie to even (0)
      { 3 * 2 ^ -25, 0x0002 },                               -- tie to even (2)
      { 2 ^ -25 + 2 ^ -40, 0x0001 },                         -- above the tie
      { 2 ^ -14, 0x0400 }, { 2 ^ -14 - 2 ^ -25, 0x0400 },   -- largest subnormal rounds up to min normal
      { 1 + 2 ^ -11, 0x3c00 }, { 1 + 3 * 2 ^ -11, 0x3c02 },
      -- rounding from f64 directly: through f32 this would round twice and give 0x3c00
      { 1 + 2 ^ -11 + 2 ^ -40, 0x3c01 },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], T.f16_bits(c[1]), ("f16(%.17g)"):format(c[1]))
    end
    assert.are.equal(0x7e00, T.f16_bits(0 / 0) % 0x8000)
    for b = 0, 65535 do
      local v = T.f16_value(b)
      if v == v then assert.are.equal(b, T.f16_bits(v)) end -- every finite/inf value round-trips
    end
  end)

  it("rounds BF16 as the fixtures say (compression.json bf16 cases)", function()
    if not fixtures then pending("fixtures absent") return end
    local doc = support.json_file(fixtures .. "/fl/compression.json")
    local n = 0
    for _, c in ipairs(doc.cases) do
      if c.kind == "f32_to_bf16" then
        for _, v in ipairs(c.values) do
          local u = ffi.new("union { float f; uint32_t u; }")
          u.u = tonumber(v.input_f32_bits)
          local got = T.bf16_bits(u.f)
          local want = tonumber(v.result_bits)
          if v.result == "nan" then
            assert.are.equal(0x7fc0, got % 0x8000, v.label)
          else
            assert.are.equal(want, got, v.label)
          end
          n = n + 1
        end
      end
    end
    assert.is_true(n > 10)
    for b = 0, 65535 do
      local v = T.bf16_value(b)
      if v == v then assert.are.equal(b, T.bf16_bits(v)) end
    end
  end)

  it("rounds integers half to even and refuses out-of-range values naming the tensor", function()
    local t = assert(T.from_f64("n", "I64", { 4 }, { 100.5, 101.5, -2.5, 7.49 }))
    assert.are.same({ 100, 102, -2, 7 }, T.values(t))
    local u8 = assert(T.from_f64("u", "U8", { 2 }, { 254.5, 0.5 }))
    assert.are.same({ 254, 0 }, T.values(u8))
    local bad, err, name = T.from_f64("u", "U8", { 1 }, { 255.5 })
    assert.is_nil(bad)
    assert.are.equal("ERANGE", name)
    assert.matches("tensor u", err)
    bad, err, name = T.from_f64("k", "I64", { 1 }, { 0 / 0 })
    assert.is_nil(bad)
    assert.are.equal("ERANGE", name)
    assert.matches("k", err)
    bad = T.from_f64("k", "I64", { 1 }, { 2 ^ 63 })
    assert.is_nil(bad)
    local ok = assert(T.from_f64("k", "I64", { 1 }, { -2 ^ 63 }))
    assert.are.equal(-2 ^ 63, T.values(ok)[1])
    assert.is_nil((T.from_f64("b", "BOOL", { 1 }, { 2 })))
  end)

  it("converts F32 from f64 correctly rounded and keeps -0.0", function()
    local t = assert(T.from_f64("x", "F32", { 3 }, { 0.1, -0.0, 1e40 }))
    local v = T.values(t)
    assert.are.equal(tonumber(ffi.new("float", 0.1)), v[1])
    assert.are.equal(bits64(-0.0), bits64(v[2]))
    assert.are.equal(math.huge, v[3])
  end)

  it("finds non-finite values naming the tensor and the client", function()
    local s = T.new()
    s:add(assert(T.from_f64("a", "F32", { 2 }, { 1, 2 })))
    s:add(assert(T.from_f64("h", "F16", { 2 }, { 1, 0 / 0 })))
    local ok, err, name = s:check_finite("client c7")
    assert.is_nil(ok)
    assert.matches("client c7", err)
    assert.matches("tensor h", err)
    assert.matches("NaN", err)
    assert.are.equal("ERANGE", name)
    local s2 = T.new()
    s2:add(assert(T.from_f64("a", "BF16", { 1 }, { math.huge })))
    assert.is_nil((s2:check_finite()))
    assert.is_true(T.new():check_finite())
  end)

  it("same_layout names the tensor and both shapes and dtypes", function()
    local a, b = T.new(), T.new()
    a:add(assert(T.from_f64("fc.bias", "F32", { 4 }, { 1, 2, 3, 4 })))
    b:add(assert(T.from_f64("fc.bias", "F32", { 1, 4 }, { 1, 2, 3, 4 })))
    local ok, err, name = T.same_layout(a, b)
    assert.is_nil(ok)
    assert.are.equal("ESHAPE", name)
    assert.matches("fc.bias", err, 1, true)
    assert.matches("[1,4]", err, 1, true)
    assert.matches("[4]", err, 1, true)
    local c = T.new()
    ok, err = T.same_layout(a, c)
    assert.is_nil(ok)
    assert.matches("fc.bias.*missing", err)
    local d = T.new()
    d:add(assert(T.from_f64("fc.bias", "F16", { 4 }, { 1, 2, 3, 4 })))
    ok, err = T.same_layout(a, d)
    assert.is_nil(ok)
    assert.matches("F16", err)
    assert.is_true(T.same_layout(a, d, { dtype = false }))
    d:add(assert(T.from_f64("extra", "F32", {}, { 1 })))
    ok, err = T.same_layout(a, d, { dtype = false })
    assert.is_nil(ok)
    assert.matches("extra", err)
  end)
end)
