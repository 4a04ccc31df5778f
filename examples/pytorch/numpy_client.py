#!/usr/bin/python3
"""The smallest exec trainer: softmax regression in numpy, speaking ipk's exec
trainer contract (docs/fl-trainers.md). ipk runs it in a fresh directory with
config.json, model.safetensors, train.safetensors and test.safetensors; it
writes out.safetensors (fit, init) and result.json.

Tensors: "weight" [classes, features] and "bias" [classes] (F32), the names
and layout of ipk's built-in softmax trainer, so either can continue the
other's model.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def evaluate(w, b, x, y):
    p = softmax(x @ w.T + b)
    loss = float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean())
    acc = float((p.argmax(axis=1) == y).mean())
    return loss, acc


def main():
    cfg = json.load(open(os.environ.get("IPK_TRAINER_CONFIG", "config.json")))
    mode = cfg["mode"]
    if mode == "init":
        k, f = cfg["classes"], cfg["features"]
        st.save({"weight": np.zeros((k, f), np.float32), "bias": np.zeros(k, np.float32)}, cfg["out"])
        return
    m = st.load(cfg["model"])
    w, b = m["weight"].astype(np.float32), m["bias"].astype(np.float32)
    if mode == "evaluate":
        d = st.load(cfg["test"]["path"])
        loss, acc = evaluate(w, b, d["x"], d["y"])
        json.dump({"num_examples": int(len(d["y"])), "loss": loss, "accuracy": acc}, open(cfg["result"], "w"))
        return
    d = st.load(cfg["train"]["path"])
    x, y = d["x"], d["y"]
    n = len(y)
    lr, batch, epochs = float(cfg.get("lr", 0.1)), int(cfg.get("batch", 32)), int(cfg.get("epochs", 1))
    mu = float(cfg.get("proximal_mu", 0.0))
    w0, b0 = w.copy(), b.copy()
    rng = np.random.default_rng(int(cfg.get("seed", 0)))
    loss_sum = 0.0
    for _ in range(epochs):
        order = rng.permutation(n)
        loss_sum = 0.0
        for at in range(0, n, batch):
            rows = order[at:at + batch]
            xb, yb = x[rows], y[rows]
            p = softmax(xb @ w.T + b)
            loss_sum += float(-np.log(np.maximum(p[np.arange(len(yb)), yb], 1e-12)).sum())
            p[np.arange(len(yb)), yb] -= 1.0
            gw = p.T @ xb / len(yb) + mu * (w - w0)   # FedProx: + mu (w - w_global)
            gb = p.sum(axis=0) / len(yb) + mu * (b - b0)
            w -= lr * gw.astype(np.float32)
            b -= lr * gb.astype(np.float32)
    st.save({"weight": w, "bias": b}, cfg["out"])
    metrics = {"train_loss": loss_sum / max(n, 1)}
    if "test" in cfg:
        t = st.load(cfg["test"]["path"])
        metrics["val_loss"], metrics["val_accuracy"] = evaluate(w, b, t["x"], t["y"])
    json.dump({"num_examples": int(n), "metrics": metrics}, open(cfg["result"], "w"))


if __name__ == "__main__":
    main()
