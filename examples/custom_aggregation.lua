-- A user-written aggregation strategy: coordinate-wise median (Yin et al.
-- 2018), robust to a minority of bad clients. Plug it into the main
-- Fashion-MNIST recipe by naming this script:
--
--   ipkrun run recipes/fashion_mnist_fedavg.lua --param strategy=examples/custom_aggregation.lua
--
-- The script runs in the recipe sandbox (no globals, no io; ffi only for
-- buffers) and returns a strategy: {name, aggregate(updates, global)}, where
-- updates are {params = {data = float*, len}, n = rows, cid, client} sorted
-- by CID and `global` is the current model; it returns the new params.
-- Numbers stay in cdata (no Lua tables). The script's bytes are part of the
-- training step's key: edit it and `ipkrun plan` shows the step will re-run.
local ipk = require "ipk"
local ffi = require "ffi"

return { name = "median", aggregate = function(updates, global)
  local k = #updates
  local out = ipk.fl.model.copy(global)
  local col = ffi.new("float[?]", k)
  for i = 0, global.len - 1 do
    for j = 1, k do col[j - 1] = updates[j].params.data[i] end
    -- insertion sort: k is small (the number of clients)
    for a = 1, k - 1 do
      local v, b = col[a], a - 1
      while b >= 0 and col[b] > v do col[b + 1] = col[b]; b = b - 1 end
      col[b + 1] = v
    end
    out.data[i] = (k % 2 == 1) and col[(k - 1) / 2] or 0.5 * (col[k / 2 - 1] + col[k / 2])
  end
  return out
end }
