-- A user-written aggregation strategy, plugged into the Fashion-MNIST FedAvg
-- job:  ipkrun run examples/custom_aggregation.lua --param rounds=30
--
-- Coordinate-wise median (Yin et al. 2018), robust to a minority of bad
-- clients. A strategy is a table {name, aggregate(updates, global)} where
-- updates are {params = {data = float*, len}, n = rows, cid, client} in CID
-- order; it returns new params. Numbers stay in cdata (no Lua tables).
local ipk = require "ipk"
local ffi = require "ffi"

local function median_strategy()
  return { name = "median", aggregate = function(updates, global)
    local k = #updates
    local out = ipk.train.copy(global)
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
end

return ipk.recipe {
  name = "fashion-mnist-median",
  params = { clients = 8, rounds = 30, seed = 1, alpha = 0.5, version = "1.0.0" },
  steps = {
    data = ipk.dataset.add { path = "/usr/share/datasets/fashion-mnist", name = "fashion-mnist",
                             package = "dataset-fashion-mnist" },
    shards = ipk.dataset.split { data = "data", clients = ipk.param "clients", alpha = ipk.param "alpha",
                                 seed = ipk.param "seed" },
    model = ipk.fl.train { shards = "shards", model = ipk.train.softmax { classes = 10 },
                           rounds = ipk.param "rounds", seed = ipk.param "seed", strategy = median_strategy() },
    publish = ipk.registry.add { model = "model", name = "fashion-mnist-median", version = ipk.param "version" },
  },
}
