--- ipkrun pin: pins of the store.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "pin ls|add|rm [CID] [--json]"
M.summary = "pins of the store"

function M.run(argv)
  local sub = argv[1]
  local rest = { unpack(argv, 2) }
  local opts, pos = util.parse(rest, { json = { kind = "bool" }, recursive = { kind = "bool", short = "r" } })
  if not opts then return util.usage_error("pin", pos) end
  local backend = runtime.backend()
  if backend and (sub == "ls" or sub == "add" or sub == "rm") then
    -- --api: the node's pins.
    if sub == "ls" then
      local pins, lerr = backend:pin_ls({ type = "recursive" })
      if not pins then return util.fail("pin ls", lerr) end
      local keys, list = {}, {}
      for c, t in pairs(pins) do keys[c] = { Type = t }; list[#list + 1] = c end
      table.sort(list)
      if opts.json then util.emit_json({ Keys = keys })
      else for _, c in ipairs(list) do io.stdout:write(c, " ", pins[c], "\n") end end
      return 0
    end
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
  local store = runtime.store()
  if sub == "ls" then
    local pins = store:pin_ls()
    if opts.json then
      local keys = {}
      for _, p in ipairs(pins) do keys[p.cid] = { Type = p.type, Name = p.name } end
      util.emit_json({ Keys = keys })
    else
      for _, p in ipairs(pins) do io.stdout:write(p.cid, " ", p.type, (p.name and p.name ~= "") and (" " .. p.name) or "", "\n") end
    end
    return 0
  elseif sub == "add" or sub == "rm" then
    if #pos ~= 1 then return util.usage_error("pin " .. sub, "expected one CID") end
    local _, err = util.parse_cid(pos[1])
    if err then return util.fail("pin " .. sub, err) end
    local ok, perr
    if sub == "add" then ok, perr = store:pin_add(pos[1], { recursive = opts.recursive ~= false })
    else ok, perr = store:pin_rm(pos[1]) end
    if not ok then return util.fail("pin " .. sub, perr) end
    if opts.json then util.emit_json({ Pins = { pos[1] } })
    else io.stdout:write((sub == "add") and "pinned " or "unpinned ", pos[1], "\n") end
    return 0
  end
  return util.usage_error("pin", "expected ls, add or rm")
end

return M
