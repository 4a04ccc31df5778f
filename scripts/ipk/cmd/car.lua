--- ipkrun car: CAR archives in and out of the store (or the --api node).
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"
local car = require "ipk.car"
local json = require "ipk.json"

local M = {}

M.usage = "car export CID -o FILE | car import [--pin-roots=false] [--zero-length-eof] FILE | car ls FILE"
M.summary = "export a DAG as a CARv1, import a CAR (v1/v2, every block verified), list a CAR"

local function export(argv)
  local opts, pos = util.parse(argv, { output = { kind = "value", short = "o" }, json = { kind = "bool" } })
  if not opts then return util.usage_error("car export", pos) end
  if #pos ~= 1 or not opts.output then return util.usage_error("car export", "expected CID -o FILE") end
  local _, err = util.parse_cid(pos[1])
  if err then return util.fail("car export", err) end
  -- Never overwrite (as get): a CAR is often the only copy being made.
  local f = io.open(opts.output, "rb")
  if f then
    f:close()
    return util.fail("car export", opts.output .. ": already exists (remove it or choose another -o)")
  end
  -- Every block verified; a remote DAG arrives in the local tier first.
  local res
  res, err = runtime.backend():export_dag(pos[1], opts.output)
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
  -- Every block verified before anything is kept; with pinning, a DAG the
  -- file does not complete is refused before anything is stored.
  local res, err = runtime.backend():import_car(pos[1], { pin_roots = pin, zero_len_eof = opts["zero-length-eof"],
    name = "car:" .. pos[1]:gsub(".*/", "") })
  if not res then return util.fail("car import", err) end
  if opts.json then
    -- pinned: whether a pin now protects the import (a CAR without roots pins nothing).
    util.emit_json({ roots = json.array(res.roots), blocks = res.blocks, bytes = res.bytes,
      pinned = pin and #res.roots > 0 })
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
  local res, err = car.list(pos[1], { zero_len_eof = opts["zero-length-eof"] })
  if not res then return util.fail("car ls", err) end
  if opts.json then
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
