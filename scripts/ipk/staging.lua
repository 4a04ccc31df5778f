--- ipk.staging: scratch directories under $IPK_HOME/staging (model entries
-- being assembled, dataset versions materialized for shard/split/verify).
-- A command that fails, raises or is interrupted leaves none behind:
--  * with() removes its directory however the function ends (a returned
--    error, a raised one, a cancellation) and re-raises;
--  * every directory is named KIND.PID.XXXXXX after the process that made
--    it, and new() first removes those whose process is gone (killed with
--    SIGKILL, a crash, a power cut): the next command cleans up.
local runtime = require "ipk.runtime"
local fs = require "ipk.fs"
local proc = require "ipk.proc"

local type, error, pcall, select, unpack, tostring = type, error, pcall, select, unpack, tostring

local M = {}

local function pack(...) return { n = select("#", ...), ... } end

local function base() return runtime.home() .. "/staging" end

-- The owner pid of a staging entry name, or nil for a name this module did
-- not make (left alone).
local function owner(name)
  local pid = name:match("^%l+%.(%d+)%.[%w]+$")
  return tonumber(pid)
end

--- Remove staging directories whose process has ended.
-- @return number removed
function M.sweep()
  local list = fs.walk(base(), { depth = 1 })
  local n = 0
  for _, e in ipairs(list or {}) do
    local pid = owner(e.path)
    if pid and pid ~= proc.pid() and not proc.alive(pid) then
      if fs.rm_rf(base() .. "/" .. e.path) then n = n + 1 end
    end
  end
  return n
end

--- A new directory $IPK_HOME/staging/KIND.PID.XXXXXX (mode 0700).
-- @param kind lower-case letters ("reg", "ds")
-- @return path | nil, msg
function M.new(kind)
  if type(kind) ~= "string" or not kind:match("^%l+$") then error("staging.new: kind of lower-case letters expected", 2) end
  M.sweep()
  local d, err, name = fs.mkdtemp(base(), kind .. "." .. proc.pid() .. ".")
  if not d then return nil, "cannot create a staging directory under " .. base() .. ": " .. tostring(err), name or "EIO" end
  return d
end

--- Remove a directory made by new (anything else is left alone).
function M.remove(d)
  if type(d) == "string" and d:sub(1, #base() + 1) == base() .. "/" and owner(d:sub(#base() + 2)) then
    return fs.rm_rf(d)
  end
  return nil
end

--- Run fn(dir, ...) in a new staging directory and remove it afterwards,
-- whatever happens; fn's results are returned, its error re-raised.
-- @return fn's results | nil, msg (no directory could be made)
function M.with(kind, fn, ...)
  local d, err, name = M.new(kind)
  if not d then return nil, err, name end
  local r = pack(pcall(fn, d, ...))
  M.remove(d)
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

return M
