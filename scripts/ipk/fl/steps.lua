--- ipk.fl.steps: the federated-learning step constructor a recipe uses
-- (ipk.fl.train{...}); it returns a step description the engine runs and
-- memoizes (ipk.run).
local recipe = require "ipk.run.recipe"
local json = require "ipk.json"
local runtime = require "ipk.runtime"
local model = require "ipk.fl.model"
local strategies = require "ipk.fl.strategy"
local rounds_mod = require "ipk.fl.rounds"
local records = require "ipk.fl.records"

local M = {}

-- The step's sampling args (fraction_fit, min_fit_clients,
-- min_available_clients) override the strategy's params of the same name.
local SAMPLING = { "fraction_fit", "min_fit_clients", "min_available_clients" }
local function strategy_of(v, args)
  local extra = {}
  for _, k in ipairs(SAMPLING) do extra[k] = args[k] end
  if next(extra) == nil then return strategies.strategy(v) end
  if type(v) == "table" and type(v.params) == "table" and (v.strategy or v.def) then
    local p = {}
    for k, x in pairs(v.params) do p[k] = x end
    for k, x in pairs(extra) do p[k] = x end
    return strategies.new(v.strategy or v.def, p)
  end
  return strategies.strategy(v, extra)
end

--- Step: federated training. Output: {model_cid, bytes, history, metrics,
-- params, lineage, clients, record_cid (the last round record, ipk.fl.records)}.
-- The model's bytes are a UnixFS file in the store; a restored (cached)
-- output reads them back lazily on first use of `bytes`.
-- Args: shards (a split step), model (a trainer spec: ipk.fl.model.softmax
-- {...}, {type = "mlp", hidden = {...}}, exec, lua), rounds, seed, strategy
-- (a built-in name, {strategy = name, params = {...}}, a strategy object
-- or a script path), fraction_fit, min_fit_clients, min_available_clients
-- (override the strategy's), eval_fraction (federated evaluation),
-- fit_config (sent to every client), parallel (most clients training at
-- once: an exec trainer is a process each); ipk.fl.rounds.run documents them.
-- Resume: every round is checkpointed (a round record, and a row of
-- fl_rounds under this run, step and step key). An attempt first looks for
-- the newest record of the same step and key in this run (an earlier
-- attempt: retries) and, under `ipkrun run --resume`, in the runs it
-- resumed; it continues after that round, so the final model and output
-- record are those of an uninterrupted run.
M.train = recipe.kind { kind = "fl.train", version = 4, inputs = { shards = true }, paths = { strategy = true },
  args = { "model", "strategy", "rounds", "seed", "eval_fraction", "fit_config", "parallel",
           "fraction_fit", "min_fit_clients", "min_available_clients" },
  run = function(ctx, args)
    local sp = args.shards
    local spec = args.model or model.softmax { classes = sp.classes }
    local strategy, serr = strategy_of(args.strategy, args)
    if not strategy then error(serr, 0) end
    local rounds = args.rounds or 10
    local resume = records.latest(ctx.run_id, ctx.step, ctx.key, { lineage = ctx.resumed_from ~= nil })
    if resume then
      ctx.log("resuming after round %d (round record %s, run %s)", resume.record.round, resume.cid, resume.run_id)
    end
    local res, err = rounds_mod.run(sp, { model = spec, rounds = rounds, strategy = strategy,
      seed = args.seed, eval_fraction = args.eval_fraction, fit_config = args.fit_config, parallel = args.parallel,
      resume = resume, checkpoint = { run_id = ctx.run_id, step = ctx.step, key = ctx.key },
      on_round = function(h, rcid, _, seconds)
        ctx.log("round %2d/%d  test_accuracy=%.4f  test_loss=%.4f  train_loss=%.4f%s  (%d clients%s, %.2fs)  %s",
          h.round, rounds, h.test_accuracy or 0, h.test_loss or 0, h.train_loss,
          h.fed_accuracy and ("  fed_accuracy=%.4f"):format(h.fed_accuracy) or "", h.clients,
          h.rejected and (", " .. h.rejected .. " rejected") or "", seconds, rcid)
        if ctx.progress then ctx.progress(h.round, rounds) end
      end })
    if not res then error(err, 0) end
    local bytes = assert(res.tensors:to_safetensors())
    -- The last round stored the model (UnixFS, pinned): its record links it.
    local model_cid = res.model_cid
    local shard_cids, clients = {}, {}
    local rounds_in = {}
    for _, h in ipairs(res.history) do
      for _, id in ipairs(h.participants) do rounds_in[id] = (rounds_in[id] or 0) + 1 end
    end
    for _, c in ipairs(sp.clients) do
      shard_cids[#shard_cids + 1] = c.cid
      clients[#clients + 1] = { id = c.id, samples = c.n, rounds = rounds_in[c.id] or 0, shard_cid = c.cid }
    end
    return {
      model_cid = model_cid, bytes = bytes, size = #bytes,
      framework = "ipk", format = "safetensors",
      history = res.history, record_cid = res.record_cid,
      metrics = { accuracy = res.final.test_accuracy, loss = res.final.test_loss,
                  fed_accuracy = res.final.fed_accuracy },
      params = { model = spec, rounds = rounds, seed = args.seed, clients = #sp.clients,
                 alpha = sp.alpha, strategy = strategy.name or "custom", strategy_params = strategy.params,
                 eval_fraction = args.eval_fraction },
      lineage = { dataset_cid = sp.dataset_cid, shard_cids = json.array(shard_cids) },
      clients = clients,
    }
  end,
  encode = function(out, ctx)
    -- The model DAG must outlive gc while its output record is cached, and
    -- so must the round chain: one recursive pin of its head keeps every
    -- record, model and state file; the per-round pins that kept them while
    -- training (so an interrupted run could resume) then go.
    local b = runtime.backend()
    assert(b:pin_add(out.model_cid, { recursive = true, name = "step:fl.train" }))
    assert(b:pin_add(out.record_cid, { recursive = true, name = "step:fl.train" }))
    if ctx and ctx.run_id then assert(records.unpin_rounds(ctx.run_id, ctx.step)) end
    local shard_links, clients = {}, {}
    for i, c in ipairs(out.lineage.shard_cids) do shard_links[i] = recipe.link(c) end
    for i, c in ipairs(out.clients) do
      clients[i] = { id = c.id, samples = c.samples, rounds = c.rounds, shard = recipe.link(c.shard_cid) }
    end
    return { model = recipe.link(out.model_cid), rounds = recipe.link(out.record_cid), size = out.size,
      framework = out.framework, format = out.format,
      history = out.history, metrics = out.metrics, params = out.params, clients = clients,
      lineage = { dataset = recipe.link(out.lineage.dataset_cid), shards = shard_links } }
  end,
  decode = function(r)
    local shard_cids, clients = {}, {}
    for i, l in ipairs(r.lineage.shards) do shard_cids[i] = recipe.link_cid(l) end
    for i, c in ipairs(r.clients or {}) do
      clients[i] = { id = c.id, samples = c.samples, rounds = c.rounds, shard_cid = recipe.link_cid(c.shard) }
    end
    local model_cid = recipe.link_cid(r.model)
    if not runtime.backend():has(model_cid) then return nil, "model " .. model_cid .. " is not in the store", "ENOBLOCK" end
    local record_cid = recipe.link_cid(r.rounds)
    if not record_cid or not runtime.backend():has(record_cid) then
      return nil, "round record " .. tostring(record_cid) .. " is not in the store", "ENOBLOCK"
    end
    local out = { model_cid = model_cid, record_cid = record_cid, size = r.size,
      framework = r.framework, format = r.format,
      history = r.history, metrics = r.metrics, params = r.params, clients = clients,
      lineage = { dataset_cid = recipe.link_cid(r.lineage.dataset), shard_cids = json.array(shard_cids) } }
    return setmetatable(out, { __index = function(t, k)
      if k ~= "bytes" then return nil end
      local parts = {}
      assert(runtime.backend():cat(model_cid, function(c) parts[#parts + 1] = c end))
      local b = table.concat(parts)
      rawset(t, "bytes", b)
      return b
    end })
  end }

return M
