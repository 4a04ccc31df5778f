--- ipkrun car: CAR archives in and out of the store (or the --api node).
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "car export CID -o FILE | car import [--pin-roots=false] [--zero-length-eof] FILE | car ls FILE"
M.summary = "export a DAG as a CARv1, import a CAR (v1/v2, every block verified), list a CAR"

local function export(argv)
  local opts, pos = util.parse(argv, { output = { kind = "value", short = "o" }, json = { kind = "bool" } })
  if not opts then return util.usage_error("car export", pos) end
  if #pos ~= 1 or not opts.output then return util.usage_error("car export", "expected CID -o FILE") end
  local _, err = util.parse_cid(pos[1])
  if err then return util.fail("car export", err) end
  local backend = runtime.backend()
  local res
  if backend then
    res, err = backend:dag_export(pos[1], opts.output)
  else
    res, err = require("ipk.car").export(pos[1], runtime.store():blocks(), opts.output)
  end
  if not res then return util.fail("car export", err) end
  if opts.json then util.emit_json({ root = pos[1], path = opts.output, blocks = res.blocks, bytes = res.bytes })
  else io.stderr:write("exported ", pos[1], " (", res.blocks, " blocks) to ", opts.output, "\n") end
  return 0
end

local function import(argv)
  local opts, pos = util.parse(argv, { ["pin-roots"] = { kind = "bool" }, ["zero-length-eof"] = { kind = "bool" },
    json = { kind = "bool" } })
  if not opts then return util.usage_error("car import", pos) end
  if #pos ~= 1 then return util.usage_error("car import", "expected one FILE") end
  local pin = opts["pin-roots"] ~= false
  local backend = runtime.backend()
  local res, err
  if backend then
    res, err = backend:dag_import(pos[1], { pin_roots = pin, zero_len_eof = opts["zero-length-eof"] })
    if not res then return util.fail("car import", err) end
  else
    local store = runtime.store()
    res, err = require("ipk.car").import(pos[1], { sink = store:blocks(), zero_len_eof = opts["zero-length-eof"] })
    if not res then return util.fail("car import", err) end
    if pin then
      for _, r in ipairs(res.roots) do
        local ok, perr = store:pin_add(r, { recursive = true, name = "car:" .. pos[1]:gsub(".*/", "") })
        if not ok then
          return util.fail("car import", "imported " .. res.blocks .. " blocks but pinning root " .. r
            .. " failed: " .. tostring(perr))
        end
      end
    end
  end
  if opts.json then
    util.emit_json({ roots = require("ipk.json").array(res.roots), blocks = res.blocks, bytes = res.bytes, pinned = pin })
  else
    for _, r in ipairs(res.roots) do io.stdout:write(pin and "pinned root " or "root ", r, "\n") end
    io.stderr:write("imported ", res.blocks, " blocks (", res.bytes, " bytes)\n")
  end
  return 0
end

local function ls(argv)
  local opts, pos = util.parse(argv, { ["zero-length-eof"] = { kind = "bool" }, json = { kind = "bool" } })
  if not opts then return util.usage_error("car ls", pos) end
  if #pos ~= 1 then return util.usage_error("car ls", "expected one FILE") end
  local res, err = require("ipk.car").list(pos[1], { zero_len_eof = opts["zero-length-eof"] })
  if not res then return util.fail("car ls", err) end
  if opts.json then
    local json = require "ipk.json"
    res.roots = json.array(res.roots)
    res.blocks = json.array(res.blocks)
    util.emit_json(res)
  else
    for _, r in ipairs(res.roots) do io.stdout:write("root ", r, "\n") end
    for _, b in ipairs(res.blocks) do io.stdout:write(b.cid, " ", b.size, "\n") end
  end
  return 0
end

function M.run(argv)
  local sub = argv[1]
  local rest = { unpack(argv, 2) }
  if sub == "export" then return export(rest) end
  if sub == "import" then return import(rest) end
  if sub == "ls" then return ls(rest) end
  return util.usage_error("car", "expected export, import or ls")
end

return M
