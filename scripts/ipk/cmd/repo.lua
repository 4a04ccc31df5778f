--- ipkrun repo: the local store itself (Kubo's `ipfs repo`): verify every
-- block and pin, show its size, set compression at rest.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"
local json = require "ipk.json"

local M = {}

M.usage = "repo verify [--json] | repo stat [--json] | repo compression [none|zstd|zstd:LEVEL]"
M.summary = "verify every block and pin, show store size, set zstd compression at rest"

local function verify(opts)
  local r, err = runtime.store():verify()
  if not r then return util.fail("repo verify", err) end
  local ok = r.bad_blocks == 0 and r.bad_pins == 0
  if opts.json then
    local blocks, pins = {}, {}
    for _, b in ipairs(r.bad) do
      local list = b.kind == "pin" and pins or blocks
      list[#list + 1] = { cid = b.cid, error = b.why }
    end
    util.emit_json({ ok = ok, blocks = r.blocks, bad_blocks = r.bad_blocks, pins = r.pins,
                     bad_pins = r.bad_pins, bad_block_list = json.array(blocks), bad_pin_list = json.array(pins) })
  else
    local w = io.stdout
    for _, b in ipairs(r.bad) do w:write(("bad %s %s: %s\n"):format(b.kind, b.cid, b.why)) end
    w:write(("verified %d blocks (%d bad) and %d pins (%d bad)\n"):format(r.blocks, r.bad_blocks, r.pins, r.bad_pins))
    w:write(ok and "repo is ok\n" or "REPO HAS PROBLEMS\n")
  end
  return ok and 0 or 1
end

local function stat(opts)
  local s = runtime.store()
  local r, err = s:stat()
  if not r then return util.fail("repo stat", err) end
  r.compression = s:compression()
  r.home = s.home
  if opts.json then
    util.emit_json(r)
  else
    local w = io.stdout
    w:write(("home          %s\n"):format(r.home))
    w:write(("blocks        %d (%d bytes)\n"):format(r.blocks, r.bytes))
    w:write(("stored        %d bytes%s\n"):format(r.stored_bytes,
      r.bytes > 0 and ("  (%.3f of the block bytes)"):format(r.stored_bytes / r.bytes) or ""))
    w:write(("packs         %d (%d bytes)\n"):format(r.packs, r.pack_bytes))
    if r.legacy_blocks > 0 then
      w:write(("old layout    %d files (%d bytes; gc moves the pinned ones into packs)\n"):format(r.legacy_blocks, r.legacy_bytes))
    end
    w:write(("compression   %s\n"):format(r.compression))
  end
  return 0
end

local function compression(pos, opts)
  local s = runtime.store()
  if pos[2] then
    local ok, err = s:set_compression(pos[2])
    if not ok then return util.usage_error("repo compression", err) end
  end
  local c = s:compression()
  if opts.json then util.emit_json({ compression = c }) else io.stdout:write(c, "\n") end
  return 0
end

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" } })
  if not opts then return util.usage_error("repo", pos) end
  if runtime.backend().kind ~= "embedded" then
    return util.usage_error("repo", "works on the local store; --api/--gateway are not supported here")
  end
  local sub = pos[1]
  if sub == "verify" and #pos == 1 then return verify(opts) end
  if sub == "stat" and #pos == 1 then return stat(opts) end
  if sub == "compression" and #pos <= 2 then return compression(pos, opts) end
  return util.usage_error("repo", "expected: " .. M.usage)
end

return M
