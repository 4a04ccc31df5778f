--- ipk.lineage: walk an artifact's lineage back through run records to the
-- dataset bytes, re-hashing every block on the way (`ipkrun verify`).
-- Chain: the artifact -> the step output record that names it (artifacts
-- table) -> the run record of the latest run with that output -> each
-- step's input links -> ... -> dataset.add, whose source folder is also
-- re-hashed (only-hash import) and compared with the recorded dataset CID.
local runner = require "ipk.run"
local runtime = require "ipk.runtime"
local dagjson = require "ipk.dagjson"
local cidmod = require "ipk.cid"
local core = require "ipk.core"
local sched = require "ipk.sched"
local unixfs = require "ipk.unixfs"

local M = {}

--- Re-hash every block of the DAG at cid (a pool job).
-- @return {blocks=, bytes=} or nil, msg
function M.verify_dag(cid)
  local ffi, lib = core.ffi, core.lib
  local c, perr, pname = cidmod.parse(cid)
  if not c then return nil, cid .. ": " .. tostring(perr), pname end
  local src = runtime.backend():blocks()
  local srcbox = ffi.new("ipk_blocks_t[1]", src)
  local job = ffi.new("ipk_dag_verify_job_t")
  job.src = srcbox
  job.root = c
  local rc = sched.job(lib.ipk_dag_verify_job, job)
  local ok, err, name = core.check(rc, job.eb)
  local _ = srcbox -- anchored until the job completed
  if not ok then return nil, err, name end
  return { blocks = tonumber(job.blocks), bytes = tonumber(job.bytes) }
end

-- The step that produced cid: among the step outputs that link it (a model
-- is linked by the training step and by the registry step that consumed
-- it), the latest run's earliest step in topological order (run_steps rows
-- are written in that order).
local function producer(cid)
  local db = runner.db()
  local rows = db:query("SELECT rs.run_id, rs.step, r.record_cid FROM run_steps rs JOIN runs r ON r.id = rs.run_id"
    .. " WHERE (rs.output_cid IN (SELECT output_cid FROM artifacts WHERE cid = ?) OR rs.output_cid = ?)"
    .. " AND r.record_cid IS NOT NULL ORDER BY r.seq DESC, rs.rowid ASC LIMIT 1", cid, cid)
  return rows[1]
end

--- The run that produced cid: {run_id, step, record_cid} of its latest
-- recorded run, or nil (`ipkrun push model:…` ships that run record too).
M.producer = producer

--- Verify cid's lineage. Must run inside a task.
-- @return report {cid, ok, run, chain={{step, kind, output_cid, artifacts={{cid, blocks, bytes, ok, error}}, ...}}}
--   or nil, msg when nothing recorded produced cid
function M.verify(cid)
  local prod = producer(cid)
  if not prod then return nil, cid .. ": no recorded run produced this CID (see ipkrun runs)", "ENOENT" end
  local report = { cid = cid, ok = true, run = prod.run_id, run_record = prod.record_cid, chain = {} }
  local rrec, rerr, rname = runner.read_record(prod.record_cid)
  if not rrec then return nil, "run record " .. prod.record_cid .. ": " .. tostring(rerr), rname end
  local seen, done = {}, {}
  local function check_artifact(entry, a)
    done[a] = done[a] or { M.verify_dag(a) }
    local r, err = done[a][1], done[a][2]
    local item = { cid = a, ok = r ~= nil, blocks = r and r.blocks, bytes = r and r.bytes, error = err }
    entry.artifacts[#entry.artifacts + 1] = item
    if not r then report.ok = false end
  end
  local function visit(step)
    if seen[step] then return end
    seen[step] = true
    local s = rrec.steps[step]
    if not s then report.ok = false; return end
    local out = dagjson.is_link(s.output)
    local entry = { step = step, kind = s.kind, output_cid = out, artifacts = {}, inputs = {} }
    report.chain[#report.chain + 1] = entry
    if not out then entry.error = "step has no recorded output"; report.ok = false; return end
    local rec, err = runner.read_record(out) -- store get re-hashes the record block
    if not rec then entry.error = tostring(err); report.ok = false; return end
    local links = runner.links(rec.out)
    table.sort(links)
    local dedup = {}
    for _, a in ipairs(links) do if not dedup[a] then dedup[a] = true; check_artifact(entry, a) end end
    if s.kind == "dataset.add" and rec.out.source then
      -- The bytes on disk: re-import with only-hash under the recorded profile.
      local imp = rec.out.import or {}
      local added = unixfs.add(rec.out.source, { recursive = true, only_hash = true,
        cid_version = imp.cid_version, raw_leaves = imp.raw_leaves, chunker = imp.chunker })
      local want = dagjson.is_link(rec.out.cid)
      entry.source = { path = rec.out.source, cid = added and added.root, matches = added ~= nil and added.root == want }
      if not entry.source.matches then report.ok = false end
    end
    local names = {}
    for field, i in pairs(s.inputs or {}) do names[#names + 1] = { field, i.step } end
    table.sort(names, function(a, b) return a[1] < b[1] end)
    for _, f in ipairs(names) do
      entry.inputs[#entry.inputs + 1] = f[2]
      visit(f[2])
    end
  end
  visit(prod.step)
  -- The recipe bytes the run used.
  local rc = rrec.recipe and dagjson.is_link(rrec.recipe.cid)
  if rc then
    local r, err = M.verify_dag(rc)
    report.recipe = { cid = rc, ok = r ~= nil, error = err }
    if not r then report.ok = false end
  end
  return report
end

return M
