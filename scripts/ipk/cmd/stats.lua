--- ipkrun stats: the tiered cache's hit and miss counts.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"
local cache = require "ipk.backend.cache"

local M = {}

M.usage = "stats [--json]"
M.summary = "cache hits and misses of remote reads (--api / --gateway)"

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" } })
  if not opts then return util.usage_error("stats", pos) end
  if #pos ~= 0 then return util.usage_error("stats", "takes no arguments") end
  local s = cache.stats(runtime.store())
  local lookups = s.mem_hits + s.store_hits + s.misses
  s.hit_ratio = lookups > 0 and (s.mem_hits + s.store_hits) / lookups or 0
  if opts.json then util.emit_json({ cache = s }) return 0 end
  for _, k in ipairs(cache.COUNTERS) do io.stdout:write(("%-15s %d\n"):format(k, s[k])) end
  io.stdout:write(("%-15s %.3f\n"):format("hit_ratio", s.hit_ratio))
  return 0
end

return M
