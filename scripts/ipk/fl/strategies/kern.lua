--- ipk.fl.strategies.kern: the element-wise math every built-in strategy
-- uses, in one place, over tensors of ipk.fl.tensors. All results are
-- new double[count] arrays (the strategies finish in f64 and round once
-- when they store into the model's dtype, ipk.fl.tensors.store_f64).
-- Inputs: `ts` is a Lua array of tensors with the same dtype and shape
-- (callers check with tensors.same_layout first); clients are taken in
-- the order given (the caller's canonical order), so results are
-- reproducible.
-- Errors: nil, msg, name from the C kernels (e.g. ERANGE when every
-- weight is 0); misuse raises.
local core = require "ipk.core"
local T = require "ipk.fl.tensors"
local ffi, lib = core.ffi, core.lib

local M = {}

local DOUBLES = ffi.typeof("double[?]")
local floor = math.floor

--- t's elements as a double* (t.ptr itself for F64 tensors: read only).
function M.f64(t)
  if t.dtype == "F64" then return t.ptr end
  return T.to_f64(t)
end

--- Weighted mean sum_k w_k x_k / sum_k w_k per element (Neumaier-compensated
-- in f64 by ipk_agg_fedavg_f64: within ~1 ulp of the exact quotient;
-- clients with weight 0 are skipped). weights: Lua array of numbers >= 0.
-- @return double[count], or nil, msg, name (ERANGE: all weights 0)
function M.weighted_mean(ts, weights)
  local n = ts[1].count
  -- only the clients with a weight: a zero-weight client's data is never
  -- read (its NaN cannot leak in) and never converted
  local sel, sw = {}, {}
  for i = 1, #ts do
    if weights[i] > 0 then sel[#sel + 1] = M.f64(ts[i]); sw[#sw + 1] = weights[i] end
  end
  if #sel == 0 then return nil, "every weight is 0", "ERANGE" end
  local k = #sel
  local ptrs = ffi.new("const double*[?]", k)
  local w = DOUBLES(k)
  for i = 1, k do ptrs[i - 1] = sel[i]; w[i - 1] = sw[i] end
  local out = DOUBLES(n)
  if n == 0 then return out end
  local eb = core.errbuf()
  local ok, err, name = core.check(lib.ipk_agg_fedavg_f64(ptrs, w, k, n, out, eb), eb)
  if not ok then return nil, err, name end
  return out
end

-- Insertion sort of col[0..k) (k is the number of clients: small).
local function sort_col(col, k)
  for a = 1, k - 1 do
    local v, b = col[a], a - 1
    while b >= 0 and col[b] > v do col[b + 1] = col[b]; b = b - 1 end
    col[b + 1] = v
  end
end

local function columns(ts)
  local xs = {}
  for i = 1, #ts do xs[i] = M.f64(ts[i]) end
  return xs
end

--- Median per element (np.median: the mean of the two middle values for an
-- even count).
function M.median(ts)
  local k, n = #ts, ts[1].count
  local xs, out, col = columns(ts), DOUBLES(n), DOUBLES(k)
  for e = 0, n - 1 do
    for i = 1, k do col[i - 1] = xs[i][e] end
    sort_col(col, k)
    out[e] = (k % 2 == 1) and col[(k - 1) / 2] or (col[k / 2 - 1] + col[k / 2]) / 2
  end
  return out
end

-- Compensated (Neumaier) sum of col[a..b), so a mean of f32 inputs is
-- within an ulp of the exact one.
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

--- Trimmed mean per element: sort the k values, drop `cut` from each end,
-- average the rest (cut < k - cut: the caller checks).
function M.trimmed_mean(ts, cut)
  local k, n = #ts, ts[1].count
  local xs, out, col = columns(ts), DOUBLES(n), DOUBLES(k)
  local kept = k - 2 * cut
  for e = 0, n - 1 do
    for i = 1, k do col[i - 1] = xs[i][e] end
    sort_col(col, k)
    out[e] = nsum(col, cut, k - cut) / kept
  end
  return out
end

--- Squared L2 distance between two tensors with the same layout, summed in
-- f64 (integer tensors flattened to f64 too, as Flower does).
function M.sqdist(ta, tb)
  local a, b = M.f64(ta), M.f64(tb)
  local s = 0.0
  for e = 0, ta.count - 1 do
    local d = a[e] - b[e]
    s = s + d * d
  end
  return s
end

--- Bulyan's second stage per element: the median of the k values, then the
-- mean of the beta values closest to it (|x - median|; ties: lowest client
-- index first).
function M.closest_to_median_mean(ts, beta)
  local k, n = #ts, ts[1].count
  local xs, out, col = columns(ts), DOUBLES(n), DOUBLES(k)
  local idx, dist, pick = {}, {}, DOUBLES(k)
  for e = 0, n - 1 do
    for i = 1, k do col[i - 1] = xs[i][e] end
    sort_col(col, k)
    local med = (k % 2 == 1) and col[(k - 1) / 2] or (col[k / 2 - 1] + col[k / 2]) / 2
    for i = 1, k do idx[i] = i; dist[i] = math.abs(xs[i][e] - med) end
    table.sort(idx, function(a, b)
      if dist[a] ~= dist[b] then return dist[a] < dist[b] end
      return a < b
    end)
    for j = 1, beta do pick[j - 1] = xs[idx[j]][e] end
    out[e] = nsum(pick, 0, beta) / beta
  end
  return out
end

--- A new double[count] holding f(i) for i = 0..count-1 (elementwise
-- server-optimizer updates are written as plain f64 loops by their
-- strategies; this is only the allocator).
function M.new(count)
  return DOUBLES(count)
end

M.floor = floor

return M
