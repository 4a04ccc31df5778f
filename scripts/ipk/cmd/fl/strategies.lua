--- ipkrun fl strategies: the built-in aggregation strategies with their
-- params and defaults (ipk.fl.strategy.list()).
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local strategy = require "ipk.fl.strategy"

local M = {}

M.usage = "fl strategies [--json]"
M.summary = "list the aggregation strategies with their params and defaults"

-- The shortest text that reads back as the same double (0.1, not 0.10000000000000001).
local function show(v)
  if type(v) == "string" then return v end
  for digits = 1, 17 do
    local s = ("%." .. digits .. "g"):format(v)
    if tonumber(s) == v then return s end
  end
end

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" } })
  if not opts then return util.usage_error("fl strategies", pos) end
  if #pos > 0 then return util.usage_error("fl strategies", "takes no arguments, got '" .. pos[1] .. "'") end
  local list = strategy.list()
  if opts.json then
    local out = {}
    for i, s in ipairs(list) do
      local params = {}
      for j, p in ipairs(s.params) do params[j] = { name = p.name, default = p.default, doc = p.doc } end
      out[i] = { name = s.name, summary = s.summary, flower = s.flower, final = s.final,
        needs_global = s.needs_global, params = json.array(params) }
    end
    util.emit_json({ strategies = json.array(out) })
    return 0
  end
  local lines, sampling = {}, {}
  for _, p in ipairs(strategy.SAMPLING) do sampling[p.name] = true end
  for _, s in ipairs(list) do
    lines[#lines + 1] = s.name .. (s.flower and ("  (" .. s.flower .. ")") or "")
    lines[#lines + 1] = "    " .. s.summary .. (s.needs_global and "; needs --global" or "")
    for _, p in ipairs(s.params) do
      if not sampling[p.name] then
        lines[#lines + 1] = ("    --param %s=%s  %s"):format(p.name, show(p.default), p.doc or "")
      end
    end
  end
  lines[#lines + 1] = "Every strategy also takes the client sampling params of the round loop:"
  for _, p in ipairs(strategy.SAMPLING) do
    lines[#lines + 1] = ("    --param %s=%s  %s"):format(p.name, show(p.default), p.doc or "")
  end
  lines[#lines + 1] = "A Lua script path works as a strategy too (examples/custom_aggregation.lua)."
  io.stdout:write(table.concat(lines, "\n"), "\n")
  return 0
end

return M
