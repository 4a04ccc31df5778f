--- ipkrun serve: run scheduled recipes when they are due.
local util = require "ipk.cmd.util"
local host = require "ipk.host"
local runner = require "ipk.run"
local runtime = require "ipk.runtime"
local schedule = require "ipk.schedule"

local M = {}

M.usage = "serve [RECIPE.lua|DIR ...] [--for SECONDS] [--json]"
M.summary = "run recipes that declare `schedule` when due (default folder: recipes); Ctrl-C stops"

function M.run(argv)
  local opts, pos = util.parse(argv, { ["for"] = { kind = "value", key = "duration" }, json = { kind = "bool" } })
  if not opts then return util.usage_error("serve", pos) end
  local duration = opts.duration and util.number(opts.duration)
  if opts.duration and (not duration or duration <= 0) then return util.usage_error("serve", "--for expects seconds > 0") end
  if #pos == 0 then pos = { "recipes" } end
  local entries, problems = schedule.discover(pos)
  for _, p in ipairs(problems) do runtime.log("serve: %s: %s", p.path, p.error) end
  if #entries == 0 then return util.fail("serve", "no recipe with a schedule in " .. table.concat(pos, ", ")) end
  for _, e in ipairs(entries) do runtime.log("serve: %s (%s) schedule %q", e.name, e.path, e.schedule) end
  local SIGINT, SIGTERM = 2, 15
  host.sig_watch(SIGINT)
  host.sig_watch(SIGTERM)
  local t_end = duration and (runner.wallclock() + duration)
  local stopped_by
  local counts = schedule.serve(entries, { stop = function()
    if host.sig_count(SIGINT) > 0 or host.sig_count(SIGTERM) > 0 then stopped_by = "signal" end
    if t_end and runner.wallclock() >= t_end then stopped_by = stopped_by or "time" end
    return stopped_by ~= nil
  end })
  host.sig_unwatch(SIGINT)
  host.sig_unwatch(SIGTERM)
  runtime.log("serve: stopped (%s): %d runs, %d failed, %d skipped", stopped_by or "done", counts.runs, counts.failed, counts.skipped)
  if opts.json then util.emit_json({ runs = counts.runs, failed = counts.failed, skipped = counts.skipped,
    stopped = stopped_by or "done" }) end
  return 0
end

return M
