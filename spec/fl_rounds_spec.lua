-- ipk.fl.rounds and ipk.fl.records: round records (the chain, what each
-- holds), resume from a record, client sampling, federated evaluation,
-- bad input (clients without examples, NaN updates); then real processes:
-- a training killed (kill -9, Ctrl-C) after a few rounds and resumed with
-- `ipkrun run --resume` ends with the model and round chain of an
-- uninterrupted run; `ipkrun fl rounds` lists the chain. Own $IPK_HOME.
local u = support
local json = require "cjson"
local ffi = require "ffi"
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")

local home_root = u.tmpdir()
ffi.C.setenv("IPK_HOME", home_root .. "/home", 1)

local sched = require "ipk.sched"
local runtime = require "ipk.runtime"
local dagjson = require "ipk.dagjson"
local T = require "ipk.fl.tensors"
local trainers = require "ipk.fl.trainers"
local strategies = require "ipk.fl.strategy"
local rounds = require "ipk.fl.rounds"
local records = require "ipk.fl.records"
runtime.quiet = true

local DATA = "/usr/share/datasets/fashion-mnist"
local RECIPE = u.root .. "/recipes/fashion_mnist_fedavg.lua"

-- A small synthetic split: 3 classes of 4 features (class c has feature c
-- high), rows spread over `sizes` clients; a test split of 60 rows.
local function split(sizes)
  local d, k = 4, 3
  local total = 0
  for _, n in ipairs(sizes) do total = total + n end
  local rows = math.max(total, 1)
  local s = 12345
  local function rnd() s = (s * 48271) % 2147483647 return s / 2147483647 end
  local function data(n)
    local X, y = ffi.new("float[?]", math.max(n, 1) * d), ffi.new("uint8_t[?]", math.max(n, 1))
    for i = 0, n - 1 do
      local c = i % k
      y[i] = c
      for j = 0, d - 1 do X[i * d + j] = rnd() + (j == c and 2 or 0) end
    end
    return { X = X, y = y, rows = n, features = d }
  end
  local sp = { clients = {}, train = data(rows), test = data(60), features = d, classes = k }
  local at = 0
  for i, n in ipairs(sizes) do
    local idx = ffi.new("uint32_t[?]", math.max(n, 1))
    for j = 0, n - 1 do idx[j] = at + j end
    at = at + n
    sp.clients[i] = { id = i - 1, n = n, idx = idx, cid = "shard" .. i }
  end
  return sp
end

local SPEC = { type = "softmax", classes = 3, lr = 0.3, lr_decay = 0.05, batch = 8, epochs = 1, l2 = 0 }
local ANY = { min_fit_clients = 1, min_available_clients = 1 }

local function strategy(name, params)
  local p = {}
  for k, v in pairs(ANY) do p[k] = v end
  for k, v in pairs(params or {}) do p[k] = v end
  return assert(strategies.new(name or "fedavg", p))
end

local function run(sp, o)
  o.model = o.model or SPEC
  o.strategy = o.strategy or strategy()
  return sched.run_task(rounds.run, sp, o)
end

