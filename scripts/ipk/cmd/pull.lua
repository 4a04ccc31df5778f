--- ipkrun pull: fetch a DAG from a node or gateway (DVC's pull), every
-- block verified; a model version entry, dataset version record or run
-- record also goes back into the local registry, catalog or runs.
local util = require "ipk.cmd.util"
local runtime = require "ipk.runtime"
local backend = require "ipk.backend"
local transfer = require "ipk.backend.transfer"
local json = require "ipk.json"
local cidmod = require "ipk.cid"
local dagjson = require "ipk.dagjson"
local registry = require "ipk.registry"
local dataset = require "ipk.dataset"
local run = require "ipk.run"

local M = {}

M.usage = "pull CID... --from URL [--link-timeout=S] [--json]   (URL: http://HOST:PORT, gateway+http://HOST:PORT)"
M.summary = "fetch a DAG (model entry, dataset version, run record) from a node, verified, into the local store and catalog"

-- Put what root is back where it belongs here: a run record into the runs
-- tables, a dataset version record into the catalog, a model version entry
-- into the registry; anything else stays a pinned DAG.
-- @return {kind=, ref=} | nil, msg
local function adopt(root, b)
  local c = cidmod.parse(root)
  if c.codec == dagjson.codec then
    local bytes, err = b:get(root)
    if not bytes then return nil, err end
    local rec = dagjson.decode(bytes)
    if type(rec) == "table" and rec.type == "ipk.run" then
      local r, rerr = run.adopt_record(root, rec)
      if not r then return nil, rerr end
      return { kind = "run", ref = "run:" .. r.id }
    elseif type(rec) == "table" and rec.type == dataset.RECORD_TYPE then
      local v, verr = dataset.adopt_record(root, rec)
      if not v then return nil, verr end
      return { kind = "dataset", ref = "dataset:" .. v.name .. "@" .. v.version }
    end
  elseif c.codec == 0x70 then
    local e, err = registry.adopt_entry(root)
    if e == nil then return nil, err end
    if e then return { kind = "model", ref = "model:" .. e.name .. "@" .. e.version } end
  end
  return { kind = "dag" }
end

function M.run(argv)
  local opts, pos = util.parse(argv, { from = { kind = "value" }, json = { kind = "bool" },
    ["link-timeout"] = { kind = "value" } })
  if not opts then return util.usage_error("pull", pos) end
  if #pos < 1 then return util.usage_error("pull", "expected a CID (or several)") end
  if not opts.from then return util.usage_error("pull", "--from URL is required (a node's RPC API or gateway+URL)") end
  local roots = {}
  for i, s in ipairs(pos) do
    local c, perr = util.parse_cid(s)
    if not c then return util.usage_error("pull", perr) end
    roots[i] = cidmod.format(c)
  end
  local lt = util.number(opts["link-timeout"] or "2")
  if not lt or lt <= 0 then return util.usage_error("pull", "--link-timeout takes seconds > 0") end
  local src, serr = backend.remote(opts.from, runtime.api_auth or os.getenv("IPK_API_AUTH"))
  if not src then return util.usage_error("pull", "--from: " .. tostring(serr)) end
  local dst = runtime.backend()
  local out = { pulled = {}, pinned = {}, missing = {}, blocks = 0, bytes = 0 }
  for _, root in ipairs(roots) do
    -- A link from a record that the node cannot serve within link-timeout
    -- is not content (a step key): listed, not fetched. Everything else is
    -- verified on arrival; a bad block fails the pull before any pin or row.
    local res, err = transfer.copy(src, dst, { root }, { name = "pull:" .. root, link_opts = { timeout = lt } })
    if not res then return util.fail("pull", root .. " from " .. src:describe() .. ": " .. tostring(err)) end
    local adopted, aerr = adopt(root, dst)
    if not adopted then return util.fail("pull", root .. ": " .. tostring(aerr)) end
    out.pulled[#out.pulled + 1] = { cid = root, kind = adopted.kind, ref = adopted.ref or json.null }
    for _, c in ipairs(res.pinned) do out.pinned[#out.pinned + 1] = c end
    for _, c in ipairs(res.missing) do out.missing[#out.missing + 1] = c end
    out.blocks, out.bytes = out.blocks + res.blocks, out.bytes + res.bytes
    if not opts.json then
      io.stdout:write(root, adopted.ref and ("  " .. adopted.ref) or "", "\n")
      io.stderr:write(("pulled %s (%s) from %s: %d blocks (%d bytes), every block verified\n"):format(root,
        adopted.kind, src:describe(), res.blocks, res.bytes))
    end
  end
  if opts.json then
    out.pulled, out.pinned, out.missing = json.array(out.pulled), json.array(out.pinned), json.array(out.missing)
    util.emit_json(out)
  end
  return 0
end

return M
