--- ipk.runtime: process-wide state: $IPK_HOME, the open store, logging.
-- Logging goes to stderr (stdout carries results: one JSON object with --json).
local M = {}

local store_obj

--- The store home ($IPK_HOME, else the XDG data dir).
function M.home()
  local h = os.getenv("IPK_HOME")
  if h and h ~= "" then return h end
  local x = os.getenv("XDG_DATA_HOME")
  if x and x ~= "" then return x .. "/ipk" end
  return (os.getenv("HOME") or "/root") .. "/.local/share/ipk"
end

--- The embedded store, opened once (raises with a clear message on failure).
function M.store()
  if store_obj then return store_obj end
  local s, err = require("ipk.store").open(M.home())
  if not s then error("store: " .. tostring(err), 0) end
  store_obj = s
  return s
end

M.quiet = false

--- Progress/log line on stderr.
function M.log(fmt, ...)
  if M.quiet then return end
  io.stderr:write(string.format(fmt, ...), "\n")
  io.stderr:flush()
end

return M
