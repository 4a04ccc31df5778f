--- ipkrun runs: list recorded recipe runs, newest first.
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local runner = require "ipk.run"

local M = {}

M.usage = "runs [--recipe NAME] [--limit N] [--json]"
M.summary = "list recipe runs (id, recipe, params, status, start, duration), newest first"

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" }, recipe = { kind = "value" },
    limit = { kind = "value", short = "n" } })
  if not opts then return util.usage_error("runs", pos) end
  if #pos > 0 then return util.usage_error("runs", "unexpected argument '" .. pos[1] .. "'") end
  local limit = opts.limit and util.number(opts.limit, { integer = true })
  if opts.limit and (not limit or limit < 1) then return util.usage_error("runs", "--limit expects a positive integer") end
  local rows = runner.list_runs { recipe = opts.recipe, limit = limit }
  if opts.json then
    local out = {}
    for i, r in ipairs(rows) do
      out[i] = { id = r.id, recipe = r.recipe, recipe_path = r.recipe_path, recipe_cid = r.recipe_cid,
        params = r.params, status = r.status, start = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(r.started)),
        started = r.started, duration = r.duration, record_cid = r.record_cid, error = r.error,
        resumed_from = r.resumed_from }
    end
    util.emit_json({ runs = json.array(out) })
    return 0
  end
  io.stdout:write(("%-22s  %-24s  %-9s  %-20s  %9s  %s\n"):format("ID", "RECIPE", "STATUS", "START (UTC)", "DURATION", "PARAMS"))
  for _, r in ipairs(rows) do
    local keys, ps = {}, {}
    for k in pairs(r.params) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do ps[#ps + 1] = k .. "=" .. tostring(r.params[k]) end
    io.stdout:write(("%-22s  %-24s  %-9s  %-20s  %8.3fs  %s\n"):format(r.id, r.recipe, r.status,
      os.date("!%Y-%m-%d %H:%M:%S", math.floor(r.started)), r.duration or 0, table.concat(ps, " ")))
  end
  return 0
end

return M
