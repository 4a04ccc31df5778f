#!/usr/bin/python3
"""Write minimal model and data files with writers independent of ipk.

Usage: make_files.py OUTDIR

Python's own pickle/zipfile/struct/json, numpy, h5py and protoc (Debian
packages python3-numpy, python3-h5py, protobuf-compiler) produce files in
the layouts the real frameworks use, for formats no Debian package ships
(PyTorch zip, TorchScript, Keras, SavedModel, GGUF, TFRecord, sklearn
pickles ...). Nothing here imports ipk. Prints one line per file written.
"""
import collections
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile
import zlib

import numpy as np

out = sys.argv[1]
for sub in ("models", "data", "images"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)


def w(name, data):
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    print(name)


def fake_module(name):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        n = ".".join(parts[:i])
        if n not in sys.modules:
            sys.modules[n] = types.ModuleType(n)
        if i > 1:
            setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[n])
    return sys.modules[name]


# --- PyTorch zip layouts (torch.save's: archive/data.pkl protocol 2 with
# persistent ids for storages, archive/data/N, archive/version) -----------
tu = fake_module("torch._utils")
torch = fake_module("torch")


def _rebuild_tensor_v2(*a):
    pass


_rebuild_tensor_v2.__module__ = "torch._utils"
tu._rebuild_tensor_v2 = _rebuild_tensor_v2


class FloatStorage:
    pass


FloatStorage.__module__ = "torch"
FloatStorage.__qualname__ = "FloatStorage"
torch.FloatStorage = FloatStorage


class Storage:
    def __init__(self, key, n):
        self.key, self.n = key, n


class Tensor:
    def __init__(self, key, shape):
        self.storage = Storage(key, int(np.prod(shape)))
        self.shape = shape

    def __reduce__(self):
        stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
        return (_rebuild_tensor_v2, (self.storage, 0, tuple(self.shape), stride, False,
                                     collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.n)
        return None


def torch_zip(name, obj, storages, extra=None):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for k, n in storages:
            z.writestr("archive/data/" + k, np.arange(n, dtype="<f4").tobytes())
        for k, v in (extra or {}).items():
            z.writestr(k, v)
        z.writestr("archive/version", "3\n")
    w(name, zb.getvalue())


sd = collections.OrderedDict([("fc.weight", Tensor("0", (2, 3))), ("fc.bias", Tensor("1", (2,)))])
torch_zip("models/state_dict.pt", sd, [("0", 6), ("1", 2)])

lin = fake_module("torch.nn.modules.linear")


class Linear:
    pass


Linear.__module__ = "torch.nn.modules.linear"
lin.Linear = Linear
main = sys.modules["__main__"]


class Net:
    pass


Net.__module__ = "__main__"
main.Net = Net
net = Net()
fc = Linear()
fc.__dict__.update({"weight": Tensor("0", (2, 3)), "bias": Tensor("1", (2,)), "in_features": 3})
net.__dict__.update({"training": False, "_modules": collections.OrderedDict([("fc", fc)])})
torch_zip("models/module.pt", net, [("0", 6), ("1", 2)])

torch_zip("models/script.pt", sd, [("0", 6), ("1", 2)], {
    "archive/code/__torch__.py": "class Net(Module):\n  fc : __torch__.torch.nn.modules.linear.Linear\n",
    "archive/constants.pkl": pickle.dumps((), protocol=2),
})

# --- sklearn-style pickle (protocol 4, never unpickled by ipk) ------------
skm = fake_module("sklearn.linear_model._logistic")


class LogisticRegression:
    pass


LogisticRegression.__module__ = "sklearn.linear_model._logistic"
skm.LogisticRegression = LogisticRegression
lr = LogisticRegression()
lr.__dict__.update({"C": 1.0, "coef_": np.zeros((3, 4)), "classes_": np.array([0, 1, 2])})
w("models/sklearn.pkl", pickle.dumps(lr, protocol=4))
w("models/proto0.pkl", pickle.dumps({"a": [1, 2.5, "x"]}, protocol=0))

# --- Keras: HDF5 with keras_version/model_config attributes, and .keras zip
import h5py  # noqa: E402

cfg = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
    {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]}}
with h5py.File(os.path.join(out, "models/keras_model.h5"), "w") as f:
    f.attrs["keras_version"] = "2.13.1"
    f.attrs["backend"] = "tensorflow"
    f.attrs["model_config"] = json.dumps(cfg)
    g = f.create_group("model_weights/dense")
    g.create_dataset("kernel:0", data=np.ones((3, 2), dtype="f4"))
print("models/keras_model.h5")
with h5py.File(os.path.join(out, "data/table.h5"), "w") as f:
    f.create_dataset("x", data=np.arange(12, dtype="f8").reshape(4, 3))
print("data/table.h5")
wb = io.BytesIO()
with h5py.File(wb, "w") as f:
    f.create_dataset("layers/dense/vars/0", data=np.ones((3, 2), dtype="f4"))
