--- ipk.fl.records: round records (checkpoints) of federated training, the
-- chain they form, and where a resumed step finds its previous attempt's.
--
-- Every round writes one DAG-JSON block (codec 0x0129) in the backend
-- (runtime.backend(): the embedded store, or a node through its cache).
-- Content-addressed, so it holds no wall-clock time: a round's duration and
-- when it ended are rows of the run database (table fl_rounds below).
--
-- Record schema (type "ipk.fl.round", version 1); "link" is a DAG-JSON
-- link {"/": cid}, "cid" a plain CID string (an identifier whose bytes the
-- record does not keep):
--   type          "ipk.fl.round"
--   version       1
--   round         r (1-based)
--   prev          link to round r-1's record; absent in round 1 (the chain)
--   input_model   link: the global model the clients trained from (UnixFS
--                 file of canonical safetensors; round 1: the initial model)
--   model         link: the global model after this round (same format);
--                 training resumed after round r starts from it
--   final         true when the strategy is final (ensemble): training
--                 ended with this round; absent otherwise
--   strategy      {name, params = {k = v} (inline: the strategy's params,
--                  sampling ones included), state = nil |
--                 {scalars = {k = number|string|bool} (inline),
--                  tensors = link to a UnixFS F64 safetensors file (the
--                  moments, momentum ...: tensors are never JSON numbers)}}
--                 (ipk.fl.strategy's get_state / set_state)
--   rng           everything the next round's randomness derives from:
--                 {seed = the step's seed,
--                  sampling = "cid-rank" (the strategy's configure_fit ranks
--                    client c by the CIDv1 raw sha2-256 of
--                    "<sampling_key>/<seed>/<c>" and takes the lowest ranks
--                    when it samples fewer than all), sampling_key = the CID
--                    string of input_model (the next round's is this model),
--                  training = "seed*1000003+round*10007+client mod 2^31-1"
--                    (each participant's seed is in its entry)}
--   config        the fit config sent to the clients this round, seed aside
--                 {lr, epochs, batch, proximal_mu?, ...}
--   clients       {available = clients with training examples,
--                  sampled = [ids] (what configure_fit chose)}
--   participants  [{client = id, shard = cid, update = cid (raw CIDv1 of the
--                  update's safetensors bytes, = its UnixFS CID when it fits
--                  one chunk; the bytes are not kept), num_examples, seed,
--                  metrics = {train_loss, ...} (the trainer's)}]
--                 in aggregation order (update CID order)
--   rejected      [{client = id, reason = text}] updates refused (the
--                  trainer failed, NaN/inf naming the tensor, another
--                  layout): absent when none
--   metrics       {train_loss (weighted by num_examples),
--                  central = {loss, accuracy | mse, num_examples} (the
--                    held-out test split),
--                  federated = {loss, accuracy, clients, num_examples}
--                    (clients evaluating the new model on their own test
--                    split, weighted by its size; absent when none has one)}
--
-- Where a resumed step finds its records: table fl_rounds in the run
-- database (ipk.run.db), one row per finished round: (run_id, step, key,
-- round, record_cid, model_cid, seconds, ended). The step key identifies
-- the computation (recipe kind, params, input CIDs); it is not changed by
-- this table (checkpoints are not inputs). An attempt of the step asks
-- `latest` for the newest row of the same step and key in its own run
-- (an earlier attempt: retries) and, when the run was started by
-- `ipkrun run --resume RUN` (ipk.run.exec gives the step ctx.key and
-- ctx.resumed_from; not under --force or --no-cache), in RUN, RUN's own
-- resumed_from, and so on; it continues after that round. A row is written only after its
-- record and every block it links were pinned (made durable), so a kill -9
-- between rounds loses at most the round in progress.
--
-- Pins: while a step trains, each round's model and state files (recursive)
-- and record (direct) are pinned under M.pin_name(run_id, step), so gc
-- keeps what a resume needs; the finished step pins the last record
-- recursively (the whole chain) and M.unpin_rounds drops those pins.
local dagjson = require "ipk.dagjson"
local runtime = require "ipk.runtime"
local rundb = require "ipk.run.db"
local record = require "ipk.run.record"

local M = {}

local type, tostring, ipairs = type, tostring, ipairs

M.TYPE, M.VERSION = "ipk.fl.round", 1

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS fl_rounds (
  run_id TEXT NOT NULL, step TEXT NOT NULL, key TEXT, round INTEGER NOT NULL,
  record_cid TEXT NOT NULL, model_cid TEXT NOT NULL, seconds REAL, ended REAL NOT NULL,
  PRIMARY KEY (run_id, step, round));
CREATE INDEX IF NOT EXISTS fl_rounds_record ON fl_rounds (record_cid);
]]

local schema_done = setmetatable({}, { __mode = "k" })

local function db()
  local d = rundb.db()
  if not schema_done[d] then
    d:exec(SCHEMA)
    schema_done[d] = true
  end
  return d
end

--- Pin name of the blocks of a run's rounds (one name for all its rounds).
function M.pin_name(run_id, step)
  return "fl.round:" .. tostring(run_id or "-") .. ":" .. tostring(step or "-")
end

--- Pin cid unless a pin already keeps it. A re-run (--force, a resumed
-- or retried attempt) recomputes the same blocks: their pins from the
-- first run (a finished chain's recursive pin, the registry's) must be
-- neither renamed (M.unpin_rounds would then drop them) nor refused (a
-- direct pin of a recursively pinned CID is ECONFLICT).
-- @return true or nil, msg, name
function M.keep(cid, recursive, name)
  local b = runtime.backend()
  local has, err, ename = b:pin_has(cid)
  if has == nil then return nil, err, ename end
  if has then return true end
  return b:pin_add(cid, { recursive = recursive, name = name })
end

--- Store a round record and pin it (directly: the blocks it links were
-- pinned when they were added), then note it in fl_rounds when info has a
-- run_id. Must run inside a task.
-- @param rec the record value (schema above)
-- @param info {run_id=, step=, key=, seconds=}
-- @return record CID or nil, msg, name
function M.put(rec, info)
  info = info or {}
  local cid, err, name = record.put_record(rec)
  if not cid then return nil, "round " .. tostring(rec.round) .. " record: " .. tostring(err), name end
  local ok, perr, pname = M.keep(cid, false, M.pin_name(info.run_id, info.step))
  if not ok then return nil, "round " .. tostring(rec.round) .. " record: pin: " .. tostring(perr), pname end
  if info.run_id then
    db():query("INSERT OR REPLACE INTO fl_rounds (run_id, step, key, round, record_cid, model_cid, seconds, ended)"
      .. " VALUES (?,?,?,?,?,?,?,?)", info.run_id, info.step or "-", info.key, rec.round, cid,
      dagjson.is_link(rec.model), info.seconds, rundb.wallclock())
  end
  return cid
end

--- Read and check a round record.
-- @return record or nil, msg, name (ENOBLOCK, EFORMAT)
function M.read(cid)
  local rec, err, name = record.read_record(cid)
  if not rec then return nil, "round record " .. tostring(cid) .. ": " .. tostring(err), name end
  if type(rec) ~= "table" or rec.type ~= M.TYPE or type(rec.round) ~= "number"
      or not dagjson.is_link(rec.model) then
    return nil, "round record " .. tostring(cid) .. ": not an " .. M.TYPE .. " record (type, round, model)", "EFORMAT"
  end
  if rec.version ~= M.VERSION then
    return nil, "round record " .. tostring(cid) .. ": version " .. tostring(rec.version)
      .. " (this ipk reads version " .. M.VERSION .. ")", "EFORMAT"
  end
  return rec
end

--- The chain ending at cid, oldest first: {{cid=, record=}, ...}.
-- @return list or nil, msg, name (a missing or malformed record names it)
function M.chain(cid)
  local out, seen = {}, {}
  while cid do
    if seen[cid] then return nil, "round record " .. cid .. ": the chain loops", "EFORMAT" end
    seen[cid] = true
    local rec, err, name = M.read(cid)
    if not rec then return nil, err, name end
    out[#out + 1] = { cid = cid, record = rec }
    cid = dagjson.is_link(rec.prev)
  end
  local n = #out
  for i = 1, math.floor(n / 2) do out[i], out[n + 1 - i] = out[n + 1 - i], out[i] end
  return out
end

-- The run ids to search: run_id, then what it resumed, and so on.
local function lineage(run_id)
  local ids, seen = {}, {}
  while run_id and not seen[run_id] do
    seen[run_id] = true
    ids[#ids + 1] = run_id
    local row = rundb.db():query("SELECT resumed_from FROM runs WHERE id = ?", run_id)[1]
    run_id = row and row.resumed_from
  end
  return ids
end
M.lineage = lineage

--- The newest usable round record of step `step` with key `key` in run
-- `run_id`, then (with opts.lineage) in the runs it resumed, newest first.
-- A row whose record is not readable (lost with its store) is passed over
-- for the one before.
-- @return {cid=, record=, run_id=} or nil (nothing to resume from)
function M.latest(run_id, step, key, opts)
  if not run_id or not key then return nil end
  local ids = (opts and opts.lineage) and lineage(run_id) or { run_id }
  for _, id in ipairs(ids) do
    local rows = db():query("SELECT record_cid FROM fl_rounds WHERE run_id = ? AND step = ? AND key = ?"
      .. " ORDER BY round DESC", id, step, key)
    for _, row in ipairs(rows) do
      local rec = M.read(row.record_cid)
      if rec then return { cid = row.record_cid, record = rec, run_id = id } end
    end
  end
  return nil
end

--- Remove the per-round pins (M.pin_name) of step `step` in run_id and the
-- runs it resumed, once something else keeps the chain (the finished
-- step pins its head recursively).
-- @return number of pins removed, or nil, msg, name
function M.unpin_rounds(run_id, step)
  local b = runtime.backend()
  local names = {}
  for _, id in ipairs(lineage(run_id)) do names[M.pin_name(id, step)] = true end
  local pins, err, ename = b:pin_ls()
  if not pins then return nil, err, ename end
  local n = 0
  for _, p in ipairs(pins) do
    if p.name and names[p.name] then
      local ok, rerr, rname = b:pin_rm(p.cid)
      if not ok and rname ~= "ENOENT" then return nil, rerr, rname end
      n = n + 1
    end
  end
  return n
end

--- Rows of fl_rounds for a run (all its steps), by step then round.
function M.rows(run_id)
  return db():query("SELECT * FROM fl_rounds WHERE run_id = ? ORDER BY step, round", run_id)
end

--- Seconds and end time of the round whose record is cid (any run), or nil.
function M.timing(cid)
  local row = db():query("SELECT seconds, ended FROM fl_rounds WHERE record_cid = ? ORDER BY ended LIMIT 1", cid)[1]
  return row
end

return M
