"""bench/fedavg.py - the Python side of bench/fedavg.sh: FedAvg of K clients x N
values with numpy running Flower's aggregate() formula and with PyTorch
in-place accumulation. Prints one line per measurement:
    NAME DTYPE best_seconds bytes_read threads
Usage: python3 fedavg.py f32|f16 K N REPS

Flower's aggregate() (flwr/server/strategy/aggregate.py, read at
adap/flower 0cb7993): every layer of every client is multiplied by that
client's num_examples, the products are summed layer by layer with np.add
and the sum is divided by the total count. Written here from that
description (layers = one array per client).
"""
import sys
import time
from functools import reduce

import numpy as np
import torch


def flower_aggregate(results):
    """results: [(list of layer arrays, num_examples)] -> list of layers."""
    total = sum(n for _, n in results)
    weighted = [[layer * n for layer in layers] for layers, n in results]
    return [reduce(np.add, per_layer) / total for per_layer in zip(*weighted)]


def torch_inplace(acc, tensors, counts):
    acc.zero_()
    for t, n in zip(tensors, counts):
        acc.add_(t, alpha=n)
    acc.div_(sum(counts))
    return acc


def best(fn, reps):
    b = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t0)
    return b


def main():
    kind, k, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    dtype = np.float16 if kind == "f16" else np.float32
    rng = np.random.default_rng(7)
    clients = [(rng.random(n, dtype=np.float32) - np.float32(0.5)).astype(dtype) for _ in range(k)]
    counts = [int(c) for c in rng.integers(100, 5100, size=k)]
    nbytes = sum(c.nbytes for c in clients)

    results = [([c], cnt) for c, cnt in zip(clients, counts)]
    t_np = best(lambda: flower_aggregate(results), reps)
    out_dtype = flower_aggregate(results)[0].dtype
    print(f"numpy {kind} {t_np:.6f} {nbytes} 1 {out_dtype}")

    tensors = [torch.from_numpy(c) for c in clients]
    acc = torch.empty_like(tensors[0])
    t_pt = best(lambda: torch_inplace(acc, tensors, counts), reps)
    print(f"torch {kind} {t_pt:.6f} {nbytes} {torch.get_num_threads()} {acc.dtype}")


if __name__ == "__main__":
    main()
