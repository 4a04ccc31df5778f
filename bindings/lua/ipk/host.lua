--- ipk.host: what the ipkrun host adds to the core (bindings/host): counting
-- signal handlers, the memory cap and the preemption flag. These are functions of the ipkrun
-- executable (exported with -rdynamic), not of libipk: under a plain LuaJIT
-- with libipk.so (busted specs) M.available is false, no handler can be
-- installed (watch returns nil, msg, "EUNSUPP"; count is 0) and there is no
-- cap (memory_cap() is 0; set_memory_cap refuses).
local ffi = require "ffi"
local core = require "ipk.core"   -- declares cdef/host.lua

local M = {}

local C = ffi.C
M.available = pcall(function() return C.ipk_memcap_get end)
  and pcall(function() return C.ipk_sig_watch end)

local u64 = ffi.new("uint64_t[1]")
local NO_HOST = "not running inside ipkrun (no host signal handler or memory cap)"

--- Count deliveries of signo (SIGINT = 2, SIGTERM = 15) from now on.
-- @return true | nil, msg, name
function M.sig_watch(signo)
  if not M.available then return nil, NO_HOST, "EUNSUPP" end
  C.ipk_sig_reset(signo)
  return core.check(C.ipk_sig_watch(signo), nil, "signal " .. signo)
end

--- Deliveries of signo since sig_watch (0 when not watched).
function M.sig_count(signo)
  if not M.available then return 0 end
  return C.ipk_sig_count(signo)
end

--- Restore signo's default action.
function M.sig_unwatch(signo)
  if not M.available then return true end
  return core.check(C.ipk_sig_unwatch(signo), nil, "signal " .. signo)
end

--- Parse a size ("2G", "512M", "50%", "off"); returns bytes (0 = no cap)
-- or nil, msg, "EINVAL".
function M.parse_size(s)
  if not M.available then return nil, NO_HOST, "EUNSUPP" end
  if type(s) ~= "string" or C.ipk_memcap_parse(s, u64) ~= 0 then
    return nil, "'" .. tostring(s) .. "' is not a size (e.g. 2G, 512M, 50%, off)", "EINVAL"
  end
  return tonumber(u64[0])
end

--- Set the memory cap in bytes (0 = none); see bindings/host/memcap.h.
function M.set_memory_cap(bytes)
  if not M.available then return nil, NO_HOST, "EUNSUPP" end
  return core.check(C.ipk_memcap_set(bytes), nil, "memory cap")
end

--- The memory cap in bytes (0 = none).
function M.memory_cap()
  if not M.available then return 0 end
  return tonumber(C.ipk_memcap_get())
end

--- Lua heap bytes now and at most.
function M.lua_bytes()
  if not M.available then return collectgarbage("count") * 1024 end
  return tonumber(C.ipk_memcap_lua_bytes()), tonumber(C.ipk_memcap_lua_peak())
end

--- Allocations refused so far (monotonic; 0 without a host).
function M.refused()
  if not M.available then return 0 end
  return tonumber(C.ipk_memcap_refused())
end

--- Step code runs (true) or not: the Lua heap limit is the cap, or the cap
-- plus headroom (memcap.h). No-op without a host.
function M.in_step(on)
  if M.available then C.ipk_memcap_in_step(on and 1 or 0) end
end

-- Without a host nothing raises the flag: a plain cell polls as "no".
local pflag = M.available and C.ipk_preempt_flag() or ffi.new("int32_t[1]")

--- The preemption flag (bindings/host/preempt.h): a volatile int32_t*
-- (read it with M.preempt_pending in loops; the Lua thread lowers it).
function M.preempt_flag() return pflag end

--- The flag's value: a C call, which a compiled loop cannot hoist (a load
-- through the pointer it would). Without a host, the value of the plain
-- int32_t flag above (only Lua raises it there: specs of the poll).
M.preempt_pending = M.available and C.ipk_preempt_pending or function() return pflag[0] end

--- Raise the flag when core.now() reaches `at` seconds (nil: no deadline).
-- Rounded up and 1 us late, so that when the watchdog fires, core.now() of
-- the poll (a double of the same clock) is already >= at and the poll
-- finds the reason; rounded down, it could fire a few ns early and the poll
-- would find none.
function M.preempt_deadline(at)
  if not M.available then return end
  C.ipk_preempt_deadline(at and math.max(1, math.ceil(at * 1e9) + 1000) or 0)
end

--- "2.0 GiB" for a byte count.
function M.format_size(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do n = n / 1024; i = i + 1 end
  return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

return M
