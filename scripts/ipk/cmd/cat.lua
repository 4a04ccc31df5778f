--- ipkrun cat: file bytes to stdout, every block verified.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "cat [--offset=N] [--length=N] CID"
M.summary = "file bytes to stdout, every block verified"

function M.run(argv)
  local opts, pos = util.parse(argv, { offset = { kind = "value" }, length = { kind = "value" } })
  if not opts then return util.usage_error("cat", pos) end
  if #pos ~= 1 then return util.usage_error("cat", "expected one CID") end
  local offset, length = util.number(opts.offset, { integer = true }), util.number(opts.length, { integer = true })
  if (opts.offset and (not offset or offset < 0)) or (opts.length and (not length or length < 0)) then
    return util.usage_error("cat", "--offset and --length take byte counts >= 0")
  end
  local _, err = util.parse_cid(pos[1])
  if err then return util.fail("cat", err) end
  io.stdout:flush()
  -- Nothing unverified reaches stdout: with --api/--gateway the DAG comes
  -- as a CAR, every block verified, into the local tier (the tiered cache:
  -- hits and misses show in `stats`), then the local verified cat.
  local ok, cerr = runtime.backend():cat(pos[1], (offset or length) and io.stdout or 1,
    { offset = offset, length = length })
  if not ok then return util.fail("cat", cerr) end
  return 0
end

return M
