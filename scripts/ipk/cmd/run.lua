--- ipkrun run: run a recipe (`ipkrun RECIPE.lua` for short).
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"
local runner = require "ipk.run"

local M = {}

M.usage = "run RECIPE.lua [--param k=v ...] [--force STEP ...] [--no-cache] [--json] | run --resume RUN [--json]"
M.summary = "run a recipe, memoized by CID (`ipkrun RECIPE.lua` for short); --resume continues a failed run"

-- With --api/IPK_API the run computes locally (same CIDs as offline) and
-- every block and pin it makes goes through runtime.backend(): the tiered
-- cache ships each DAG to the node as it is pinned there (records by
-- block/put, UnixFS DAGs as CARs).
local function print_human(res)
  local w = io.stdout
  if type(res) ~= "table" then w:write(tostring(res), "\n") return end
  if res.dataset_cid then w:write("dataset_cid    ", res.dataset_cid, "\n") end
  if res.history then
    w:write("round  test_accuracy  test_loss\n")
    for _, h in ipairs(res.history) do
      w:write(("%5d  %13.4f  %9.4f\n"):format(h.round, h.test_accuracy or 0, h.test_loss or 0))
    end
  end
  if res.model_cid then w:write("model_cid      ", res.model_cid, "\n") end
  if res.test_accuracy then w:write(("test_accuracy  %.4f\n"):format(res.test_accuracy)) end
  if res.registry then
    local r = res.registry
    w:write("registry       ", r.name, "@", r.version, " -> ", r.model_cid,
      r.existing and " (already registered)" or "", "\n")
  end
  if not (res.dataset_cid or res.model_cid) then w:write(util.to_json(res), "\n") end
end

local function summary_line(sum)
  if not sum then return end
  local counts, names = {}, {}
  for _, st in pairs(sum.steps) do
    if not counts[st.status] then names[#names + 1] = st.status end
    counts[st.status] = (counts[st.status] or 0) + 1
  end
  table.sort(names)
  local parts = {}
  for _, n in ipairs(names) do parts[#parts + 1] = counts[n] .. " " .. n end
  runtime.log("run %s %s in %.3fs (%s)  record=%s", sum.id, sum.status, sum.duration,
    table.concat(parts, ", "), tostring(sum.record_cid))
end

--- `ipkrun run RECIPE.lua --help`: the recipe's params, types and defaults.
function M.help(argv)
  local path
  for _, a in ipairs(argv) do if a:match("%.lua$") then path = a end end
  if not path then return "" end
  local ok, r = pcall(function() return assert(runner.load(path)) end)
  if not ok or type(r) ~= "table" or not r.params then return "\n(cannot load " .. path .. ")\n" end
  local names = {}
  for k in pairs(r.params) do names[#names + 1] = k end
  table.sort(names)
  local out = { "\nparams of " .. (r.name or path) .. " (--param k=v):" }
  for _, k in ipairs(names) do
    local p = r.params[k]
    out[#out + 1] = ("  %-10s %-8s default %-36s %s"):format(k, p.type or "", tostring(p.default), p.doc or "")
  end
  return table.concat(out, "\n") .. "\n"
end

function M.run(argv)
  local opts, pos = util.parse(argv, { param = { kind = "value", multi = true }, json = { kind = "bool" },
    force = { kind = "value", multi = true }, ["no-cache"] = { kind = "bool", key = "no_cache" },
    resume = { kind = "value" }, quiet = { kind = "bool", short = "q" } })
  if not opts then return util.usage_error("run", pos) end
  local force = {}
  for _, f in ipairs(opts.force or {}) do force[f] = true end
  local ropts = { force = force, no_cache = opts.no_cache, interruptible = true, quiet = opts.quiet }
  local res, err, sum
  if opts.resume then
    if #pos > 0 or opts.param then
      return util.usage_error("run", "--resume RUN takes no recipe or params (it reuses the run's); "
        .. "to change a param, start a new run: finished steps come from the cache")
    end
    res, err, sum = runner.resume(opts.resume, ropts)
  else
    -- --param takes k=v; extra bare k=v words after a --param are accepted too.
    local path = table.remove(pos, 1)
    if not path then return util.usage_error("run", "expected a RECIPE.lua file") end
    local overrides = {}
    local kvs = opts.param or {}
    for _, p in ipairs(pos) do kvs[#kvs + 1] = p end
    for _, kv in ipairs(kvs) do
      local k, v = kv:match("^([%w_]+)=(.*)$")
      if not k then return util.usage_error("run", "--param expects k=v, got '" .. kv .. "'") end
      overrides[k] = v
    end
    res, err, sum = runner.run_file(path, overrides, ropts)
  end
  summary_line(sum)
  if not res then
    util.fail("run", tostring(err)) -- the run id is on the summary line above
    return (sum and sum.status == "cancelled") and 130 or 1
  end
  if type(res) == "table" and sum then
    res.run = { id = sum.id, status = sum.status, record_cid = sum.record_cid, steps = sum.steps,
                duration = sum.duration }
  end
  if opts.json then util.emit_json(res) else print_human(res) end
  return 0
end

return M
