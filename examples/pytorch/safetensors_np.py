"""A small safetensors reader/writer on numpy (Debian 12 ships no
python3-safetensors). Format: u64 little-endian header length N, N bytes of
JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}, then the data; offsets are relative to the end of the header.

save() writes tensors sorted by name, back to back (the format requires the
data to be contiguous) after a header padded with spaces to 8 bytes; any
valid layout reads the same, and ipk re-serialises a model canonically before
it hashes it.
"""
import json
import struct

import numpy as np

# safetensors dtype -> numpy dtype (little-endian). BF16 has no numpy type:
# it is read as uint16 bits and widened to float32 (exact), and written back
# from float32 with round-to-nearest-even.
_DT = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2",
    "U8": "u1", "BOOL": "?",
}


class FormatError(ValueError):
    pass


def _bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _f32_to_bf16(x):
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((b >> 16) & 1) + 0x7FFF
    out = ((b + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    out[nan] = 0x7FC0
    return out


def load(path, with_metadata=False):
    """dict name -> numpy array (copies; BF16 widened to float32)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise FormatError(f"{path}: {len(raw)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > 100_000_000 or 8 + n > len(raw):
        raise FormatError(f"{path}: header length {n} exceeds the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: header is not JSON: {e}") from e
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, e in header.items():
        dt, shape, (b, end) = e["dtype"], e["shape"], e["data_offsets"]
        if not (0 <= b <= end <= len(data)):
            raise FormatError(f"{path}: tensor {name}: offsets [{b}, {end}] outside the data ({len(data)} bytes)")
        count = int(np.prod(shape)) if shape else 1
        if dt == "BF16":
            if end - b != 2 * count:
                raise FormatError(f"{path}: tensor {name}: {end - b} bytes for BF16 {shape}")
            arr = _bf16_to_f32(np.frombuffer(data[b:end], dtype="<u2")).reshape(shape)
        elif dt in _DT:
            npdt = np.dtype(_DT[dt])
            if end - b != npdt.itemsize * count:
                raise FormatError(f"{path}: tensor {name}: {end - b} bytes for {dt} {shape}")
            arr = np.frombuffer(data[b:end], dtype=npdt).reshape(shape).copy()
        else:
            raise FormatError(f"{path}: tensor {name}: dtype {dt} not supported here")
        out[name] = arr
    return (out, meta) if with_metadata else out


def _dtype_name(arr, name):
    if arr.dtype == np.float32:
        return "F32"
    for k, v in _DT.items():
        if np.dtype(v) == arr.dtype:
            return k
    raise TypeError(f"tensor {name}: numpy dtype {arr.dtype} has no safetensors name")


def save(tensors, path, metadata=None, dtypes=None):
    """Write dict name -> array. dtypes may force a name's dtype ("BF16")."""
    dtypes = dtypes or {}
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        dt = dtypes.get(name) or _dtype_name(arr, name)
        if dt == "BF16":
            buf = _f32_to_bf16(arr.astype(np.float32)).tobytes()
        else:
            buf = np.ascontiguousarray(arr, dtype=np.dtype(_DT[dt])).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(buf)]}
        chunks.append(buf)
        off += len(buf)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
