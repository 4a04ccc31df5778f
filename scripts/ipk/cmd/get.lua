--- ipkrun get: file or directory to PATH, every block verified.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "get CID -o PATH"
M.summary = "file or directory to PATH, every block verified"

function M.run(argv)
  local opts, pos = util.parse(argv, { output = { kind = "value", short = "o" }, json = { kind = "bool" } })
  if not opts then return util.usage_error("get", pos) end
  if #pos ~= 1 then return util.usage_error("get", "expected one CID") end
  local _, err = util.parse_cid(pos[1])
  if err then return util.fail("get", err) end
  local out = opts.output or pos[1]
  -- Every block verified; with --api/--gateway the DAG arrives as one
  -- verified CAR into the local tier first.
  local ok, gerr = runtime.backend():save(pos[1], out)
  if not ok then return util.fail("get", gerr) end
  if opts.json then util.emit_json({ cid = pos[1], path = out })
  else io.stderr:write("saved ", pos[1], " to ", out, "\n") end
  return 0
end

return M
