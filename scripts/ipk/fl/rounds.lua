--- ipk.fl.rounds: federated training rounds with in-process clients on the
-- thread pool. Clients are ordered by the CID of their update before
-- aggregation (ARCHITECTURE.md section 6), so the result is the same
-- whatever order the threads finished in.
local core = require "ipk.core"
local sched = require "ipk.sched"
local json = require "ipk.json"
local cidmod = require "ipk.cid"
local model = require "ipk.fl.model"
local strategies = require "ipk.fl.strategy"

local M = {}

local function client_seed(seed, round, client)
  return (seed * 1000003 + round * 10007 + client) % 2147483647
end

--- Run federated training.
-- @param sp a split from ipk.dataset.split (clients, train, test, features, classes)
-- @param o {model=spec, rounds=, strategy=, seed=, on_round=function(h)}
-- @return {params, history, final}
function M.run(sp, o)
  local spec = o.model or model.softmax { classes = sp.classes }
  local rounds = o.rounds or 10
  local strategy = o.strategy or strategies.fedavg()
  local seed = o.seed or 0
  if type(strategy.aggregate) ~= "function" then return nil, "strategy has no aggregate function", "EINVAL" end
  local global = model.new_params(spec, sp.features)
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
          local p = model.copy(global)
          local loss, err = model.fit(p, sp.train, c.idx, c.n, client_seed(seed, r, c.id), lr)
          if not loss then error(err, 0) end
          local bytes = assert(model.to_safetensors(p))
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
      local loss, acc, ename = model.evaluate(global, sp.test)
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

return M
