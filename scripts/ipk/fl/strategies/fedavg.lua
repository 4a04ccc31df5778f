--- ipk.fl.strategies.fedavg: the FedAvg family (fedavg, average, fedprox,
-- fedavgm). Formulas: ../shared/fixtures/fl/README.md section 1; all in f64,
-- rounded once into each tensor's dtype.
local T = require "ipk.fl.tensors"
local kern = require "ipk.fl.strategies.kern"
local C = require "ipk.fl.strategies.common"

local M = {}

M.fedavg = {
  name = "fedavg",
  summary = "weighted mean by num_examples (McMahan et al. 2017)",
  flower = "flwr.server.strategy.FedAvg",
  params = {},
  aggregate = function(ctx)
    local out, err, ename = C.fedavg_set(ctx)
    if not out then return nil, err, ename end
    return { tensors = out }
  end,
}

M.average = {
  name = "average",
  summary = "unweighted mean of the client models (num_examples ignored, zeros included)",
  params = {},
  aggregate = function(ctx)
    local out, err, ename = C.build(ctx.layout, function(name, _, t)
      return kern.weighted_mean(C.tensors_of(ctx.updates, name), nil, t)
    end)
    if not out then return nil, "average: " .. err, ename end
    return { tensors = out }
  end,
}

M.fedprox = {
  name = "fedprox",
  summary = "FedAvg aggregation; clients add the proximal term mu/2 |w - w_global|^2 (Li et al. 2020)",
  flower = "flwr.server.strategy.FedProx",
  params = {
    { name = "proximal_mu", default = 0.0, doc = "proximal term weight, sent to every client in its fit config" },
  },
  check = function(p)
    if p.proximal_mu < 0 then return nil, "proximal_mu must be >= 0, got " .. p.proximal_mu, "EINVAL" end
    return true
  end,
  fit_hints = function(p) return { proximal_mu = p.proximal_mu } end,
  aggregate = function(ctx) return M.fedavg.aggregate(ctx) end,
}

M.fedavgm = {
  name = "fedavgm",
  summary = "FedAvg with server momentum (Hsu et al. 2019; PyTorch SGD convention as Flower)",
  flower = "flwr.server.strategy.FedAvgM",
  needs_global = true,
  params = {
    { name = "server_learning_rate", default = 1.0, doc = "server step size eta" },
    { name = "server_momentum", default = 0.0, doc = "momentum mu (0: none, no state kept)" },
  },
  check = function(p)
    if p.server_momentum < 0 then return nil, "server_momentum must be >= 0, got " .. p.server_momentum, "EINVAL" end
    return true
  end,
  -- g = x - fedavg; mu > 0: v = g on the first round (no momentum in the
  -- state), v = mu v + g later, g = v; x_new = x - eta g.
  aggregate = function(ctx)
    local avg, err, ename = C.fedavg_f64(ctx, "fedavgm")
    if not avg then return nil, err, ename end
    local x = C.global_f64(ctx)
    local eta, mu = ctx.params.server_learning_rate, ctx.params.server_momentum
    local state = { scalars = {}, tensors = mu > 0 and T.new() or nil }
    -- in place: the f64 FedAvg array becomes the result (each allocation
    -- of a large model costs its page faults)
    local out; out, err, ename = C.build(ctx.layout, function(name, ref)
      local n, a, xs = ref.count, avg[name], x[name]
      if mu > 0 then
        local v, verr, vname = C.state_tensor(ctx, "momentum", name)
        if verr then return nil, verr, vname end
        local nv = assert(T.tensor("momentum." .. name, "F64", ref.shape))
        local np, vp = nv.ptr, v and v.ptr
        for i = 0, n - 1 do
          local g = xs[i] - a[i]
          if vp then g = mu * vp[i] + g end
          np[i] = g
          a[i] = xs[i] - eta * g
        end
        state.tensors:add(nv)
      else
        for i = 0, n - 1 do a[i] = xs[i] - eta * (xs[i] - a[i]) end
      end
      return a
    end)
    if not out then return nil, err, ename end
    return { tensors = out, state = state }
  end,
}

return M
