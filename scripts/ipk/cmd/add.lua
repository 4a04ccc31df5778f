--- ipkrun add: import files like `ipfs add`, same CIDs.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"

local M = {}

M.usage = "add [-r] [-H] [-Q] [-q] [-n] [--cid-version=0|1] [--raw-leaves[=true|false]] [--hash=NAME]\n"
  .. "      [--chunker=size-N] [--profile=unixfs-v0-2015|unixfs-v1-2025] [--pin=false] PATH"
M.summary = "import files like `ipfs add`, same CIDs"

function M.run(argv)
  local opts, pos = util.parse(argv, {
    recursive = { kind = "bool", short = "r" }, quieter = { kind = "bool", short = "Q" },
    quiet = { kind = "bool", short = "q" }, ["only-hash"] = { kind = "bool", short = "n" },
    ["cid-version"] = { kind = "value" }, ["raw-leaves"] = { kind = "bool" },
    chunker = { kind = "value" }, profile = { kind = "value" }, pin = { kind = "bool" },
    json = { kind = "bool" }, ["max-file-links"] = { kind = "value" },
    hidden = { kind = "bool", short = "H" }, hash = { kind = "value" },
  })
  if not opts then return util.usage_error("add", pos) end
  if #pos ~= 1 then return util.usage_error("add", "expected exactly one PATH (see ipkrun --help)") end
  local o = { recursive = opts.recursive, profile = opts.profile, chunker = opts.chunker,
              raw_leaves = opts["raw-leaves"], max_links = tonumber(opts["max-file-links"]),
              hidden = opts.hidden, hash = opts.hash }   -- hash: a multihash name, as Kubo's --hash
  if opts["cid-version"] then
    local v = tonumber(opts["cid-version"])
    if v ~= 0 and v ~= 1 then return util.usage_error("add", "--cid-version must be 0 or 1, got '" .. opts["cid-version"] .. "'") end
    o.cid_version = v
  end
  if opts["max-file-links"] and not o.max_links then
    return util.usage_error("add", "--max-file-links must be a number")
  end
  -- The backend imports locally (same CIDs everywhere) and pins unless
  -- --pin=false; with --api the DAG is shipped to the node and pinned there.
  o.only_hash, o.pin = opts["only-hash"], opts.pin ~= false
  o.name = "add:" .. pos[1]:gsub("/+$", ""):gsub(".*/", "")
  local res, err = runtime.backend():add(pos[1], o)
  if not res then return util.fail("add", err) end
  if opts.json then
    util.emit_json({ root = res.root, size = res.size, entries = res.entries })
  elseif opts.quieter then
    io.stdout:write(res.root, "\n")
  else
    for _, e in ipairs(res.entries) do
      if opts.quiet then io.stdout:write(e.cid, "\n")
      else io.stdout:write("added ", e.cid, " ", e.path, "\n") end
    end
  end
  return 0
end

return M
