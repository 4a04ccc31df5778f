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
