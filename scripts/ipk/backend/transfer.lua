--- ipk.backend.transfer: move whole DAGs between two backends (`ipkrun
-- push`/`pull`, the cache shipping what it pins). Every block is verified
-- when it is read (backend get / export_dag) and again when it is stored.
--
-- A DAG is cut in two kinds of part:
--   records   IPLD blocks (dag-json, dag-cbor: run records, step outputs,
--             dataset version records), read one by one (get) and written
--             one by one (put: on a node that is block/put with the CID's
--             codec and multihash, since js-ipfs refuses DAG-JSON CARs);
--   subtrees  UnixFS DAGs (dag-pb/raw) hanging off a record or given as a
--             root, moved as one CAR each (export_dag, then import_car
--             without pinning roots).
-- A record may link CIDs that are not content (a run record's step keys
-- are hashes of the step's inputs, never stored): a link from a record
-- that neither side can serve is listed in `missing`, not an error. A block
-- missing inside a UnixFS DAG, or a missing root, is an error.
-- Pins on the destination: every subtree recursively, every record directly
-- (a recursive pin would need the missing links) — the pin cover. A subtree
-- the destination already pins recursively is not shipped again.
local backend = require "ipk.backend.util"
local cid = require "ipk.cid"
local sched = require "ipk.sched"

local type, tostring, ipairs, error, select = type, tostring, ipairs, error, select

local M = {}

local DAG_PB, RAW = backend.DAG_PB, backend.RAW

local function is_unixfs(p) return p.codec == DAG_PB or p.codec == RAW end

-- Probe each link (a record's links, concurrently when src is remote: a
-- link nobody has costs the node's find timeout once, not once per link).
-- UnixFS links: has(); records: get(). Returns list of {s, p, ok, bytes|nil, msg, name}.
local function probe(src, list, o)
  local function one(s)
    local p = cid.parse(s)
    if is_unixfs(p) then
      local ok, msg, name = src:has(s, o.link_opts)
      return { s = s, p = p, ok = ok, msg = msg, name = name }
    end
    local bytes, msg, name = src:get(s, o.link_opts)
    return { s = s, p = p, ok = bytes ~= nil, bytes = bytes, msg = msg, name = name }
  end
  if src.kind == "embedded" or #list < 2 then
    local out = {}
    for i, s in ipairs(list) do out[i] = one(s) end
    return out
  end
  local tasks = {}
  for i, s in ipairs(list) do tasks[i] = sched.spawn(function() return one(s) end) end
  sched.settle(tasks)
  local out = {}
  for i, t in ipairs(tasks) do
    out[i] = t.err and { s = list[i], p = cid.parse(list[i]), ok = nil, msg = tostring(t.err), name = "EIO" } or t.result
  end
  return out
end

-- A found block is a "not there" answer when its name says so: ENOBLOCK
-- (absent), ENOENT. Anything else (EVERIFY, transport) is an error.
local ABSENT = { ENOBLOCK = true, ENOENT = true }

-- A root is looked for as long as a block fetch may take (a link from a
-- record only for o.link_opts' shorter find timeout).
local ROOT = { link_opts = { timeout = 30 } }

--- The parts of the DAGs under roots as src holds them.
-- @param o {link_opts = options for get/has of links from records (a
--   remote's find timeout)}
-- @return {records = {{cid=, bytes=}...} (walk order), subtrees = {cid...},
--   missing = {cid...}} | nil, msg, name
function M.plan(src, roots, o)
  if not sched.in_task() then return sched.run_task(M.plan, src, roots, o) end
  o = o or {}
  local seen = {}
  local plan = { records = {}, subtrees = {}, missing = {} }
  local visit
  local function take(r, from)
    if r.ok == nil then return nil, r.msg, r.name end
    if not r.ok then
      if from and (r.name == nil or ABSENT[r.name]) then plan.missing[#plan.missing + 1] = r.s; return true end
      if r.name ~= nil and not ABSENT[r.name] then return nil, r.msg, r.name end
      return nil, ("%s: %s is not there%s"):format(src:describe(), r.s, from and (" (linked from " .. from .. ")") or ""),
        "ENOBLOCK"
    end
    if is_unixfs(r.p) then plan.subtrees[#plan.subtrees + 1] = r.s; return true end
    plan.records[#plan.records + 1] = { cid = r.s, bytes = r.bytes }
    local links, msg, name = backend.links(r.p, r.bytes)
    if not links then return nil, msg, name end
    return visit(links, r.s)
  end
  visit = function(list, from)
    local todo = {}
    for _, s in ipairs(list) do
      if not seen[s] then
        seen[s] = true
        if not backend.is_inline(s) then todo[#todo + 1] = s end
      end
    end
    for _, r in ipairs(probe(src, todo, from and o or ROOT)) do
      local ok, msg, name = take(r, from)
      if not ok then return nil, msg, name end
    end
    return true
  end
  local canon = {}
  for i, r in ipairs(roots) do
    local p, s = backend.want(r, "root")
    if not p then return nil, s, "ECID" end
    canon[i] = s
  end
  local ok, msg, name = visit(canon, nil)
  if not ok then return nil, msg, name end
  return plan
end

--- Copy the DAGs under roots from src to dst and pin them there (the pin
-- cover, see above). Nothing is pinned unless every part arrived.
-- @param o {pin = true (default), name = pin name on dst, link_opts =}
-- @return {roots = {cid...}, pinned = {cid...}, records = n, subtrees = n,
--   blocks = n, bytes = n, missing = {cid...}} | nil, msg, name
function M.copy(src, dst, roots, o)
  if not sched.in_task() then return sched.run_task(M.copy, src, dst, roots, o) end
  o = o or {}
  if type(roots) ~= "table" then error("transfer.copy: list of root CIDs expected", 2) end
  if not dst.writable then return backend.read_only(dst.kind, "copy") end
  local plan, msg, name = M.plan(src, roots, o)
  if not plan then return nil, msg, name end
  local res = { roots = {}, pinned = {}, records = #plan.records, subtrees = #plan.subtrees, blocks = 0, bytes = 0,
                missing = plan.missing }
  for i, r in ipairs(roots) do res.roots[i] = select(2, backend.want(r)) end
  -- subtrees first: a record is only ever written once what it links is in
  for _, s in ipairs(plan.subtrees) do
    -- a subtree the destination already pins recursively is complete there:
    -- nothing to ship (a second push of the same model costs one query)
    local have = dst:pin_ls({ cid = s, type = "recursive" })
    if have and #have > 0 then goto next_subtree end
    local tmp = os.tmpname()
    local info
    info, msg, name = src:export_dag(s, tmp .. ".car")
    os.remove(tmp)
    if not info then os.remove(tmp .. ".car"); return nil, msg, name end
    local imp
    imp, msg, name = dst:import_car(tmp .. ".car", { pin_roots = false })
    os.remove(tmp .. ".car")
    if not imp then return nil, msg, name end
    res.blocks, res.bytes = res.blocks + imp.blocks, res.bytes + imp.bytes
    ::next_subtree::
  end
  for i = #plan.records, 1, -1 do
    local r = plan.records[i]
    local ok
    ok, msg, name = dst:put(r.cid, r.bytes)
    if not ok then return nil, msg, name end
    res.blocks, res.bytes = res.blocks + 1, res.bytes + #r.bytes
  end
  if o.pin ~= false then
    local function pin(s, recursive)
      local ok, perr, pname = dst:pin_add(s, { recursive = recursive, name = o.name })
      -- a direct pin of what is already pinned recursively is already kept
      if not ok and pname ~= "ECONFLICT" then return nil, perr, pname end
      res.pinned[#res.pinned + 1] = s
      return true
    end
    for _, s in ipairs(plan.subtrees) do
      local ok, perr, pname = pin(s, true)
      if not ok then return nil, perr, pname end
    end
    for _, r in ipairs(plan.records) do
      local ok, perr, pname = pin(r.cid, false)
      if not ok then return nil, perr, pname end
    end
  end
  return res
end

return M
