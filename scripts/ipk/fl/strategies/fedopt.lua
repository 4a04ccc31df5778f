--- ipk.fl.strategies.fedopt: Flower's FedOpt family (Reddi et al. 2021):
-- fedadam, fedyogi, fedadagrad. As Flower, with the fixtures' rules
-- (../shared/fixtures/fl/README.md section 1):
--   delta = fedavg - x (FedAvg computed in f64, never rounded to f32 first:
--     Flower's f32 FedAvg makes a phantom delta that tau = 1e-9 turns into a
--     full step)
--   m = beta_1 m + (1 - beta_1) delta
--   Adam:    v = beta_2 v + (1 - beta_2) delta^2,
--            eta_t = eta sqrt(1 - beta_2^(t+1)) / (1 - beta_1^(t+1))  (Flower's t+1, t = round)
--   Yogi:    v = v - (1 - beta_2) delta^2 sign(v - delta^2)  (sign(0) = 0), eta_t = eta
--   Adagrad: v = v + delta^2, beta_1 = 0 (m = delta), eta_t = eta
--   x_new = x + eta_t m / (sqrt(v) + tau)
-- m and v start at zero and are the strategy state (F64 tensors m.NAME and
-- v.NAME). Integer tensors (num_batches_tracked) go through the same
-- formula and are rounded half to even. eta_l is the client learning rate:
-- it is sent to clients as the fit config's `lr`, not used here.
local T = require "ipk.fl.tensors"
local C = require "ipk.fl.strategies.common"

local M = {}

local sqrt = math.sqrt

local function check(p)
  if p.eta <= 0 then return nil, "eta must be > 0, got " .. p.eta, "EINVAL" end
  if p.eta_l ~= nil and p.eta_l <= 0 then return nil, "eta_l must be > 0, got " .. p.eta_l, "EINVAL" end
  if p.beta_1 ~= nil and not (p.beta_1 >= 0 and p.beta_1 < 1) then
    return nil, "beta_1 must be in [0, 1), got " .. p.beta_1, "EINVAL"
  end
  if p.beta_2 ~= nil and not (p.beta_2 >= 0 and p.beta_2 < 1) then
    return nil, "beta_2 must be in [0, 1), got " .. p.beta_2, "EINVAL"
  end
  if p.tau <= 0 then return nil, "tau must be > 0, got " .. p.tau, "EINVAL" end
  return true
end

local function make(kind)
  return function(ctx)
    local p = ctx.params
    local avg, err, ename = C.fedavg_f64(ctx, kind)
    if not avg then return nil, err, ename end
    local x = C.global_f64(ctx)
    local b1 = kind == "fedadagrad" and 0.0 or p.beta_1
    local b2 = p.beta_2 or 0.0
    local eta_t = p.eta
    if kind == "fedadam" then
      local t = ctx.round
      eta_t = p.eta * sqrt(1 - b2 ^ (t + 1.0)) / (1 - b1 ^ (t + 1.0))
    end
    local tau = p.tau
    local state = { scalars = { round = ctx.round }, tensors = T.new() }
    local out; out, err, ename = C.build(ctx.layout, function(name, ref)
      local n, a, xs = ref.count, avg[name], x[name]
      local mt, merr, mname = C.state_tensor(ctx, "m", name)
      if merr then return nil, merr, mname end
      local vt, verr, vname = C.state_tensor(ctx, "v", name)
      if verr then return nil, verr, vname end
      -- new state tensors written in place (zeros on the first round), the
      -- f64 FedAvg array becomes the result: no other large allocation
      local mt2 = assert(T.tensor("m." .. name, "F64", ref.shape))
      local vt2 = assert(T.tensor("v." .. name, "F64", ref.shape))
      local m, v = mt2.ptr, vt2.ptr
      if mt then for i = 0, n - 1 do m[i] = mt.ptr[i] end end
      if vt then for i = 0, n - 1 do v[i] = vt.ptr[i] end end
      for i = 0, n - 1 do
        local d = a[i] - xs[i]
        m[i] = b1 * m[i] + (1 - b1) * d
        local d2 = d * d
        if kind == "fedadam" then
          v[i] = b2 * v[i] + (1 - b2) * d2
        elseif kind == "fedyogi" then
          local s = v[i] - d2
          local sign = (s > 0 and 1) or (s < 0 and -1) or 0
          v[i] = v[i] - (1.0 - b2) * d2 * sign
        else
          v[i] = v[i] + d2
        end
        a[i] = xs[i] + eta_t * m[i] / (sqrt(v[i]) + tau)
      end
      state.tensors:add(mt2)
      state.tensors:add(vt2)
      return a
    end)
    if not out then return nil, err, ename end
    return { tensors = out, state = state, info = { eta_norm = eta_t } }
  end
end

local function lr_hint(p) return { lr = p.eta_l } end

M.fedadam = {
  name = "fedadam",
  summary = "server-side Adam over the FedAvg pseudo-gradient (Flower's bias correction, exponent t+1)",
  flower = "flwr.server.strategy.FedAdam",
  needs_global = true,
  params = {
    { name = "eta", default = 1e-1, doc = "server learning rate" },
    { name = "eta_l", default = 1e-1, doc = "client learning rate (sent as fit config lr)" },
    { name = "beta_1", default = 0.9, doc = "first moment decay" },
    { name = "beta_2", default = 0.99, doc = "second moment decay" },
    { name = "tau", default = 1e-9, doc = "adaptivity (added to sqrt(v))" },
  },
  check = check,
  fit_hints = lr_hint,
  aggregate = make("fedadam"),
}

M.fedyogi = {
  name = "fedyogi",
  summary = "server-side Yogi over the FedAvg pseudo-gradient",
  flower = "flwr.server.strategy.FedYogi",
  needs_global = true,
  params = {
    { name = "eta", default = 1e-2, doc = "server learning rate" },
    { name = "eta_l", default = 0.0316, doc = "client learning rate (sent as fit config lr)" },
    { name = "beta_1", default = 0.9, doc = "first moment decay" },
    { name = "beta_2", default = 0.99, doc = "second moment decay" },
    { name = "tau", default = 1e-3, doc = "adaptivity (added to sqrt(v))" },
  },
  check = check,
  fit_hints = lr_hint,
  aggregate = make("fedyogi"),
}

M.fedadagrad = {
  name = "fedadagrad",
  summary = "server-side Adagrad over the FedAvg pseudo-gradient (beta_1 = 0)",
  flower = "flwr.server.strategy.FedAdagrad",
  needs_global = true,
  params = {
    { name = "eta", default = 1e-1, doc = "server learning rate" },
    { name = "eta_l", default = 1e-1, doc = "client learning rate (sent as fit config lr)" },
    { name = "tau", default = 1e-9, doc = "adaptivity (added to sqrt(v))" },
  },
  check = check,
  fit_hints = lr_hint,
  aggregate = make("fedadagrad"),
}

return M
