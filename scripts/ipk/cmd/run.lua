--- ipkrun run: run a recipe (`ipkrun RECIPE.lua` for short).
local util = require "ipk.cmd.util"

local M = {}

M.usage = "run RECIPE.lua [--param k=v ...] [--json]"
M.summary = "run a recipe (`ipkrun RECIPE.lua` for short)"

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
  if not (res.dataset_cid or res.model_cid) then w:write(require("ipk.json").encode(res), "\n") end
end

function M.run(argv)
  local opts, pos = util.parse(argv, { param = { kind = "value", multi = true }, json = { kind = "bool" } })
  if not opts then return util.usage_error("run", pos) end
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
  local res, err = require("ipk.runner").run_file(path, overrides)
  if not res then return util.fail("run", err) end
  if opts.json then util.emit_json(res) else print_human(res) end
  return 0
end

return M
