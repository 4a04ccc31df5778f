--- ipk.fl.rounds: federated training rounds with in-process clients on the
-- thread pool, over named typed tensor sets (ipk.fl.tensors), a trainer
-- (the contract of ipk.fl.trainers: init, fit, evaluate) and a strategy
-- object (ipk.fl.strategy: configure_fit, validate, aggregate, get_state,
-- set_state); one round record per round (ipk.fl.records: the schema).
--
-- A round r:
--  1. the strategy's configure_fit samples among the clients with training
--     examples, seeded from the CID of the round's input model (the
--     previous round's model: a resumed run samples the same clients), and
--     gives each its fit config; the loop adds the client's training seed
--     seed*1000003 + r*10007 + client (mod 2^31-1);
--  2. each sampled client trains from the global model (trainer.fit);
--  3. an update that failed (the trainer's error), or that the strategy's
--     validate refuses (NaN or inf naming the tensor, another layout) is
--     rejected, naming the client; the round goes on with the others if at
--     least min_fit_clients remain, else it fails with all the reasons;
--  4. updates are ordered by the CID of their safetensors bytes and
--     aggregated (the result is the same whatever order the threads
--     finished in, ARCHITECTURE.md section 6);
--  5. the new model is evaluated centrally (the held-out test split) and,
--     with eval_fraction > 0, by every client on its own test split (a
--     seeded eval_fraction of its shard it never trains on: federated
--     evaluation, weighted by test rows);
--  6. the model (UnixFS, canonical safetensors), the strategy state tensors
--     (F64 safetensors) and the round record are stored and pinned, then
--     reported (on_round).
-- Resume (o.resume = a round record): the global model and the strategy
-- state are read back from the record and training continues at the next
-- round; every later round is then bit-identical to an uninterrupted run's.
-- A final strategy (ensemble) ends training after its round.
local core = require "ipk.core"
local sched = require "ipk.sched"
local json = require "ipk.json"
local dagjson = require "ipk.dagjson"
local runtime = require "ipk.runtime"
local cidmod = require "ipk.cid"
local T = require "ipk.fl.tensors"
local model = require "ipk.fl.model"
local trainers = require "ipk.fl.trainers"
local strategies = require "ipk.fl.strategy"
local records = require "ipk.fl.records"

local M = {}

local floor = math.floor

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
  local o = { pin = false }
  for k, v in pairs(ADD) do o[k] = v end
  local cid, err, name = runtime.backend():add_bytes(bytes, o)
  if not cid then return nil, err, name end
  local ok, perr, pname = records.keep(cid, true, pin_name)
  if not ok then return nil, perr, pname end
  return cid
end
M.add_file = add_file

local function cat(cid)
  local parts = {}
  local ok, err, name = runtime.backend():cat(cid, function(c) parts[#parts + 1] = c end)
  if not ok then return nil, err, name end
  return table.concat(parts)
end

-- msg with "client <id>: " in front, once (trainer errors carry it already).
local function prefixed(who, msg)
  msg = tostring(msg)
  if msg:sub(1, #who + 2) == who .. ": " then return msg end
  return who .. ": " .. msg
end

-- A cancelled task (Ctrl-C, a step timeout) must stop the step, not count
-- as one client's rejected update.
local function is_cancel(msg, name)
  return name == "ECANCELED" or tostring(msg):match("^cancelled") ~= nil
end

local function check_opts(o)
  if type(o.rounds) ~= "number" or o.rounds ~= floor(o.rounds) or o.rounds < 1 then
    return nil, "rounds must be an integer >= 1, got " .. tostring(o.rounds), "EINVAL"
  end
  if o.parallel ~= nil and (type(o.parallel) ~= "number" or o.parallel ~= floor(o.parallel) or o.parallel < 1) then
    return nil, "parallel must be an integer >= 1, got " .. tostring(o.parallel), "EINVAL"
  end
  if type(o.eval_fraction) ~= "number" or not (o.eval_fraction >= 0 and o.eval_fraction < 1) then
    return nil, "eval_fraction must be in [0, 1), got " .. tostring(o.eval_fraction), "EINVAL"
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
-- @param o {model = trainer spec (default softmax), trainer = a trainer
--   object (default trainers.resolve(model)), rounds =, strategy = a
--   strategy object (ipk.fl.strategy; default fedavg), seed =,
--   eval_fraction = 0, fit_config = {k = v} (sent to every client),
--   parallel = most clients training at once (default: all sampled),
--   resume = {cid=, record=} (continue after that round), checkpoint =
--   {run_id=, step=, key=} (where fl_rounds rows go), on_round =
--   function(h, record_cid, record, seconds)}
-- @return {tensors (the final model set), history, final, model_cid,
--   record_cid} or nil, msg, name (nothing is written for a round that fails)
local run_rounds

function M.run(sp, o)
  o = o or {}
  local spec = o.model or model.softmax { classes = sp.classes }
  local trainer = o.trainer
  if trainer then return run_rounds(sp, o, spec, trainer) end
  local terr, tname
  trainer, terr, tname = trainers.resolve(spec)
  if not trainer then return nil, terr, tname end
  -- The trainer is closed however training ends (an exec trainer's cached
  -- shard files); a raised error (cancellation) is raised again.
  local r = { pcall(run_rounds, sp, o, spec, trainer) }
  if trainer.close then pcall(trainer.close) end
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, 4)
end

run_rounds = function(sp, o, spec, trainer)
  local seed = o.seed or 0
  local strategy = o.strategy or strategies.fedavg()
  local opts = { rounds = o.rounds or 10, eval_fraction = o.eval_fraction or 0, parallel = o.parallel }
  local okc, cerr = check_opts(opts)
  if not okc then return nil, cerr, "EINVAL" end
  local rounds = opts.rounds
  local ck = o.checkpoint or {}
  local pin_name = records.pin_name(ck.run_id, ck.step)
  local sparams = strategy.params or {}
  local min_fit = sparams.min_fit_clients or 1

  -- Shards; clients without training rows are not available. No client
  -- with examples at all is the user's data problem, said as such.
  local available, by_id, total = {}, {}, 0
  for _, c in ipairs(sp.clients) do
    local sh, serr, sname = trainers.shard(sp, c, { test_fraction = opts.eval_fraction, seed = seed })
    if not sh then return nil, serr, sname end
    by_id[c.id] = { id = c.id, shard = sh, cid = c.cid }
    if sh.train.n > 0 then available[#available + 1] = by_id[c.id] end
    total = total + c.n
  end
  if #available == 0 then
    return nil, ("all %d clients have 0 training examples (%d rows in the split): nothing to train, no model written")
      :format(#sp.clients, total), "EINVAL"
  end
  local central = sp.test and trainers.central(sp)

  local global, global_cid, prev_cid
  local first = 1
  local history = {}
  if o.resume then
    local rec = o.resume.record
    local where = "resume from round " .. tostring(rec.round) .. ": "
    global_cid = dagjson.is_link(rec.model)
    local bytes, err, ename = cat(global_cid)
    if not bytes then return nil, where .. "model " .. global_cid .. ": " .. tostring(err), ename end
    global, err, ename = T.from_safetensors(bytes, "model " .. global_cid)
    if not global then return nil, where .. tostring(err), ename end
    if strategy.set_state then
      local sok, serr, sname = strategy.set_state(rec.strategy and rec.strategy.state or nil)
      if not sok then return nil, where .. "strategy state: " .. tostring(serr), sname or "EINVAL" end
    end
    local chain, cherr, chname = records.chain(o.resume.cid)
    if not chain then return nil, where .. tostring(cherr), chname end
    for _, e in ipairs(chain) do history[#history + 1] = history_entry(e.record) end
    prev_cid, first = o.resume.cid, rec.round + 1
    if rec.final then
      return nil, where .. "the recorded training ended with a final strategy (" .. tostring(rec.strategy.name) .. ")", "EINVAL"
    end
  else
    local err, ename
    global, err, ename = trainer.init(spec, sp.features, sp.classes, seed)
    if not global then return nil, "initial model: " .. tostring(err), ename end
    local bytes = assert(global:to_safetensors())
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
    local plan, perr, pname = strategy.configure_fit(r, available, global_cid, { seed = seed, fit_config = o.fit_config })
    if not plan then return nil, perr, pname end
    local function fit_one(ins)
      local c = ins.client
      local config = {}
      for k, v in pairs(ins.config or {}) do config[k] = v end
      config.round, config.seed = r, client_seed(seed, r, c.id)
      local set, res, fname = trainer.fit(global, c.shard, config)
      if not set then
        if is_cancel(res, fname) then error(res, 0) end
        return { client = c.id, rejected = prefixed("client " .. tostring(c.id), res) }
      end
      local checked, rerr = trainers.check_result(res, "client " .. tostring(c.id))
      if not checked then return { client = c.id, rejected = rerr } end
      local bytes, berr = set:to_safetensors()
      if not bytes then return { client = c.id, rejected = "client " .. tostring(c.id) .. ": " .. tostring(berr) } end
      return { tensors = set, num_examples = checked.num_examples, metrics = checked.metrics, client = c.id,
               cid = raw_cid(bytes), seed = config.seed, shard = c.cid, config = config }
    end
    -- At most `parallel` clients train at once (an exec trainer is a
    -- process each); results keep the plan's order either way.
    local results, tasks = {}, {}
    local width = math.min(opts.parallel or #plan, #plan)
    local next_i = 0
    for _ = 1, width do
      tasks[#tasks + 1] = sched.spawn(function()
        while true do
          next_i = next_i + 1
          local i = next_i
          if i > #plan then return true end
          results[i] = fit_one(plan[i])
        end
      end)
    end
    sched.join(tasks)
    local fitted, rejected = {}, {}
    for _, u in ipairs(results) do
      if u.rejected then rejected[#rejected + 1] = { client = u.client, reason = u.rejected }
      else fitted[#fitted + 1] = u end
    end
    local updates, refused = strategy.validate(global, fitted)
    for _, x in ipairs(refused) do rejected[#rejected + 1] = { client = x.client, reason = x.reason } end
    table.sort(rejected, function(a, b) return tostring(a.client) < tostring(b.client) end)
    local why = {}
    for _, x in ipairs(rejected) do why[#why + 1] = x.reason end
    if #updates < min_fit then
      return nil, ("round %d: %d of %d client updates usable, min_fit_clients=%d (rejected: %s); no model written")
        :format(r, #updates, #results, min_fit, #why > 0 and table.concat(why, "; ") or "none"), "EINVAL"
    end
    local examples = 0
    for _, u in ipairs(updates) do examples = examples + u.num_examples end
    if examples == 0 then
      return nil, ("round %d: all %d clients that trained reported 0 examples: nothing to aggregate, no model written")
        :format(r, #updates), "EINVAL"
    end
    table.sort(updates, function(a, b) return a.cid < b.cid end)
    local agg, err, aname = strategy.aggregate(updates, global)
    if not agg then return nil, "round " .. r .. ": " .. tostring(err), aname or "EINVAL" end
    -- The model keeps the trainer's metadata ("ipk.model" = type) when the
    -- strategy wrote none of its own.
    if next(agg.metadata or {}) == nil and next(global.metadata or {}) ~= nil then
      agg.metadata = agg.metadata or {}
      for k, v in pairs(global.metadata) do agg.metadata[k] = v end
    end
    local tl, tw = 0, 0
    local parts = {}
    for i, u in ipairs(updates) do
      local loss = u.metrics.train_loss or u.metrics.loss
      if type(loss) == "number" then tl, tw = tl + loss * u.num_examples, tw + u.num_examples end
      parts[i] = { client = u.client, shard = u.shard, update = u.cid, num_examples = u.num_examples, seed = u.seed,
                   metrics = u.metrics }
    end
    local metrics = { train_loss = tw > 0 and tl / tw or nil }
    local final = strategy.final
    -- An ensemble's members are other tensors than the trainer's layout:
    -- it is evaluated by the ensemble's rule (mean of the members'
    -- probabilities, trainers.evaluate_ensemble) where the trainer can
    -- predict (builtin); other trainers leave its evaluation out.
    if central and final and trainer.predict then
      local ev, eerr, ename = trainers.evaluate_ensemble(trainer, agg, central)
      if not ev then return nil, "round " .. r .. ": central evaluation: " .. tostring(eerr), ename end
      metrics.central = { loss = ev.loss, accuracy = ev.accuracy, mse = ev.mse, num_examples = ev.num_examples,
                          members = ev.members }
    end
    if central and not final then
      local ev, eerr, ename = trainer.evaluate(agg, central)
      if not ev then return nil, "round " .. r .. ": central evaluation: " .. tostring(eerr), ename end
      metrics.central = { loss = ev.loss, accuracy = ev.accuracy, mse = ev.mse, num_examples = ev.num_examples }
    end
    if opts.eval_fraction > 0 and not final then
      local fl, fa, fn, fc = 0, 0, 0, 0
      for _, c in ipairs(available) do
        if c.shard.test and c.shard.test.n > 0 then
          local ev, eerr, ename = trainer.evaluate(agg, c.shard)
          if not ev then return nil, "round " .. r .. ": " .. tostring(eerr), ename end
          fl, fn, fc = fl + ev.loss * ev.num_examples, fn + ev.num_examples, fc + 1
          fa = fa + (ev.accuracy or 0) * ev.num_examples
        end
      end
      if fn > 0 then metrics.federated = { loss = fl / fn, accuracy = fa / fn, clients = fc, num_examples = fn } end
    end
    local bytes = assert(agg:to_safetensors())
    local mcid, merr, mname = add_file(bytes, pin_name)
    if not mcid then return nil, "round " .. r .. ": model: " .. tostring(merr), mname end
    local sampled_ids = {}
    for i, ins in ipairs(plan) do sampled_ids[i] = ins.client.id end
    local srec = { name = strategy.name or "custom", params = strategy.params or {} }
    if strategy.get_state then
      local st, serr = strategy.get_state()
      if st == nil and serr then return nil, "round " .. r .. ": strategy state: " .. tostring(serr), "EINVAL" end
      if st ~= nil then
        local out = { scalars = st.scalars }
        if st.tensors ~= nil then
          -- F64 safetensors bytes; the record links them (never JSON numbers)
          if type(st.tensors) ~= "string" then
            return nil, "round " .. r .. ": strategy state: tensors must be F64 safetensors bytes", "EINVAL"
          end
          local tcid, terr, tn = add_file(st.tensors, pin_name)
          if not tcid then return nil, "round " .. r .. ": strategy state: " .. tostring(terr), tn end
          out.tensors = dagjson.link(tcid)
        end
        srec.state = out
      end
    end
    -- The fit config every client got (seed aside: each entry has its own).
    local config = {}
    for k, v in pairs(plan[1] and plan[1].config or {}) do config[k] = v end
    config.round = nil
    if config.lr == nil and spec.lr then config.lr = spec.lr / (1 + (spec.lr_decay or 0) * (r - 1)) end
    config.epochs = config.epochs or spec.epochs
    config.batch = config.batch or spec.batch
    local rec = {
      type = records.TYPE, version = records.VERSION, round = r,
      prev = prev_cid and dagjson.link(prev_cid) or nil,
      input_model = dagjson.link(global_cid), model = dagjson.link(mcid),
      final = final or nil,
      strategy = srec,
      rng = { seed = seed, sampling = "cid-rank", sampling_key = global_cid,
              training = "seed*1000003+round*10007+client mod 2^31-1" },
      config = config,
      clients = { available = #available, sampled = json.array(sampled_ids) },
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
    if final then break end
  end
  return { tensors = global, history = history, final = history[#history], model_cid = global_cid,
           record_cid = record_cid }
end

return M
