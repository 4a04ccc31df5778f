--- ipk.fl.strategies.common: what the built-in strategy families share.
-- A strategy definition (one per name, gathered by ipk.fl.strategy):
--   { name, summary, flower = "the Flower class it follows" or nil,
--     params = {{name=, default=, doc=}, ...}  (strategy-specific; the
--       sampling params fraction_fit, min_fit_clients, min_available_clients
--       are added by ipk.fl.strategy for every strategy),
--     needs_global = true when the formula uses the current model x,
--     final = true when the result ends training (ensemble),
--     check = function(params) -> true | nil, msg   (param ranges),
--     fit_hints = function(params) -> table merged into every client's
--       fit config (FedProx: proximal_mu),
--     aggregate = function(ctx) -> {tensors = set, state = state|nil,
--       info = table|nil} | nil, msg, name }
-- ctx: {params (resolved), round (1-based), global (set or nil), layout
--   (global, else the first update: names, shapes, dtypes of the result),
--   updates ({client, tensors = set, num_examples, metrics, cid?} in the
--   caller's order: ties go to the lowest index), state ({values = table,
--   tensors = F64 set or nil}; empty on the first round)}.
-- The updates are validated before aggregate runs (same layout as ctx.layout,
-- finite values, num_examples a non-negative integer).
local T = require "ipk.fl.tensors"
local kern = require "ipk.fl.strategies.kern"

local M = {}

--- The tensors called `name` of every update, in order.
function M.tensors_of(updates, name)
  local ts = {}
  for i, u in ipairs(updates) do ts[i] = u.tensors.tensors[name] end
  return ts
end

--- A new set with ctx.layout's names, shapes and dtypes, each tensor
-- filled by fn(name, ref_tensor, out_tensor), which either writes out_tensor
-- itself (a kern function given `out`) and returns it, or returns a
-- double[count] that is then rounded once into the dtype
-- (tensors.store_f64); or nil, msg, name.
function M.build(layout, fn, metadata)
  local out = T.new(metadata)
  for _, name in ipairs(layout.names) do
    local ref = layout.tensors[name]
    local t = assert(T.tensor(name, ref.dtype, ref.shape))
    local r, err, ename = fn(name, ref, t)
    if not r then return nil, "tensor " .. name .. ": " .. tostring(err), ename end
    if r ~= t then
      local ok, serr, sname = T.store_f64(t, r)
      if not ok then return nil, serr, sname end
    end
    out:add(t)
  end
  return out
end

--- FedAvg of the updates per tensor name, in f64 (name -> double[count]):
-- sum n_k w_k / sum n_k; clients with 0 examples contribute nothing; all
-- zero is an error that says so.
local function weights_of(ctx, what)
  local weights, total = {}, 0
  for i, u in ipairs(ctx.updates) do weights[i] = u.num_examples; total = total + u.num_examples end
  if total == 0 then
    return nil, ("%s: every client reported zero examples (num_examples sum to 0 over %d clients): no model"):format(
      what or "fedavg", #ctx.updates), "ERANGE"
  end
  return weights
end

function M.fedavg_f64(ctx, what)
  local weights, werr, wname = weights_of(ctx, what)
  if not weights then return nil, werr, wname end
  local res = {}
  for _, name in ipairs(ctx.layout.names) do
    local arr, err, ename = kern.weighted_mean(M.tensors_of(ctx.updates, name), weights)
    if not arr then return nil, (what or "fedavg") .. ": tensor " .. name .. ": " .. tostring(err), ename end
    res[name] = arr
  end
  return res
end

--- FedAvg of the updates as a new set in ctx.layout's dtypes, each value
-- correctly rounded from the exact weighted mean (the kernel writes the
-- dtype directly); all-zero num_examples is the same error as fedavg_f64's.
function M.fedavg_set(ctx, what)
  local weights, werr, wname = weights_of(ctx, what)
  if not weights then return nil, werr, wname end
  local out, err, ename = M.build(ctx.layout, function(name, _, t)
    return kern.weighted_mean(M.tensors_of(ctx.updates, name), weights, t)
  end)
  if not out then return nil, (what or "fedavg") .. ": " .. err, ename end
  return out
end

--- The current model x per tensor as f64 (read only).
function M.global_f64(ctx)
  local res = {}
  for _, name in ipairs(ctx.layout.names) do res[name] = kern.f64(ctx.global.tensors[name]) end
  return res
end

--- State tensor `prefix.name` (F64, layout's shape) or nil when absent;
-- an error when present with another shape.
function M.state_tensor(ctx, prefix, name)
  local st = ctx.state and ctx.state.tensors
  local t = st and st.tensors[prefix .. "." .. name]
  if not t then return nil end
  local ref = ctx.layout.tensors[name]
  if t.dtype ~= "F64" or t.count ~= ref.count or #t.shape ~= #ref.shape then
    return nil, ("state: tensor %s.%s is %s %s, expected F64 %s (state of another model?)"):format(prefix, name,
      t.dtype, T.shape_str(t.shape), T.shape_str(ref.shape)), "ESHAPE"
  end
  for i = 1, #ref.shape do
    if t.shape[i] ~= ref.shape[i] then
      return nil, ("state: tensor %s.%s has shape %s, expected %s (state of another model?)"):format(prefix, name,
        T.shape_str(t.shape), T.shape_str(ref.shape)), "ESHAPE"
    end
  end
  return t
end

--- Add an F64 state tensor `prefix.name` holding arr (copied) to set.
function M.add_state(set, prefix, name, shape, arr)
  local t = assert(T.tensor(prefix .. "." .. name, "F64", shape))
  T.store_f64(t, arr)
  set:add(t)
end

return M
