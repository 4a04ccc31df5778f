--- ipk.fl.rounds: federated training rounds with in-process clients on the
-- thread pool, one round record per round (ipk.fl.records: the schema).
--
-- A round r:
--  1. samples clients among those with training examples: each is ranked
--     by the CID of "<input model CID>/<seed>/<client id>" and the
--     max(floor(available * fraction_fit), min_fit_clients) lowest ranks
--     train (all of them with the default fraction_fit = 1). The ranking
--     depends only on the previous round's model, so a resumed run samples
--     the same clients;
--  2. trains each sampled client from the global model with seed
--     seed*1000003 + r*10007 + client (mod 2^31-1), learning rate
--     lr / (1 + lr_decay * (r - 1));
--  3. rejects an update holding NaN or inf (naming client and tensor); the
--     round goes on with the others if at least min_fit_clients remain;
--  4. orders updates by the CID of their safetensors bytes and aggregates
--     (the result is the same whatever order the threads finished in,
--     ARCHITECTURE.md section 6);
--  5. evaluates the new model centrally (the held-out test split) and, with
--     eval_fraction > 0, on each client's own test split (federated
--     evaluation: a seeded eval_fraction of its shard, never trained on);
--  6. stores the model (UnixFS, canonical safetensors) and the round record,
--     pinned, then reports it (on_round).
-- Resume (o.resume = a round record): the global model and the strategy
-- state are read back from the record and training continues at the next
-- round; every later round is then bit-identical to an uninterrupted run's.
local ffi = require "ffi"
local core = require "ipk.core"
local sched = require "ipk.sched"
local json = require "ipk.json"
local dagjson = require "ipk.dagjson"
local runtime = require "ipk.runtime"
local cidmod = require "ipk.cid"
local model = require "ipk.fl.model"
local strategies = require "ipk.fl.strategy"
local records = require "ipk.fl.records"

local M = {}

local floor, max, min = math.floor, math.max, math.min

local function client_seed(seed, round, client)
  return (seed * 1000003 + round * 10007 + client) % 2147483647
end
M.client_seed = client_seed

local function raw_cid(bytes)
  return cidmod.format(assert(cidmod.of(1, 0x55, bytes)))
end

-- UnixFS options of every model and state file (the model CID the step
-- reports is the same as `ipkrun add --cid-version=1` of the file).
local ADD = { cid_version = 1, raw_leaves = true, chunker = "size-262144" }

local function add_file(bytes, pin_name)
  local o = { name = pin_name }
  for k, v in pairs(ADD) do o[k] = v end
  return runtime.backend():add_bytes(bytes, o)
end
M.add_file = add_file

