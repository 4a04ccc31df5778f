-- Federated training of the PyTorch CNN (examples/pytorch/client.py) on
-- Fashion-MNIST through ipk's exec trainer, with a Dirichlet non-IID split
-- and a built-in strategy; central evaluation on the 10k test set after
-- every round. A standalone driver of the trainer contract (the recipe
-- step ipk.fl.train drives the same calls):
--
--   IPK_BUILD_DIR=build luajit examples/pytorch/federated.lua \
--     [rounds=20] [clients=8] [alpha=0.5] [seed=1] [strategy=fedavg] [mu=0] \
--     [lr=0.05] [batch=32] [epochs=1] [parallel=2] [client=examples/pytorch/client.py]
--     [trainer=exec | mlp | softmax] [hidden=128] [lr_decay=0]
--
-- trainer=mlp or softmax runs ipk's built-in C trainer instead of the
-- command (same split, strategy and evaluation), for comparison.
--
-- Prints one JSON line per round: round, test_accuracy, test_loss,
-- train_loss (sample-weighted mean of the clients'), seconds.
-- Needs Debian's python3-torch and dataset-fashion-mnist.
package.path = "bindings/lua/?.lua;scripts/?.lua;scripts/?/init.lua;" .. package.path
local ffi = require "ffi"
local core = require "ipk.core"
local sched = require "ipk.sched"
local json = require "ipk.json"
local idxmod = require "ipk.dataset.idx"
local trainers = require "ipk.fl.trainers"
local strategy = require "ipk.fl.strategy"
local lib = core.lib

local o = { rounds = 20, clients = 8, alpha = 0.5, seed = 1, strategy = "fedavg", mu = 0, lr = 0.05, batch = 32,
            epochs = 1, parallel = 2, client = "examples/pytorch/client.py",
            data = "/usr/share/datasets/fashion-mnist", python = "/usr/bin/python3", trainer = "exec",
            hidden = 128, lr_decay = 0 }
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k or o[k] == nil then error("unknown argument " .. a .. " (see the comment at the top)", 0) end
  o[k] = type(o[k]) == "number" and assert(tonumber(v), a) or v
end

-- the command runs in its own directory: its script path must be absolute
if o.client:sub(1, 1) ~= "/" then
  local p = assert(io.popen("pwd")); o.client = p:read("*l") .. "/" .. o.client; p:close()
end

local function say(t) io.stdout:write(assert(json.encode(t)), "\n"); io.stdout:flush() end

sched.run_task(function()
  local fm = o.data
  local im = assert(idxmod.load(fm .. "/train-images-idx3-ubyte.gz"))
  local lb = assert(idxmod.load(fm .. "/train-labels-idx1-ubyte.gz"))
  local tim = assert(idxmod.load(fm .. "/t10k-images-idx3-ubyte.gz"))
  local tlb = assert(idxmod.load(fm .. "/t10k-labels-idx1-ubyte.gz"))
  local tr_x, te_x = idxmod.features(im), idxmod.features(tim)
  local n = lb.count
  -- the recipe's split: Dirichlet(alpha) label skew, seeded (C)
  local assign = ffi.new("uint32_t[?]", n)
  local eb = core.errbuf()
  assert(core.check(lib.ipk_partition_dirichlet(lb.data, n, 10, o.clients, o.alpha, o.seed, 10, assign, eb), eb))
  local clients = {}
  for c = 1, o.clients do clients[c] = { id = c - 1, n = 0, rows = {} } end
  for i = 0, n - 1 do
    local c = clients[assign[i] + 1]
    c.rows[#c.rows + 1] = i
  end
  for _, c in ipairs(clients) do
    c.n = #c.rows
    c.idx = ffi.new("uint32_t[?]", math.max(c.n, 1))
    for i, r in ipairs(c.rows) do c.idx[i - 1] = r end
    c.rows = nil
    c.cid = "fmnist-" .. o.seed .. "-" .. o.alpha .. "-" .. c.id
  end
  local sp = { features = tr_x.features, classes = 10, clients = clients,
               train = { X = tr_x.X, y = lb.data }, test = { X = te_x.X, y = tlb.data, rows = tim.dims[1] } }
  local sizes = {}
  for i, c in ipairs(clients) do sizes[i] = c.n end
  say { clients = json.array(sizes), alpha = o.alpha, seed = o.seed, strategy = o.strategy, proximal_mu = o.mu }
  local spec
  if o.trainer == "exec" then
    spec = { kind = "exec", command = { o.python, o.client }, timeout = 1800, lr = o.lr, batch = o.batch, epochs = o.epochs }
  else
    spec = { type = o.trainer, classes = 10, hidden = { o.hidden }, lr = o.lr, lr_decay = o.lr_decay, batch = o.batch,
             epochs = o.epochs }
  end
  local tr = assert(trainers.resolve(spec))
  local global = assert(tr.init(tr.spec, sp.features, 10, o.seed))
  local central = assert(trainers.central(sp))
  local shards = {}
  for i, c in ipairs(clients) do shards[i] = assert(trainers.shard(sp, c)) end
  local params = o.strategy == "fedprox" and { proximal_mu = o.mu } or nil
  for r = 1, o.rounds do
    local t0 = core.now()
    local updates = {}
    -- `parallel` client processes at a time
    local step = o.trainer == "exec" and o.parallel or #clients
    for first = 1, #clients, step do
      local tasks = {}
      for i = first, math.min(first + step - 1, #clients) do
        tasks[#tasks + 1] = sched.spawn(function()
          local cfg = { round = r, seed = o.seed * 1000003 + r * 10007 + clients[i].id }
          if o.mu > 0 then cfg.proximal_mu = o.mu end
          local u, res = tr.fit(global, shards[i], cfg)
          if not u then io.stderr:write(res, "\n"); return false end
          updates[#updates + 1] = { tensors = u, num_examples = res.num_examples, metrics = res.metrics,
                                    client = "client_" .. clients[i].id }
          return true
        end)
      end
      sched.join(tasks)
    end
    table.sort(updates, function(a, b) return a.client < b.client end)
    local agg = assert(strategy.aggregate { strategy = o.strategy, params = params, global = global,
      updates = updates, round = r })
    global = agg.tensors
    local ev = assert(tr.evaluate(global, central))
    local tl, tw = 0, 0
    for _, u in ipairs(updates) do tl = tl + u.metrics.train_loss * u.num_examples; tw = tw + u.num_examples end
    say { round = r, test_accuracy = ev.accuracy, test_loss = ev.loss, train_loss = tl / tw, clients = #updates,
          seconds = core.now() - t0 }
  end
  tr.close()
end)
