--- ipkrun pin: pins of the store.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "pin ls [CID] [--type=recursive|direct|indirect|all] | pin add|rm CID [--json]"
M.summary = "pins of the store"

function M.run(argv)
  local sub = argv[1]
  local rest = { unpack(argv, 2) }
  local opts, pos = util.parse(rest, { json = { kind = "bool" }, recursive = { kind = "bool", short = "r" },
    type = { kind = "value", short = "t" } })
  if not opts then return util.usage_error("pin", pos) end
  -- One shape on every backend: {cid, type, name?} sorted by CID (the
  -- node's pins with --api).
  local backend = runtime.backend()
  if sub == "ls" then
    if #pos > 1 then return util.usage_error("pin ls", "expected at most one CID") end
    local pins, lerr = backend:pin_ls({ cid = pos[1], type = opts.type })
    if not pins then return util.fail("pin ls", lerr) end
    if opts.json then
      local keys = {}
      for _, p in ipairs(pins) do keys[p.cid] = { Type = p.type, Name = p.name } end
      util.emit_json({ Keys = keys })
    else
      for _, p in ipairs(pins) do io.stdout:write(p.cid, " ", p.type, p.name and (" " .. p.name) or "", "\n") end
    end
    return 0
  elseif sub == "add" or sub == "rm" then
    if #pos ~= 1 then return util.usage_error("pin " .. sub, "expected one CID") end
    local _, err = util.parse_cid(pos[1])
    if err then return util.fail("pin " .. sub, err) end
    local ok, perr
    if sub == "add" then ok, perr = backend:pin_add(pos[1], { recursive = opts.recursive ~= false })
    else ok, perr = backend:pin_rm(pos[1]) end
    if not ok then return util.fail("pin " .. sub, perr) end
    if opts.json then util.emit_json({ Pins = { pos[1] } })
    else io.stdout:write((sub == "add") and "pinned " or "unpinned ", pos[1], "\n") end
    return 0
  end
  return util.usage_error("pin", "expected ls, add or rm")
end

return M
