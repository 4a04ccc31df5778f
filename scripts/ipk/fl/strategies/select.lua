--- ipk.fl.strategies.select: strategies that pick or keep client models
-- instead of averaging them: best_model and ensemble.
local T = require "ipk.fl.tensors"
local json = require "ipk.json"

local M = {}

M.best_model = {
  name = "best_model",
  summary = "the client with the best reported metric, its tensors unchanged (ties: lowest index)",
  params = {
    { name = "metric", default = "accuracy", doc = "name of the client metric compared" },
    { name = "mode", default = "max", doc = "max or min" },
  },
  check = function(p)
    if p.mode ~= "max" and p.mode ~= "min" then return nil, "mode must be max or min, got '" .. tostring(p.mode) .. "'", "EINVAL" end
    if type(p.metric) ~= "string" or p.metric == "" then return nil, "metric must be a metric name", "EINVAL" end
    return true
  end,
  aggregate = function(ctx)
    local p = ctx.params
    local best, bv
    for i, u in ipairs(ctx.updates) do
      local v = u.metrics and u.metrics[p.metric]
      if type(v) ~= "number" then
        return nil, ("best_model: client %s reported no metric '%s' (%s)"):format(u.client, p.metric,
          v == nil and "missing" or ("a " .. type(v))), "EINVAL"
      end
      if v ~= v or v == math.huge or v == -math.huge then
        return nil, ("best_model: client %s reported a non-finite metric %s = %s"):format(u.client, p.metric,
          v ~= v and "NaN" or tostring(v)), "ERANGE"
      end
      if not bv or (p.mode == "max" and v > bv) or (p.mode == "min" and v < bv) then best, bv = i, v end
    end
    local out = T.new()
    for _, name in ipairs(ctx.layout.names) do out:add(T.copy_tensor(ctx.updates[best].tensors.tensors[name])) end
    return { tensors = out, info = { selected = best - 1, selected_client = ctx.updates[best].client, value = bv } }
  end,
}

--- The combination rule written into an ensemble's metadata; evaluation
-- of an ensemble model averages the members' class probabilities.
M.ENSEMBLE_RULE = "mean of member probabilities"

M.ensemble = {
  name = "ensemble",
  summary = "final aggregation keeping every client model: tensors member.<i>.<name>, member CIDs and the "
    .. "combination rule (" .. M.ENSEMBLE_RULE .. ") in the metadata; ends training",
  final = true,
  params = {},
  -- Member i (0-based, in the updates' order) is update i. Metadata:
  -- ipk.ensemble.members = JSON array of the member update CIDs,
  -- ipk.ensemble.clients = JSON array of the client ids,
  -- ipk.ensemble.rule = the combination rule, ipk.ensemble.size = K.
  aggregate = function(ctx)
    local cids, clients = {}, {}
    local out = T.new()
    for i, u in ipairs(ctx.updates) do
      cids[i] = u.cid or ""
      clients[i] = tostring(u.client)
      for _, name in ipairs(ctx.layout.names) do
        out:add(T.copy_tensor(u.tensors.tensors[name], ("member.%d.%s"):format(i - 1, name)))
      end
    end
    out.metadata["ipk.ensemble.members"] = json.encode(json.array(cids))
    out.metadata["ipk.ensemble.clients"] = json.encode(json.array(clients))
    out.metadata["ipk.ensemble.rule"] = M.ENSEMBLE_RULE
    out.metadata["ipk.ensemble.size"] = tostring(#ctx.updates)
    return { tensors = out, info = { members = cids, final = true } }
  end,
}

return M
