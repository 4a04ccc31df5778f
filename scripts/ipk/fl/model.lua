--- ipk.fl.model: specs of the built-in trainers, and the flat-vector
-- softmax parameters of the original round loop.
--
-- Specs (plain tables, so a recipe step can key them; the trainers behind
-- them are in ipk.fl.trainers.builtin, the contract in ipk.fl.trainers):
--   M.softmax{classes, lr, lr_decay, batch, epochs, l2}
--   M.logistic{lr, lr_decay, batch, epochs, l2}          (binary labels 0/1)
--   M.linear{outputs, lr, lr_decay, batch, epochs, l2}   (f32 targets, MSE)
--   M.mlp{classes, hidden = {h1, ...}, lr, lr_decay, batch, epochs, l2}
-- lr_decay: a round's lr is lr / (1 + lr_decay * (round - 1)) when the
-- round's config does not set lr itself.
--
-- Flat parameters (M.new_params ... M.from_safetensors): one contiguous f32
-- cdata buffer (W: classes x features row-major, then b: classes) for the
-- softmax model, trained as a C job on the thread pool (sched.job).
local core = require "ipk.core"
local sched = require "ipk.sched"
local ffi, lib = core.ffi, core.lib

local M = {}

--- Softmax-regression model spec.
-- Defaults were tuned for FedAvg on Fashion-MNIST (8 clients, Dirichlet 0.5):
-- lr 0.5 decaying as lr / (1 + 0.05 r) per round, batch 256, 1 local epoch.
-- @param o {classes=10, lr=0.5, lr_decay=0.05 (per round), batch=256,
--   epochs=1 (local epochs per round), l2=0}
function M.softmax(o)
  o = o or {}
  return { type = "softmax", classes = o.classes or 10, lr = o.lr or 0.5, lr_decay = o.lr_decay or 0.05,
           batch = o.batch or 256, epochs = o.epochs or 1, l2 = o.l2 or 0 }
end

--- Binary logistic-regression spec (one output; labels 0 and 1).
-- @param o {lr=0.5, lr_decay=0, batch=64, epochs=1, l2=0}
function M.logistic(o)
  o = o or {}
  return { type = "logistic", lr = o.lr or 0.5, lr_decay = o.lr_decay or 0, batch = o.batch or 64,
           epochs = o.epochs or 1, l2 = o.l2 or 0 }
end

--- Linear-regression spec (mean squared error over `outputs` targets per
-- row; outputs default: what init is given as classes, else 1).
-- @param o {outputs, lr=0.01, lr_decay=0, batch=64, epochs=1, l2=0}
function M.linear(o)
  o = o or {}
  return { type = "linear", outputs = o.outputs, lr = o.lr or 0.01, lr_decay = o.lr_decay or 0,
           batch = o.batch or 64, epochs = o.epochs or 1, l2 = o.l2 or 0 }
end

--- Multi-layer perceptron spec: ReLU hidden layers of the given widths, a
-- softmax output; He/Xavier initialisation from the seed.
-- @param o {classes=10, hidden={128}, lr=0.05, lr_decay=0.01, batch=32, epochs=1, l2=0}
function M.mlp(o)
  o = o or {}
  local h = o.hidden or { 128 }
  if type(h) == "number" then h = { h } end
  local hidden = {}
  for i, w in ipairs(h) do hidden[i] = w end
  return { type = "mlp", classes = o.classes or 10, hidden = hidden, lr = o.lr or 0.05,
           lr_decay = o.lr_decay or 0.01, batch = o.batch or 32, epochs = o.epochs or 1, l2 = o.l2 or 0 }
end

--- Zero-initialised parameters for spec on `features` inputs.
-- @return {spec, features, classes, len, data=float*}
function M.new_params(spec, features)
  local k, d = spec.classes, features
  local len = k * d + k
  return { spec = spec, features = d, classes = k, len = len, data = ffi.new("float[?]", len) }
end

--- Copy of params p.
function M.copy(p)
  local q = { spec = p.spec, features = p.features, classes = p.classes, len = p.len,
              data = ffi.new("float[?]", p.len) }
  ffi.copy(q.data, p.data, p.len * 4)
  return q
end

