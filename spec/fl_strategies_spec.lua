-- ipk.fl.strategy against ../shared/fixtures/fl/strategies.json (every case,
-- every round, the README's tolerances: F32 bit-exact when exact_in_f32,
-- else within 1 ulp of expected.f32; FedOpt |got - f64| <= 2e-6|f64| + 2e-7;
-- I64 exact; errors mention the listed words), plus tests of our own:
-- average, ensemble, fedprox, sampling, rank 0, F16/BF16, mismatches, NaN.
local T = require "ipk.fl.tensors"
local S = require "ipk.fl.strategy"
local ffi = require "ffi"

local fixtures = support.fixtures()
local doc = fixtures and support.json_file(fixtures .. "/fl/strategies.json")

local flfix = require "support.fl"
local set_of = flfix.set
local num = flfix.num


local function f32_bits(x)
  local u = ffi.new("union { float f; uint32_t u; }")
  u.f = x
  return tonumber(u.u)
end

-- ulp of the f32 value x
local function ulp32(x)
  x = math.abs(x)
  if x < 2 ^ -126 then return 2 ^ -149 end
  local _, e = math.frexp(x)
  return 2 ^ (e - 1 - 23)
end

local function mentions(msg, words)
  for _, w in ipairs(words) do
    local any = false
    for alt in w:gmatch("[^|]+") do
      if msg:lower():find(alt:lower(), 1, true) then any = true end
    end
    assert.is_true(any, ("error message %q does not mention %q"):format(msg, w))
  end
end

local function check_tensors(case, got, expected, fedopt)
  for name, e in pairs(expected) do
    local t = got.tensors[name]
    assert.is_not_nil(t, case .. ": tensor " .. name .. " missing")
    assert.are.equal(e.dtype, t.dtype, case .. ": " .. name .. " dtype")
    assert.are.same(e.shape, t.shape, case .. ": " .. name .. " shape")
    local v = T.values(t)
    if e.dtype == "I64" then
      assert.are.same(e.values, v, case .. ": " .. name)
    else
      for i = 1, #v do
        local what = ("%s: %s[%d] got %.17g"):format(case, name, i - 1, v[i])
        if fedopt then
          local f = num(e.f64[i])
          assert.is_true(math.abs(v[i] - f) <= 2e-6 * math.abs(f) + 2e-7, what .. " f64 " .. f)
        end
        if e.exact_in_f32 and not fedopt then
          assert.are.equal(tonumber(e.f32_bits[i]), f32_bits(v[i]), what .. " bits " .. e.f32_bits[i])
        else
          -- FedOpt too: an f64-internal implementation lands within 1 ulp
          local w = num(e.f32[i])
          assert.is_true(math.abs(v[i] - w) <= ulp32(w), what .. " want " .. w)
        end
      end
    end
  end
end

