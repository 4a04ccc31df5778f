--- ipk.fl.trainers: the trainer contract of federated learning, and the
-- three kinds of trainer (docs/fl-trainers.md has the full text and the
-- exec trainer's file formats).
--
-- A trainer (M.resolve(spec)) is a table
--   { kind = "builtin" | "exec" | "lua", name = string, spec = spec,
--     init, fit, evaluate, close }
-- whose functions are called with a dot and run inside a task (they wait
-- on the thread pool or a child process; a cancelled task stops them):
--
--   init(spec, features, classes, seed) -> set | nil, msg, name
--     The initial global model, a tensor set (ipk.fl.tensors). `spec` is
--     the trainer's own spec (trainer.spec); features = inputs per row,
--     classes = classes (linear regression: targets per row). Same seed,
--     same bits (builtin, and any exec/lua trainer that honours the seed).
--
--   fit(global, shard, config) -> set, result | nil, msg, name
--     Local training of one client from the global model. global is never
--     modified. config (plain data, from the round loop and the strategy's
--     configure_fit): round (1-based), seed (this client and round),
--     epochs, lr, batch, proximal_mu (FedProx: adds mu/2 ||w - w_global||^2;
--     0 = plain SGD), and any strategy hints (passed through to exec and
--     lua trainers). A missing epochs/lr/batch takes the trainer spec's
--     (builtin: lr = spec.lr / (1 + spec.lr_decay * (round - 1))).
--     The updated set has exactly the global's tensor names, shapes and
--     dtypes, every float finite: anything else is an error (ESHAPE,
--     ERANGE) that rejects the update. result = {num_examples = integer
--     >= 0 (the FedAvg weight), metrics = {name = number | string | bool}}.
--     Every error message starts with "client <id>: ".
--
--   evaluate(tensors, shard) -> {num_examples, loss, accuracy, ...} | nil, msg, name
--     Evaluation on shard.test: a client's own test split (federated
--     evaluation) or the held-out test set (central evaluation: M.central).
--     accuracy is a fraction (absent for regression, which reports mse).
--
--   close()  releases what the trainer keeps between rounds (the exec
--     trainer's cached shard files). Optional to call: a process's
--     leftovers are swept by ipk.staging when it has ended.
--
-- A shard (M.shard builds one from a split, M.central the central one):
--   { client = id (number or string: in messages and exec directory names),
--     features = F, classes = K (classification) | outputs = T (regression),
--     train = part | nil, test = part | nil }
--   part = { X = float* (rows x F, row-major, any number of rows),
--            labels = uint8_t* (class ids, indexed by row) | targets =
--            float* (rows x T), idx = uint32_t* (n row ids) | nil (rows
--            0..n-1), n = number of rows, cid = optional string (content
--            id of the rows: the exec trainer's cache key) }
-- The arrays are borrowed (cdata the caller keeps alive); shards never
-- copy X (builtin) except into the exec trainer's files.
--
-- Kinds (the spec given to M.resolve):
--   builtin: {type = "softmax" | "logistic" | "linear" | "mlp", ...}
--     (ipk.fl.model.softmax{...} etc.); C on OpenBLAS (ipk.fl.trainers.builtin).
--   exec: {kind = "exec", command = {argv...}, timeout = seconds, env = {K = V},
--     init = path.safetensors | nil} (ipk.fl.trainers.exec).
--   lua: {kind = "lua", script = path} or {kind = "lua", fit = fn, evaluate =
--     fn, init = fn}: user code in the recipe sandbox (ipk.fl.trainers.lua).
local contract = require "ipk.fl.trainers.contract"
local ffi = require "ffi"
local T = require "ipk.fl.tensors"
local builtin = require "ipk.fl.trainers.builtin"
local exec = require "ipk.fl.trainers.exec"
local luatr = require "ipk.fl.trainers.lua"

local M = {}

local type, tostring = type, tostring

local BUILTIN = { softmax = true, logistic = true, linear = true, mlp = true }
M.BUILTIN = BUILTIN
local KINDS = { builtin = builtin, exec = exec, lua = luatr }

--- The kind of a trainer spec: "builtin", "exec" or "lua", or nil, msg, "EINVAL".
function M.kind(spec)
  if type(spec) ~= "table" then return nil, "trainer: a spec table expected, got " .. type(spec), "EINVAL" end
  local k = spec.kind
  if k == nil then
    if BUILTIN[spec.type] then k = "builtin"
    elseif spec.command ~= nil then k = "exec"
    elseif spec.script ~= nil or type(spec.fit) == "function" then k = "lua"
    end
  end
  if k ~= "builtin" and k ~= "exec" and k ~= "lua" then
    return nil, "trainer: unknown kind " .. tostring(k) .. " (builtin {type = softmax|logistic|linear|mlp}, "
      .. "exec {command = {...}}, lua {script = path})", "EINVAL"
  end
  return k
end

--- The trainer for spec (see the module comment).
-- @return trainer | nil, msg, name ("EINVAL" for a bad spec)
function M.resolve(spec)
  local k, err, name = M.kind(spec)
  if not k then return nil, err, name end
  return KINDS[k].new(spec)
end

--- Evaluate an ensemble model (the `ensemble` strategy's result: tensors
-- member.<i>.<name>) on a shard's test part by the ensemble's rule, the mean
-- of the members' predicted probabilities (softmax: class probabilities;
-- logistic: P(class 1); linear: the prediction), each member run through
-- trainer.predict. Accuracy takes the argmax of the mean (ties to the lowest
-- class; logistic: mean >= 0.5 is class 1); loss is the mean cross-entropy
-- of the mean probabilities (clamped at 1e-12 inside the log), or the mean
-- squared error for linear.
-- @return {num_examples, loss, accuracy | mse, members} or nil, msg, name
-- ("EUNSUPP" when the trainer has no predict: exec and Lua trainers).
function M.evaluate_ensemble(trainer, set, shard)
  if type(trainer.predict) ~= "function" then
    return nil, "ensemble evaluation needs the trainer's predict (builtin trainers have it; "
      .. trainer.kind .. " trainers do not)", "EUNSUPP"
  end
  local members, order = {}, {}
  for _, name in ipairs(set.names) do
    local i, rest = name:match("^member%.(%d+)%.(.+)$")
    if not i then return nil, "ensemble evaluation: tensor '" .. name .. "' is not member.<i>.<name>", "EINVAL" end
    i = tonumber(i)
    if not members[i] then members[i] = T.new(); order[#order + 1] = i end
    members[i]:add(T.copy_tensor(set.tensors[name], rest))
  end
  if #order == 0 then return nil, "ensemble evaluation: the model has no members", "EINVAL" end
  table.sort(order)
  local sum, n, C, head
  for _, i in ipairs(order) do
    local p, err, name = trainer.predict(members[i], shard)
    if not p then return nil, "ensemble member " .. i .. ": " .. tostring(err), name end
    if not sum then
      n, C, head = p.n, p.outputs, p.head
      sum = ffi.new("double[?]", n * C)
    elseif p.n ~= n or p.outputs ~= C then
      return nil, "ensemble member " .. i .. ": " .. p.outputs .. " outputs per row, member "
        .. order[1] .. " has " .. C, "ESHAPE"
    end
    for k = 0, n * C - 1 do sum[k] = sum[k] + p.ptr[k] end
  end
  local m = #order
  local part = shard.test
  local labels = part.labels or part.y
  local loss, correct = 0, 0
  for r = 0, n - 1 do
    local row = part.idx and part.idx[r] or r
    if head == "linear" then
      local s = 0
      for k = 0, C - 1 do
        local d = sum[r * C + k] / m - part.targets[row * C + k]
        s = s + d * d
      end
      loss = loss + s / C
    elseif head == "logistic" then
      local p, y = sum[r] / m, labels[row]
      local q = y == 1 and p or 1 - p
      loss = loss - math.log(math.max(q, 1e-12))
      if (p >= 0.5) == (y == 1) then correct = correct + 1 end
    else
      local y, best, arg = labels[row], -1, 0
      for k = 0, C - 1 do
        local p = sum[r * C + k] / m
        if p > best then best, arg = p, k end
      end
      loss = loss - math.log(math.max(sum[r * C + y] / m, 1e-12))
      if arg == y then correct = correct + 1 end
    end
  end
  local res = { num_examples = n, loss = loss / n, members = m }
  if head == "linear" then res.mse = res.loss else res.accuracy = correct / n end
  return res
end

-- The shared helpers (ipk.fl.trainers.contract), for the round loop.
M.shard, M.central = contract.shard, contract.central
M.check_update, M.check_result, M.check_eval = contract.check_update, contract.check_result, contract.check_eval
M.who, M.prefixed = contract.who, contract.prefixed

return M
