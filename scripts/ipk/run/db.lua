--- ipk.run.db: the engine's tables in $IPK_HOME/ipk.db (runs, run_steps,
-- run_logs, step_cache, artifacts) and the queries on them. A run whose
-- process died is shown as "interrupted" when runs are listed.
local core = require "ipk.core"
local runtime = require "ipk.runtime"
local json = require "ipk.json"
local proc = require "ipk.proc"
local dagjson = require "ipk.dagjson"
local record = require "ipk.run.record"

local ffi = core.ffi
local C = ffi.C -- getpid, kill, clock_gettime: bindings/lua/ipk/cdef/libc.lua

local M = {}

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, recipe TEXT NOT NULL,
  recipe_path TEXT, recipe_cid TEXT, params TEXT NOT NULL, status TEXT NOT NULL,
  started REAL NOT NULL, duration REAL, record_cid TEXT, error TEXT, resumed_from TEXT);
CREATE TABLE IF NOT EXISTS run_steps (
  run_id TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL, key TEXT, status TEXT NOT NULL,
  output_cid TEXT, started REAL, seconds REAL, attempts INTEGER, error TEXT, why TEXT, detail TEXT,
  PRIMARY KEY (run_id, step));
CREATE INDEX IF NOT EXISTS run_steps_output ON run_steps (output_cid);
CREATE TABLE IF NOT EXISTS run_logs (
  run_id TEXT NOT NULL, step TEXT, seq INTEGER NOT NULL, t REAL NOT NULL, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS run_logs_run ON run_logs (run_id, seq);
CREATE TABLE IF NOT EXISTS step_cache (
  key TEXT PRIMARY KEY, kind TEXT NOT NULL, output_cid TEXT NOT NULL, seconds REAL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
  cid TEXT NOT NULL, output_cid TEXT NOT NULL, PRIMARY KEY (cid, output_cid));
]]

local schema_done = setmetatable({}, { __mode = "k" })

--- The store's database with the engine's tables.
function M.db()
  local d = runtime.store():db()
  if not schema_done[d] then
    d:exec(SCHEMA)
    -- v2: the process running a run, so a run whose process died (kill -9,
    -- SIGPIPE, power) is shown as interrupted instead of running forever.
    pcall(d.exec, d, "ALTER TABLE runs ADD COLUMN pid INTEGER")
    schema_done[d] = true
  end
  return d
end


local alive = proc.alive

-- Mark runs still "running" whose process is gone as "interrupted".
local function reap(d)
  for _, r in ipairs(d:query("SELECT id, pid FROM runs WHERE status = 'running'")) do
    local pid = tonumber(r.pid)
    if pid ~= C.getpid() and not alive(pid) then
      d:query("UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
        "the process running it" .. (pid and (" (pid " .. pid .. ")") or "") .. " ended without finishing", r.id)
    end
  end
end