--- Train p in place on rows idx[0..n) of data {X, y}. Must run inside a task.
-- @param lr learning rate for this call (default: the spec's lr)
-- @return mean training loss of the last local epoch, or nil, msg
function M.fit(p, data, idx, n, seed, lr)
  local spec = p.spec
  local job = ffi.new("ipk_softmax_train_job_t")
  job.cfg.features, job.cfg.classes = p.features, p.classes
  job.cfg.epochs, job.cfg.batch = spec.epochs, spec.batch
  job.cfg.lr, job.cfg.l2, job.cfg.seed = lr or spec.lr, spec.l2, seed
  job.W, job.b = p.data, p.data + p.classes * p.features
  job.X, job.y, job.idx, job.n = data.X, data.y, idx, n
  local rc = sched.job(lib.ipk_softmax_train_job, job)
  local ok, err, name = core.check(rc, job.eb, "train")
  if not ok then return nil, err, name end
  return tonumber(job.loss)
end

--- Evaluate p on all rows of data {X, y, rows}. Must run inside a task.
-- @return loss, accuracy (fraction) or nil, msg
function M.evaluate(p, data)
  local job = ffi.new("ipk_softmax_eval_job_t")
  job.features, job.classes = p.features, p.classes
  job.W, job.b = p.data, p.data + p.classes * p.features
  job.X, job.y, job.n = data.X, data.y, data.rows
  local rc = sched.job(lib.ipk_softmax_eval_job, job)
  local ok, err, name = core.check(rc, job.eb, "evaluate")
  if not ok then return nil, err, name end
  return tonumber(job.loss), tonumber(job.accuracy)
end

--- Canonical safetensors bytes of p: tensors "weight" [classes, features]
-- and "bias" [classes], F32, metadata {ipk.model = spec.type}. The same
-- parameters always give the same bytes, hence the same CID.
function M.to_safetensors(p)
  local t = ffi.new("ipk_st_tensor_t[2]")
  local names = { "weight", "bias" }
  t[0].name = names[1]; t[0].dtype = lib.IPK_DT_F32; t[0].ndim = 2
  t[0].shape[0] = p.classes; t[0].shape[1] = p.features
  t[0].data = p.data; t[0].nbytes = p.classes * p.features * 4
  t[1].name = names[2]; t[1].dtype = lib.IPK_DT_F32; t[1].ndim = 1
  t[1].shape[0] = p.classes
  t[1].data = p.data + p.classes * p.features; t[1].nbytes = p.classes * 4
  local mk = ffi.new("const char*[1]", { "ipk.model" })
  local mv = ffi.new("const char*[1]", { p.spec.type })
  local out = ffi.new("uint8_t*[1]")
  local outlen = ffi.new("size_t[1]")
  local eb = core.errbuf()
  local rc = lib.ipk_safetensors_write(t, 2, mk, mv, 1, out, outlen, eb)
  local ok, err, name = core.check(rc, eb)
  if not ok then return nil, err, name end
  local s = ffi.string(out[0], outlen[0])
  ffi.C.free(out[0])
  return s
end

--- Parameters from safetensors bytes written by to_safetensors.
function M.from_safetensors(bytes, spec)
  local buf = ffi.new("uint8_t[?]", #bytes)
  ffi.copy(buf, bytes, #bytes)
  local fp = ffi.new("ipk_st_file_t*[1]")
  local eb = core.errbuf()
  local ok, err, name = core.check(lib.ipk_safetensors_parse(buf, #bytes, fp, eb), eb)
  if not ok then return nil, err, name end
  local f = ffi.gc(fp[0], lib.ipk_safetensors_free)
  local w = lib.ipk_safetensors_find(f, "weight")
  local b = lib.ipk_safetensors_find(f, "bias")
  if w == nil or b == nil or w.dtype ~= lib.IPK_DT_F32 or w.ndim ~= 2 then
    return nil, "safetensors: expected F32 tensors 'weight' [classes, features] and 'bias'", "EFORMAT"
  end
  local k, d = tonumber(w.shape[0]), tonumber(w.shape[1])
  local p = M.new_params(spec or M.softmax { classes = k }, d)
  ffi.copy(p.data, w.data, k * d * 4)
  ffi.copy(p.data + k * d, b.data, k * 4)
  return p
end

return M
