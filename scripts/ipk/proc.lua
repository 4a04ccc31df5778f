--- ipk.proc: facts about processes of this machine, for state a process
-- leaves behind it (run rows marked running, staging directories).
local core = require "ipk.core"

local ffi = core.ffi
local C = ffi.C -- getpid, kill: bindings/lua/ipk/cdef/libc.lua

local M = {}

--- This process's id.
function M.pid() return C.getpid() end

--- Whether process pid is still running (a zombie, killed but not yet
-- reaped, has finished too). A pid reused by another process reads as
-- alive: callers err on the side of keeping what it may own.
function M.alive(pid)
  pid = tonumber(pid)
  if not pid or pid <= 0 or pid ~= math.floor(pid) then return false end
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if f then
    local st = f:read("*l") or ""
    f:close()
    if st:match("%) (%a)") == "Z" then return false end
  end
  if C.kill(pid, 0) == 0 then return true end
  return ffi.errno() == C.LIBC_EPERM   -- exists, not ours
end

return M
