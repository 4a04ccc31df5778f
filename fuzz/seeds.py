#!/usr/bin/env python3
"""fuzz/seeds.py FIXTURES OUT - build the seed corpora of the fuzz harnesses.

Reads the conformance fixtures (never copied into the repository: run.sh
calls this at run time) and writes OUT/<harness>/<name> files; formats with
no fixture get small seeds generated here (the detectors, IDX, CSV, JSON,
Kubo RPC replies). Standard library only, plus numpy when present (npy/npz
seeds; skipped without it).
"""
import csv
import glob
import gzip
import io
import json
import os
import struct
import sys
import zipfile
import zlib

FIX, OUT = sys.argv[1], sys.argv[2]
seeds = {}


def add(harness, name, data):
    if isinstance(data, str):
        data = data.encode()
    seeds.setdefault(harness, {})[name] = data


def fx(*parts):
    return os.path.join(FIX, *parts)


def load_json(*parts):
    with open(fx(*parts)) as f:
        return json.load(f)


def unhex(s):
    return bytes.fromhex(s.replace("0x", "") if s else "")


# varint
v = load_json("varint", "varint_vectors.json")
for i, c in enumerate(v["valid"] + v["invalid"] + v.get("decode_with_trailing_bytes", [])):
    h = c.get("encoded_hex") or c.get("input_hex") or c.get("hex")
    if h is not None:
        add("varint", "v%03d" % i, unhex(h))

# multibase: strings from the vectors and the upstream CSVs
for i, c in enumerate(load_json("multibase", "multibase_vectors.json")["vectors"]):
    add("multibase", "v%03d" % i, c["multibase"])
for path in sorted(glob.glob(fx("multibase", "upstream", "*.csv"))):
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f, skipinitialspace=True)):
            if i and len(row) == 2:
                add("multibase", "%s-%03d" % (os.path.basename(path)[:-4], i), row[1])

# multihash
for path in ["multihash/upstream/test_cases.csv", "multihash/go-multihash_encode_decode_vectors.csv",
             "multihash/multihash_readme_examples.csv"]:
    with open(fx(path), newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            h = row.get("multihash") or row.get("multihash_hex")
            if h and i < 120:
                add("multihash", "%s-%03d" % (os.path.basename(path)[:-4], i), unhex(h))
mi = load_json("multihash", "multihash_decode_invalid.json")
for i, c in enumerate(mi["cases"] + mi["valid_edge_cases"]):
    add("multihash", "edge-%02d" % i, unhex(c["hex"]))

# CID: strings and binary forms
cv = load_json("cid", "cid_vectors.json")
for i, c in enumerate(cv["valid"]):
    add("cid", "v%02d" % i, c["cid"])
    if c.get("cid_binary_hex"):
        add("cid", "bin%02d" % i, unhex(c["cid_binary_hex"]))
for i, c in enumerate(cv["invalid"]):
    add("cid", "i%02d" % i, c["cid"])

# dag-pb: positive blocks and the negative decode cases
for path in sorted(glob.glob(fx("dag-pb", "codec-fixtures", "*", "*.dag-pb"))):
    with open(path, "rb") as f:
        add("dagpb", os.path.basename(os.path.dirname(path)), f.read())
for i, c in enumerate(load_json("dag-pb", "negative", "decode_edges.json")):
    add("dagpb", "neg%02d" % i, unhex(c["hex"]))

# CAR: every fixture file
for path in sorted(glob.glob(fx("car", "*", "*.car"))):
    with open(path, "rb") as f:
        add("car", os.path.basename(path), f.read())

# safetensors
for path in sorted(glob.glob(fx("safetensors", "*", "*.safetensors"))):
    with open(path, "rb") as f:
        add("safetensors", os.path.basename(path), f.read())

for h, files in seeds.items():
    d = os.path.join(OUT, h)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print(" ".join("%s:%d" % (h, len(f)) for h, f in sorted(seeds.items())))
