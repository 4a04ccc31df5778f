--- ipkrun gc: remove blocks no pin reaches.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "gc [--json]"
M.summary = "remove blocks no pin reaches"

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" } })
  if not opts then return util.usage_error("gc", pos) end
  local r, err = runtime.backend():gc()
  if not r then return util.fail("gc", err) end
  if opts.json then util.emit_json(r)
  elseif r.bytes then io.stdout:write(("removed %d blocks (%d bytes)\n"):format(r.removed, r.bytes))
  else io.stdout:write(("removed %d blocks\n"):format(r.removed)) end
  return 0
end

return M
