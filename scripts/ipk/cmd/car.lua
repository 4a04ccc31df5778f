--- ipkrun car: CAR archives in and out of the store (or the --api node).
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"
local car = require "ipk.car"
local cidmod = require "ipk.cid"
local core = require "ipk.core"
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
  local res
  if runtime.backend() then
    -- Remote DAG: fetched into the local cache, every block verified; the
    -- export below then walks it from the root, so a CAR that lacks blocks
    -- (or carries unrelated ones) never becomes the output.
    local got, ferr = runtime.cache():fetch_dag(pos[1])
    if not got then return util.fail("car export", ferr) end
  end
  res, err = car.export(pos[1], runtime.store():blocks(), opts.output)
  if not res then return util.fail("car export", err) end
  if opts.json then util.emit_json({ root = pos[1], path = opts.output, blocks = res.blocks, bytes = res.bytes })
  else io.stderr:write("exported ", pos[1], " (", res.blocks, " blocks) to ", opts.output, "\n") end
  return 0
end

-- Before anything is stored: every block reachable from the roots must be in
-- the file or already in the store, or the pin that follows would fail and
-- leave the file's blocks behind. Returns true or nil, msg.
local function check_complete(path, store, zero_len_eof)
  local ffi, lib = core.ffi, core.lib
  local r, msg = car.open(path, { zero_len_eof = zero_len_eof })
  if not r then return nil, msg end
  local info = r:info()
  local have, nodes = {}, {}
  local function key(c) return tostring(tonumber(c.mh.code)) .. ":" .. ffi.string(c.mh.digest, c.mh.len) end
  while true do
    local c, data = r:next()
    if not c then
      if data then r:close(); return nil, data end
      break
    end
    local cc = type(c) == "string" and assert(cidmod.parse(c)) or c
    have[key(cc)] = true
    if lib.ipk_dag_codec_links(cc.codec) ~= 0 then nodes[key(cc)] = { cc, data } end
  end
  r:close()
  local seen = {}
  local function walk(c, from)
    local k = key(c)
    if seen[k] then return true end
    seen[k] = true
    if not have[k] then
      if store:has(c) then return true end
      return nil, ("%s: the DAG is incomplete: block %s%s is neither in the file nor in the store; nothing imported")
        :format(path, cidmod.format(c), from and (" (linked from " .. from .. ")") or "")
    end
    local blk = nodes[k]
    if not blk then return true end
    -- dag.c reads the links of every codec that has them (dag-pb, dag-cbor,
    -- dag-json) and refuses codecs it cannot read, as the pin would.
    local out, nout, eb = ffi.new("ipk_cid_t*[1]"), ffi.new("size_t[1]"), core.errbuf()
    if lib.ipk_dag_links(blk[1], blk[2], #blk[2], out, nout, eb) ~= 0 then
      return nil, path .. ": block " .. cidmod.format(c) .. ": " .. ffi.string(eb.msg)
    end
    local links = {}
    for i = 0, tonumber(nout[0]) - 1 do links[#links + 1] = ffi.new("ipk_cid_t", out[0][i]) end
    lib.ipk_dag_links_free(out[0])
    for _, l in ipairs(links) do
      local ok, err = walk(l, cidmod.format(c))
      if not ok then return nil, err end
    end
    return true
  end
  for _, root in ipairs(info.roots or {}) do
    local ok, err = walk(type(root) == "string" and assert(cidmod.parse(root)) or root, nil)
    if not ok then return nil, err end
  end
  return true
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
    if pin then
      local ok, cerr = check_complete(pos[1], store, opts["zero-length-eof"])
      if not ok then return util.fail("car import", cerr) end
    end
    res, err = car.import(pos[1], { sink = store:blocks(), zero_len_eof = opts["zero-length-eof"] })
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
