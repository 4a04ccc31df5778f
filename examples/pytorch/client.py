#!/usr/bin/python3
"""A PyTorch CNN client for ipk's exec trainer (docs/fl-trainers.md), trained
federatedly on Fashion-MNIST (examples/pytorch/README.md).

ipk runs this script (an argv list, no shell) in a fresh directory holding
  config.json        mode ("init" | "fit" | "evaluate"), round, seed, epochs,
                     lr, batch, proximal_mu, features, classes, file names
  model.safetensors  the global model (fit, evaluate): this network's
                     state_dict, F32
  train.safetensors  "x" F32 [n, 784] in [0, 1], "y" I64 [n] (fit)
  test.safetensors   the same layout (evaluate; fit when the client has one)
and reads back out.safetensors (init, fit) and result.json.

The model's state_dict is the exchanged tensor set: conv1.weight [16,1,3,3],
conv1.bias [16], conv2.weight [32,16,3,3], conv2.bias [32], fc1.weight
[128,1568], fc1.bias [128], fc2.weight [10,128], fc2.bias [10].
Deterministic for a seed on one thread (IPK_TORCH_THREADS, default 1: ipk
runs several clients at once).
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402


class Net(nn.Module):
    def __init__(self, side, classes):
        super().__init__()
        self.side = side
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * (side // 4) * (side // 4), 128)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = x.view(-1, 1, self.side, self.side)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def build(cfg):
    side = int(round(math.sqrt(cfg["features"])))
    if side * side != cfg["features"]:
        sys.exit(f"client.py: {cfg['features']} features are not a square image")
    return Net(side, int(cfg["classes"]))


def load_model(net, path):
    tensors = st.load(path)
    # strict: a model of another layout is an error, not a silent partial load
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)


def save_model(net, path):
    st.save({k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}, path)


def data(part):
    d = st.load(part["path"])
    return torch.from_numpy(d["x"]), torch.from_numpy(d["y"])


@torch.no_grad()
def evaluate(net, x, y):
    net.eval()
    loss, correct = 0.0, 0
    for at in range(0, len(y), 1000):
        out = net(x[at:at + 1000])
        loss += float(F.cross_entropy(out, y[at:at + 1000], reduction="sum"))
        correct += int((out.argmax(1) == y[at:at + 1000]).sum())
    return loss / max(len(y), 1), correct / max(len(y), 1)


def fit(net, cfg, x, y):
    lr, batch, epochs = float(cfg.get("lr", 0.05)), int(cfg.get("batch", 32)), int(cfg.get("epochs", 1))
    mu = float(cfg.get("proximal_mu", 0.0))
    momentum = float(cfg.get("momentum", 0.9))
    g = torch.Generator().manual_seed(int(cfg.get("seed", 0)))
    global_params = [p.detach().clone() for p in net.parameters()] if mu > 0 else None
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    net.train()
    total = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        total = 0.0
        for at in range(0, len(y), batch):
            rows = order[at:at + batch]
            opt.zero_grad()
            loss = F.cross_entropy(net(x[rows]), y[rows])
            total += float(loss) * len(rows)
            if mu > 0:
                # FedProx (Li et al. 2020): + mu/2 ||w - w_global||^2
                loss = loss + mu / 2 * sum(((p - q) ** 2).sum() for p, q in zip(net.parameters(), global_params))
            loss.backward()
            opt.step()
    return total / max(len(y), 1)


def main():
    t0 = time.time()
    torch.set_num_threads(int(os.environ.get("IPK_TORCH_THREADS", "1")))
    cfg = json.load(open(os.environ.get("IPK_TRAINER_CONFIG", "config.json")))
    torch.manual_seed(int(cfg.get("seed", 0)))
    net = build(cfg)
    mode = cfg["mode"]
    if mode == "init":
        save_model(net, cfg["out"])
        return
    load_model(net, cfg["model"])
    if mode == "evaluate":
        x, y = data(cfg["test"])
        loss, acc = evaluate(net, x, y)
        json.dump({"num_examples": len(y), "loss": loss, "accuracy": acc}, open(cfg["result"], "w"))
        return
    x, y = data(cfg["train"])
    metrics = {"train_loss": fit(net, cfg, x, y)}
    if "test" in cfg:
        metrics["val_loss"], metrics["val_accuracy"] = evaluate(net, *data(cfg["test"]))
    metrics["seconds"] = time.time() - t0
    if not all(np.isfinite(v.numpy()).all() for v in net.state_dict().values() if v.is_floating_point()):
        sys.exit("client.py: training diverged (NaN/inf in the model): lower lr")
    save_model(net, cfg["out"])
    json.dump({"num_examples": len(y), "metrics": metrics}, open(cfg["result"], "w"))


if __name__ == "__main__":
    main()
