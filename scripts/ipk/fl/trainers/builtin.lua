--- ipk.fl.trainers.builtin: the built-in trainers (core/include/ipk/train.h,
-- C on OpenBLAS) behind the trainer contract (ipk.fl.trainers).
--
-- Spec (ipk.fl.model.softmax{...}, .logistic, .linear, .mlp):
--   {type = "softmax" | "logistic" | "linear" | "mlp", classes = K,
--    hidden = {h1, h2, ...} (mlp; default {128}), outputs = T (linear;
--    default: the classes given to init, else 1), lr, lr_decay, batch,
--    epochs, l2}
-- Tensors (F32, PyTorch's nn.Linear layout [out, in], so the safetensors
-- reads like a state_dict): no hidden layer: "weight" [K, F], "bias" [K];
-- mlp: "fc1.weight" [h1, F], "fc1.bias" [h1], ..., "fcL.weight" [K, h_last],
-- "fcL.bias" [K]. Metadata {"ipk.model" = type}.
-- Training runs as a pool job (sched.job), deterministic for a seed.
local core = require "ipk.core"
local sched = require "ipk.sched"
local T = require "ipk.fl.tensors"
local base = require "ipk.fl.trainers.contract"

local ffi, lib = core.ffi, core.lib
local type, tostring, ipairs, floor = type, tostring, ipairs, math.floor

local M = {}

local HEAD = { softmax = lib.IPK_HEAD_SOFTMAX, mlp = lib.IPK_HEAD_SOFTMAX, logistic = lib.IPK_HEAD_LOGISTIC,
               linear = lib.IPK_HEAD_LINEAR }

local function posint(v) return type(v) == "number" and v >= 1 and v == floor(v) and v < 2 ^ 31 end