--- Wall-clock time in seconds since the epoch (fractional; os.time has whole seconds).
local function wallclock()
  local ts = ffi.new("libc_timespec_t")
  C.clock_gettime(C.LIBC_CLOCK_REALTIME, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
M.wallclock = wallclock

--- A new run id: UTC time and 24 random bits (20261207-223000-a1b2c3).
function M.new_run_id()
  local f = io.open("/dev/urandom", "rb")
  local r = f and f:read(3) or tostring(os.clock())
  if f then f:close() end
  return os.date("!%Y%m%d-%H%M%S") .. "-" .. (r:gsub(".", function(c) return ("%02x"):format(c:byte()) end)):sub(1, 6)
end

--- A run row by id (or unique id prefix), params decoded.
function M.get_run(id)
  reap(M.db())
  local rows = M.db():query("SELECT * FROM runs WHERE id = ? OR id LIKE ? ORDER BY seq DESC", id, id .. "%")
  if #rows == 0 then return nil, "no run '" .. tostring(id) .. "' (see ipkrun runs)", "ENOENT" end
  if #rows > 1 and rows[1].id ~= id then return nil, "run id prefix '" .. id .. "' is ambiguous", "EINVAL" end
  local r = rows[1]
  r.params = json.decode(r.params) or {}
  return r
end

--- Runs, newest first. opts {limit=, recipe=}
function M.list_runs(opts)
  opts = opts or {}
  reap(M.db())
  local rows
  if opts.recipe then
    rows = M.db():query("SELECT * FROM runs WHERE recipe = ? ORDER BY seq DESC LIMIT ?", opts.recipe, opts.limit or -1)
  else
    rows = M.db():query("SELECT * FROM runs ORDER BY seq DESC LIMIT ?", opts.limit or -1)
  end
  for _, r in ipairs(rows) do r.params = json.decode(r.params) or {} end
  return rows
end

--- Steps of a run in the recipe's topological order, with decoded detail.
function M.run_steps(id)
  local rows = M.db():query("SELECT * FROM run_steps WHERE run_id = ? ORDER BY rowid", id)
  for _, r in ipairs(rows) do r.detail = r.detail and json.decode(r.detail) or nil end
  return rows
end

--- Log lines of a run (optionally one step), in order.
function M.logs(id, step)
  if step then
    return M.db():query("SELECT step, t, line FROM run_logs WHERE run_id = ? AND step = ? ORDER BY seq", id, step)
  end
  return M.db():query("SELECT step, t, line FROM run_logs WHERE run_id = ? ORDER BY seq", id)
end

--- The output record CID memoized for a step key, or nil.
function M.cache_get(key)
  local rows = M.db():query("SELECT output_cid FROM step_cache WHERE key = ?", key)
  return rows[1] and rows[1].output_cid
end

--- The pid of this process (the `pid` column of the runs it starts).
function M.getpid() return C.getpid() end

--- Put a run that arrived from elsewhere (`ipkrun pull`) into the runs
-- tables from its run record: a runs row, its steps in topological order
-- (inputs first, names sorted among equals), the artifacts each step's
-- output record links (what `ipkrun verify` walks) and the step cache
-- entries (a pulled step is a cache hit here). Its records must already be
-- in the backend. A record holds no wall-clock time (version 2), so the run
-- gets a new id here and `started` is when it arrived; a record already
-- recorded by some run is that run (nothing new is written).
-- @return {id=, steps=n, existing=bool} | nil, msg, name
function M.adopt_record(record_cid, rec)
  local where = "run record " .. tostring(record_cid)
  if type(rec) ~= "table" or rec.type ~= "ipk.run" or type(rec.steps) ~= "table" then
    return nil, where .. ": not a run record (type ipk.run with steps)", "EFORMAT"
  end
  local d = M.db()
  local cur = d:query("SELECT id FROM runs WHERE record_cid = ? ORDER BY seq LIMIT 1", record_cid)[1]
  if cur then return { id = cur.id, steps = 0, existing = true } end
  local id = M.new_run_id()
  -- version 1 records carried their run's id and times
  if type(rec.id) == "string" and rec.id:match("^[%w._-]+$")
      and not d:query("SELECT 1 AS x FROM runs WHERE id = ?", rec.id)[1] then id = rec.id end
  local names = {}
  for n in pairs(rec.steps) do names[#names + 1] = n end
  table.sort(names)
  local order, state = {}, {}
  local function visit(n)
    if state[n] == "done" then return true end
    if state[n] == "busy" then return nil, where .. ": step inputs form a cycle at '" .. n .. "'", "EFORMAT" end
    state[n] = "busy"
    local s = rec.steps[n]
    local fields = {}
    for f in pairs(type(s.inputs) == "table" and s.inputs or {}) do fields[#fields + 1] = f end
    table.sort(fields)
    for _, f in ipairs(fields) do
      local dep = type(s.inputs[f]) == "table" and s.inputs[f].step
      if dep and rec.steps[dep] then
        local ok, err, ename = visit(dep)
        if not ok then return nil, err, ename end
      end
    end
    state[n] = "done"
    order[#order + 1] = n
    return true
  end
  for _, n in ipairs(names) do
    if type(rec.steps[n]) ~= "table" then return nil, where .. ": step '" .. n .. "' is not an object", "EFORMAT" end
    local ok, err = visit(n)
    if not ok then return nil, err, "EFORMAT" end
  end
  -- Output records first (outside the transaction: they may come from a node).
  local outs = {}
  for _, n in ipairs(order) do
    local out = dagjson.is_link(rec.steps[n].output)
    if out then
      local orec, err, ename = record.read_record(out)
      if not orec then return nil, "step '" .. n .. "' output " .. out .. ": " .. tostring(err), ename end
      outs[n] = { cid = out, links = record.links(orec.out) }
    end
  end
  local r = type(rec.recipe) == "table" and rec.recipe or {}
  local started = tonumber(rec.started) or wallclock()
  local ok, err = d:tx(function()
    d:query("INSERT INTO runs (id, recipe, recipe_path, recipe_cid, params, status, started, duration, record_cid,"
      .. " error, resumed_from) VALUES (?,?,?,?,?,?,?,?,?,?,?)", id, tostring(r.name or r.path or "?"),
      r.path, dagjson.is_link(r.cid), json.encode(rec.params or {}), tostring(rec.status or "ok"),
      started, tonumber(rec.duration), record_cid, rec.error, rec.resumed_from)
    for _, n in ipairs(order) do
      local s, o = rec.steps[n], outs[n]
      local key = dagjson.is_link(s.key)
      d:query("INSERT INTO run_steps (run_id, step, kind, key, status, output_cid, started, seconds, attempts, error)"
        .. " VALUES (?,?,?,?,?,?,?,?,?,?)", id, n, tostring(s.kind or "?"), key, tostring(s.status or "ok"),
        o and o.cid, started, tonumber(s.seconds), tonumber(s.attempts), s.error)
      if o then
        for _, l in ipairs(o.links) do
          d:query("INSERT OR IGNORE INTO artifacts (cid, output_cid) VALUES (?,?)", l, o.cid)
        end
        if key and s.status == "ok" then
          d:query("INSERT OR IGNORE INTO step_cache (key, kind, output_cid, seconds, created) VALUES (?,?,?,?,?)",
            key, tostring(s.kind or "?"), o.cid, tonumber(s.seconds), wallclock())
        end
      end
    end
  end)
  if not ok then return nil, "adopting " .. where .. ": " .. tostring(err), "EDB" end
  return { id = id, steps = #order, existing = false }
end

return M
