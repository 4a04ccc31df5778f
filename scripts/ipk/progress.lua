--- ipk.progress: per-step progress on stderr. On a TTY, one bar per step,
-- redrawn in place; in a pipe, one plain line per state change (and per
-- logged line), so logs stay greppable. stdout is never touched.
local core = require "ipk.core"

local M = {}

--- Whether fd 2 is a terminal (isatty: bindings/lua/ipk/cdef/libc.lua).
function M.stderr_is_tty()
  return core.ffi.C.isatty(2) == 1
end

local P = {}
P.__index = P

--- A display for the steps in `order`. opts {tty=bool, quiet=bool}
function M.new(order, opts)
  opts = opts or {}
  local tty = opts.tty
  if tty == nil then tty = M.stderr_is_tty() and os.getenv("TERM") ~= "dumb" end
  local self = setmetatable({ order = order, rows = {}, tty = tty, quiet = opts.quiet, drawn = 0 }, P)
  for _, n in ipairs(order) do self.rows[n] = { state = "waiting", done = 0, total = 0, note = "" } end
  return self
end

local function bar(done, total, width)
  if total <= 0 then return string.rep(" ", width) end
  local f = math.floor(width * math.min(done, total) / total + 0.5)
  return string.rep("#", f) .. string.rep(".", width - f)
end

function P:draw()
  if self.quiet or not self.tty then return end
  local out = {}
  if self.drawn > 0 then out[#out + 1] = ("\27[%dA"):format(self.drawn) end
  local w = 0
  for _, n in ipairs(self.order) do w = math.max(w, #n) end
  for _, n in ipairs(self.order) do
    local r = self.rows[n]
    local pct = r.total > 0 and ("%3d%%"):format(math.floor(100 * r.done / r.total)) or "    "
    out[#out + 1] = ("\27[2K%-" .. w .. "s [%s] %s %-9s %s\n"):format(n, bar(r.done, r.total, 24), pct, r.state,
      r.note:sub(1, 60))
  end
  self.drawn = #self.order
  io.stderr:write(table.concat(out))
  io.stderr:flush()
end

--- Step `name` changed state ("running", "cached", "ok", "failed", ...).
function P:state(name, state, note)
  local r = self.rows[name]
  r.state, r.note = state, note or r.note
  if state == "ok" or state == "cached" then r.done = math.max(r.total, 1); r.total = math.max(r.total, 1) end
  if self.quiet then return end
  if self.tty then self:draw() else
    io.stderr:write(("step %s: %s%s\n"):format(name, state, note and note ~= "" and ("  " .. note) or ""))
    io.stderr:flush()
  end
end

--- Step `name` did done of total units.
function P:update(name, done, total)
  local r = self.rows[name]
  r.done, r.total = done, total
  self:draw()
end

--- A log line of step `name`: in a pipe printed as is; on a TTY shown as the
-- step's note (the full text is kept in the run's logs).
function P:log(name, line)
  if self.quiet then return end
  if self.tty then
    if name and self.rows[name] then self.rows[name].note = line end
    self:draw()
  else
    io.stderr:write(name and (name .. ": ") or "", line, "\n")
    io.stderr:flush()
  end
end

return M
