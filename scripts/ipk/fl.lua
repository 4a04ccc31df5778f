--- ipk.fl: federated learning (in-process clients on the thread pool).
-- Flower's vocabulary: a strategy aggregates client updates each round; a
-- round trains the global model on every sampled client, aggregates, then
-- evaluates centrally on the held-out test split. Clients are ordered by the
-- CID of their update before aggregation (ARCHITECTURE.md section 6), so the
-- result is the same whatever order the threads finished in.
local core = require "ipk.core"
local sched = require "ipk.sched"
local recipe = require "ipk.recipe"
local train = require "ipk.train"
local json = require "ipk.json"
local ffi, lib = core.ffi, core.lib

local M = {}

--- FedAvg (McMahan et al. 2017): weighted mean by sample count, f64 accumulation.
-- A strategy is {name, aggregate(updates, global) -> params | nil,msg}, where
-- updates = {{params, n, cid, client}} in CID order. Users register their own
-- (examples/custom_aggregation.lua).
function M.fedavg()
  return { name = "fedavg", aggregate = function(updates, global)
    local k = #updates
    local ptrs = ffi.new("const float*[?]", k)
    local w = ffi.new("double[?]", k)
    for i, u in ipairs(updates) do ptrs[i - 1] = u.params.data; w[i - 1] = u.n end
    local out = train.copy(global)
    local eb = core.errbuf()
    local ok, err = core.check(lib.ipk_agg_fedavg_f32(ptrs, w, k, global.len, out.data, eb), eb, "fedavg")
    if not ok then return nil, err end
    return out
  end }
end

local function client_seed(seed, round, client)
  return (seed * 1000003 + round * 10007 + client) % 2147483647
end

--- Run federated training.
-- @param sp a split from ipk.dataset.split (clients, train, test, features, classes)
-- @param o {model=spec, rounds=, strategy=, seed=, on_round=function(h)}
-- @return {params, history, final}
function M.run(sp, o)
  local spec = o.model or train.softmax { classes = sp.classes }
  local rounds = o.rounds or 10
  local strategy = o.strategy or M.fedavg()
  local seed = o.seed or 0
  if type(strategy.aggregate) ~= "function" then return nil, "strategy has no aggregate function" end
  local global = train.new_params(spec, sp.features)
  local history = {}
  local now = core.now
  for r = 1, rounds do
    local t0 = now()
    -- Learning rate decays per round (lr / (1 + lr_decay * (r - 1))): with
    -- non-IID clients a fixed rate makes the global model oscillate.
    local lr = spec.lr / (1 + (spec.lr_decay or 0) * (r - 1))
    local tasks = {}
    for _, c in ipairs(sp.clients) do
      if c.n > 0 then
        tasks[#tasks + 1] = sched.spawn(function()
          local p = train.copy(global)
          local loss, err = train.fit(p, sp.train, c.idx, c.n, client_seed(seed, r, c.id), lr)
          if not loss then error(err, 0) end
          local bytes = assert(train.to_safetensors(p))
          local cidmod = require "ipk.cid"
          local ucid = cidmod.format(assert(cidmod.of(1, 0x55, bytes)))
          return { params = p, n = c.n, loss = loss, client = c.id, cid = ucid }
        end)
      end
    end
    local updates = sched.join(tasks)
    table.sort(updates, function(a, b) return a.cid < b.cid end)
    local agg, err = strategy.aggregate(updates, global)
    if not agg then return nil, "round " .. r .. ": " .. tostring(err) end
    global = agg
    local tl, tw = 0, 0
    for _, u in ipairs(updates) do tl = tl + u.loss * u.n; tw = tw + u.n end
    local h = { round = r, train_loss = tl / tw, clients = #updates, lr = lr }
    if sp.test then
      local loss, acc = train.evaluate(global, sp.test)
      if not loss then return nil, acc end
      h.test_loss, h.test_accuracy = loss, acc
    end
    h.seconds = now() - t0
    history[#history + 1] = h
    if o.on_round then o.on_round(h) end
  end
  return { params = global, history = history, final = history[#history] }
end

--- Step: federated training. Output: {model_cid, bytes, history, metrics, params, lineage}.
M.train = recipe.kind { kind = "fl.train", version = 1, inputs = { shards = true },
  run = function(ctx, args)
    local sp = args.shards
    local spec = args.model or train.softmax { classes = sp.classes }
    local res, err = M.run(sp, { model = spec, rounds = args.rounds, strategy = args.strategy,
      seed = args.seed, on_round = function(h)
        ctx.log("round %2d/%d  test_accuracy=%.4f  test_loss=%.4f  train_loss=%.4f  (%d clients, %.2fs)",
          h.round, args.rounds or 10, h.test_accuracy or 0, h.test_loss or 0, h.train_loss, h.clients, h.seconds)
      end })
    if not res then error(err, 0) end
    local bytes = assert(train.to_safetensors(res.params))
    local model_cid, aerr = require("ipk.unixfs").add_bytes(bytes, {
      cid_version = 1, raw_leaves = true, chunker = "size-262144",
      blocks = require("ipk.runtime").store():blocks() })
    if not model_cid then error("model: " .. tostring(aerr), 0) end
    local shard_cids = {}
    for _, c in ipairs(sp.clients) do shard_cids[#shard_cids + 1] = c.cid end
    for _, h in ipairs(res.history) do h.seconds = nil end
    return {
      model_cid = model_cid, bytes = bytes, size = #bytes,
      framework = "ipk", format = "safetensors",
      history = res.history,
      metrics = { accuracy = res.final.test_accuracy, loss = res.final.test_loss },
      params = { model = spec, rounds = args.rounds, seed = args.seed, clients = #sp.clients,
                 alpha = sp.alpha, strategy = (args.strategy or {}).name or "fedavg" },
      lineage = { dataset_cid = sp.dataset_cid, shard_cids = json.array(shard_cids) },
    }
  end }

return M
