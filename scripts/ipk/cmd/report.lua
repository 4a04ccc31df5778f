--- ipkrun report: a run as one self-contained HTML file with SVG charts.
local util = require "ipk.cmd.util"
local report = require "ipk.report"

local M = {}

M.usage = "report RUN -o report.html [--json]"
M.summary = "write a self-contained HTML report of a run (loss/accuracy, clients, timings, lineage graph)"

function M.run(argv)
  local opts, pos = util.parse(argv, { output = { kind = "value", short = "o" }, json = { kind = "bool" } })
  if not opts then return util.usage_error("report", pos) end
  if not pos[1] then return util.usage_error("report", "expected a RUN id (see ipkrun runs)") end
  if not opts.output then return util.usage_error("report", "expected -o FILE.html") end
  local html, err = report.build(pos[1])
  if not html then return util.fail("report", err) end
  -- Write to a temp name next to the target, then rename: never a partial file.
  local tmp = opts.output .. ".tmp-" .. tostring(os.time())
  local f, ferr = io.open(tmp, "wb")
  if not f then return util.fail("report", opts.output .. ": " .. tostring(ferr):gsub("^[^:]*: ", "")) end
  f:write(html)
  f:close()
  local ok, rerr = os.rename(tmp, opts.output)
  if not ok then os.remove(tmp); return util.fail("report", opts.output .. ": " .. tostring(rerr)) end
  if opts.json then util.emit_json({ run = pos[1], output = opts.output, bytes = #html })
  else io.stdout:write("wrote ", opts.output, " (", #html, " bytes)\n") end
  return 0
end

return M