describe("fl strategies: fixtures/fl/strategies.json", function()
  if not doc then
    it("fixtures absent", function() pending("fixtures/fl absent (set IPK_FIXTURES)") end)
    return
  end
  local order = {}
  for i, m in ipairs(doc.model) do order[i] = m.name end
  local ncase = 0
  for _, case in ipairs(doc.cases) do
    ncase = ncase + 1
    it(case.id .. " (" .. case.strategy .. ")", function()
      local fedopt = case.strategy:match("^fed[ay]") and case.strategy ~= "fedavg" and case.strategy ~= "fedavgm"
      local state
      for _, r in ipairs(case.rounds) do
        local updates = {}
        for i, c in ipairs(r.clients) do
          updates[i] = { client = c.id, num_examples = c.num_examples, metrics = c.metrics,
            tensors = set_of(order, c.tensors) }
        end
        local res, err, name = S.aggregate { strategy = case.strategy, params = case.params, round = r.round,
          global = set_of(order, r.global_model), updates = updates, state = state }
        local e = r.expected
        if e.status == "error" then
          assert.is_nil(res, case.id .. ": expected an error")
          assert.is_string(name)
          mentions(err, e.error_mentions)
          for _, s in ipairs(e.shapes_to_mention or {}) do
            assert.is_truthy(err:find("[" .. table.concat(s, ",") .. "]", 1, true), err)
          end
        else
          assert.is_not_nil(res, case.id .. " round " .. r.round .. ": " .. tostring(err))
          check_tensors(case.id .. " round " .. r.round, res.tensors, e.tensors, fedopt)
          if e.info and e.info.selected and case.strategy == "krum" then
            assert.are.same(e.info.selected, res.info.selected)
            for i, s in ipairs(e.info.scores) do assert.are.equal(s, res.info.scores[i]) end
          end
          if e.info and e.info.selected_iterative then
            local want = { unpack(e.info.selected_iterative) }
            local got = { unpack(res.info.selected) }
            table.sort(want); table.sort(got)
            assert.are.same(want, got)
          end
          if case.strategy == "best_model" then assert.are.equal(e.info.selected, res.info.selected_client) end
          state = res.state
        end
      end
    end)
  end
  it("has every case of the file", function() assert.are.equal(#doc.cases, ncase) end)
end)

-- Our own cases ------------------------------------------------------------

local function mk(specs)
  local s = T.new()
  for _, x in ipairs(specs) do s:add(assert(T.from_f64(x[1], x[2], x[3], x[4]))) end
  return s
end

local function model(w, b, n)
  return mk { { "w", "F32", { 2, 2 }, w }, { "b", "F32", { 2 }, b }, { "n", "I64", {}, { n } } }
end

describe("fl strategies", function()
  it("average ignores num_examples (zeros included) and keeps rank-0 I64 tensors integer", function()
    local res = assert(S.aggregate { strategy = "average", updates = {
      { tensors = model({ 1, 2, 3, 4 }, { 0, 0 }, 100), num_examples = 0 },
      { tensors = model({ 3, 4, 5, 6 }, { 1, 1 }, 101), num_examples = 1000 },
    } })
    assert.are.same({ 2, 3, 4, 5 }, T.values(res.tensors.tensors.w))
    assert.are.same({ 0.5, 0.5 }, T.values(res.tensors.tensors.b))
    local n = res.tensors.tensors.n
    assert.are.equal("I64", n.dtype)
    assert.are.same({}, n.shape)
    assert.are.same({ 100 }, T.values(n)) -- 100.5 ties to even
  end)

  it("refuses num_examples above 2^53 and rounds that are not positive integers", function()
    local a, b = model({ 1, 1, 1, 1 }, { 1, 1 }, 1), model({ 9, 9, 9, 9 }, { 9, 9 }, 9)
    -- 2^53 + 2 is a double, but counts above 2^53 are not exact: was accepted
    local res, err, name = S.aggregate { strategy = "fedavg", updates = {
      { tensors = a, num_examples = 1, client = "c0" }, { tensors = b, num_examples = 2 ^ 53 + 2, client = "c1" } } }
    assert.is_nil(res)
    assert.are.equal("EINVAL", name)
    assert.matches("client c1: num_examples must be an integer in [0, 2^53]", err, 1, true)
    assert.truthy(S.aggregate { strategy = "fedavg", updates = {
      { tensors = a, num_examples = 1 }, { tensors = b, num_examples = 2 ^ 53 } } })
    -- a round enters FedAdam's bias correction: -4 used to give NaN moments
    for _, r in ipairs { -4, 0, 1.5, 2 ^ 60 } do
      res, err, name = S.aggregate { strategy = "fedadam", global = a, round = r, updates = {
        { tensors = a, num_examples = 1 }, { tensors = b, num_examples = 1 } } }
      assert.is_nil(res, tostring(r))
      assert.are.equal("EINVAL", name)
      assert.matches("fedadam: round must be an integer >= 1, got", err, 1, true)
    end
    res, err = S.aggregate { strategy = "fedadam", global = a, state = { scalars = { round = -1 } }, updates = {
      { tensors = a, num_examples = 1 }, { tensors = b, num_examples = 1 } } }
    assert.is_nil(res)
    assert.matches("state round must be an integer >= 0, got -1", err, 1, true)
  end)

  it("fedavg: all-zero examples is an error that says so; a zero client contributes nothing", function()
    local a, b = model({ 1, 1, 1, 1 }, { 1, 1 }, 1), model({ 9, 9, 9, 9 }, { 9, 9 }, 9)
    local res, err, name = S.aggregate { strategy = "fedavg", updates = {
      { tensors = a, num_examples = 0 }, { tensors = b, num_examples = 0 } } }
    assert.is_nil(res)
    assert.matches("zero examples", err)
    assert.are.equal("ERANGE", name)
    res = assert(S.aggregate { strategy = "fedavg", updates = {
      { tensors = a, num_examples = 0 }, { tensors = b, num_examples = 3 } } })
    assert.are.same({ 9, 9, 9, 9 }, T.values(res.tensors.tensors.w))
    -- a zero-example client's NaN cannot leak in, but it is still refused (the update is bad)
    local bad = model({ 0 / 0, 1, 1, 1 }, { 1, 1 }, 1)
    res, err = S.aggregate { strategy = "fedavg", updates = {
      { tensors = bad, num_examples = 0, client = "c0" }, { tensors = b, num_examples = 3 } } }
    assert.is_nil(res)
    assert.matches("client c0", err)
    assert.matches("tensor w", err)
  end)

  it("refuses a shape mismatch and a missing tensor naming client, tensor and both shapes", function()
    local g = model({ 1, 2, 3, 4 }, { 1, 2 }, 1)
    local odd = mk { { "w", "F32", { 2, 2 }, { 1, 2, 3, 4 } }, { "b", "F32", { 1, 2 }, { 1, 2 } }, { "n", "I64", {}, { 1 } } }
    local res, err, name = S.aggregate { strategy = "fedavg", global = g, updates = {
      { tensors = g, num_examples = 1, client = "client_0" }, { tensors = odd, num_examples = 1, client = "client_2" } } }
    assert.is_nil(res)
    assert.are.equal("ESHAPE", name)
    assert.matches("client_2", err)
    assert.matches("tensor b", err)
    assert.truthy(err:find("[1,2]", 1, true))
    assert.truthy(err:find("[2]", 1, true))
    local miss = mk { { "w", "F32", { 2, 2 }, { 1, 2, 3, 4 } }, { "n", "I64", {}, { 1 } } }
    res, err = S.aggregate { strategy = "fedavg", updates = {
      { tensors = g, num_examples = 1 }, { tensors = miss, num_examples = 1, client = "client_1" } } }
    assert.is_nil(res)
    assert.matches("client_1", err)
    assert.matches("tensor b", err)
    assert.matches("missing", err)
  end)

  it("validate rejects bad updates (NaN, layout, num_examples) and keeps the others in order", function()
    local g = model({ 1, 2, 3, 4 }, { 1, 2 }, 1)
    local acc, rej = S.validate(g, {
      { client = "a", tensors = g, num_examples = 1 },
      { client = "b", tensors = model({ 1, math.huge, 3, 4 }, { 1, 2 }, 1), num_examples = 1 },
      { client = "c", tensors = g, num_examples = -1 },
      { client = "d", tensors = g, num_examples = 2 },
    })
    assert.are.equal(2, #acc)
    assert.are.equal("a", acc[1].client)
    assert.are.equal("d", acc[2].client)
    assert.are.equal(2, #rej)
    assert.matches("client b: tensor w: non%-finite", rej[1].reason)
    assert.are.equal(2, rej[1].index)
    assert.matches("client c: num_examples", rej[2].reason)
  end)

  it("averages F16 and BF16 tensors and stores the correctly rounded result in their dtype", function()
    local function h(v1, v2)
      return mk { { "h", "F16", { 2 }, { v1, v2 } }, { "bf", "BF16", { 1 }, { v1 } } }
    end
    -- (1 + 2^-10) and 1 average to 1 + 2^-11: a tie, to even (1.0) in F16
    local res = assert(S.aggregate { strategy = "average", updates = {
      { tensors = h(1 + 2 ^ -10, 65504), num_examples = 1 }, { tensors = h(1, 65504), num_examples = 1 } } })
    local ht = res.tensors.tensors.h
    assert.are.equal("F16", ht.dtype)
    assert.are.equal(0x3c00, ht.ptr[0])
    assert.are.equal(65504, T.values(ht)[2])
    assert.are.equal("BF16", res.tensors.tensors.bf.dtype)
    -- weighted 3:1 of 1 + 2^-10 and 1 = 1 + 3*2^-12: rounds up to 1 + 2^-10
    res = assert(S.aggregate { strategy = "fedavg", updates = {
      { tensors = h(1 + 2 ^ -10, 1), num_examples = 3 }, { tensors = h(1, 1), num_examples = 1 } } })
    assert.are.equal(0x3c01, res.tensors.tensors.h.ptr[0])
  end)

  it("fedmedian on an odd count and rank 0, fedtrimmedavg cuts floor(beta K)", function()
    local ups = {}
    for i, v in ipairs { 5, 1, 100, 2, 3 } do ups[i] = { tensors = model({ v, v, v, v }, { v, -v }, v), num_examples = 1 } end
    local res = assert(S.aggregate { strategy = "fedmedian", updates = ups })
    assert.are.same({ 3, 3, 3, 3 }, T.values(res.tensors.tensors.w))
    assert.are.same({ 3 }, T.values(res.tensors.tensors.n))
    res = assert(S.aggregate { strategy = "fedtrimmedavg", params = { beta = 0.2 }, updates = ups })
    local third = tonumber(ffi.new("float", 10 / 3)) -- stored as F32, rounded once
    assert.are.same({ third, third, third, third }, T.values(res.tensors.tensors.w))
    assert.are.same({ 3 }, T.values(res.tensors.tensors.n))
    assert.are.equal(1, res.info.cut)
  end)

  it("bulyan refuses too few clients; best_model names a client with a missing or NaN metric", function()
    local ups = {}
    for i = 1, 6 do ups[i] = { tensors = model({ i, i, i, i }, { i, i }, i), num_examples = 1, client = "c" .. i } end
    local res, err = S.aggregate { strategy = "bulyan", params = { num_malicious_clients = 1 }, updates = ups }
    assert.is_nil(res)
    assert.matches("4f%+3 = 7", err)
    ups[7] = { tensors = model({ 7, 7, 7, 7 }, { 7, 7 }, 7), num_examples = 1, client = "c7" }
    res = assert(S.aggregate { strategy = "bulyan", params = { num_malicious_clients = 1 }, updates = ups })
    assert.are.equal(5, #res.info.selected)
    for i = 1, 7 do ups[i].metrics = { accuracy = i / 10 } end
    ups[3].metrics = { accuracy = 0 / 0 }
    res, err = S.aggregate { strategy = "best_model", updates = ups }
    assert.is_nil(res)
    assert.matches("client c3", err)
    ups[3].metrics = {}
    res, err = S.aggregate { strategy = "best_model", updates = ups }
    assert.is_nil(res)
    assert.matches("client c3", err)
    assert.matches("accuracy", err)
    ups[3].metrics = { accuracy = 0.7 }
    res = assert(S.aggregate { strategy = "best_model", params = { mode = "min" }, updates = ups })
    assert.are.equal("c1", res.info.selected_client)
    assert.are.same({ 1, 1, 1, 1 }, T.values(res.tensors.tensors.w))
  end)

  it("multikrum averages the m lowest scores by num_examples", function()
    local ups = {}
    for i, v in ipairs { 0, 1, 2, 50 } do
      ups[i] = { tensors = model({ v, v, v, v }, { v, v }, 10), num_examples = i }
    end
    local res = assert(S.aggregate { strategy = "multikrum",
      params = { num_malicious_clients = 1, num_clients_to_keep = 2 }, updates = ups })
    -- scores (1 closest): 0->1*, 1->1*, 2->1*, 50->48^2*; ties to the lowest index: clients 0 and 1
    assert.are.same({ 0, 1 }, res.info.selected)
    local v = tonumber(ffi.new("float", 2 / 3))
    assert.are.same({ v, v, v, v }, T.values(res.tensors.tensors.w))
  end)

  it("ensemble keeps every member's tensors under member.<i>. with CIDs and the rule in the metadata", function()
    local a, b = model({ 1, 2, 3, 4 }, { 1, 2 }, 1), model({ 5, 6, 7, 8 }, { 3, 4 }, 2)
    local res = assert(S.aggregate { strategy = "ensemble", updates = {
      { tensors = a, num_examples = 1, client = "x" }, { tensors = assert(b:to_safetensors()), num_examples = 2, client = "y" } } })
    assert.is_true(res.final)
    local t = res.tensors
    assert.are.same({ 1, 2, 3, 4 }, T.values(t.tensors["member.0.w"]))
    assert.are.same({ 3, 4 }, T.values(t.tensors["member.1.b"]))
    assert.are.equal("I64", t.tensors["member.1.n"].dtype)
    assert.are.same({}, t.tensors["member.1.n"].shape)
    assert.are.equal("mean of member probabilities", t.metadata["ipk.ensemble.rule"])
    local members = require("ipk.json").decode(t.metadata["ipk.ensemble.members"])
    assert.are.equal(2, #members)
    local cid = require "ipk.cid"
    assert.are.equal(cid.format(cid.of(1, 0x55, assert(b:to_safetensors()))), members[2])
    -- the bytes round-trip with the metadata
    local back = assert(T.from_safetensors(assert(t:to_safetensors())))
    assert.are.equal("2", back.metadata["ipk.ensemble.size"])
  end)

  it("fedprox aggregates as fedavg and sends proximal_mu in every client's fit config", function()
    local a, b = model({ 1, 2, 3, 4 }, { 1, 2 }, 1), model({ 5, 6, 7, 8 }, { 3, 4 }, 2)
    local ups = { { tensors = a, num_examples = 1 }, { tensors = b, num_examples = 3 } }
    local p = assert(S.aggregate { strategy = "fedprox", params = { proximal_mu = 0.1 }, updates = ups })
    local f = assert(S.aggregate { strategy = "fedavg", updates = ups })
    assert.are.equal(assert(f.tensors:to_safetensors()), assert(p.tensors:to_safetensors()))
    local st = S.fedprox { proximal_mu = 0.1 }
    local ins = assert(st.configure_fit(3, { "c1", "c2" }, "bafkprev", { fit_config = { lr = 0.05, epochs = 2 } }))
    assert.are.equal(2, #ins)
    assert.are.same({ round = 3, lr = 0.05, epochs = 2, proximal_mu = 0.1 }, ins[1].config)
    local adam = S.fedadam { eta_l = 0.02 }
    ins = assert(adam.configure_fit(1, { "c1", "c2" }, "x"))
    assert.are.equal(0.02, ins[1].config.lr)
  end)

  it("samples clients deterministically from the previous model's CID", function()
    local clients = {}
    for i = 1, 20 do clients[i] = { id = i } end
    local st = S.fedavg { fraction_fit = 0.25, min_fit_clients = 2 }
    local a = assert(st.configure_fit(2, clients, "bafyA"))
    local b = assert(st.configure_fit(2, { unpack(clients, 11) }, "bafyA"))
    assert.are.equal(5, #a)
    local a2 = assert(st.configure_fit(2, clients, "bafyA"))
    local ids = function(l) local o = {} for i, x in ipairs(l) do o[i] = x.client.id end return o end
    assert.are.same(ids(a), ids(a2))
    for i = 2, #a do assert.is_true(a[i - 1].client.id < a[i].client.id) end
    local c = assert(st.configure_fit(2, clients, "bafyB"))
    assert.are_not.same(ids(a), ids(c))
    assert.are.equal(2, #b) -- max(floor(10 * 0.25), 2)
    local none, err = st.configure_fit(1, { { id = 1 } }, "x")
    assert.is_nil(none)
    assert.matches("min_available_clients = 2", err)
  end)

  it("refuses unknown params and bad values naming the strategy", function()
    local s, err = S.new("fedavgm", { momentum = 0.9 })
    assert.is_nil(s)
    assert.matches("fedavgm: unknown param 'momentum'", err)
    assert.matches("server_momentum", err)
    s, err = S.new("fedtrimmedavg", { beta = "0.7" })
    assert.is_nil(s)
    assert.matches("beta", err)
    s, err = S.new("fedadam", { eta = "nan" })
    assert.is_nil(s)
    assert.matches("finite", err)
    assert.is_nil((S.new("nope")))
    assert.is_nil((S.aggregate { strategy = "fedadam", updates = { { tensors = model({ 1, 1, 1, 1 }, { 1, 1 }, 1),
      num_examples = 1 } } }))
  end)

  it("a strategy object carries its state between rounds (get_state/set_state with F64 tensor bytes)", function()
    local g = model({ 1, 2, 3, 4 }, { 1, 2 }, 100)
    local function ups(d)
      return { { tensors = model({ 1 + d, 2, 3, 4 }, { 1, 2 }, 101), num_examples = 2 },
               { tensors = model({ 1 - d / 2, 2, 3, 4 }, { 1, 2 }, 103), num_examples = 1 } }
    end
    local a = S.fedadam { eta = 0.1, tau = 1e-3 }
    local g1 = assert(a.aggregate(ups(0.5), g))
    local st = a.get_state()
    assert.is_string(st.tensors)
    local state_set = assert(T.from_safetensors(st.tensors))
    assert.are.equal("F64", state_set.tensors["m.w"].dtype)
    assert.are.equal(1, st.scalars.round)
    -- a fresh object resumed from that state gives the same round 2 as the first
    local b = S.fedadam { eta = 0.1, tau = 1e-3 }
    assert(b.set_state(st))
    local r2a = assert(a.aggregate(ups(0.25), g1))
    local r2b = assert(b.aggregate(ups(0.25), g1))
    assert.are.equal(assert(r2a:to_safetensors()), assert(r2b:to_safetensors()))
    assert.are.equal(2, a.get_state().scalars.round)
    -- offline: the same with S.aggregate and the state table
    local o1 = assert(S.aggregate { strategy = "fedadam", params = { eta = 0.1, tau = 1e-3 }, global = g, updates = ups(0.5) })
    local o2 = assert(S.aggregate { strategy = "fedadam", params = { eta = 0.1, tau = 1e-3 }, global = o1.tensors,
      updates = ups(0.25), state = o1.state })
    assert.are.equal(2, o2.round)
    local o2b = assert(S.aggregate { strategy = "fedadam", params = { eta = 0.1, tau = 1e-3 }, global = o1.tensors,
      updates = ups(0.25), state = { scalars = o1.state.scalars, tensors = assert(o1.state.tensors:to_safetensors()) } })
    assert.are.equal(assert(o2.tensors:to_safetensors()), assert(o2b.tensors:to_safetensors()))
    assert.are.equal(assert(r2a:to_safetensors()), assert(o2.tensors:to_safetensors()))
  end)

  it("runs a custom strategy script over named tensor views", function()
    local res = assert(S.aggregate { strategy = support.root .. "/examples/custom_aggregation.lua", updates = {
      { tensors = model({ 1, 2, 3, 4 }, { 1, 2 }, 1), num_examples = 1 },
      { tensors = model({ 5, 6, 7, 8 }, { 3, 4 }, 2), num_examples = 1 },
      { tensors = model({ 100, 100, 100, 100 }, { 100, 100 }, 9), num_examples = 1 } } })
    assert.are.same({ 5, 6, 7, 8 }, T.values(res.tensors.tensors.w))
    assert.are.same({ 2 }, T.values(res.tensors.tensors.n))
    assert.are.equal("I64", res.tensors.tensors.n.dtype)
  end)
end)

-- The round loop keeps a strategy's state in its round records (F64 tensors
-- linked by CID): resuming FedAdam or FedAvgM from any round gives the
-- uninterrupted run's final model.
describe("fl strategies in the round loop", function()
  pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
  local home = support.tmpdir()
  ffi.C.setenv("IPK_HOME", home .. "/home", 1)
  local sched = require "ipk.sched"
  local runtime = require "ipk.runtime"
  local rounds = require "ipk.fl.rounds"
  local records = require "ipk.fl.records"
  local dagjson = require "ipk.dagjson"
  runtime.quiet = true
  teardown(function() support.rm_rf(home) end)

  -- 3 classes of 4 features (class c has feature c high) over 3 clients
  local function split(sizes)
    local d, k, s = 4, 3, 777
    local function rnd() s = (s * 48271) % 2147483647 return s / 2147483647 end
    local function data(n)
      local X, y = ffi.new("float[?]", n * d), ffi.new("uint8_t[?]", n)
      for i = 0, n - 1 do
        y[i] = i % k
        for j = 0, d - 1 do X[i * d + j] = rnd() + (j == i % k and 2 or 0) end
      end
      return { X = X, y = y, rows = n, features = d }
    end
    local total = 0
    for _, n in ipairs(sizes) do total = total + n end
    local sp = { clients = {}, train = data(total), test = data(30), features = d, classes = k }
    local at = 0
    for i, n in ipairs(sizes) do
      local idx = ffi.new("uint32_t[?]", n)
      for j = 0, n - 1 do idx[j] = at + j end
      at = at + n
      sp.clients[i] = { id = i - 1, n = n, idx = idx, cid = "shard" .. i }
    end
    return sp
  end
  local SPEC = { type = "softmax", classes = 3, lr = 0.3, lr_decay = 0.05, batch = 8, epochs = 1, l2 = 0 }

  for _, st in ipairs { { "fedadam", { eta = 0.05, tau = 1e-3 } }, { "fedavgm", { server_momentum = 0.9 } } } do
    it(st[1] .. " resumes from any round record to the same final model", function()
      local sp = split { 20, 30, 25 }
      local function go(resume)
        return sched.run_task(rounds.run, sp, { model = SPEC, rounds = 4, seed = 3,
          strategy = S.strategy(st[1], st[2]), resume = resume })
      end
      local full = assert(go())
      local chain = assert(sched.run_task(records.chain, full.record_cid))
      local srec = chain[2].record.strategy
      assert.are.equal(st[1], srec.name)
      assert.is_not_nil(dagjson.is_link(srec.state.tensors), "state tensors are a link, not JSON numbers")
      for k = 1, 3 do
        local res = assert(go { cid = chain[k].cid, record = chain[k].record })
        assert.are.equal(full.model_cid, res.model_cid, st[1] .. " resumed after round " .. k)
      end
      -- and the state matters: without it (a fresh strategy from round 3) the model differs
      local fresh = chain[2].record
      local copy = {}
      for kk, v in pairs(fresh) do copy[kk] = v end
      copy.strategy = { name = srec.name, params = srec.params }
      local res = assert(go { cid = chain[2].cid, record = copy })
      assert.are_not.equal(full.model_cid, res.model_cid)
    end)
  end
end)

describe("fl custom strategies", function()
  it("a script's configure_fit chooses clients and per-client config (deterministic sample)", function()
    local st = assert(S.strategy(support.root .. "/examples/custom_aggregation.lua"))
    assert.are.equal("median", st.name)
    local clients = { "a", "b", "c", "d", "e", "f" }
    local ins = assert(st.configure_fit(11, clients, "bafyPrev"))
    assert.are.equal(3, #ins)
    assert.are.equal(0.05, ins[1].config.lr)
    local again = assert(st.configure_fit(11, clients, "bafyPrev"))
    for i = 1, 3 do assert.are.equal(ins[i].client, again[i].client) end
  end)

  it("an inline strategy table works and its errors are reported with its name", function()
    local st = assert(S.strategy { name = "first", aggregate = function(updates) return updates[1].tensors end })
    local a = model({ 1, 2, 3, 4 }, { 1, 2 }, 1)
    assert.are.equal(assert(a:to_safetensors()), assert(st.aggregate({ { tensors = a, num_examples = 1 } }):to_safetensors()))
    local bad = assert(S.strategy { name = "broken", aggregate = function() return nil, "cannot" end })
    local res, err = bad.aggregate({ { tensors = a, num_examples = 1 } })
    assert.is_nil(res)
    assert.matches("broken: cannot", err)
    local nan = assert(S.strategy { name = "nanny", aggregate = function(updates)
      local s = updates[1].tensors:copy()
      s.tensors.w.ptr[0] = 0 / 0
      return s
    end })
    res, err = nan.aggregate({ { tensors = a, num_examples = 1 } })
    assert.is_nil(res)
    assert.matches("nanny: result: tensor w: non%-finite", err)
  end)
end)

describe("fl strategies on integer dtypes the kernels read through f64", function()
  it("averages I32, U8 and BOOL tensors half to even and range-checks", function()
    local function m(a, b, c)
      return mk { { "i", "I32", { 2 }, a }, { "u", "U8", { 1 }, { b } }, { "f", "BOOL", { 1 }, { c } } }
    end
    local res = assert(S.aggregate { strategy = "average", updates = {
      { tensors = m({ -3, 7 }, 254, 1), num_examples = 1 }, { tensors = m({ 0, 8 }, 255, 0), num_examples = 1 } } })
    assert.are.same({ -2, 8 }, T.values(res.tensors.tensors.i)) -- -1.5 -> -2, 7.5 -> 8
    assert.are.same({ 254 }, T.values(res.tensors.tensors.u))  -- 254.5 -> 254
    assert.are.same({ 0 }, T.values(res.tensors.tensors.f))    -- 0.5 -> 0
    assert.are.equal("I32", res.tensors.tensors.i.dtype)
    res = assert(S.aggregate { strategy = "fedmedian", updates = {
      { tensors = m({ 1, 1 }, 1, 1), num_examples = 1 }, { tensors = m({ 2, 4 }, 2, 1), num_examples = 1 },
      { tensors = m({ 9, 9 }, 3, 0), num_examples = 1 } } })
    assert.are.same({ 2, 4 }, T.values(res.tensors.tensors.i))
    -- Krum distances include them
    res = assert(S.aggregate { strategy = "krum", updates = {
      { tensors = m({ 1, 1 }, 1, 1), num_examples = 1 }, { tensors = m({ 2, 2 }, 2, 1), num_examples = 1 },
      { tensors = m({ 90, 90 }, 3, 0), num_examples = 1 } } })
    assert.are.equal(3, res.info.distances[1][2]) -- 1^2 + 1^2 over i, + 1^2 over u, + 0 over f
    assert.are.same({ 0 }, res.info.selected)
  end)
end)
