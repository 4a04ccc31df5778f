--- ipk.fl.strategies.kern: the element-wise math every built-in strategy
-- uses, in one place, over tensors of ipk.fl.tensors, on the C kernels of
-- core/include/ipk/agg.h (typed F64/F32/F16/BF16/I64 inputs and outputs,
-- SIMD, threads, the same bits whatever the ISA or thread count).
-- Inputs: `ts` is a Lua array of tensors with the same dtype and shape
-- (callers check with tensors.same_layout first), in the caller's order
-- (ties and sums follow it, so results are reproducible). Other integer
-- dtypes (I32, I16, I8, U*, BOOL) go to the kernels as an f64 copy.
-- Outputs: with `out` (a tensor of the result's dtype and shape) the kernel
-- writes the correctly rounded result straight into it (integers half to
-- even) and the function returns out; without it a new double[count]
-- holding the f64 result (for the strategies that continue in f64:
-- FedAvgM, FedOpt).
-- Errors: nil, msg, name from the kernels (ERANGE: all weights 0, an
-- integer result out of range); misuse raises.
local core = require "ipk.core"
local T = require "ipk.fl.tensors"
local ffi, lib = core.ffi, core.lib

local M = {}

local DOUBLES = ffi.typeof("double[?]")
local PTRS = ffi.typeof("const void*[?]")
-- dtypes the C kernels read and write
local NATIVE = { F64 = true, F32 = true, F16 = true, BF16 = true, I64 = true }

--- t's elements as a double* (t.ptr itself for F64 tensors: read only).
function M.f64(t)
  if t.dtype == "F64" then return t.ptr end
  return T.to_f64(t)
end

-- Kernel inputs: pointer array, dtype code, and the f64 copies made for
-- non-native dtypes (the caller allocates nothing more before the call).
local function inputs(ts)
  local k = #ts
  local ptrs, keep = PTRS(k), {}
  local native = NATIVE[ts[1].dtype]
  for i = 1, k do
    local p = native and ts[i].ptr or M.f64(ts[i])
    keep[i] = p
    ptrs[i - 1] = p
  end
  return ptrs, native and T.DTYPES[ts[1].dtype].code or lib.IPK_DT_F64, keep
end

-- Run call(ptrs, in_dt, outbuf, out_dt, eb) into `out` (a tensor) or a new
-- double array; returns the result (out or the array) or nil, msg, name.
-- Every allocation happens before inputs(): f64 copies of exotic dtypes are
-- referenced only by the pointer array, and the GC (which runs only when
-- Lua allocates) cannot run between their creation and the end of the call.
local function run(ts, out, call)
  local eb = core.errbuf()
  local buf, out_dt, arr
  if out and NATIVE[out.dtype] then
    buf, out_dt = out.ptr, T.DTYPES[out.dtype].code
  else
    arr = DOUBLES(ts[1].count)
    buf, out_dt = arr, lib.IPK_DT_F64
  end
  local ptrs, in_dt = inputs(ts)
  local rc = call(ptrs, in_dt, buf, out_dt, eb)
  local ok, err, name = core.check(rc, eb)
  if not ok then return nil, err, name end
  if not out then return arr end
  if arr then
    local sok, serr, sname = T.store_f64(out, arr)
    if not sok then return nil, serr, sname end
  end
  return out
end

--- Weighted mean sum_k w_k x_k / sum_k w_k per element (ipk_agg_wmean:
-- correctly rounded; clients with weight 0 are skipped). weights: Lua
-- array of numbers >= 0, or nil for the plain mean.
-- @return out or double[count], or nil, msg, name (ERANGE: all weights 0)
function M.weighted_mean(ts, weights, out)
  local k = #ts
  local w
  if weights then
    w = DOUBLES(k)
    for i = 1, k do w[i - 1] = weights[i] end
  end
  return run(ts, out, function(ptrs, in_dt, buf, out_dt, eb)
    return lib.ipk_agg_wmean(ptrs, in_dt, w, k, ts[1].count, buf, out_dt, nil, eb)
  end)
end

--- Median per element (np.median: the exact mean of the two middle values
-- for an even count).
function M.median(ts, out)
  return run(ts, out, function(ptrs, in_dt, buf, out_dt, eb)
    return lib.ipk_agg_median(ptrs, in_dt, #ts, ts[1].count, buf, out_dt, nil, eb)
  end)
end

--- Trimmed mean per element: sort the k values, drop `cut` from each end,
-- average the rest (2 cut < k: the caller checks and says why).
function M.trimmed_mean(ts, cut, out)
  return run(ts, out, function(ptrs, in_dt, buf, out_dt, eb)
    return lib.ipk_agg_trimmed_mean(ptrs, in_dt, #ts, cut, ts[1].count, buf, out_dt, nil, eb)
  end)
end

--- Pairwise squared L2 distances of one tensor across the clients, added
-- into D (a Lua K x K table of tables, 1-based): the caller sums a model's
-- tensors in model order (integer buffers included, as Flower does).
-- @return D, or nil, msg, name
function M.add_sqdist(ts, D)
  local k = #ts
  local dist, eb = DOUBLES(k * k), core.errbuf() -- allocated first: see run()
  if ts[1].count > 0 then
    local ptrs, in_dt = inputs(ts)
    local rc = lib.ipk_agg_sqdist(ptrs, in_dt, k, ts[1].count, dist, nil, eb)
    local ok, err, name = core.check(rc, eb)
    if not ok then return nil, err, name end
  end
  for a = 1, k do
    for b = 1, k do D[a][b] = D[a][b] + dist[(a - 1) * k + (b - 1)] end
  end
  return D
end

-- Insertion sort of col[0..k) (k is the number of clients: small).
local function sort_col(col, k)
  for a = 1, k - 1 do
    local v, b = col[a], a - 1
    while b >= 0 and col[b] > v do col[b + 1] = col[b]; b = b - 1 end
    col[b + 1] = v
  end
end

-- Compensated (Neumaier) sum of col[a..b).
local function nsum(col, a, b)
  local s, c = 0.0, 0.0
  for i = a, b - 1 do
    local x = col[i]
    local t = s + x
    if math.abs(s) >= math.abs(x) then c = c + ((s - t) + x) else c = c + ((x - t) + s) end
    s = t
  end
  return s + c
end

--- Bulyan's second stage per element (no C kernel: it runs on the theta
-- clients Krum kept): the median of the k values, then the mean of the
-- beta values closest to it (|x - median|; ties: lowest client index).
-- @return double[count]
function M.closest_to_median_mean(ts, beta)
  local k, n = #ts, ts[1].count
  local xs = {}
  for i = 1, k do xs[i] = M.f64(ts[i]) end
  local out, col = DOUBLES(n), DOUBLES(k)
  local idx, dist, pick = {}, {}, DOUBLES(k)
  local function closer(a, b)
    if dist[a] ~= dist[b] then return dist[a] < dist[b] end
    return a < b
  end
  for e = 0, n - 1 do
    for i = 1, k do col[i - 1] = xs[i][e] end
    sort_col(col, k)
    local med = (k % 2 == 1) and col[(k - 1) / 2] or (col[k / 2 - 1] + col[k / 2]) / 2
    for i = 1, k do idx[i] = i; dist[i] = math.abs(xs[i][e] - med) end
    table.sort(idx, closer)
    for j = 1, beta do pick[j - 1] = xs[idx[j]][e] end
    out[e] = nsum(pick, 0, beta) / beta
  end
  return out
end

--- A new zeroed double[count] (the f64 loops of FedAvgM and FedOpt).
function M.new(count)
  return DOUBLES(count)
end

return M
