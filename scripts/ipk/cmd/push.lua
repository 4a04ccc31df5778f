--- ipkrun push: ship a model version, dataset version, run or DAG to a
-- node (DVC's push): every block REF reaches, pinned there.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"
local backend = require "ipk.backend"
local transfer = require "ipk.backend.transfer"
local json = require "ipk.json"
local cidmod = require "ipk.cid"
local registry = require "ipk.registry"
local dataset = require "ipk.dataset"
local run = require "ipk.run"
local lineage = require "ipk.lineage"

local M = {}

M.usage = "push REF --to URL [--json]\n"
  .. "      REF: model:NAME@VERSION | dataset:NAME@VERSION | run:RUN_ID | CID"
M.summary = "ship a model, dataset version, run or DAG with all its blocks to a node, pinned there"

-- The root CIDs REF reaches. A model version: its entry and the record of
-- the run that produced its weights, when one did (so `verify` works where
-- it is pulled). A dataset version: its version record (made here).
-- @return list | nil, msg
local function roots_of(ref)
  local kind, rest = ref:match("^(%a+):(.+)$")
  if kind == "model" then
    local name, version = registry.parse_ref(rest)
    if not version then return nil, "model:" .. rest .. ": give the version (model:NAME@VERSION)" end
    local e, err = registry.get(name, version)
    if not e then return nil, err end
    local roots = { e.entry_cid or e.model_cid }
    local prod = lineage.producer(e.model_cid)
    if prod and prod.record_cid then roots[#roots + 1] = prod.record_cid end
    return roots
  elseif kind == "dataset" then
    local name, version = dataset.parse_ref(rest)
    if not version then return nil, "dataset:" .. rest .. ": give the version (dataset:NAME@VERSION)" end
    local c, err = dataset.version_record(name, version)
    if not c then return nil, err end
    return { c }
  elseif kind == "run" then
    local r, err = run.get_run(rest)
    if not r then return nil, err end
    if not r.record_cid then return nil, "run " .. r.id .. " has no run record (status " .. tostring(r.status) .. ")" end
    return { r.record_cid }
  end
  local c, err = cidmod.parse(ref)
  if not c then
    return nil, "'" .. ref .. "' is neither model:NAME@VERSION, dataset:NAME@VERSION, run:RUN_ID nor a CID ("
      .. tostring(err) .. ")"
  end
  return { cidmod.format(c) }
end

function M.run(argv)
  local opts, pos = util.parse(argv, { to = { kind = "value" }, json = { kind = "bool" },
    })
  if not opts then return util.usage_error("push", pos) end
  if #pos ~= 1 then return util.usage_error("push", "expected one REF (model:N@V, dataset:N@V, run:ID or a CID)") end
  if not opts.to then return util.usage_error("push", "--to URL is required (the node's RPC API, http://HOST:PORT)") end
  local dst, derr = backend.remote(opts.to, runtime.api_auth or os.getenv("IPK_API_AUTH"))
  if not dst then return util.usage_error("push", "--to: " .. tostring(derr)) end
  if not dst.writable then return util.fail("push", dst:describe() .. ": read-only backend") end
  local src = runtime.backend()
  -- What REF reaches: its root CIDs (a dataset version's record is made here).
  local roots, rerr = roots_of(pos[1])
  if not roots then return util.fail("push", rerr) end
  local res, err = transfer.copy(src, dst, roots, { name = pos[1]:match("^%a+:") and pos[1] or ("push:" .. pos[1]) })
  if not res then return util.fail("push", "to " .. dst:describe() .. ": " .. tostring(err)) end
  if opts.json then
    util.emit_json({ ref = pos[1], pushed = json.array(res.roots), pinned = json.array(res.pinned),
                     blocks = res.blocks, bytes = res.bytes, missing = json.array(res.missing) })
  else
    for _, c in ipairs(res.roots) do io.stdout:write(c, "\n") end
    io.stderr:write(("pushed %s to %s: %d blocks (%d bytes), %d pins%s\n"):format(pos[1], dst:describe(), res.blocks,
      res.bytes, #res.pinned, #res.missing > 0 and (", " .. #res.missing .. " linked CIDs are not content (not shipped)") or ""))
  end
  return 0
end

return M
