-- Conformance of the FedAvg kernels against fixtures/fedavg (Flower's
-- aggregate() / weighted_loss_avg semantics, exact rational reference).
local core = require "ipk.core"
local lib, ffi = core.lib, core.ffi

local fixtures = support.fixtures()
local cases = fixtures and support.json_file(fixtures .. "/fedavg/fedavg_cases.json")

local function num(v)
  if v == "nan" then return 0 / 0 end
  if v == "inf" then return math.huge end
  if v == "-inf" then return -math.huge end
  if v == "-0.0" then return -0.0 end
  return assert(tonumber(v), "not a number: " .. tostring(v))
end

local function flatten(t, out)
  out = out or {}
  if type(t) == "table" then
    for _, v in ipairs(t) do flatten(v, out) end
  else
    out[#out + 1] = num(t)
  end
  return out
end

local bits = ffi.new("union { double d; int64_t i; }")
local function ordered(x)
  -- maps doubles to integers whose difference counts ULPs
  bits.d = x
  local i = bits.i
  if i < 0 then i = -9223372036854775807LL - 1 - i end
  return i
end

local function ulps(a, b)
  local d = ordered(a) - ordered(b)
  if d < 0 then d = -d end
  return tonumber(d)
end

local MAX_ULP = 2

local function same(got, want)
  if want ~= want then return got ~= got end
  if want == math.huge or want == -math.huge then return got == want end
  return got == got and ulps(got, want) <= MAX_ULP
end

local function shape_of(layer)
  local s = layer.shape
  local arr = ffi.new("uint64_t[?]", math.max(#s, 1))
  for i, d in ipairs(s) do arr[i - 1] = d end
  return arr, #s
end

describe("agg: fixtures/fedavg aggregate cases", function()
  if not cases then
    pending("fixtures/fedavg absent (set IPK_FIXTURES); skipped")
    return
  end

  for _, case in ipairs(cases.cases) do
    it(case.id .. ": " .. case.description, function()
      local k = #case.clients
      local weights = ffi.new("double[?]", k)
      for i, n in ipairs(case.num_examples) do weights[i - 1] = n end
      local expected = case.expected
      local nlayers = #case.clients[1]
      local failed_rc, failed_name
      for L = 1, nlayers do
        local eb = core.errbuf()
        local ref, rnd = shape_of(case.clients[1][L])
        for c = 2, k do
          local s, nd = shape_of(case.clients[c][L])
          local rc = lib.ipk_agg_check_shape(ref, rnd, s, nd, c - 1, eb)
          if rc ~= 0 then
            local ok, msg, name = core.check(rc, eb)
            assert.is_nil(ok)
            assert.is_truthy(msg:find("client " .. (c - 1), 1, true))
            failed_rc, failed_name = rc, name
          end
        end
        if failed_rc then break end
        local flat, ptrs = {}, ffi.new("const double *[?]", k)
        local len
        for c = 1, k do
          local vals = flatten(case.clients[c][L].values)
          len = #vals
          flat[c] = ffi.new("double[?]", len, vals)
          ptrs[c - 1] = flat[c]
        end
        local out = ffi.new("double[?]", len)
        local rc = lib.ipk_agg_fedavg_f64(ptrs, weights, k, len, out, eb)
        if rc ~= 0 then
          failed_rc, failed_name = rc, select(3, core.check(rc, eb))
          break
        end
        local want = flatten(expected.f64_exact_rounded[L])
        assert.are.equal(#want, len)
        for i = 1, len do
          if not same(out[i - 1], want[i]) then
            error(("layer %d element %d: got %.17g, want %.17g (%s ULP)"):format(
              L, i, out[i - 1], want[i], tostring(ulps(out[i - 1], want[i]))))
          end
        end
        -- f32 inputs also go through the f32 kernel: compare with the exact
        -- mean rounded to f32, within 1 f32 ULP
        if case.input_dtype == "float32" and expected.exact_rounded_to_input_dtype then
          local fl = {}
          local fp = ffi.new("const float *[?]", k)
          for c = 1, k do
            local vals = flatten(case.clients[c][L].values)
            fl[c] = ffi.new("float[?]", #vals, vals)
            fp[c - 1] = fl[c]
          end
          local fo = ffi.new("float[?]", len)
          assert.are.equal(0, lib.ipk_agg_fedavg_f32(fp, weights, k, len, fo, eb))
          local w32 = flatten(expected.exact_rounded_to_input_dtype[L])
          for i = 1, len do
            local g, w = fo[i - 1], w32[i]
            assert.is_true(g == w or math.abs(g - w) <= math.abs(w) * 2 ^ -23, ("f32 element %d: %.9g vs %.9g"):format(i, g, w))
          end
        end
      end
      if expected.error then
        assert.is_not_nil(failed_rc, "expected an error: " .. expected.error)
        if case.id:find("zero") then assert.are.equal("ERANGE", failed_name) end
        if case.id:find("shape") then assert.are.equal("ESHAPE", failed_name) end
      else
        assert.is_nil(failed_rc)
      end
    end)
  end
end)

-- The typed kernel (ipk_agg_wmean) on every SIMD variant this CPU runs and
-- several thread counts: bit-exact against the exact rational mean, in f64
-- and rounded to the input dtype.
local variants = {}
for _, v in ipairs({ { "scalar", lib.IPK_AGG_SIMD_SCALAR }, { "avx2", lib.IPK_AGG_SIMD_AVX2 },
  { "avx512", lib.IPK_AGG_SIMD_AVX512 } }) do
  if lib.ipk_agg_simd_supported(v[2]) == 1 then variants[#variants + 1] = v end
end

local dtypes = {
  float64 = { dt = lib.IPK_DT_F64, ctype = "double[?]" },
  float32 = { dt = lib.IPK_DT_F32, ctype = "float[?]" },
  float16 = { dt = lib.IPK_DT_F16, ctype = "uint16_t[?]" },
  int64 = { dt = lib.IPK_DT_I64, ctype = "int64_t[?]" },
}

local function buffer(dtype, layer)
  local d = dtypes[dtype]
  local vals = flatten(layer.values)
  if dtype == "float16" then
    local b = {}
    for i, h in ipairs(layer.f16_bits) do b[i] = tonumber(h:sub(3), 16) end
    return ffi.new(d.ctype, #b, b), #b
  end
  return ffi.new(d.ctype, #vals, vals), #vals
end

local function flatten_raw(t, out)
  out = out or {}
  if type(t) == "table" then
    for _, v in ipairs(t) do flatten_raw(v, out) end
  else
    out[#out + 1] = t
  end
  return out
end

local function hexbits(x)
  bits.d = x
  return ("0x%016x"):format(bits.i):gsub("LL$", "")
end

describe("agg: ipk_agg_wmean on fixtures/fedavg, every variant", function()
  if not cases then
    pending("fixtures/fedavg absent (set IPK_FIXTURES); skipped")
    return
  end
  it("runs on at least the scalar variant", function()
    assert.is_true(#variants >= 1)
    assert.is_truthy(ffi.string(lib.ipk_agg_simd_name(nil, nil)))
  end)
  for _, case in ipairs(cases.cases) do
    local exp = case.expected
    if exp.f64_exact_rounded_bits then
      for _, v in ipairs(variants) do
        for _, threads in ipairs({ 1, 2, 3 }) do
          it(("%s: %s, %d threads"):format(case.id, v[1], threads), function()
            local k = #case.clients
            local w = ffi.new("double[?]", k, case.num_examples)
            local opts = ffi.new("ipk_agg_opts_t", { threads, v[2] })
            local eb = core.errbuf()
            local in_dt = dtypes[case.input_dtype].dt
            for L = 1, #case.clients[1] do
              local keep, ptrs, len = {}, ffi.new("const void *[?]", k), nil
              for c = 1, k do
                keep[c], len = buffer(case.input_dtype, case.clients[c][L])
                ptrs[c - 1] = keep[c]
              end
              local out = ffi.new("double[?]", len)
              assert.are.equal(0, lib.ipk_agg_wmean(ptrs, in_dt, w, k, len, out, lib.IPK_DT_F64, opts, eb))
              for i, want in ipairs(flatten_raw(exp.f64_exact_rounded_bits[L])) do
                local wv = num(flatten(exp.f64_exact_rounded[L])[i])
                if wv ~= wv then
                  assert.is_true(out[i - 1] ~= out[i - 1], "NaN expected at " .. i)
                else
                  assert.are.equal(want, hexbits(out[i - 1]), ("layer %d element %d"):format(L, i))
                end
              end
              if exp.exact_rounded_to_input_dtype then
                local o2 = ffi.new(dtypes[case.input_dtype].ctype, len)
                assert.are.equal(0, lib.ipk_agg_wmean(ptrs, in_dt, w, k, len, o2, in_dt, opts, eb))
                local want = flatten(exp.exact_rounded_to_input_dtype[L])
                for i = 1, len do
                  local got = o2[i - 1]
                  if case.input_dtype == "float16" then
                    local hb = ffi.new("uint16_t[1]", got)
                    local f = ffi.new("double[1]")
                    local one = ffi.new("const void *[1]", { hb })
                    assert.are.equal(0, lib.ipk_agg_wmean(one, lib.IPK_DT_F16, nil, 1, 1, f, lib.IPK_DT_F64, opts, eb))
                    got = f[0]
                  end
                  assert.are.equal(want[i], tonumber(got), ("layer %d element %d in %s"):format(L, i, case.input_dtype))
                end
              end
            end
          end)
        end
      end
    end
  end
end)

describe("agg: fixtures/fedavg weighted_loss_avg cases", function()
  if not cases then
    pending("fixtures/fedavg absent (set IPK_FIXTURES); skipped")
    return
  end
  for _, case in ipairs(cases.weighted_loss_avg) do
    it(case.id, function()
      local n = #case.results
      local w, v = ffi.new("double[?]", n), ffi.new("double[?]", n)
      for i, r in ipairs(case.results) do
        w[i - 1], v[i - 1] = r[1], r[2]
      end
      local out, eb = ffi.new("double[1]"), core.errbuf()
      local rc = lib.ipk_agg_weighted_mean(v, w, n, out, eb)
      if case.expected.error then
        local ok, msg, name = core.check(rc, eb)
        assert.is_nil(ok)
        assert.are.equal("ERANGE", name)
        assert.is_truthy(msg:find("total weight", 1, true))
      else
        assert.are.equal(0, rc)
        assert.is_true(same(out[0], num(case.expected.f64_exact_rounded)),
          ("%.17g vs %.17g"):format(out[0], num(case.expected.f64_exact_rounded)))
      end
    end)
  end
end)

describe("agg: argument errors", function()
  it("rejects negative and non-finite weights with the client named", function()
    local a = ffi.new("double[1]", { 1 })
    local ptrs = ffi.new("const double *[2]", { a, a })
    local out, eb = ffi.new("double[1]"), core.errbuf()
    local ok, msg, name = core.check(lib.ipk_agg_fedavg_f64(ptrs, ffi.new("double[2]", { 1, -1 }), 2, 1, out, eb), eb)
    assert.is_nil(ok)
    assert.are.equal("EINVAL", name)
    assert.is_truthy(msg:find("client 1", 1, true))
    local ok2, _, name2 = core.check(lib.ipk_agg_fedavg_f64(ptrs, ffi.new("double[2]", { 1, 1 / 0 }), 2, 1, out, eb), eb)
    assert.is_nil(ok2)
    assert.are.equal("EINVAL", name2)
  end)
end)
