--- ipk.fl.strategy: aggregation strategies. A strategy is {name,
-- aggregate(updates, global) -> params | nil, msg}, where updates =
-- {{params, n, cid, client}} in CID order.
local core = require "ipk.core"
local model = require "ipk.fl.model"
local sandbox = require "ipk.run.sandbox"
local ffi, lib = core.ffi, core.lib

local M = {}

--- FedAvg (McMahan et al. 2017): weighted mean by sample count, f64 accumulation.
-- A strategy is {name, aggregate(updates, global) -> params | nil,msg}, where
-- updates = {{params, n, cid, client}} in CID order. Users register their own
-- (examples/custom_aggregation.lua).
function M.fedavg()
  return { name = "fedavg", aggregate = function(updates, global)
    local k = #updates
    local ptrs = ffi.new("const float*[?]", k)
    local w = ffi.new("double[?]", k)
    for i, u in ipairs(updates) do ptrs[i - 1] = u.params.data; w[i - 1] = u.n end
    local out = model.copy(global)
    local eb = core.errbuf()
    local ok, err, name = core.check(lib.ipk_agg_fedavg_f32(ptrs, w, k, global.len, out.data, eb), eb)
    if not ok then return nil, err, name end
    return out
  end }
end

--- A strategy from a step argument: a table {name, aggregate}, "fedavg",
-- or the path of a Lua script (run in the recipe sandbox) returning one.
function M.strategy(v)
  if v == nil or v == "fedavg" then return M.fedavg() end
  if type(v) == "table" then return v end
  if type(v) == "string" then
    local s, err, sname = sandbox.load_script(v)
    if s == nil then return nil, "strategy " .. v .. ": " .. tostring(err), sname end
    if type(s) == "function" then s = s() end
    if type(s) ~= "table" or type(s.aggregate) ~= "function" then
      return nil, "strategy " .. v .. ": the script must return {name=, aggregate=function(updates, global)}", "EINVAL"
    end
    s.name = s.name or v:gsub(".*/", ""):gsub("%.lua$", "")
    return s
  end
  return nil, "strategy: expected a table, \"fedavg\" or a script path, got " .. type(v), "EINVAL"
end

return M
