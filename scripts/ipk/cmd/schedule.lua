--- ipkrun schedule: list scheduled recipes.
local util = require "ipk.cmd.util"
local cron = require "ipk.cron"
local json = require "ipk.json"
local runner = require "ipk.run"
local runtime = require "ipk.runtime"
local schedule = require "ipk.schedule"

local M = {}

M.usage = "schedule ls [RECIPE.lua|DIR ...] [--json]"
M.summary = "list recipes with a schedule: cron, next due time, last run"

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" } })
  if not opts then return util.usage_error("schedule", pos) end
  local sub = table.remove(pos, 1)
  if sub ~= "ls" then return util.usage_error("schedule", "expected 'ls'") end
  if #pos == 0 then pos = { "recipes" } end
  local entries, problems = schedule.discover(pos)
  for _, p in ipairs(problems) do runtime.log("schedule: %s: %s", p.path, p.error) end
  local now = runner.wallclock()
  local out = {}
  for _, e in ipairs(entries) do
    local nxt = cron.next(e.spec, now)
    local last = runner.list_runs({ recipe = e.name, limit = 1 })[1]
    out[#out + 1] = { name = e.name, path = e.path, schedule = e.schedule,
      next = nxt and os.date("%Y-%m-%dT%H:%M:%S", nxt), last_run = last and last.id, last_status = last and last.status }
  end
  if opts.json then util.emit_json({ schedules = json.array(out) }) return 0 end
  io.stdout:write(("%-24s  %-18s  %-19s  %s\n"):format("RECIPE", "SCHEDULE", "NEXT (local)", "LAST RUN"))
  for _, e in ipairs(out) do
    io.stdout:write(("%-24s  %-18s  %-19s  %s\n"):format(e.name, e.schedule, e.next or "never",
      e.last_run and (e.last_run .. " " .. e.last_status) or "-"))
  end
  return 0
end

return M
