--- ipk.fl: federated learning (in-process clients on the thread pool).
-- Flower's vocabulary: a strategy aggregates client updates each round; a
-- round trains the global model on every sampled client, aggregates, then
-- evaluates centrally on the held-out test split. Clients are ordered by the
-- CID of their update before aggregation (ARCHITECTURE.md section 6), so the
-- result is the same whatever order the threads finished in.
local core = require "ipk.core"
local sched = require "ipk.sched"
local recipe = require "ipk.run.recipe"
local sandbox = require "ipk.run.sandbox"
local train = require "ipk.train"
local json = require "ipk.json"
local runtime = require "ipk.runtime"
local cidmod = require "ipk.cid"
local unixfs = require "ipk.unixfs"
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
    local ok, err, name = core.check(lib.ipk_agg_fedavg_f32(ptrs, w, k, global.len, out.data, eb), eb)
    if not ok then return nil, err, name end
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
  if type(strategy.aggregate) ~= "function" then return nil, "strategy has no aggregate function", "EINVAL" end
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
          local ucid = cidmod.format(assert(cidmod.of(1, 0x55, bytes)))
          return { params = p, n = c.n, loss = loss, client = c.id, cid = ucid }
        end)
      end
    end
    local updates = sched.join(tasks)
    local participants = {}
    for _, u in ipairs(updates) do participants[#participants + 1] = u.client end
    table.sort(participants)
    table.sort(updates, function(a, b) return a.cid < b.cid end)
    local agg, err, aname = strategy.aggregate(updates, global)
    if not agg then return nil, "round " .. r .. ": " .. tostring(err), aname or "EINVAL" end
    global = agg
    local tl, tw = 0, 0
    for _, u in ipairs(updates) do tl = tl + u.loss * u.n; tw = tw + u.n end
    local h = { round = r, train_loss = tl / tw, clients = #updates, lr = lr, participants = json.array(participants) }
    if sp.test then
      local loss, acc, ename = train.evaluate(global, sp.test)
      if not loss then return nil, acc, ename end
      h.test_loss, h.test_accuracy = loss, acc
    end
    h.seconds = now() - t0
    history[#history + 1] = h
    if o.on_round then o.on_round(h) end
    sched.check()
  end
  return { params = global, history = history, final = history[#history] }
end

--- A strategy from a step argument: a table {name, aggregate}, "fedavg",
-- or the path of a Lua script (run in the recipe sandbox) returning one.
function M.strategy(v)
  if v == nil or v == "fedavg" then return M.fedavg() end
  if type(v) == "table" then return v end
  if type(v) == "string" then
    local s, err, sname = sandbox.load_script(v)
    if s == nil then return nil, "strategy " .. v .. ": " .. tostring(err), sname end
    if type(s) == "function" then s = s() end
    if type(s) ~= "table" or type(s.aggregate) ~= "function" then
      return nil, "strategy " .. v .. ": the script must return {name=, aggregate=function(updates, global)}", "EINVAL"
    end
    s.name = s.name or v:gsub(".*/", ""):gsub("%.lua$", "")
    return s
  end
  return nil, "strategy: expected a table, \"fedavg\" or a script path, got " .. type(v), "EINVAL"
end

--- Step: federated training. Output: {model_cid, bytes, history, metrics, params, lineage, clients}.
-- The model's bytes are a UnixFS file in the store; a restored (cached)
-- output reads them back lazily on first use of `bytes`.
M.train = recipe.kind { kind = "fl.train", version = 2, inputs = { shards = true }, paths = { strategy = true },
  run = function(ctx, args)
    local sp = args.shards
    local spec = args.model or train.softmax { classes = sp.classes }
    local strategy, serr = M.strategy(args.strategy)
    if not strategy then error(serr, 0) end
    local rounds = args.rounds or 10
    local res, err = M.run(sp, { model = spec, rounds = rounds, strategy = strategy,
      seed = args.seed, on_round = function(h)
        ctx.log("round %2d/%d  test_accuracy=%.4f  test_loss=%.4f  train_loss=%.4f  (%d clients, %.2fs)",
          h.round, rounds, h.test_accuracy or 0, h.test_loss or 0, h.train_loss, h.clients, h.seconds)
        if ctx.progress then ctx.progress(h.round, rounds) end
      end })
    if not res then error(err, 0) end
    local bytes = assert(train.to_safetensors(res.params))
    local model_cid, aerr = unixfs.add_bytes(bytes, {
      cid_version = 1, raw_leaves = true, chunker = "size-262144",
      blocks = runtime.backend():blocks() })
    if not model_cid then error("model: " .. tostring(aerr), 0) end
    local shard_cids, clients = {}, {}
    local rounds_in = {}
    for _, h in ipairs(res.history) do
      for _, id in ipairs(h.participants) do rounds_in[id] = (rounds_in[id] or 0) + 1 end
    end
    for _, c in ipairs(sp.clients) do
      shard_cids[#shard_cids + 1] = c.cid
      clients[#clients + 1] = { id = c.id, samples = c.n, rounds = rounds_in[c.id] or 0, shard_cid = c.cid }
    end
    for _, h in ipairs(res.history) do h.seconds = nil end
    return {
      model_cid = model_cid, bytes = bytes, size = #bytes,
      framework = "ipk", format = "safetensors",
      history = res.history,
      metrics = { accuracy = res.final.test_accuracy, loss = res.final.test_loss },
      params = { model = spec, rounds = rounds, seed = args.seed, clients = #sp.clients,
                 alpha = sp.alpha, strategy = strategy.name or "custom" },
      lineage = { dataset_cid = sp.dataset_cid, shard_cids = json.array(shard_cids) },
      clients = clients,
    }
  end,
  encode = function(out)
    -- The model DAG must outlive gc while its output record is cached.
    assert(runtime.backend():pin_add(out.model_cid, { recursive = true, name = "step:fl.train" }))
    local shard_links, clients = {}, {}
    for i, c in ipairs(out.lineage.shard_cids) do shard_links[i] = recipe.link(c) end
    for i, c in ipairs(out.clients) do
      clients[i] = { id = c.id, samples = c.samples, rounds = c.rounds, shard = recipe.link(c.shard_cid) }
    end
    return { model = recipe.link(out.model_cid), size = out.size, framework = out.framework, format = out.format,
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
    local out = { model_cid = model_cid, size = r.size, framework = r.framework, format = r.format,
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
