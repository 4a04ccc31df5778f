--- ipk.fl.strategies.robust: Byzantine-robust aggregation: fedmedian,
-- fedtrimmedavg, krum, multikrum, bulyan. Rules (ties, integer buffers,
-- Bulyan's iterative selection): ../shared/fixtures/fl/README.md section 1.
local T = require "ipk.fl.tensors"
local kern = require "ipk.fl.strategies.kern"
local C = require "ipk.fl.strategies.common"

local M = {}

local floor, max = math.floor, math.max

M.fedmedian = {
  name = "fedmedian",
  summary = "coordinate-wise median (Yin et al. 2018; the mean of the two middle values for an even count)",
  flower = "flwr.server.strategy.FedMedian",
  params = {},
  aggregate = function(ctx)
    local out, err, ename = C.build(ctx.layout, function(name, _, t)
      return kern.median(C.tensors_of(ctx.updates, name), t)
    end)
    if not out then return nil, "fedmedian: " .. err, ename end
    return { tensors = out }
  end,
}

M.fedtrimmedavg = {
  name = "fedtrimmedavg",
  summary = "coordinate-wise trimmed mean: drop floor(beta K) values at each end, average the rest",
  flower = "flwr.server.strategy.FedTrimmedAvg",
  params = { { name = "beta", default = 0.2, doc = "fraction cut at each end, in [0, 0.5)" } },
  check = function(p)
    if not (p.beta >= 0 and p.beta < 0.5) then return nil, "beta must be in [0, 0.5), got " .. p.beta, "EINVAL" end
    return true
  end,
  aggregate = function(ctx)
    local k = #ctx.updates
    local cut = floor(ctx.params.beta * k) -- the product in f64, as Flower
    if cut >= k - cut then
      return nil, ("fedtrimmedavg: beta = %.17g cuts %d of %d clients at each end: the trim leaves nothing to average")
        :format(ctx.params.beta, cut, k), "EINVAL"
    end
    local out, err, ename = C.build(ctx.layout, function(name, _, t)
      return kern.trimmed_mean(C.tensors_of(ctx.updates, name), cut, t)
    end)
    if not out then return nil, "fedtrimmedavg: " .. err, ename end
    return { tensors = out, info = { cut = cut } }
  end,
}

-- Squared distances D[i][j] (1-based client positions) over every tensor of
-- the model in layout order (integer buffers included, flattened to f64 as
-- Flower does).
local function distances(ctx)
  local k = #ctx.updates
  local D = {}
  for a = 1, k do
    D[a] = {}
    for b = 1, k do D[a][b] = 0 end
  end
  for _, name in ipairs(ctx.layout.names) do
    local ok, err, ename = kern.add_sqdist(C.tensors_of(ctx.updates, name), D)
    if not ok then return nil, "tensor " .. name .. ": " .. err, ename end
  end
  return D
end

-- Krum scores of the clients idx (indices into ctx.updates) with f
-- malicious: score_i = sum of the max(1, K - f - 2) smallest D_ij, j ~= i.
local function krum_scores(idx, f, D)
  local k = #idx
  local closest = max(1, k - f - 2)
  local scores = {}
  for a = 1, k do
    local row = {}
    for b = 1, k do if b ~= a then row[#row + 1] = D[a][b] end end
    table.sort(row)
    local s = 0.0
    for j = 1, math.min(closest, #row) do s = s + row[j] end
    scores[a] = s
  end
  return scores, closest, D
end

-- Positions 1..k ordered by (score, position): ties to the lowest index.
local function ranked(scores)
  local order = {}
  for i = 1, #scores do order[i] = i end
  table.sort(order, function(a, b)
    if scores[a] ~= scores[b] then return scores[a] < scores[b] end
    return a < b
  end)
  return order
end

local function all_indices(ctx)
  local idx = {}
  for i = 1, #ctx.updates do idx[i] = i end
  return idx
end

local function krum_check(p)
  if p.num_malicious_clients < 0 or p.num_malicious_clients ~= floor(p.num_malicious_clients) then
    return nil, "num_malicious_clients must be a non-negative integer, got " .. p.num_malicious_clients, "EINVAL"
  end
  if p.num_clients_to_keep and (p.num_clients_to_keep < 0 or p.num_clients_to_keep ~= floor(p.num_clients_to_keep)) then
    return nil, "num_clients_to_keep must be a non-negative integer, got " .. p.num_clients_to_keep, "EINVAL"
  end
  return true
end

local function krum_aggregate(ctx, multi)
  local p = ctx.params
  local idx = all_indices(ctx)
  local D, derr, dname = distances(ctx)
  if not D then return nil, "krum: " .. derr, dname end
  local scores, closest = krum_scores(idx, p.num_malicious_clients, D)
  local order = ranked(scores)
  local keep = p.num_clients_to_keep
  local info = { scores = scores, distances = D, num_closest = closest }
  if not multi or keep == 0 then
    -- Krum: the lowest-score client's tensors unchanged (bit-exact, dtypes kept)
    local best = order[1]
    info.selected = { best - 1 }
    info.selected_clients = { ctx.updates[best].client }
    local out = T.new()
    for _, name in ipairs(ctx.layout.names) do out:add(T.copy_tensor(ctx.updates[best].tensors.tensors[name])) end
    return { tensors = out, info = info }
  end
  if keep > #idx then
    return nil, ("multikrum: num_clients_to_keep = %d is more than the %d clients"):format(keep, #idx), "EINVAL"
  end
  local sel = {}
  info.selected, info.selected_clients = {}, {}
  for j = 1, keep do
    sel[j] = ctx.updates[order[j]]
    info.selected[j] = order[j] - 1
    info.selected_clients[j] = sel[j].client
  end
  local out, err, ename = C.fedavg_set({ updates = sel, layout = ctx.layout }, "multikrum")
  if not out then return nil, err, ename end
  return { tensors = out, info = info }
end

local KRUM_PARAMS = {
  { name = "num_malicious_clients", default = 0, doc = "f, the number of Byzantine clients tolerated" },
  { name = "num_clients_to_keep", default = 0, doc = "m: 0 = Krum (one client), m > 0 = MultiKrum (FedAvg of m)" },
}

M.krum = {
  name = "krum",
  summary = "Krum (Blanchard et al. 2017): the client closest to its K-f-2 neighbours; m > 0 = MultiKrum",
  flower = "flwr.server.strategy.Krum",
  params = KRUM_PARAMS,
  check = krum_check,
  aggregate = function(ctx) return krum_aggregate(ctx, true) end,
}

M.multikrum = {
  name = "multikrum",
  summary = "MultiKrum: FedAvg (by num_examples) of the num_clients_to_keep lowest Krum scores",
  flower = "flwr.serverapp.strategy.MultiKrum",
  params = {
    KRUM_PARAMS[1],
    { name = "num_clients_to_keep", default = 1, doc = "m, the number of lowest-score clients averaged" },
  },
  check = function(p)
    local ok, err = krum_check(p)
    if not ok then return nil, err, "EINVAL" end
    if p.num_clients_to_keep < 1 then return nil, "num_clients_to_keep must be >= 1 for multikrum", "EINVAL" end
    return true
  end,
  aggregate = function(ctx) return krum_aggregate(ctx, true) end,
}

M.bulyan = {
  name = "bulyan",
  summary = "Bulyan (El Mhamdi et al. 2018): theta = K-2f clients by repeated Krum, then per coordinate the mean "
    .. "of the beta = theta-2f values closest to the median",
  flower = "flwr.server.strategy.Bulyan",
  params = {
    { name = "num_malicious_clients", default = 0, doc = "f; needs K >= 4f + 3 clients" },
    { name = "first_aggregation_rule", default = "krum", doc = "selection rule (krum: repeated Krum, as the paper)" },
  },
  check = function(p)
    local ok, err = krum_check(p)
    if not ok then return nil, err, "EINVAL" end
    if p.first_aggregation_rule ~= "krum" then
      return nil, "first_aggregation_rule must be krum, got '" .. tostring(p.first_aggregation_rule) .. "'", "EINVAL"
    end
    return true
  end,
  aggregate = function(ctx)
    local f, k = ctx.params.num_malicious_clients, #ctx.updates
    if k < 4 * f + 3 then
      return nil, ("bulyan: %d clients, needs at least 4f+3 = %d (num_malicious_clients f = %d): too few clients")
        :format(k, 4 * f + 3, f), "EINVAL"
    end
    local theta = k - 2 * f
    local beta = theta - 2 * f
    -- repeated Krum over the remaining clients: distances once, scores per pass
    local all = all_indices(ctx)
    local D, derr, dname = distances(ctx)
    if not D then return nil, "bulyan: " .. derr, dname end
    local remaining, selected = all, {}
    for _ = 1, theta do
      local sub = {}
      for a = 1, #remaining do
        sub[a] = {}
        for b = 1, #remaining do sub[a][b] = D[remaining[a]][remaining[b]] end
      end
      local scores = krum_scores(remaining, f, sub)
      local win = ranked(scores)[1]
      selected[#selected + 1] = remaining[win]
      table.remove(remaining, win)
    end
    -- in client order, so ties at the beta boundary go to the lowest index
    local by_index = { unpack(selected) }
    table.sort(by_index)
    local sel = {}
    for j, i in ipairs(by_index) do sel[j] = ctx.updates[i] end
    local out, err, ename = C.build(ctx.layout, function(name)
      return kern.closest_to_median_mean(C.tensors_of(sel, name), beta)
    end)
    if not out then return nil, "bulyan: " .. err, ename end
    local info = { theta = theta, beta = beta, selected = {} }
    for j, i in ipairs(selected) do info.selected[j] = i - 1 end
    return { tensors = out, info = info }
  end,
}

return M
