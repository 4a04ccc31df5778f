-- Federated learning on Fashion-MNIST, every artifact content-addressed.
--
--   ipkrun run recipes/fashion_mnist_fedavg.lua [--param clients=8 --param rounds=150 --param seed=1 --param alpha=0.5] [--json]
--
-- data:    the Debian package dataset-fashion-mnist's folder, added as a dataset
--          version (its CID = `ipkrun add -r --cid-version=1` of the folder),
--          with statistics.
-- shards:  the 60k training rows split over `clients` clients, Dirichlet(alpha)
--          label skew (alpha=0: IID), seeded.
-- model:   FedAvg of a softmax-regression trainer (C, OpenBLAS) for `rounds`
--          rounds, weighted by sample counts, evaluated on the 10k test set
--          after every round; final weights as canonical safetensors.
--          `--param strategy=examples/custom_aggregation.lua` swaps in a
--          user-written aggregation (a coordinate-wise median).
-- Every step is memoized by the CID of its inputs: re-running with the same
-- params does no work; `ipkrun plan` shows what a change would re-run.
-- publish: the model registered as fashion-mnist-softmax@`version` with its
--          metrics, params and lineage (dataset CID, recipe CID).
local ipk = require "ipk"

return ipk.recipe {
  name = "fashion-mnist-fedavg",
  params = {
    clients = { default = 8, type = "integer", min = 1, max = 1000, doc = "number of FL clients" },
    rounds  = { default = 150, type = "integer", min = 1, max = 10000, doc = "FedAvg rounds" },
    seed    = { default = 1, type = "integer", min = 0, doc = "seed of the split and of local SGD" },
    alpha   = { default = 0.5, type = "number", min = 0, doc = "Dirichlet concentration (0 = IID)" },
    epochs  = { default = 1, type = "integer", min = 1, doc = "local epochs per round" },
    lr      = { default = 0.5, type = "number", min = 0, doc = "local SGD learning rate (round 1)" },
    lr_decay = { default = 0.05, type = "number", min = 0, doc = "per-round decay: lr / (1 + lr_decay * (round - 1))" },
    batch   = { default = 256, type = "integer", min = 1, doc = "local mini-batch size" },
    data    = { default = "/usr/share/datasets/fashion-mnist", type = "string", doc = "dataset folder" },
    version = { default = "1.0.0", type = "string", doc = "registry version of the model" },
    strategy = { default = "fedavg", type = "string",
                 doc = "aggregation: fedavg, or a Lua script returning a strategy (examples/custom_aggregation.lua)" },
  },
  steps = {
    data = ipk.dataset.add {
      path = ipk.param "data", name = "fashion-mnist", package = "dataset-fashion-mnist",
    },
    shards = ipk.dataset.split {
      data = "data", clients = ipk.param "clients", alpha = ipk.param "alpha", seed = ipk.param "seed",
    },
    model = ipk.fl.train {
      shards = "shards",
      model = { type = "softmax", classes = 10, lr = ipk.param "lr", lr_decay = ipk.param "lr_decay",
                batch = ipk.param "batch",
                epochs = ipk.param "epochs", l2 = 0 },
      rounds = ipk.param "rounds", seed = ipk.param "seed", strategy = ipk.param "strategy",
    },
    publish = ipk.registry.add { model = "model", name = "fashion-mnist-softmax", version = ipk.param "version" },
  },
  -- The run's result: one JSON object with --json.
  result = function(out, ctx)
    local m, h = out.model, out.model.history
    return {
      dataset_cid = out.data.cid,
      dataset = { name = out.data.name, stats = out.data.stats },
      shards = out.model.lineage.shard_cids,
      model_cid = m.model_cid,
      test_accuracy = h[#h].test_accuracy,
      test_loss = h[#h].test_loss,
      history = h,
      registry = out.publish,
      recipe_cid = ctx.recipe_cid,
      params = ctx.params,
    }
  end,
}
