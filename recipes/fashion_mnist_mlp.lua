-- Federated MLP on non-IID Fashion-MNIST with FedProx.
--
--   ipkrun run recipes/fashion_mnist_mlp.lua [--param rounds=80 --param mu=0.01 --param alpha=0.5] [--json]
--
-- data:    the Debian package dataset-fashion-mnist's folder, as a dataset
--          version (the same step as recipes/fashion_mnist_fedavg.lua, so
--          both recipes share its cached output).
-- shards:  the 60k training rows over `clients` clients with Dirichlet(alpha)
--          label skew (alpha 0.5: each client's label mix is far from
--          uniform; 0.3 skews more and ends lower), seeded.
-- model:   a built-in MLP (784 -> hidden -> 10, ReLU, C on OpenBLAS, He
--          initialisation from the seed) trained with FedProx: each
--          client's local SGD adds mu/2 ||w - w_global||^2, which keeps
--          skewed clients near the global model; aggregation is FedAvg's
--          weighted mean. Every client holds out `eval_fraction` of its
--          rows: after each round the new model is evaluated on them
--          (federated evaluation) beside the 10k test set (central).
--          Every round writes a round record: `ipkrun fl rounds RUN` lists
--          them, `ipkrun run --resume RUN` continues an interrupted run
--          where it stopped.
-- publish: the model registered as fashion-mnist-mlp@`version`.
local ipk = require "ipk"

return ipk.recipe {
  name = "fashion-mnist-mlp",
  params = {
    clients = { default = 8, type = "integer", min = 2, max = 1000, doc = "number of FL clients" },
    rounds  = { default = 80, type = "integer", min = 1, max = 10000, doc = "federated rounds" },
    seed    = { default = 1, type = "integer", min = 0, doc = "seed of the split, the init and local SGD" },
    alpha   = { default = 0.5, type = "number", min = 0, doc = "Dirichlet concentration (0 = IID; smaller = more skew)" },
    hidden  = { default = 128, type = "integer", min = 1, doc = "hidden layer width" },
    mu      = { default = 0.01, type = "number", min = 0, doc = "FedProx proximal_mu (0 = FedAvg)" },
    epochs  = { default = 1, type = "integer", min = 1, doc = "local epochs per round" },
    lr      = { default = 0.05, type = "number", min = 0, doc = "local SGD learning rate (round 1)" },
    lr_decay = { default = 0.02, type = "number", min = 0, doc = "per-round decay: lr / (1 + lr_decay * (round - 1))" },
    batch   = { default = 32, type = "integer", min = 1, doc = "local mini-batch size" },
    eval_fraction = { default = 0.1, type = "number", min = 0, max = 0.9,
                      doc = "fraction of each client's rows held out for federated evaluation" },
    data    = { default = "/usr/share/datasets/fashion-mnist", type = "string", doc = "dataset folder" },
    version = { default = "1.0.0", type = "string", doc = "registry version of the model" },
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
      model = { type = "mlp", classes = 10, hidden = { ipk.param "hidden" }, lr = ipk.param "lr",
                lr_decay = ipk.param "lr_decay", batch = ipk.param "batch", epochs = ipk.param "epochs", l2 = 0 },
      strategy = { strategy = "fedprox", params = { proximal_mu = ipk.param "mu" } },
      min_fit_clients = 2, min_available_clients = 2,
      eval_fraction = ipk.param "eval_fraction",
      rounds = ipk.param "rounds", seed = ipk.param "seed",
    },
    publish = ipk.registry.add { model = "model", name = "fashion-mnist-mlp", version = ipk.param "version" },
  },
  result = function(out, ctx)
    local m, h = out.model, out.model.history
    return {
      dataset_cid = out.data.cid,
      model_cid = m.model_cid,
      round_record = m.record_cid,
      test_accuracy = h[#h].test_accuracy,
      test_loss = h[#h].test_loss,
      fed_accuracy = h[#h].fed_accuracy,
      history = h,
      registry = out.publish,
      recipe_cid = ctx.recipe_cid,
      params = ctx.params,
    }
  end,
}
