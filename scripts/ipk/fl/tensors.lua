--- ipk.fl.tensors: a model (or a client update, or strategy state) as a set
-- of named, typed tensors, the in-memory form of a safetensors file.
--
-- Set (from M.new, M.from_safetensors, set:copy()):
--   set.names     array of tensor names in order (the order tensors were
--                 added; from a file: the file's data order)
--   set.tensors   name -> tensor
--   set.metadata  string -> string (safetensors __metadata__), may be empty
--   methods: add, get, count, copy, to_safetensors, check_finite
-- Tensor (from M.tensor, set:add, M.from_f64):
--   t.name    string
--   t.dtype   safetensors dtype name: "F64" "F32" "F16" "BF16" "I64" "I32"
--             "I16" "I8" "U8" "BOOL" (and "U16" "U32" "U64"); F8/F4/F6/C64
--             are refused (EUNSUPP) since no strategy can average them
--   t.shape   Lua array of dimensions; {} is rank 0 (one element)
--   t.count   number of elements (product of shape, 1 for rank 0)
--   t.nbytes  count * element size
--   t.ptr     typed FFI pointer to the elements: double*, float*,
--             uint16_t* (F16 and BF16 hold raw bits), int64_t*, int32_t*,
--             int16_t*, int8_t*, uint8_t* (U8, BOOL), ...
--   t.buf     the FFI object that owns the storage (keep-alive only: hold
--             the tensor, not only t.ptr; read and write through t.ptr,
--             which may point inside buf)
-- Storage is little-endian (the module refuses to load on a big-endian
-- host) and owned by the tensor: from_safetensors copies the file's bytes
-- once into one buffer and its tensors are views into it when their data
-- is aligned to the element size (always in canonical files), else copies;
-- the string may be dropped. Tensors of one parsed file share that buffer:
-- writing through one tensor's ptr changes only that tensor's bytes.
--
-- Conversions (M.to_f64 / M.from_f64), the one rounding rule of ipk.fl:
--   to f64: exact for every dtype except I64/U64 beyond 2^53 (nearest double).
--   from f64 to a float dtype: correctly rounded (round to nearest, ties to
--     even) from the f64 value directly, no double rounding through f32;
--     F16/BF16 keep subnormals, overflow to +-inf, NaN stays NaN with its
--     sign (quiet: 0x7e00 / 0x7fc0); F32 likewise (C's conversion).
--   from f64 to an integer dtype: round half to even (100.5 -> 100,
--     101.5 -> 102), then range-checked; NaN/inf or out of range is an
--     error naming the tensor (ERANGE). BOOL takes 0 or 1.
--
-- Errors: expected failures return nil, msg, name (EFORMAT/ETRUNC for a bad
-- file, EUNSUPP for a dtype, ERANGE for a value, ESHAPE for a layout);
-- misuse (wrong argument types) raises error(..., 2).
local core = require "ipk.core"
local json = require "ipk.json"
local ffi, lib = core.ffi, core.lib

assert(ffi.abi("le"), "ipk.fl.tensors: little-endian host required (safetensors storage is little-endian)")

local M = {}

-- dtype name -> {ctype, size (bytes), kind = float|half|int|bool, lo, hi (integer range)}
local DT = {
  F64 = { ctype = "double", size = 8, kind = "float" },
  F32 = { ctype = "float", size = 4, kind = "float" },
  F16 = { ctype = "uint16_t", size = 2, kind = "half" },
  BF16 = { ctype = "uint16_t", size = 2, kind = "half" },
  I64 = { ctype = "int64_t", size = 8, kind = "int", lo = -2 ^ 63, hi = 2 ^ 63 - 1 },
  I32 = { ctype = "int32_t", size = 4, kind = "int", lo = -2 ^ 31, hi = 2 ^ 31 - 1 },
  I16 = { ctype = "int16_t", size = 2, kind = "int", lo = -2 ^ 15, hi = 2 ^ 15 - 1 },
  I8 = { ctype = "int8_t", size = 1, kind = "int", lo = -128, hi = 127 },
  U64 = { ctype = "uint64_t", size = 8, kind = "int", lo = 0, hi = 2 ^ 64 - 1 },
  U32 = { ctype = "uint32_t", size = 4, kind = "int", lo = 0, hi = 2 ^ 32 - 1 },
  U16 = { ctype = "uint16_t", size = 2, kind = "int", lo = 0, hi = 2 ^ 16 - 1 },
  U8 = { ctype = "uint8_t", size = 1, kind = "int", lo = 0, hi = 255 },
  BOOL = { ctype = "uint8_t", size = 1, kind = "int", lo = 0, hi = 1 },
}
for name, d in pairs(DT) do
  d.name = name
  d.arr = ffi.typeof(d.ctype .. "[?]")
  d.ptr = ffi.typeof(d.ctype .. "*")
  d.cptr = ffi.typeof("const " .. d.ctype .. "*")
  d.code = lib["IPK_DT_" .. name]
end
M.DTYPES = DT

local DOUBLES = ffi.typeof("double[?]")
local floor, huge = math.floor, math.huge

--- "[3,4]" ("[]" for rank 0).
function M.shape_str(shape)
  return "[" .. table.concat(shape, ",") .. "]"
end

local function shape_count(shape, what)
  local n = 1
  for i, d in ipairs(shape) do
    if type(d) ~= "number" or d < 0 or d ~= floor(d) then
      error(what .. ": dimension " .. i .. " is not a non-negative integer", 3)
    end
    n = n * d
  end
  return n
end

local function copy_shape(shape)
  local s = {}
  for i, d in ipairs(shape) do s[i] = d end
  return s
end

--- A new tensor with zeroed storage (or a copy of nbytes from src, a
-- pointer or string holding little-endian elements).
-- @param name string; dtype a name in M.DTYPES; shape Lua array
-- @return tensor, or nil, msg, "EUNSUPP" for an unsupported dtype
function M.tensor(name, dtype, shape, src)
  if type(name) ~= "string" then error("tensors.tensor: name must be a string", 2) end
  if type(shape) ~= "table" then error("tensors.tensor: shape must be a Lua array", 2) end
  local d = DT[dtype]
  if not d then
    return nil, "tensor " .. name .. ": dtype " .. tostring(dtype) .. " is not supported (F64 F32 F16 BF16 I64 I32 I16 I8 "
      .. "U64 U32 U16 U8 BOOL)", "EUNSUPP"
  end
  local count = shape_count(shape, "tensor " .. name)
  local buf = d.arr(count)
  if src ~= nil then ffi.copy(buf, src, count * d.size) end
  return { name = name, dtype = dtype, shape = copy_shape(shape), count = count, nbytes = count * d.size,
           ptr = ffi.cast(d.ptr, buf), buf = buf }
end

--- A copy of tensor t (own storage), optionally renamed.
function M.copy_tensor(t, name)
  return (M.tensor(name or t.name, t.dtype, t.shape, t.ptr))
end

-------------------------------------------------------------------------------
-- Half precision (F16: 1/5/10 bits, BF16: 1/8/7 bits). Decoding is exact;
-- encoding rounds the f64 value once, to nearest with ties to even.

local function half_decoder(ebits, mbits)
  local bias = 2 ^ (ebits - 1) - 1
  local emax = 2 ^ ebits - 1
  local tab = ffi.new("double[65536]")
  local u = ffi.new("union { double d; uint64_t u; }")
  for b = 0, 65535 do
    local sign = b >= 32768 and -1 or 1
    local e = floor(b / 2 ^ mbits) % 2 ^ ebits
    local m = b % 2 ^ mbits
    local v
    if e == 0 then v = m * 2 ^ (1 - bias - mbits)
    elseif e == emax then v = (m == 0) and huge or (0 / 0)
    else v = (2 ^ mbits + m) * 2 ^ (e - bias - mbits) end
    if v ~= v then
      -- NaN keeps its sign bit: build the double's bits (0/0 has no reliable sign)
      u.u = (sign < 0) and 0xfff8000000000000ULL or 0x7ff8000000000000ULL
      tab[b] = u.d
    else
      tab[b] = sign * v
    end
  end
  return tab
end

local function half_encoder(ebits, mbits)
  local bias = 2 ^ (ebits - 1) - 1
  local emin = 1 - bias                       -- exponent of the smallest normal
  local inf_bits = (2 ^ ebits - 1) * 2 ^ mbits
  local qnan = inf_bits + 2 ^ (mbits - 1)
  local sign_bit = 2 ^ (ebits + mbits)
  local one = 2 ^ mbits
  local frexp = math.frexp
  local u = ffi.new("union { double d; uint64_t u; }")
  return function(x)
    if x ~= x then
      u.d = x
      return (u.u >= 0x8000000000000000ULL) and (sign_bit + qnan) or qnan
    end
    local s = 0
    if x < 0 or (x == 0 and 1 / x < 0) then s = sign_bit; x = -x end
    if x == huge then return s + inf_bits end
    if x == 0 then return s end
    local _, ex = frexp(x)
    local e = ex - 1                          -- x in [2^e, 2^(e+1))
    if e < emin then e = emin end
    local q = 2 ^ (e - mbits)                 -- spacing of representable values there
    local n = x / q                           -- exact: a power-of-two scaling
    local r = floor(n)
    local f = n - r
    if f > 0.5 or (f == 0.5 and r % 2 == 1) then r = r + 1 end
    -- r in [2^mbits, 2^(mbits+1)] for normals ([0, 2^mbits] for subnormals);
    -- a carry to 2^(mbits+1) lands on the next binade by the same formula.
    local bits
    if r < one then bits = r                  -- subnormal (or rounded to zero)
    else bits = (e - emin + 1) * one + (r - one) end
    if bits >= inf_bits then bits = inf_bits end
    return s + bits
  end
end

local F16_DEC, BF16_DEC = half_decoder(5, 10), half_decoder(8, 7)
local f16_enc, bf16_enc = half_encoder(5, 10), half_encoder(8, 7)

--- IEEE half bits (0..65535) of f64 x, correctly rounded.
M.f16_bits = f16_enc
--- bfloat16 bits of f64 x, correctly rounded (not the truncation of f32).
M.bf16_bits = bf16_enc
--- Value of F16 / BF16 bits (exact).
function M.f16_value(b) return F16_DEC[b] end
function M.bf16_value(b) return BF16_DEC[b] end

-------------------------------------------------------------------------------

--- Elements of t as a new double[count] (exact except I64/U64 beyond 2^53).
function M.to_f64(t)
  local n, p = t.count, t.ptr
  local out = DOUBLES(n)
  if t.dtype == "F16" or t.dtype == "BF16" then
    local tab = t.dtype == "F16" and F16_DEC or BF16_DEC
    for i = 0, n - 1 do out[i] = tab[p[i]] end
  elseif t.dtype == "I64" or t.dtype == "U64" then
    for i = 0, n - 1 do out[i] = tonumber(p[i]) end
  else
    for i = 0, n - 1 do out[i] = p[i] end
  end
  return out
end

-- Round half to even of a finite double.
local function rne(x)
  local r = floor(x)
  local f = x - r
  if f > 0.5 or (f == 0.5 and r % 2 == 1) then r = r + 1 end
  return r
end
M.round_half_even = rne

--- Store count doubles from src (double*) into t's storage with the
-- module's rounding rule (see the top). Returns t, or nil, msg, "ERANGE"
-- naming the tensor and element when an integer target cannot hold a value
-- (t is then partly written: callers write into a fresh tensor).
function M.store_f64(t, src)
  local d = DT[t.dtype]
  local n, p = t.count, t.ptr
  if d.kind == "float" then
    for i = 0, n - 1 do p[i] = src[i] end
  elseif d.kind == "half" then
    local enc = t.dtype == "F16" and f16_enc or bf16_enc
    for i = 0, n - 1 do p[i] = enc(src[i]) end
  else
    local lo, hi = d.lo, d.hi
    for i = 0, n - 1 do
      local x = src[i]
      if x ~= x or x == huge or x == -huge then
        return nil, ("tensor %s: element %d is %s, not representable as %s"):format(t.name, i, tostring(x), t.dtype),
          "ERANGE"
      end
      local r = rne(x)
      -- hi of I64/U64 is 2^63-1 / 2^64-1, which reads as 2^63 / 2^64 in
      -- a double: compare with "<" there.
      if r < lo or r > hi or ((t.dtype == "I64" or t.dtype == "U64") and r >= hi) then
        return nil, ("tensor %s: element %d = %.17g rounds to %.17g, out of the %s range [%.17g, %.17g]")
          :format(t.name, i, x, r, t.dtype, lo, hi), "ERANGE"
      end
      p[i] = r
    end
  end
  return t
end

--- A new tensor of dtype and shape from count doubles (double* or a Lua
-- array of numbers), rounded by the module's rule.
-- @return tensor, or nil, msg, name (ERANGE, EUNSUPP)
function M.from_f64(name, dtype, shape, src)
  local t, err, ename = M.tensor(name, dtype, shape)
  if not t then return nil, err, ename end
  if type(src) == "table" then
    if #src ~= t.count then
      error(("tensors.from_f64: tensor %s: %d values for shape %s (%d elements)"):format(name, #src,
        M.shape_str(shape), t.count), 2)
    end
    local a = DOUBLES(t.count)
    for i = 1, t.count do a[i - 1] = src[i] end
    src = a
  end
  return M.store_f64(t, src)
end

--- Lua array of t's values as doubles (tests, small tensors).
function M.values(t)
  local a, out = M.to_f64(t), {}
  for i = 0, t.count - 1 do out[i + 1] = a[i] end
  return out
end

--- True when every element of t is finite; else nil, msg naming the tensor
-- and the first bad element (prefixed by `who`, e.g. "client client_1"), "ERANGE".
function M.check_finite(t, who)
  local d = DT[t.dtype]
  if d.kind == "int" or t.count == 0 then return true end
  -- the C kernel (SIMD, threads): every update of a round goes through here
  local first, eb = ffi.new("size_t[1]"), core.errbuf()
  local ok, err, ename = core.check(lib.ipk_agg_first_nonfinite(t.ptr, d.code, t.count, first, nil, eb), eb)
  if not ok then return nil, err, ename end
  local bad = tonumber(first[0])
  if bad >= t.count then return true end
  local v = M.to_f64(t)[bad]
  local what = v ~= v and "NaN" or tostring(v)
  return nil, ("%stensor %s: non-finite value %s (NaN/inf) at element %d"):format(who and (who .. ": ") or "",
    t.name, what, bad), "ERANGE"
end

-------------------------------------------------------------------------------
-- Sets

local Set = {}
Set.__index = Set

--- An empty tensor set. metadata: optional string -> string map (copied).
function M.new(metadata)
  local md = {}
  for k, v in pairs(metadata or {}) do md[k] = v end
  return setmetatable({ names = {}, tensors = {}, metadata = md }, Set)
end

M.is_set = function(v) return getmetatable(v) == Set end

--- Add a tensor (a tensor table, or name, dtype, shape for a zeroed one).
-- A duplicate name raises (misuse). Returns the tensor, or nil, msg, name.
function Set:add(t, dtype, shape)
  if type(t) == "string" then
    local err, ename
    t, err, ename = M.tensor(t, dtype, shape)
    if not t then return nil, err, ename end
  end
  if self.tensors[t.name] then error("tensors: duplicate tensor name '" .. t.name .. "'", 2) end
  self.names[#self.names + 1] = t.name
  self.tensors[t.name] = t
  return t
end

function Set:get(name) return self.tensors[name] end
function Set:count() return #self.names end

--- A deep copy (own storage, same order and metadata).
function Set:copy()
  local s = M.new(self.metadata)
  for _, n in ipairs(self.names) do s:add(M.copy_tensor(self.tensors[n])) end
  return s
end

--- check_finite over every tensor (first failure).
function Set:check_finite(who)
  for _, n in ipairs(self.names) do
    local ok, err, ename = M.check_finite(self.tensors[n], who)
    if not ok then return nil, err, ename end
  end
  return true
end

--- Canonical safetensors bytes (ipk_safetensors_write: same tensors and
-- metadata give the same bytes). metadata overrides self.metadata when given.
-- @return string, or nil, msg, name
function Set:to_safetensors(metadata)
  local n = #self.names
  local arr = ffi.new("ipk_st_tensor_t[?]", math.max(n, 1))
  for i, name in ipairs(self.names) do
    local t = self.tensors[name]
    local e = arr[i - 1]
    e.name = name -- the string stays referenced by self.names during the call
    e.dtype = DT[t.dtype].code
    e.ndim = #t.shape
    if e.ndim > 8 then return nil, "tensor " .. name .. ": rank " .. e.ndim .. " above 8", "EUNSUPP" end
    for d = 1, #t.shape do e.shape[d - 1] = t.shape[d] end
    e.data = t.ptr
    e.nbytes = t.nbytes
  end
  local md = metadata or self.metadata
  local keys = {}
  for k in pairs(md) do keys[#keys + 1] = k end
  table.sort(keys)
  local vals = {}
  for i, k in ipairs(keys) do vals[i] = tostring(md[k]) end
  local mk = ffi.new("const char*[?]", math.max(#keys, 1), keys)
  local mv = ffi.new("const char*[?]", math.max(#keys, 1), vals)
  local out, outlen, eb = ffi.new("uint8_t*[1]"), ffi.new("size_t[1]"), core.errbuf()
  local ok, err, ename = core.check(lib.ipk_safetensors_write(arr, n, mk, mv, #keys, out, outlen, eb), eb)
  if not ok then return nil, err, ename end
  local s = ffi.string(out[0], outlen[0])
  ffi.C.free(out[0])
  return s
end

--- A set from safetensors bytes (validated by ipk_safetensors_parse; the
-- metadata map is kept). `what` prefixes messages (a path, a client).
-- o.borrow = true: no copy of the bytes; the tensors are read-only views
-- into the string itself (t.ptr is a const pointer: a write raises; t.buf
-- is the string), for updates that are only read (aggregation): a 100 MB
-- file then costs no second 100 MB.
-- @return set, or nil, msg, name (ETRUNC, EFORMAT, EUNSUPP)
function M.from_safetensors(bytes, what, o)
  if type(bytes) ~= "string" then error("tensors.from_safetensors: bytes must be a string", 2) end
  local borrow = o and o.borrow
  local buf
  if borrow then
    buf = ffi.cast("const uint8_t *", bytes)
  else
    buf = ffi.new("uint8_t[?]", math.max(#bytes, 1))
    ffi.copy(buf, bytes, #bytes)
  end
  local fp, eb = ffi.new("ipk_st_file_t*[1]"), core.errbuf()
  local ok, err, ename = core.check(lib.ipk_safetensors_parse(buf, #bytes, fp, eb), eb, what)
  if not ok then return nil, err, ename end
  local f = ffi.gc(fp[0], lib.ipk_safetensors_free)
  -- The C reader validated the header; the metadata map (which its API
  -- only looks up by key) comes from the same JSON.
  local hlen = 0
  for i = 7, 0, -1 do hlen = hlen * 256 + buf[i] end
  local header = json.decode(bytes:sub(9, 8 + hlen))
  local md = {}
  if type(header) == "table" and type(header.__metadata__) == "table" then
    for k, v in pairs(header.__metadata__) do
      if type(v) == "string" then md[k] = v end
    end
  end
  local set = M.new(md)
  for i = 0, tonumber(lib.ipk_safetensors_count(f)) - 1 do
    local st = lib.ipk_safetensors_tensor(f, i)
    local name = ffi.string(st.name)
    local dtn = ffi.string(lib.ipk_dtype_name(st.dtype))
    local shape = {}
    for d = 0, st.ndim - 1 do shape[d + 1] = tonumber(st.shape[d]) end
    local d = DT[dtn]
    local t
    if d and tonumber(ffi.cast("uintptr_t", st.data)) % d.size == 0 then
      -- a view into buf (the C reader checked sizes and bounds)
      local count = shape_count(shape, "tensor " .. name)
      t = { name = name, dtype = dtn, shape = shape, count = count, nbytes = count * d.size,
            ptr = ffi.cast(borrow and d.cptr or d.ptr, st.data), buf = borrow and bytes or buf }
    else
      local terr, tname
      t, terr, tname = M.tensor(name, dtn, shape, st.data)
      if not t then return nil, (what and (what .. ": ") or "") .. terr, tname end
    end
    set:add(t)
  end
  ffi.gc(f, nil)
  lib.ipk_safetensors_free(f)
  return set
end

--- Layout check: b must have exactly a's tensor names, and per tensor the
-- same shape and (unless opts.dtype == false) dtype. a and b may be sets or
-- single tensors. Returns true, or nil, msg, "ESHAPE" naming the tensor and
-- both shapes/dtypes ("tensor fc.bias: shape [1,4] F32, expected [4] F32").
function M.same_layout(a, b, opts)
  local check_dtype = not (opts and opts.dtype == false)
  local function one(ta, tb)
    local same = #ta.shape == #tb.shape
    for i = 1, #ta.shape do same = same and ta.shape[i] == tb.shape[i] end
    if not same or (check_dtype and ta.dtype ~= tb.dtype) then
      local what = same and "dtype" or "shape"
      return nil, ("tensor %s: %s %s %s, expected %s %s"):format(ta.name, what, M.shape_str(tb.shape), tb.dtype,
        M.shape_str(ta.shape), ta.dtype), "ESHAPE"
    end
    return true
  end
  if not M.is_set(a) then return one(a, b) end
  for _, n in ipairs(a.names) do
    local tb = b.tensors[n]
    local ta = a.tensors[n]
    if not tb then
      return nil, ("tensor %s: missing (expected shape %s %s)"):format(n, M.shape_str(ta.shape), ta.dtype), "ESHAPE"
    end
    local ok, err, ename = one(ta, tb)
    if not ok then return nil, err, ename end
  end
  for _, n in ipairs(b.names) do
    if not a.tensors[n] then
      local tb = b.tensors[n]
      return nil, ("tensor %s: not in the model (shape %s %s)"):format(n, M.shape_str(tb.shape), tb.dtype), "ESHAPE"
    end
  end
  return true
end

return M
