-- A user-written aggregation strategy: coordinate-wise median (Yin et al.
-- 2018), robust to a minority of bad clients. Plug it into the main
-- Fashion-MNIST recipe by naming this script:
--
--   ipkrun run recipes/fashion_mnist_fedavg.lua --param strategy=examples/custom_aggregation.lua
--
-- or aggregate client updates offline with it:
--
--   ipkrun fl aggregate --strategy examples/custom_aggregation.lua u1.safetensors:10 u2.safetensors:20 ... -o out.safetensors
--
-- The script runs in the recipe sandbox (no globals, no io; ffi only for
-- numeric buffers) and returns a strategy:
--   {name, params = {{name, default, doc}} (optional),
--    aggregate = function(updates, global, ctx) -> tensor set,
--    configure_fit = function(round, clients, ctx) (optional)}.
-- updates are {client, num_examples, metrics, tensors} in the caller's order
-- (the round loop sorts them by update CID); `tensors` and `global` (nil
-- when aggregating offline without --global) are sets of named typed
-- tensors (ipk.fl.tensors): set.names in order, set.tensors[name] =
-- {dtype, shape, count, ptr}. They arrive validated: same names, shapes and
-- dtypes in every update, finite values. tensors.to_f64 reads any dtype
-- as doubles; tensors.from_f64 stores back with ipk's rounding (floats
-- correctly rounded, F16/BF16 included; integer buffers such as
-- num_batches_tracked round half to even), so names, shapes and dtypes are
-- kept. The script's bytes are part of the training step's key: edit it and
-- `ipkrun plan` shows the step will re-run.
local ipk = require "ipk"
local ffi = require "ffi"
local tensors = ipk.fl.tensors

local M = { name = "median" }

-- Optional: which clients train this round and the config each receives
-- (merged into the trainer's JSON config). Here: half of the clients,
-- ranked by the previous model's CID (ctx.sample, deterministic), with a
-- learning rate that halves every 10 rounds.
function M.configure_fit(round, clients, ctx)
  local k = math.max(1, math.floor(#clients / 2))
  local out = {}
  for i, c in ipairs(ctx.sample(k)) do
    out[i] = { client = c, config = { round = round, lr = 0.1 * 0.5 ^ math.floor((round - 1) / 10) } }
  end
  return out
end

function M.aggregate(updates, global, ctx) -- luacheck: no unused args
  local k = #updates
  local first = updates[1].tensors
  local out = tensors.new()
  local col = ffi.new("double[?]", k)
  for _, name in ipairs(first.names) do
    local ref = first.tensors[name]
    local xs = {}
    for j = 1, k do xs[j] = tensors.to_f64(updates[j].tensors.tensors[name]) end
    local res = ffi.new("double[?]", ref.count)
    for i = 0, ref.count - 1 do
      for j = 1, k do col[j - 1] = xs[j][i] end
      -- insertion sort: k is small (the number of clients)
      for a = 1, k - 1 do
        local v, b = col[a], a - 1
        while b >= 0 and col[b] > v do col[b + 1] = col[b]; b = b - 1 end
        col[b + 1] = v
      end
      res[i] = (k % 2 == 1) and col[(k - 1) / 2] or 0.5 * (col[k / 2 - 1] + col[k / 2])
    end
    local t, err = tensors.from_f64(name, ref.dtype, ref.shape, res)
    if not t then return nil, err end
    out:add(t)
  end
  return out
end

return M