--- The layer layout of spec on `features` inputs with `classes`:
-- {head, features, outputs, hidden = {...}, names = {...}, shapes = {...}}.
-- @return layout | nil, msg, "EINVAL"
function M.layout(spec, features, classes)
  local ty = spec.type
  if not HEAD[ty] then return nil, "builtin trainer: unknown type " .. tostring(ty), "EINVAL" end
  if not posint(features) then
    return nil, "builtin trainer: features must be a positive integer, got " .. tostring(features), "EINVAL"
  end
  local outputs
  if ty == "logistic" then
    if classes ~= nil and classes ~= 2 and classes ~= 1 then
      return nil, "builtin trainer: logistic regression is binary (2 classes), got " .. tostring(classes), "EINVAL"
    end
    outputs = 1
  elseif ty == "linear" then
    outputs = spec.outputs or classes or 1
  else
    outputs = spec.classes or classes
  end
  if not posint(outputs) then
    return nil, "builtin trainer: " .. ty .. ": outputs/classes must be a positive integer, got " .. tostring(outputs),
      "EINVAL"
  end
  local hidden = {}
  if ty == "mlp" then
    local h = spec.hidden or { 128 }
    if type(h) == "number" then h = { h } end
    if type(h) ~= "table" or #h < 1 or #h > lib.IPK_TRAIN_MAX_HIDDEN then
      return nil, "builtin trainer: mlp hidden must be a list of 1.." .. lib.IPK_TRAIN_MAX_HIDDEN .. " layer widths", "EINVAL"
    end
    for i, w in ipairs(h) do
      if not posint(w) then
        return nil, "builtin trainer: mlp hidden[" .. i .. "] must be a positive integer, got " .. tostring(w), "EINVAL"
      end
      hidden[i] = w
    end
  end
  local L = { head = HEAD[ty], features = features, outputs = outputs, hidden = hidden, names = {}, shapes = {} }
  local nl = #hidden + 1
  for l = 1, nl do
    local inp = l == 1 and features or hidden[l - 1]
    local out = l == nl and outputs or hidden[l]
    local pre = #hidden == 0 and "" or ("fc" .. l .. ".")
    L.names[#L.names + 1] = pre .. "weight"
    L.shapes[#L.shapes + 1] = { out, inp }
    L.names[#L.names + 1] = pre .. "bias"
    L.shapes[#L.shapes + 1] = { out }
  end
  local net = ffi.new("ipk_train_net_t")
  net.head, net.features, net.outputs, net.nhidden = L.head, features, outputs, #hidden
  for i, w in ipairs(hidden) do net.hidden[i - 1] = w end
  local eb = core.errbuf()
  local ok, err, name = core.check(lib.ipk_train_check_net(net, eb), eb, "builtin trainer")
  if not ok then return nil, err, name end
  L.net = net
  return L
end

-- The layout of a model set for a shard's features (outputs from its last
-- weight), checked against spec's expected names and shapes.
local function layout_of(spec, set, who, features)
  local first = spec.type == "mlp" and "fc1.weight" or "weight"
  local w = set.tensors[first]
  if not w or #w.shape ~= 2 then
    return nil, who .. ": the model has no 2-D tensor '" .. first .. "' (builtin " .. tostring(spec.type) .. ")", "ESHAPE"
  end
  local nl = spec.type == "mlp" and (#(type(spec.hidden) == "number" and { spec.hidden } or spec.hidden or { 128 }) + 1) or 1
  local lastw = set.tensors[spec.type == "mlp" and ("fc" .. nl .. ".weight") or "weight"]
  local outputs = lastw and #lastw.shape == 2 and lastw.shape[1] or nil
  local L, err, name = M.layout(spec, features or w.shape[2], spec.type == "logistic" and 2 or outputs)
  if not L then return nil, who .. ": " .. err, name end
  -- exactly the expected tensors, F32
  local want = T.new()
  for i, n in ipairs(L.names) do want:add(n, "F32", L.shapes[i]) end
  local ok, lerr, lname = T.same_layout(want, set)
  if not ok then return nil, who .. ": " .. lerr, lname end
  return L
end

-- float*[k] of a set's tensors in layout order (the set keeps them alive).
local function ptrs(L, set, ct)
  local a = ffi.new(ct, #L.names)
  for i, n in ipairs(L.names) do a[i - 1] = set.tensors[n].ptr end
  return a
end

local function data_of(part, L)
  local d = ffi.new("ipk_train_data_t")
  d.X, d.idx, d.n = part.X, part.idx, part.n or 0
  if L.head == lib.IPK_HEAD_LINEAR then d.targets = part.targets else d.labels = part.labels or part.y end
  return d
end

local function num(v, default, what, who, check)
  if v == nil then v = default end
  if type(v) ~= "number" or v ~= v or not check(v) then
    return nil, who .. ": config " .. what .. " = " .. tostring(v) .. " is out of range", "EINVAL"
  end
  return v
end

--- A builtin trainer for spec (see ipk.fl.trainers).
function M.new(spec)
  if not HEAD[spec.type] then return nil, "builtin trainer: unknown type " .. tostring(spec.type), "EINVAL" end
  local tr = { kind = "builtin", name = spec.type, spec = spec }

  function tr.init(sp, features, classes, seed)
    sp = sp or spec
    local L, err, name = M.layout(sp, features, classes)
    if not L then return nil, err, name end
    local set = T.new { ["ipk.model"] = sp.type }
    for i, n in ipairs(L.names) do set:add(n, "F32", L.shapes[i]) end
    local eb = core.errbuf()
    local ok, ierr, iname = core.check(lib.ipk_train_init_params(L.net, ptrs(L, set, "float*[?]"), seed or 0, eb), eb,
      "builtin trainer")
    if not ok then return nil, ierr, iname end
    return set
  end

  function tr.fit(global, shard, config)
    config = config or {}
    local who = base.who(shard)
    local L, err, name = layout_of(spec, global, who, shard.features)
    if not L then return nil, err, name end
    local part = shard.train
    if not part then return nil, who .. ": the shard has no train part", "EINVAL" end
    local round = config.round or 1
    local lr0 = (spec.lr or 0.1) / (1 + (spec.lr_decay or 0) * (round - 1))
    local o = ffi.new("ipk_train_opts_t")
    local v
    v, err, name = num(config.epochs, spec.epochs or 1, "epochs", who, function(x) return x >= 0 and x == floor(x) and x < 2 ^ 31 end)
    if not v then return nil, err, name end
    o.epochs = v
    v, err, name = num(config.batch, spec.batch or 32, "batch", who, posint)
    if not v then return nil, err, name end
    o.batch = v
    v, err, name = num(config.lr, lr0, "lr", who, function(x) return x > 0 and x < math.huge end)
    if not v then return nil, err, name end
    o.lr = v
    v, err, name = num(config.l2, spec.l2 or 0, "l2", who, function(x) return x >= 0 and x < math.huge end)
    if not v then return nil, err, name end
    o.l2 = v
    v, err, name = num(config.proximal_mu, 0, "proximal_mu", who, function(x) return x >= 0 and x < math.huge end)
    if not v then return nil, err, name end
    o.proximal_mu = v
    v, err, name = num(config.seed, 0, "seed", who, function(x) return x >= 0 and x == floor(x) and x <= 2 ^ 53 end)
    if not v then return nil, err, name end
    o.seed = v
    local set = global:copy()
    local job = ffi.new("ipk_train_fit_job_t")
    job.net = L.net
    job.opts = o
    local P = ptrs(L, set, "float*[?]")
    local G = o.proximal_mu > 0 and ptrs(L, global, "const float*[?]") or nil
    job.params = P
    job.global = G
    local d = data_of(part, L)
    job.data = d
    local rc = sched.job(lib.ipk_train_fit_job, job)
    local ok, ferr, fname = core.check(rc, job.eb, who)
    if not ok then return nil, ferr, fname end
    local _ = { P, G, d } -- alive until the job completed
    return set, { num_examples = tonumber(part.n or 0), metrics = { train_loss = tonumber(job.loss) } }
  end

  function tr.evaluate(tensors, shard)
    local who = base.who(shard)
    local L, err, name = layout_of(spec, tensors, who, shard.features)
    if not L then return nil, err, name end
    local part = shard.test
    if not part then return nil, who .. ": the shard has no test part to evaluate on", "EINVAL" end
    if (part.n or 0) == 0 then return nil, who .. ": the test part has no rows", "EINVAL" end
    local job = ffi.new("ipk_train_eval_job_t")
    job.net = L.net
    local P = ptrs(L, tensors, "const float*[?]")
    job.params = P
    local d = data_of(part, L)
    job.data = d
    local rc = sched.job(lib.ipk_train_eval_job, job)
    local ok, eerr, ename = core.check(rc, job.eb, who)
    if not ok then return nil, eerr, ename end
    local _ = { P, d }
    local r = { num_examples = tonumber(part.n), loss = tonumber(job.loss) }
    if L.head == lib.IPK_HEAD_LINEAR then r.mse = r.loss else r.accuracy = tonumber(job.accuracy) end
    return r
  end

  --- The model's outputs on the shard's test part (ipk_train_predict):
  -- {ptr = float* n x outputs (kept alive by the table), n, outputs, head =
  -- "softmax"|"logistic"|"linear"}. What an ensemble averages.
  function tr.predict(tensors, shard)
    local who = base.who(shard)
    local L, err, name = layout_of(spec, tensors, who, shard.features)
    if not L then return nil, err, name end
    local part = shard.test
    if not part or (part.n or 0) == 0 then return nil, who .. ": the shard has no test rows to predict", "EINVAL" end
    local C = L.head == lib.IPK_HEAD_LOGISTIC and 1 or tonumber(L.net.outputs)
    local buf = ffi.new("float[?]", part.n * C)
    local P = ptrs(L, tensors, "const float*[?]")
    local d = data_of(part, L)
    local eb = core.errbuf()
    local net = ffi.new("ipk_train_net_t", L.net)
    local ok, perr, pname = core.check(lib.ipk_train_predict(net, P, d, buf, eb), eb, who)
    if not ok then return nil, perr, pname end
    local _ = { P, d, net }
    return { ptr = buf, n = tonumber(part.n), outputs = C,
             head = L.head == lib.IPK_HEAD_SOFTMAX and "softmax" or L.head == lib.IPK_HEAD_LOGISTIC and "logistic" or "linear" }
  end

  function tr.close() end

  return tr
end

return M
