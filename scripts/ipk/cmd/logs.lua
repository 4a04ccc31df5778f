--- ipkrun logs: the log lines a run's steps wrote.
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local runner = require "ipk.run"

local M = {}

M.usage = "logs RUN [STEP] [--json]"
M.summary = "print the per-step logs kept with a run"

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" } })
  if not opts then return util.usage_error("logs", pos) end
  if not pos[1] then return util.usage_error("logs", "expected a RUN id (see ipkrun runs)") end
  local run, err = runner.get_run(pos[1])
  if not run then return util.fail("logs", err) end
  local step = pos[2]
  if step then
    local found = false
    for _, s in ipairs(runner.run_steps(run.id)) do if s.step == step then found = true end end
    if not found then return util.fail("logs", "run " .. run.id .. " has no step '" .. step .. "'") end
  end
  local rows = runner.logs(run.id, step)
  if opts.json then
    util.emit_json({ run = run.id, step = step, lines = json.array(rows) })
    return 0
  end
  for _, l in ipairs(rows) do
    if step then io.stdout:write(l.line, "\n")
    else io.stdout:write(l.step or "-", ": ", l.line, "\n") end
  end
  return 0
end

return M