local function cat(cid)
  local parts = {}
  local ok, err, name = runtime.backend():cat(cid, function(c) parts[#parts + 1] = c end)
  if not ok then return nil, err, name end
  return table.concat(parts)
end

-- The first non-finite value of params p: tensor name, index in it, value.
local function non_finite(p)
  local d, kd = p.data, p.classes * p.features
  for i = 0, p.len - 1 do
    local v = d[i]
    if v ~= v or v == math.huge or v == -math.huge then
      if i < kd then return "weight", i, v end
      return "bias", i - kd, v
    end
  end
end
M.non_finite = non_finite

--- Which clients a round samples (ids, sorted).
-- @param available clients with examples ({id, n})
-- @param key the CID string of the round's input model
-- @return list of clients (sorted by id)
function M.sample(available, key, seed, fraction_fit, min_fit)
  local k = #available
  if fraction_fit < 1 then k = min(k, max(floor(#available * fraction_fit), min_fit)) end
  if k == #available then
    local all = {}
    for i, c in ipairs(available) do all[i] = c end
    table.sort(all, function(a, b) return a.id < b.id end)
    return all
  end
  local ranked = {}
  for i, c in ipairs(available) do
    ranked[i] = { c = c, rank = raw_cid(key .. "/" .. tostring(seed) .. "/" .. tostring(c.id)) }
  end
  table.sort(ranked, function(a, b) return a.rank < b.rank end)
  local out = {}
  for i = 1, k do out[i] = ranked[i].c end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

-- Hold out a seeded fraction of each client's rows as its own test split.
-- The permutation is a Fisher-Yates shuffle driven by a 31-bit LCG seeded
-- per client, so it is the same on every machine.
local function hold_out(sp, fraction, seed)
  local out = {}
  local d = sp.features
  for _, c in ipairs(sp.clients) do
    local ntest = floor(c.n * fraction + 0.5)
    if c.n > 0 and ntest > 0 and ntest < c.n then
      local perm = ffi.new("uint32_t[?]", c.n)
      ffi.copy(perm, c.idx, c.n * 4)
      local s = client_seed(seed, 0, c.id)
      for i = c.n - 1, 1, -1 do
        s = (s * 48271) % 2147483647
        local j = s % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
      end
      local ntrain = c.n - ntest
      local X = ffi.new("float[?]", ntest * d)
      local y = ffi.new("uint8_t[?]", ntest)
      for i = 0, ntest - 1 do
        local row = perm[ntrain + i]
        ffi.copy(X + i * d, sp.train.X + row * d, d * 4)
        y[i] = sp.train.y[row]
      end
      out[c.id] = { idx = perm, n = ntrain, test = { X = X, y = y, rows = ntest, features = d } }
    end
  end
  return out
end

local function check_opts(o, nclients)
  local function int(name, v, lo)
    if type(v) ~= "number" or v ~= floor(v) or v < lo then
      return nil, name .. " must be an integer >= " .. lo .. ", got " .. tostring(v), "EINVAL"
    end
    return v
  end
  local ok, err = int("rounds", o.rounds, 1)
  if not ok then return nil, err, "EINVAL" end
  ok, err = int("min_fit_clients", o.min_fit_clients, 1)
  if not ok then return nil, err, "EINVAL" end
  ok, err = int("min_available_clients", o.min_available_clients, 1)
  if not ok then return nil, err, "EINVAL" end
  if type(o.fraction_fit) ~= "number" or not (o.fraction_fit > 0 and o.fraction_fit <= 1) then
    return nil, "fraction_fit must be in (0, 1], got " .. tostring(o.fraction_fit), "EINVAL"
  end
  if type(o.eval_fraction) ~= "number" or not (o.eval_fraction >= 0 and o.eval_fraction < 1) then
    return nil, "eval_fraction must be in [0, 1), got " .. tostring(o.eval_fraction), "EINVAL"
  end
  if o.min_fit_clients > nclients then
    return nil, "min_fit_clients=" .. o.min_fit_clients .. " but the split has only " .. nclients .. " clients", "EINVAL"
  end
  return true
end

-- The history entry of a round (the step's output) from its record.
local function history_entry(rec)
  local m = rec.metrics or {}
  local ids = {}
  for i, p in ipairs(rec.participants or {}) do ids[i] = p.client end
  table.sort(ids)
  local h = { round = rec.round, train_loss = m.train_loss, clients = #ids, lr = rec.config and rec.config.lr,
              participants = json.array(ids) }
  if m.central then h.test_loss, h.test_accuracy = m.central.loss, m.central.accuracy end
  if m.federated then h.fed_loss, h.fed_accuracy = m.federated.loss, m.federated.accuracy end
  if rec.rejected then h.rejected = #rec.rejected end
  return h
end
M.history_entry = history_entry

--- Run federated training.
-- @param sp a split from ipk.dataset.split (clients, train, test, features, classes)
-- @param o {model=spec, rounds=, strategy=, seed=, fraction_fit=1, min_fit_clients=1,
--   min_available_clients=1, eval_fraction=0, trainer= (a Lua trainer
--   {fit(params, data, idx, n, seed, lr) -> loss | nil, msg; evaluate(params,
--   data) -> loss, accuracy}; default the built-in one of model.type),
--   resume={cid=, record=} (continue after that round), checkpoint={run_id=,
--   step=, key=} (where fl_rounds rows go), on_round=function(h, record_cid, record)}
-- @return {params, history, final, model_cid, record_cid} or nil, msg, name
--   (nothing is written for a round that fails)
function M.run(sp, o)
  o = o or {}
  local spec = o.model or model.softmax { classes = sp.classes }
  local rounds = o.rounds or 10
  local strategy = o.strategy or strategies.fedavg()
  local seed = o.seed or 0
  local trainer = o.trainer or model
  local ck = o.checkpoint or {}
  local pin_name = records.pin_name(ck.run_id, ck.step)
  local opts = { rounds = rounds, fraction_fit = o.fraction_fit or 1, min_fit_clients = o.min_fit_clients or 1,
                 min_available_clients = o.min_available_clients or 1, eval_fraction = o.eval_fraction or 0 }
  local okc, cerr = check_opts(opts, #sp.clients)
  if not okc then return nil, cerr, "EINVAL" end
  if type(strategy.aggregate) ~= "function" then return nil, "strategy has no aggregate function", "EINVAL" end

  -- Item 7: no client with examples is the user's data problem, said as such.
  local available, total = {}, 0
  local fed = opts.eval_fraction > 0 and hold_out(sp, opts.eval_fraction, seed) or {}
  for _, c in ipairs(sp.clients) do
    local h = fed[c.id]
    local n = h and h.n or c.n
    if n > 0 then available[#available + 1] = { id = c.id, n = n, idx = h and h.idx or c.idx, cid = c.cid, test = h and h.test } end
    total = total + c.n
  end
  if #available == 0 then
    return nil, ("all %d clients have 0 training examples (%d rows in the split): nothing to train, no model written")
      :format(#sp.clients, total), "EINVAL"
  end
  if #available < opts.min_available_clients then
    return nil, ("only %d of %d clients have training examples; min_available_clients=%d")
      :format(#available, #sp.clients, opts.min_available_clients), "EINVAL"
  end

  local global, global_cid, prev_cid, first
  first = 1
  local history = {}
  if o.resume then
    local rec = o.resume.record
    global_cid = dagjson.is_link(rec.model)
    local bytes, err, ename = cat(global_cid)
    if not bytes then return nil, "resume from round " .. rec.round .. ": model " .. global_cid .. ": " .. tostring(err), ename end
    global, err, ename = model.from_safetensors(bytes, spec)
    if not global then return nil, "resume from round " .. rec.round .. ": " .. tostring(err), ename end
    if global.features ~= sp.features or global.classes ~= spec.classes then
      return nil, "resume from round " .. rec.round .. ": the recorded model has another shape", "EINVAL"
    end
    if strategy.set_state and rec.strategy and rec.strategy.state then
      local sok, serr = strategy.set_state(rec.strategy.state)
      if sok == nil and serr then return nil, "resume from round " .. rec.round .. ": strategy state: " .. serr, "EINVAL" end
    end
    local chain, cherr, chname = records.chain(o.resume.cid)
    if not chain then return nil, "resume: " .. tostring(cherr), chname end
    for _, e in ipairs(chain) do history[#history + 1] = history_entry(e.record) end
    prev_cid, first = o.resume.cid, rec.round + 1
  else
    global = model.new_params(spec, sp.features)
    local bytes = assert(model.to_safetensors(global))
    local err, ename
    global_cid, err, ename = add_file(bytes, pin_name)
    if not global_cid then return nil, "initial model: " .. tostring(err), ename end
  end
  if first > rounds then
    return nil, ("resume: the recorded training already ran %d rounds (rounds=%d)"):format(first - 1, rounds), "EINVAL"
  end

  local now = core.now
  local record_cid = prev_cid
  for r = first, rounds do
    local t0 = now()
    -- Learning rate decays per round (lr / (1 + lr_decay * (r - 1))): with
    -- non-IID clients a fixed rate makes the global model oscillate.
    local lr = spec.lr / (1 + (spec.lr_decay or 0) * (r - 1))
    local sampled = M.sample(available, global_cid, seed, opts.fraction_fit, opts.min_fit_clients)
    local tasks = {}
    for _, c in ipairs(sampled) do
      tasks[#tasks + 1] = sched.spawn(function()
        local p = model.copy(global)
        local s = client_seed(seed, r, c.id)
        local loss, err = trainer.fit(p, sp.train, c.idx, c.n, s, lr)
        if not loss then error("client " .. c.id .. ": " .. tostring(err), 0) end
        local tname, at, v = non_finite(p)
        if tname then
          return { client = c.id, rejected = ("tensor '%s' holds %s at index %d"):format(tname, tostring(v), at) }
        end
        if loss ~= loss or loss == math.huge then
          return { client = c.id, rejected = "training loss is " .. tostring(loss) }
        end
        local bytes = assert(model.to_safetensors(p))
        return { params = p, n = c.n, loss = loss, client = c.id, cid = raw_cid(bytes), seed = s, shard = c.cid }
      end)
    end
    local results = sched.join(tasks)
    local updates, rejected = {}, {}
    for _, u in ipairs(results) do
      if u.rejected then rejected[#rejected + 1] = { client = u.client, reason = u.rejected }
      else updates[#updates + 1] = u end
    end
    table.sort(rejected, function(a, b) return a.client < b.client end)
    if #updates < opts.min_fit_clients then
      local why = {}
      for _, x in ipairs(rejected) do why[#why + 1] = "client " .. x.client .. ": " .. x.reason end
      return nil, ("round %d: %d of %d client updates usable, min_fit_clients=%d (rejected: %s); no model written")
        :format(r, #updates, #results, opts.min_fit_clients, table.concat(why, "; ")), "EINVAL"
    end
    table.sort(updates, function(a, b) return a.cid < b.cid end)
    local agg, err, aname = strategy.aggregate(updates, global)
    if not agg then return nil, "round " .. r .. ": " .. tostring(err), aname or "EINVAL" end
    local tname, at, v = non_finite(agg)
    if tname then
      return nil, ("round %d: the aggregated model's tensor '%s' holds %s at index %d; no model written")
        :format(r, tname, tostring(v), at), "ERANGE"
    end
    local tl, tw = 0, 0
    local parts = {}
    for i, u in ipairs(updates) do
      tl = tl + u.loss * u.n; tw = tw + u.n
      parts[i] = { client = u.client, shard = u.shard, update = u.cid, num_examples = u.n, seed = u.seed,
                   metrics = { loss = u.loss } }
    end
    local metrics = { train_loss = tl / tw }
    if sp.test then
      local loss, acc, ename = trainer.evaluate(agg, sp.test)
      if not loss then return nil, "round " .. r .. ": central evaluation: " .. tostring(acc), ename end
      metrics.central = { loss = loss, accuracy = acc }
    end
    if opts.eval_fraction > 0 then
      local fl, fa, fn, fc = 0, 0, 0, 0
      for _, c in ipairs(available) do
        if c.test then
          local loss, acc, ename = trainer.evaluate(agg, c.test)
          if not loss then return nil, "round " .. r .. ": client " .. c.id .. " evaluation: " .. tostring(acc), ename end
          fl, fa, fn, fc = fl + loss * c.test.rows, fa + acc * c.test.rows, fn + c.test.rows, fc + 1
        end
      end
      if fn > 0 then metrics.federated = { loss = fl / fn, accuracy = fa / fn, clients = fc, num_examples = fn } end
    end
    local bytes = assert(model.to_safetensors(agg))
    local mcid, merr, mname = add_file(bytes, pin_name)
    if not mcid then return nil, "round " .. r .. ": model: " .. tostring(merr), mname end
    local sampled_ids = {}
    for i, c in ipairs(sampled) do sampled_ids[i] = c.id end
    local srec = { name = strategy.name or "custom", params = strategy.params or {} }
    if strategy.get_state then
      local st, serr = strategy.get_state()
      if st == nil and serr then return nil, "round " .. r .. ": strategy state: " .. tostring(serr), "EINVAL" end
      if st ~= nil then
        if st.tensors ~= nil then
          -- tensors arrive as F64 safetensors bytes; the record links them
          if type(st.tensors) ~= "string" then
            return nil, "round " .. r .. ": strategy state: tensors must be F64 safetensors bytes", "EINVAL"
          end
          local tcid, terr, tn = add_file(st.tensors, pin_name)
          if not tcid then return nil, "round " .. r .. ": strategy state: " .. tostring(terr), tn end
          st = { scalars = st.scalars, tensors = dagjson.link(tcid) }
        end
        srec.state = st
      end
    end
    local rec = {
      type = records.TYPE, version = records.VERSION, round = r,
      prev = prev_cid and dagjson.link(prev_cid) or nil,
      input_model = dagjson.link(global_cid), model = dagjson.link(mcid),
      strategy = srec,
      rng = { seed = seed, sampling = "cid-rank", sampling_key = global_cid,
              training = "seed*1000003+round*10007+client mod 2^31-1" },
      config = { lr = lr, epochs = spec.epochs, batch = spec.batch },
      clients = { available = #available, sampled = json.array(sampled_ids), fraction_fit = opts.fraction_fit,
                  min_fit_clients = opts.min_fit_clients, min_available_clients = opts.min_available_clients },
      participants = json.array(parts),
      rejected = #rejected > 0 and json.array(rejected) or nil,
      metrics = metrics,
    }
    local rcid, rerr, rname = records.put(rec, { run_id = ck.run_id, step = ck.step, key = ck.key, seconds = now() - t0 })
    if not rcid then return nil, rerr, rname end
    global, global_cid, prev_cid, record_cid = agg, mcid, rcid, rcid
    local h = history_entry(rec)
    history[#history + 1] = h
    if o.on_round then o.on_round(h, rcid, rec, now() - t0) end
    sched.check()
  end
  return { params = global, history = history, final = history[#history], model_cid = global_cid,
           record_cid = record_cid }
end

return M