zb = io.BytesIO()
with zipfile.ZipFile(zb, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("metadata.json", json.dumps({"keras_version": "3.0.5", "date_saved": "2024-01-01@00:00:00"}))
    z.writestr("config.json", json.dumps(cfg))
    z.writestr("model.weights.h5", wb.getvalue())
w("models/model.keras", zb.getvalue())

# --- numpy -------------------------------------------------------------------
b = io.BytesIO()
np.save(b, np.arange(6, dtype="<f4").reshape(2, 3))
w("models/weights.npy", b.getvalue())
b = io.BytesIO()
np.savez_compressed(b, w=np.ones((4, 2)), b=np.zeros(2, dtype="i8"))
w("models/weights.npz", b.getvalue())

# --- safetensors (written from the format spec with struct + json) --------
hdr = json.dumps({"__metadata__": {"format": "pt"},
                  "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
hdr += b" " * (-len(hdr) % 8)
w("models/model.safetensors", struct.pack("<Q", len(hdr)) + hdr + np.ones(4, dtype="<f4").tobytes())

# --- GGUF v3 (llama.cpp's layout, from its spec) ------------------------------


def gstr(s):
    s = s.encode()
    return struct.pack("<Q", len(s)) + s


kv = [
    (gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama")),
    (gstr("general.name") + struct.pack("<I", 8) + gstr("tiny-test")),
    (gstr("llama.context_length") + struct.pack("<II", 4, 128)),
    (gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + gstr("<s>") + gstr("</s>")),
]
tinfo = gstr("tok_embd.weight") + struct.pack("<IQQIQ", 2, 4, 2, 0, 0)
head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv)) + b"".join(kv) + tinfo
head += b"\0" * (-len(head) % 32)
w("models/tiny.gguf", head + np.zeros(8, dtype="<f4").tobytes())

# --- tfjs (model.json + weight shard) --------------------------------------
w("models/tfjs/group1-shard1of1.bin", np.ones(6, dtype="<f4").tobytes())
w("models/tfjs/model.json", json.dumps({
    "format": "layers-model", "generatedBy": "keras v2.13.1", "convertedBy": "TensorFlow.js Converter",
    "modelTopology": cfg,
    "weightsManifest": [{"paths": ["group1-shard1of1.bin"],
                         "weights": [{"name": "dense/kernel", "shape": [3, 2], "dtype": "float32"}]}]}).encode())

# --- TF SavedModel directory (saved_model.pb encoded by protoc) ------------
proto = os.path.join(out, "savedmodel.proto")
with open(proto, "w") as f:
    f.write('syntax = "proto3";\n'
            "message MetaInfoDef { string meta_graph_version = 1; repeated string tags = 4;"
            " string tensorflow_version = 5; }\n"
            "message MetaGraphDef { MetaInfoDef meta_info_def = 1; }\n"
            "message SavedModel { int64 saved_model_schema_version = 1;"
            " repeated MetaGraphDef meta_graphs = 2; }\n")
pb = subprocess.run(["protoc", "--proto_path=" + out, "--encode=SavedModel", proto], check=True,
                    input=b'saved_model_schema_version: 1 meta_graphs { meta_info_def {'
                          b' tags: "serve" tensorflow_version: "2.13.0" } }',
                    stdout=subprocess.PIPE).stdout
os.remove(proto)
w("models/savedmodel/saved_model.pb", pb)
w("models/savedmodel/variables/variables.index", b"\0" * 16)
w("models/savedmodel/variables/variables.data-00000-of-00001", np.ones(4, dtype="<f4").tobytes())
w("models/savedmodel/fingerprint.pb", b"\x08\x01")

# --- tables ---------------------------------------------------------------
w("data/tricky.csv", b"\xef\xbb\xbfid,name,score,flag\r\n"
  b"1,\"Smith, J\",0.5,true\r\n"
  b"2,\"multi\nline\",NA,false\r\n"
  b"3,\"say \"\"hi\"\"\",1.5,\r\n"
  b"4,plain,2,true\r\n")
w("data/iris.tsv", b"sepal\tpetal\tspecies\n5.1\t1.4\tsetosa\n4.9\t1.4\tsetosa\n6.3\t6.0\tvirginica\n")
w("data/rows.jsonl", b'{"a": 1, "b": "x"}\n{"a": 2.5, "b": null}\n{"a": 4, "c": true}\n')
w("data/rows.json", b'[{"a": 1, "b": "x"}, {"a": 3, "b": "y"}]')


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xa282ead8) & 0xFFFFFFFF


recs = b""
for payload in (b"first", b"second record", b""):
    ln = struct.pack("<Q", len(payload))
    recs += ln + struct.pack("<I", masked(ln)) + payload + struct.pack("<I", masked(payload))
w("data/train.tfrecord", recs)

w("data/labels.idx", bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes([0, 1, 2, 1, 0]))


def png(width, height):
    raw = b"".join(b"\0" + bytes([x * 40 % 256 for x in range(width)]) for _ in range(height))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


w("images/cat/a.png", png(4, 3))
w("images/cat/b.png", png(4, 3))
w("images/dog/c.png", png(8, 6))
bmp_pixels = b"\0" * (4 * 2 * 3)
w("images/dog/d.bmp", b"BM" + struct.pack("<IHHI", 54 + len(bmp_pixels), 0, 0, 54)
  + struct.pack("<IiiHHIIiiII", 40, 3, 2, 1, 24, 0, len(bmp_pixels), 0, 0, 0, 0) + bmp_pixels)
