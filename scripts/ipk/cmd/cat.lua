--- ipkrun cat: file bytes to stdout, every block verified.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "cat CID"
M.summary = "file bytes to stdout, every block verified"

function M.run(argv)
  local opts, pos = util.parse(argv, {})
  if not opts then return util.usage_error("cat", pos) end
  if #pos ~= 1 then return util.usage_error("cat", "expected one CID") end
  local _, err = util.parse_cid(pos[1])
  if err then return util.fail("cat", err) end
  io.stdout:flush()
  local ok, cerr = require("ipk.unixfs").cat(pos[1], runtime.store():blocks(), 1)
  if not ok then return util.fail("cat", cerr) end
  return 0
end

return M
