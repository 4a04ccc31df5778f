--- ipkrun plan: what a run would do, without running it.
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local runner = require "ipk.run"

local M = {}

M.usage = "plan RECIPE.lua [--param k=v ...] [--force STEP ...] [--no-cache] [--json]"
M.summary = "list each step as cached or to run, and why (which param or input changed)"

function M.run(argv)
  local opts, pos = util.parse(argv, { param = { kind = "value", multi = true }, json = { kind = "bool" },
    force = { kind = "value", multi = true }, ["no-cache"] = { kind = "bool", key = "no_cache" } })
  if not opts then return util.usage_error("plan", pos) end
  local path = table.remove(pos, 1)
  if not path then return util.usage_error("plan", "expected a RECIPE.lua file") end
  local overrides = {}
  local kvs = opts.param or {}
  for _, p in ipairs(pos) do kvs[#kvs + 1] = p end
  for _, kv in ipairs(kvs) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then return util.usage_error("plan", "--param expects k=v, got '" .. kv .. "'") end
    overrides[k] = v
  end
  local force = {}
  for _, f in ipairs(opts.force or {}) do force[f] = true end
  local plan, err = runner.plan(path, overrides, { force = force, no_cache = opts.no_cache })
  if not plan then return util.fail("plan", err) end
  if opts.json then
    for _, s in ipairs(plan.steps) do s.why = json.array(s.why); s.deps = json.array(s.deps) end
    plan.steps = json.array(plan.steps)
    util.emit_json(plan)
    return 0
  end
  local nrun = 0
  for _, s in ipairs(plan.steps) do
    if s.status == "run" then nrun = nrun + 1 end
    io.stdout:write(("%-7s %-16s %-16s %s\n"):format(s.status == "cached" and "cached" or "run", s.step, s.kind,
      s.status == "cached" and s.output_cid or table.concat(s.why, "; ")))
  end
  io.stdout:write(("%d of %d steps to run%s\n"):format(nrun, #plan.steps,
    plan.previous_run and (" (compared with run " .. plan.previous_run .. ")") or ""))
  return 0
end

return M