local function cat(cid)
  return sched.run_task(function()
    local parts = {}
    assert(runtime.backend():cat(cid, function(c) parts[#parts + 1] = c end))
    return table.concat(parts)
  end)
end

local function fl_pins()
  local out = {}
  for _, p in ipairs(sched.run_task(function() return assert(runtime.backend():pin_ls()) end)) do
    if (p.name or ""):match("^fl%.round:") then out[#out + 1] = p end
  end
  return out
end

describe("ipk.fl.rounds", function()
  teardown(function() u.rm_rf(home_root) end)

  it("writes one round record per round, chained, with no wall-clock time", function()
    local sp = split { 30, 20, 40 }
    local heads = {}
    local res = assert(run(sp, { rounds = 3, seed = 5, checkpoint = { run_id = "r-chain", step = "model", key = "k1" },
      on_round = function(_, cid) heads[#heads + 1] = cid end }))
    assert.equal(3, #heads)
    assert.equal(heads[3], res.record_cid)
    local chain = assert(sched.run_task(records.chain, res.record_cid))
    assert.equal(3, #chain)
    for i, e in ipairs(chain) do
      local r = e.record
      assert.equal(heads[i], e.cid)
      assert.equal("ipk.fl.round", r.type)
      assert.equal(i, r.round)
      if i == 1 then assert.is_nil(r.prev) else assert.equal(heads[i - 1], dagjson.is_link(r.prev)) end
      if i > 1 then assert.equal(dagjson.is_link(chain[i - 1].record.model), dagjson.is_link(r.input_model)) end
      assert.equal("fedavg", r.strategy.name)
      assert.equal(1, r.strategy.params.min_fit_clients)
      assert.equal(5, r.rng.seed)
      assert.equal(dagjson.is_link(r.input_model), r.rng.sampling_key)
      assert.equal(3, #r.participants)
      local n = 0
      for j, p in ipairs(r.participants) do
        n = n + p.num_examples
        assert.equal(rounds.client_seed(5, i, p.client), p.seed)
        assert.matches("^bafkrei", p.update)
        if j > 1 then assert.is_true(r.participants[j - 1].update < p.update, "aggregation order is update CID order") end
        assert.is_number(p.metrics.train_loss)
      end
      assert.equal(90, n)
      assert.is_number(r.metrics.central.accuracy)
      assert.is_number(r.metrics.train_loss)
      -- the model it links reads back as a tensor set with the trainer's names and metadata
      local set = assert(T.from_safetensors(cat(dagjson.is_link(r.model))))
      assert.same({ 3, 4 }, set.tensors.weight.shape)
      assert.equal("softmax", set.metadata["ipk.model"])
      -- no time anywhere in the record
      local text = assert(dagjson.encode(r))
      for _, w in ipairs { "seconds", "time", "started", "ended", "duration" } do
        assert.is_nil(text:find('"' .. w .. '"', 1, true), w)
      end
    end
    assert.equal(res.model_cid, dagjson.is_link(chain[3].record.model))
    -- the run database has the rounds, with their seconds
    local rows = sched.run_task(records.rows, "r-chain")
    assert.equal(3, #rows)
    assert.equal(heads[2], rows[2].record_cid)
    assert.is_true(rows[2].seconds >= 0)
  end)

  it("an ensemble round ends training and is evaluated by the mean of its members' probabilities", function()
    local sp = split { 25, 35, 15, 30 }
    local res = assert(run(sp, { rounds = 3, seed = 2, strategy = strategy("ensemble") }))
    assert.equal(1, #res.history)   -- a final aggregation: training ends after it
    local h = res.history[1]
    assert.is_number(h.test_accuracy, "no central evaluation of the ensemble")
    assert.is_true(h.test_accuracy > 0.5, tostring(h.test_accuracy))
    assert.is_number(h.test_loss)
    -- the round record holds it too, with the member count
    local chain = assert(sched.run_task(records.chain, res.record_cid))
    assert.equal(4, chain[#chain].record.metrics.central.members)
  end)

  it("resumes from any round record to the same final model and chain", function()
    local sp = split { 25, 35, 15, 30 }
    local full = assert(run(sp, { rounds = 5, seed = 9, strategy = strategy("fedavg", { fraction_fit = 0.5 }) }))
    local chain = assert(sched.run_task(records.chain, full.record_cid))
    for k = 1, 4 do
      local res = assert(run(sp, { rounds = 5, seed = 9, strategy = strategy("fedavg", { fraction_fit = 0.5 }),
        resume = { cid = chain[k].cid, record = chain[k].record } }))
      assert.equal(full.model_cid, res.model_cid)
      assert.equal(full.record_cid, res.record_cid)
      assert.same(full.history, res.history)
    end
    -- a resume beyond the end is refused
    local res, err = run(sp, { rounds = 5, seed = 9, resume = { cid = chain[5].cid, record = chain[5].record } })
    assert.is_nil(res)
    assert.equal("resume: the recorded training already ran 5 rounds (rounds=5)", err)
  end)

  it("keeps a stateful strategy's state (FedAdam moments) as linked F64 safetensors; resume is exact", function()
    local sp = split { 30, 30, 30 }
    local function adam() return strategy("fedadam", { eta = 0.05 }) end
    local full = assert(run(sp, { rounds = 4, seed = 4, strategy = adam() }))
    local chain = assert(sched.run_task(records.chain, full.record_cid))
    local st = chain[2].record.strategy.state
    assert.equal(2, st.scalars.round)
    local tcid = dagjson.is_link(st.tensors)
    assert.is_string(tcid)
    local set = assert(T.from_safetensors(cat(tcid)))
    assert.is_true(#set.names > 0)
    for _, n in ipairs(set.names) do assert.equal("F64", set.tensors[n].dtype, n) end
    for k = 1, 3 do
      local res = assert(run(sp, { rounds = 4, seed = 4, strategy = adam(),
        resume = { cid = chain[k].cid, record = chain[k].record } }))
      assert.equal(full.model_cid, res.model_cid)
      assert.equal(full.record_cid, res.record_cid)
    end
    -- without the state the same resume gives another model: the state matters
    local rec = {}
    for k, v in pairs(chain[2].record) do rec[k] = v end
    rec.strategy = { name = "fedadam", params = chain[2].record.strategy.params }
    local other = assert(run(sp, { rounds = 4, seed = 4, strategy = adam(), resume = { cid = chain[2].cid, record = rec } }))
    assert.not_equal(full.model_cid, other.model_cid)
  end)

  it("samples clients with the strategy's configure_fit, seeded from the previous model's CID", function()
    local sp = split { 20, 20, 20, 20, 20, 20 }
    local a = assert(run(sp, { rounds = 4, seed = 1, strategy = strategy("fedavg", { fraction_fit = 0.5 }) }))
    local b = assert(run(sp, { rounds = 4, seed = 1, strategy = strategy("fedavg", { fraction_fit = 0.5 }) }))
    assert.equal(a.model_cid, b.model_cid)
    local chain = assert(sched.run_task(records.chain, a.record_cid))
    local differ = false
    local avail = {}
    for _, c in ipairs(sp.clients) do avail[#avail + 1] = { id = c.id } end
    for i, e in ipairs(chain) do
      assert.equal(3, #e.record.participants)                 -- floor(6 * 0.5)
      assert.same(a.history[i].participants, e.record.clients.sampled)
      if i > 1 and not differ then
        differ = table.concat(e.record.clients.sampled, ",") ~= table.concat(chain[1].record.clients.sampled, ",")
      end
      -- the sample is a function of the input model CID and the seed
      local plan = strategy("fedavg", { fraction_fit = 0.5 }).configure_fit(i, avail, e.record.rng.sampling_key,
        { seed = 1 })
      local ids = {}
      for j, x in ipairs(plan) do ids[j] = x.client.id end
      assert.same(ids, e.record.clients.sampled)
    end
    assert.is_true(differ, "the sample never changed over 4 rounds")
    local c = assert(run(sp, { rounds = 1, seed = 1, strategy = strategy("fedavg", { fraction_fit = 0.1, min_fit_clients = 2 }) }))
    assert.equal(2, c.history[1].clients)
  end)

  it("evaluates on each client's own test split beside the central test set", function()
    local sp = split { 40, 40, 40 }
    local res = assert(run(sp, { rounds = 2, seed = 3, eval_fraction = 0.25 }))
    local rec = sched.run_task(records.read, res.record_cid)
    assert.equal(3, rec.metrics.federated.clients)
    assert.equal(30, rec.metrics.federated.num_examples)       -- 10 held out per client
    assert.is_true(rec.metrics.federated.accuracy >= 0 and rec.metrics.federated.accuracy <= 1)
    assert.equal(60, rec.metrics.central.num_examples)
    local n = 0
    for _, p in ipairs(rec.participants) do n = n + p.num_examples end
    assert.equal(90, n)                                         -- clients train on the rest
    assert.equal(rec.metrics.federated.accuracy, res.final.fed_accuracy)
  end)

  it("all clients with 0 examples: an error that says so, no model written", function()
    local before = #fl_pins()
    local res, err = run(split { 0, 0, 0 }, { rounds = 2, checkpoint = { run_id = "r-empty", step = "model", key = "k" } })
    assert.is_nil(res)
    assert.equal("all 3 clients have 0 training examples (0 rows in the split): nothing to train, no model written", err)
    assert.equal(before, #fl_pins())
    assert.equal(0, #sched.run_task(records.rows, "r-empty"))
    -- a trainer whose clients all report 0 examples (an exec script, say)
    local builtin = assert(trainers.resolve(SPEC))
    local zero = { init = builtin.init, evaluate = builtin.evaluate, fit = function(g, sh, cfg)
      local set, r = builtin.fit(g, sh, cfg)
      r.num_examples = 0
      return set, r
    end }
    res, err = run(split { 10, 10 }, { rounds = 2, trainer = zero, checkpoint = { run_id = "r-zero", step = "model", key = "k" } })
    assert.is_nil(res)
    assert.equal("round 1: all 2 clients that trained reported 0 examples: nothing to aggregate, no model written", err)
    assert.equal(0, #sched.run_task(records.rows, "r-zero"))
  end)

  it("rejects a NaN update naming client and tensor; the round goes on while min_fit_clients holds", function()
    local sp = split { 30, 30, 30 }
    -- A Lua trainer (the contract): client 1's update gets a NaN in its
    -- bias from round 2 on.
    local builtin = assert(trainers.resolve(SPEC))
    local trainer = { init = builtin.init, evaluate = builtin.evaluate, fit = function(g, sh, cfg)
      local set, r = builtin.fit(g, sh, cfg)
      if sh.client == 1 and cfg.round >= 2 then set.tensors.bias.ptr[1] = 0 / 0 end
      return set, r
    end }
    local res = assert(run(sp, { rounds = 3, seed = 2, trainer = trainer, strategy = strategy("fedavg", { min_fit_clients = 2 }) }))
    local chain = assert(sched.run_task(records.chain, res.record_cid))
    assert.is_nil(chain[1].record.rejected)
    for r = 2, 3 do
      local rec = chain[r].record
      assert.equal(2, #rec.participants)
      assert.same({ { client = 1, reason = "client 1: tensor bias: non-finite value NaN (NaN/inf) at element 1" } },
        rec.rejected)
      for _, p in ipairs(rec.participants) do assert.not_equal(1, p.client) end
    end
    assert.equal(1, res.history[3].rejected)
    -- with min_fit_clients = 3 the round cannot go on: a clear error, no model for it
    local r2, err = run(sp, { rounds = 3, seed = 2, trainer = trainer, strategy = strategy("fedavg", { min_fit_clients = 3 }),
      checkpoint = { run_id = "r-nan", step = "model", key = "k" } })
    assert.is_nil(r2)
    assert.equal("round 2: 2 of 3 client updates usable, min_fit_clients=3 (rejected: client 1: tensor bias: non-finite"
      .. " value NaN (NaN/inf) at element 1); no model written", err)
    assert.equal(1, #sched.run_task(records.rows, "r-nan"))
  end)

  it("parallel bounds how many clients train at once; the model is the same", function()
    local sp = split { 20, 20, 20, 20, 20 }
    local builtin = assert(trainers.resolve(SPEC))
    local active, peak = 0, 0
    local trainer = { init = builtin.init, evaluate = builtin.evaluate, fit = function(g, sh, cfg)
      active = active + 1
      peak = math.max(peak, active)
      sched.sleep(0.01)   -- every fit waits: unbounded, all five would overlap
      local set, r = builtin.fit(g, sh, cfg)
      active = active - 1
      return set, r
    end }
    local all = assert(run(sp, { rounds = 2, seed = 6, trainer = trainer }))
    assert.equal(5, peak)
    peak = 0
    local two = assert(run(sp, { rounds = 2, seed = 6, trainer = trainer, parallel = 2 }))
    assert.equal(2, peak)
    assert.equal(all.model_cid, two.model_cid)
    assert.equal(all.record_cid, two.record_cid)
    local _, err = run(sp, { rounds = 1, parallel = 0 })
    assert.equal("parallel must be an integer >= 1, got 0", err)
  end)

  it("a failing client is rejected with the trainer's message; bad options are clear errors", function()
    local sp = split { 20, 20, 20 }
    local builtin = assert(trainers.resolve(SPEC))
    local trainer = { init = builtin.init, evaluate = builtin.evaluate, fit = function(g, sh, cfg)
      if sh.client == 2 then return nil, "exit code 3", "EEXEC" end
      return builtin.fit(g, sh, cfg)
    end }
    local res = assert(run(sp, { rounds = 1, trainer = trainer }))
    local rec = sched.run_task(records.read, res.record_cid)
    assert.same({ { client = 2, reason = "client 2: exit code 3" } }, rec.rejected)
    local _, err = run(sp, { rounds = 1, eval_fraction = 1 })
    assert.equal("eval_fraction must be in [0, 1), got 1", err)
    _, err = run(split { 10, 0 }, { rounds = 1, strategy = strategy("fedavg", { min_available_clients = 2 }) })
    assert.equal("round 1: 1 client(s) available, min_available_clients = 2", err)
  end)
end)

describe("ipkrun run --resume of an interrupted training; ipkrun fl rounds", function()
  if not u.exists(DATA .. "/train-labels-idx1-ubyte.gz") then
    pending("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    return
  end
  local tmp = u.tmpdir()
  teardown(function() u.rm_rf(tmp) end)
  local ROUNDS = 30
  local ARGS = { "run", RECIPE, "--param", "clients=4", "--param", "rounds=" .. ROUNDS, "--param", "seed=2", "--json" }

  local function runs(env)
    local code, out = u.ipkrun({ "runs", "--json" }, env)
    assert.equal(0, code)
    return json.decode(out).runs
  end

  local function fl_rounds(env, id)
    local code, out, err = u.ipkrun({ "fl", "rounds", id, "--json" }, env)
    assert.equal(0, code, err)
    return json.decode(out).steps[1]
  end

  -- The uninterrupted run, in its own store.
  local ref
  local function reference()
    if ref then return ref end
    local env = { IPK_HOME = tmp .. "/ref" }
    local code, out, err = u.ipkrun(ARGS, env)
    assert.equal(0, code, err)
    local r = json.decode(out)
    ref = { model_cid = r.model_cid, history = r.history, run = runs(env)[1].id, env = env }
    ref.chain = fl_rounds(env, ref.run)
    return ref
  end

  -- Start the run in the background, wait until round `after` is logged
  -- (its record is then written), send `sig`, wait for the exit code.
  local function interrupted(name, sig, after)
    local env = { IPK_HOME = tmp .. "/" .. name }
    local dir = tmp .. "/" .. name .. "-proc"
    os.execute("mkdir -p " .. u.q(dir))
    local parts = {}
    for _, a in ipairs(ARGS) do parts[#parts + 1] = u.q(a) end
    local script = ("IPK_HOME=%s %s %s >/dev/null 2>%s & echo $! >%s; wait $!; echo $? >%s"):format(u.q(env.IPK_HOME),
      u.q(u.ipkrun_path), table.concat(parts, " "), u.q(dir .. "/err"), u.q(dir .. "/pid"), u.q(dir .. "/code"))
    os.execute("sh -c " .. u.q(script) .. " >/dev/null 2>&1 &")
    local pat = ("model: round %2d/%d "):format(after, ROUNDS)
    os.execute("for i in $(seq 1200); do grep -q " .. u.q(pat) .. " " .. u.q(dir .. "/err")
      .. " 2>/dev/null && break; sleep 0.05; done")
    assert.is_truthy(u.read(dir .. "/err"):find(pat, 1, true), "round " .. after .. " never logged")
    local pid = u.read(dir .. "/pid"):match("%d+")
    os.execute("kill -" .. sig .. " " .. pid)
    os.execute("for i in $(seq 600); do [ -s " .. u.q(dir .. "/code") .. " ] && break; sleep 0.05; done")
    return env, tonumber(u.read(dir .. "/code"):match("%d+")), u.read(dir .. "/err")
  end

  local function resume_and_compare(env, status)
    local r0 = reference()
    local before = runs(env)[1]
    assert.equal(status, before.status)
    -- the interrupted run lists the rounds it finished
    local part = fl_rounds(env, before.id)
    local k = #part.rounds
    assert.is_true(k >= 3 and k < ROUNDS, "rounds finished before the interruption: " .. k)
    for i = 1, k do assert.equal(r0.chain.rounds[i].record_cid, part.rounds[i].record_cid) end
    local code, out, err = u.ipkrun({ "run", "--resume", before.id, "--json" }, env)
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.equal(r0.model_cid, r.model_cid)
    assert.same(r0.history, r.history)
    local after = runs(env)[1]
    assert.equal(before.id, after.resumed_from)
    local _, logs = u.ipkrun({ "logs", after.id, "model" }, env)
    assert.matches("resuming after round " .. k .. " ", logs, 1, true)
    assert.is_nil(logs:find("round  1/", 1, true), "the resumed run trained round 1 again")
    -- the whole chain is the uninterrupted run's, record for record
    local chain = fl_rounds(env, after.id)
    assert.equal(r0.chain.head, chain.head)
    assert.equal(ROUNDS, #chain.rounds)
    assert.equal(r0.model_cid, chain.rounds[ROUNDS].model_cid)
    -- the finished step keeps the chain with one recursive pin: the
    -- per-round pins (the interrupted run's too) are gone, and gc keeps
    -- every record and model of the chain
    local _, pins = u.ipkrun({ "pin", "ls" }, env)
    assert.is_nil(pins:find("fl.round:", 1, true), pins)
    assert.matches(chain.head .. " recursive step:fl.train", pins, 1, true)
    assert.equal(0, (u.ipkrun({ "gc" }, env)))
    chain = fl_rounds(env, after.id)
    assert.equal(ROUNDS, #chain.rounds)
    assert.equal(0, (u.ipkrun({ "cat", chain.rounds[1].model_cid }, env)))
  end

  it("kill -9 after a few rounds, then run --resume: the uninterrupted run's model CID", function()
    local env, code = interrupted("kill9", "KILL", 4)
    assert.equal(137, code)
    resume_and_compare(env, "interrupted")
  end)

  it("Ctrl-C after a few rounds, then run --resume: the uninterrupted run's model CID", function()
    local env, code, err = interrupted("sigint", "INT", 3)
    assert.equal(130, code)
    assert.matches("ipkrun: run: cancelled: interrupted %(Ctrl%-C%)\n$", err)
    resume_and_compare(env, "cancelled")
  end)

  it("a step timeout with retries: each attempt continues after the last round the previous one recorded", function()
    local r0 = reference()
    local env = { IPK_HOME = tmp .. "/timeout" }
    local p = tmp .. "/timeout.lua"
    -- The timeout lasts about 6 rounds of the reference run on this machine
    -- (a sanitized build is slower), so every attempt records a few rounds
    -- and the first cannot finish all of them.
    local sum = 0
    for _, rr in ipairs(r0.chain.rounds) do sum = sum + rr.seconds end
    local timeout = math.max(0.2, 6 * sum / #r0.chain.rounds)
    -- the main recipe's steps, the training cut by a short timeout and retried
    u.write(p, ([[
local ipk = require "ipk"
return ipk.recipe { name = "fl-timeout", steps = {
  data = ipk.dataset.add { path = %q, name = "fashion-mnist", package = "dataset-fashion-mnist" },
  shards = ipk.dataset.split { data = "data", clients = 4, alpha = 0.5, seed = 2 },
  model = ipk.fl.train { shards = "shards", timeout = %.3f, retries = 200,
    model = { type = "softmax", classes = 10, lr = 0.5, lr_decay = 0.05, batch = 256, epochs = 1, l2 = 0 },
    rounds = %d, seed = 2, strategy = "fedavg" } },
  result = function(out) return { model_cid = out.model.model_cid, attempts = 0 } end }
]]):format(DATA, timeout, ROUNDS))
    local code, out, err = u.ipkrun({ "run", p, "--json" }, env)
    assert.equal(0, code, err)
    assert.equal(r0.model_cid, json.decode(out).model_cid)
    local id = runs(env)[1].id
    local _, logs = u.ipkrun({ "logs", id, "model" }, env)
    assert.matches("attempt 1/201 failed: [^\n]*timeout after", logs)
    assert.matches("resuming after round %d+ ", logs)
    local chain = fl_rounds(env, id)
    assert.equal(r0.chain.head, chain.head)
  end)

  it("recipes/fashion_mnist_mlp.lua: an MLP with FedProx, federated and central evaluation per round", function()
    local env = { IPK_HOME = tmp .. "/mlp" }
    local code, out, err = u.ipkrun({ "run", u.root .. "/recipes/fashion_mnist_mlp.lua", "--param", "clients=3",
      "--param", "rounds=2", "--param", "hidden=16", "--json" }, env)
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.equal(2, #r.history)
    assert.is_true(r.test_accuracy > 0.3 and r.test_accuracy <= 1, "test accuracy " .. r.test_accuracy)
    assert.is_true(r.fed_accuracy > 0.3 and r.fed_accuracy <= 1, "federated accuracy " .. r.fed_accuracy)
    local chain = fl_rounds(env, runs(env)[1].id)
    assert.equal(r.round_record, chain.head)
    local rec = chain.rounds[2]
    assert.equal("fedprox", rec.strategy)
    assert.equal(r.model_cid, rec.model_cid)
    assert.equal(3, rec.metrics.federated.clients)
    assert.equal(10000, rec.metrics.central.num_examples)
    -- the model holds the MLP's layers under PyTorch's names
    assert.equal(0, (u.ipkrun({ "get", r.model_cid, "-o", tmp .. "/mlp.safetensors" }, env)))
    local bytes = u.read(tmp .. "/mlp.safetensors")
    assert.matches('"fc1.weight":{"dtype":"F32","shape":[16,784]', bytes, 1, true)
    assert.matches('"fc2.weight":{"dtype":"F32","shape":[10,16]', bytes, 1, true)
    -- FedProx's mu reached the clients
    assert.equal(0.01, rec.config.proximal_mu)
  end)

  it("more rounds after a finished training: the same first records (already pinned) and the new ones", function()
    -- regression: round 1..N's records were pinned recursively by the
    -- finished chain, and pinning them again (directly) failed the step
    local r0 = reference()
    local args = {}
    for i, a in ipairs(ARGS) do args[i] = a end
    args[6] = "rounds=" .. (ROUNDS + 2)
    args[#args + 1] = "--param"
    args[#args + 1] = "version=1.0.1"
    local code, _, err = u.ipkrun(args, r0.env)
    assert.equal(0, code, err)
    local chain = fl_rounds(r0.env, runs(r0.env)[1].id)
    assert.equal(ROUNDS + 2, #chain.rounds)
    assert.equal(r0.chain.head, chain.rounds[ROUNDS].record_cid)
    local _, pins = u.ipkrun({ "pin", "ls" }, r0.env)
    assert.is_nil(pins:find("fl.round:", 1, true), pins)
    -- and --force retrains the same chain
    code, _, err = u.ipkrun({ "run", RECIPE, "--param", "clients=4", "--param", "rounds=" .. ROUNDS, "--param", "seed=2",
      "--force", "model" }, r0.env)
    assert.equal(0, code, err)
    assert.equal(r0.chain.head, fl_rounds(r0.env, runs(r0.env)[1].id).head)
  end)

  it("fl rounds prints the chain as a table; bad run ids are clear errors", function()
    local r0 = reference()
    local code, out = u.ipkrun({ "fl", "rounds", r0.run }, r0.env)
    assert.equal(0, code)
    assert.matches("step model  " .. ROUNDS .. " rounds  head " .. r0.chain.head, out, 1, true)
    assert.matches("\n    1  " .. r0.chain.rounds[1].model_cid .. " +4 ", out)
    assert.matches("\n   " .. ROUNDS .. "  " .. r0.model_cid .. " ", out)
    local r1 = r0.chain.rounds[1]
    assert.equal(1, r1.round)
    assert.equal(4, #r1.participants)
    assert.is_number(r1.metrics.central.accuracy)
    assert.equal(r0.history[1].test_accuracy, r1.metrics.central.accuracy)
    local err
    code, out, err = u.ipkrun({ "fl", "rounds", "nosuchrun" }, r0.env)
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ipkrun: fl rounds: no run 'nosuchrun' (see ipkrun runs)\n", err)
    code, out, err = u.ipkrun({ "fl", "rounds" }, r0.env)
    assert.equal("", out)
    assert.equal(2, code)
    assert.equal("ipkrun: fl rounds: expected one RUN id (see ipkrun runs)\n", err)
  end)
end)
