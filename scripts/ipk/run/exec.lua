--- ipk.run.exec: the executor. Runs a recipe's step DAG concurrently as
-- scheduler tasks (retries, timeouts, Ctrl-C), memoizes every step by its
-- key (ipk.run.key) and records each run (ipk.run.db rows and an IPLD run
-- record, DAG-JSON, pinned, linking the recipe, every step's key and
-- output record).
local recipe = require "ipk.run.recipe"
local sandbox = require "ipk.run.sandbox"
local rundb = require "ipk.run.db"
local keys = require "ipk.run.key"
local records = require "ipk.run.record"
local runtime = require "ipk.runtime"
local dagjson = require "ipk.dagjson"
local json = require "ipk.json"
local sched = require "ipk.sched"
local core = require "ipk.core"
local host = require "ipk.host"
local progress_mod = require "ipk.progress"
local transfer = require "ipk.backend.transfer"

local wallclock = rundb.wallclock

local M = {}

local SIGINT = 2

--- Execute a recipe inside the current task.
-- @param r a recipe (ipk.recipe)
-- @param opts {params=resolved table, log=fn(fmt,...), recipe_cid=, recipe_path=,
--   memo=true (record + cache; false: run everything, record nothing),
--   no_cache=bool, force={step=true}, run_id=, resumed_from=, interruptible=bool
--   (Ctrl-C cancels), progress=ipk.progress display or false, quiet=bool}
-- @return result (recipe.result(outputs, ctx) or the sanitized outputs) or
--   nil, msg; third value: the run summary {id, status, record_cid, steps}
function M.execute(r, opts)
  opts = opts or {}
  local now = core.now
  local order, deps = recipe.deps(r)
  if not order then return nil, deps end
  local params = opts.params or assert(recipe.resolve_params(r, {}))
  local memo = opts.memo ~= false
  local force = opts.force or {}
  for name in pairs(force) do
    if not r.steps[name] then return nil, "--force: recipe '" .. r.name .. "' has no step '" .. name .. "'" end
  end
  local log = opts.log or function() end
  local run_id = opts.run_id or rundb.new_run_id()
  local t_start, wall_start = now(), wallclock()
  local db = memo and rundb.db()
  local store = memo and runtime.backend()
  local progress = opts.progress
  if progress == nil then progress = progress_mod.new(order, { quiet = opts.quiet or runtime.quiet }) end

  if memo then
    db:query("INSERT INTO runs (id, recipe, recipe_path, recipe_cid, params, status, started, resumed_from, pid)"
      .. " VALUES (?,?,?,?,?,?,?,?,?)", run_id, r.name, opts.recipe_path, opts.recipe_cid,
      json.encode(params), "running", wall_start, opts.resumed_from, rundb.getpid())
  end

  local outputs, states, tasks = {}, {}, {}
  local log_seq = 0
  local pending_logs = {}
  local function add_log(step, line)
    log_seq = log_seq + 1
    pending_logs[#pending_logs + 1] = { step, log_seq, wallclock(), line }
    if memo and #pending_logs >= 64 then
      db:tx(function()
        for _, l in ipairs(pending_logs) do
          db:query("INSERT INTO run_logs (run_id, step, seq, t, line) VALUES (?,?,?,?,?)", run_id, l[1], l[2], l[3], l[4])
        end
      end)
      pending_logs = {}
    end
  end

  -- Ctrl-C and timeouts: one ticker task, started when a step really runs,
  -- cancels steps that wait (I/O, C jobs); a step spinning in recipe code
  -- is stopped by its own polls (ipk.sched.poll; preempt() below). The
  -- Ctrl-C count stays set until the run ends, so a second Ctrl-C kills the
  -- process at once (bindings/host/sig.h).
  local cancelled -- reason string once the run is cancelled
  local running = {} -- attempt task -> {deadline=, step=}
  local ticker, finished
  local function interrupted()
    return opts.interruptible and host.sig_count(SIGINT) > 0
  end
  local function cancel_all(reason)
    if cancelled then return end
    cancelled = reason
    for t in pairs(running) do sched.cancel(t, reason) end
  end
  local function start_ticker()
    if ticker then return end
    if opts.interruptible then host.sig_watch(SIGINT) end
    ticker = sched.spawn(function()
      while not finished do
        sched.sleep(0.1)
        if interrupted() then cancel_all("interrupted (Ctrl-C)") end
        local t = now()
        for task, info in pairs(running) do
          if info.deadline and t >= info.deadline and not task.done then
            sched.cancel(task, ("timeout after %gs"):format(info.timeout))
          end
        end
      end
    end)
  end
  -- Asked by a poll in recipe code once the host raised its flag (the
  -- step's deadline, Ctrl-C): why the step must stop now, or nil.
  local function preempt(task)
    if cancelled then return cancelled end
    if interrupted() then return "interrupted (Ctrl-C)" end
    local info = running[task]
    if info and info.deadline and now() >= info.deadline then
      return ("timeout after %gs"):format(info.timeout)
    end
  end

  local function step_ctx(name)
    local c = { params = params, recipe = r, recipe_cid = opts.recipe_cid, recipe_path = opts.recipe_path,
                outputs = outputs, step = name, run_id = run_id, check = sched.check }
    c.log = function(fmt, ...)
      local line = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
      add_log(name, line)
      if progress then progress:log(name, line) else log("%s", line) end
    end
    c.progress = function(done, total) if progress then progress:update(name, done, total) end end
    return c
  end

  local function set_state(name, st, status, note)
    st.status = status
    if progress then progress:state(name, status, note) end
  end

  local function run_one(name)
    local s = r.steps[name]
    local st = { step = name, kind = s.kind.kind, attempts = 0 }
    states[name] = st
    local dts = {}
    for _, d in ipairs(deps[name]) do dts[#dts + 1] = tasks[d] end
    sched.settle(dts)
    for _, d in ipairs(deps[name]) do
      local ds = states[d].status
      if ds ~= "ok" and ds ~= "cached" then
        st.error = "input step '" .. d .. "' " .. tostring(ds)
        set_state(name, st, cancelled and "cancelled" or "skipped", st.error)
        return
      end
    end
    if cancelled then set_state(name, st, "cancelled"); return end
    local ctx = step_ctx(name)
    local args = recipe.resolve_args(s, params, outputs)
    local ins = {}
    for field, dep in pairs(keys.input_steps(s)) do ins[field] = { step = dep, cid = states[dep].output_cid } end
    st.inputs = ins
    local key, comp
    if memo and s.args.cache ~= false then
      key, comp = keys.step_key(s, args, ins, ctx)
      if not key then st.why = "not memoized: " .. comp; comp = nil end
    end
    st.key, st.comp = key, comp
    -- What a long step (fl.train) needs to continue its previous attempt's
    -- work after `run --resume` (ipk.fl.records): its key (the same
    -- computation) and the run it resumes; --force and --no-cache start over.
    ctx.key = key
    if not opts.no_cache and not force[name] then ctx.resumed_from = opts.resumed_from end
    -- Cache lookup.
    if key and not opts.no_cache and not force[name] then
      local out_cid = rundb.cache_get(key)
      if out_cid then
        local rec, rerr = records.read_record(out_cid)
        local out
        if rec then
          local ok, res, derr = pcall(s.kind.decode, rec.out, ctx, args)
          if ok and res ~= nil then out = res else rerr = ok and derr or res end
        end
        if out ~= nil then
          outputs[name], st.output_cid, st.seconds = out, out_cid, 0
          set_state(name, st, "cached", out_cid)
          return
        end
        st.why = "cached output unusable (" .. tostring(rerr) .. "): re-running"
        ctx.log("%s", st.why)
      end
    end
    st.why = st.why or (force[name] and "forced") or (opts.no_cache and "--no-cache") or "not in cache"
    start_ticker()
    local retries = tonumber(s.args.retries) or 0
    local timeout = tonumber(s.args.timeout)
    local t0 = now()
    st.started = wallclock()
    local last_err
    for attempt = 1, retries + 1 do
      if cancelled then break end
      st.attempts = attempt
      set_state(name, st, "running", attempt > 1 and ("attempt " .. attempt .. "/" .. (retries + 1)) or "")
      local t = sched.spawn(function() return { s.kind.run(ctx, args) } end)
      t.preempt = preempt
      t.deadline = timeout and (now() + timeout)
      running[t] = { deadline = t.deadline, timeout = timeout, step = name }
      sched.settle({ t })
      running[t] = nil
      -- A step preempted by Ctrl-C may end before the ticker saw it.
      if interrupted() then cancel_all("interrupted (Ctrl-C)") end
      if t.err == nil and t.result[1] ~= nil then
        outputs[name] = t.result[1]
        last_err = nil
        break
      end
      last_err = tostring(t.err or t.result[2] or "step returned nothing")
      local capped = t.mem_refused or (host.memory_cap() > 0 and last_err:find("out of memory", 1, true))
      if capped then
        -- The step's garbage goes now (the runner runs in the headroom).
        collectgarbage()
        last_err = ("memory cap exceeded: %s (cap %s: --max-memory or IPK_MAX_MEMORY; Lua heap peak %s)")
          :format(t.mem_refused and "the step's Lua heap reached the cap" or last_err,
                  host.format_size(host.memory_cap()), host.format_size(select(2, host.lua_bytes())))
      end
      ctx.log("attempt %d/%d failed: %s", attempt, retries + 1, last_err)
      if cancelled or capped or last_err:match("^cancelled: interrupted") then break end
      if attempt <= retries and s.args.retry_delay then sched.sleep(tonumber(s.args.retry_delay) or 0) end
    end
    st.seconds = now() - t0
    if last_err or outputs[name] == nil then
      st.error = last_err or "cancelled"
      set_state(name, st, (cancelled and "cancelled") or "failed", st.error)
      return
    end
    -- Record the output (only now: a failed or cancelled step leaves none).
    if key and s.kind.encode then
      local ok, rec = pcall(s.kind.encode, outputs[name], ctx, args)
      local out_cid, perr
      if ok then
        local record = { kind = s.kind.kind, version = s.kind.version, out = rec }
        local eok, c, cerr = pcall(records.put_record, record)
        if eok and c then out_cid = c else perr = c or cerr end
      else perr = rec end
      if out_cid then
        st.output_cid = out_cid
        db:tx(function()
          db:query("INSERT OR REPLACE INTO step_cache (key, kind, output_cid, seconds, created) VALUES (?,?,?,?,?)",
            key, s.kind.kind, out_cid, st.seconds, wallclock())
          for _, l in ipairs(records.links(rec)) do
            db:query("INSERT OR IGNORE INTO artifacts (cid, output_cid) VALUES (?,?)", l, out_cid)
          end
        end)
        store:pin_add(out_cid, { recursive = false, name = "step:" .. s.kind.kind })
      else
        st.why = "output not memoized: " .. tostring(perr)
        ctx.log("%s", st.why)
      end
    end
    set_state(name, st, "ok", ("%.2fs"):format(st.seconds))
  end

  if progress then progress:draw() end
  for _, name in ipairs(order) do
    tasks[name] = sched.spawn(run_one, name)
  end
  sched.settle((function() local l = {} for _, n in ipairs(order) do l[#l + 1] = tasks[n] end return l end)())
  finished = true
  if ticker then sched.cancel(ticker, "run finished") end
  if opts.interruptible and ticker then host.sig_unwatch(SIGINT) end
  for _, name in ipairs(order) do
    local t = tasks[name]
    if t.err then -- an engine bug or a raising decode: report as the step's failure
      states[name] = states[name] or { step = name, kind = r.steps[name].kind.kind }
      states[name].status, states[name].error = "failed", tostring(t.err)
    end
  end

  local status, first_err = "ok", nil
  for _, name in ipairs(order) do
    local st = states[name]
    if st.status == "failed" and not first_err then
      first_err = "step '" .. name .. "': " .. tostring(st.error)
      status = "failed"
    end
  end
  if cancelled then status = "cancelled"; first_err = first_err or ("cancelled: " .. cancelled) end
  if status == "failed" and cancelled then status = "cancelled" end
  local duration = now() - t_start

  local summary = { id = run_id, status = status, steps = {}, duration = duration }
  for _, name in ipairs(order) do
    local st = states[name]
    summary.steps[name] = { status = st.status, output_cid = st.output_cid, seconds = st.seconds }
  end

  local result
  if status == "ok" then
    local ctx = { params = params, log = log, recipe = r, recipe_cid = opts.recipe_cid, recipe_path = opts.recipe_path,
                  outputs = outputs, run_id = run_id, timings = {} }
    for _, name in ipairs(order) do ctx.timings[name] = states[name].seconds end
    if r.result then
      local ok, res = pcall(r.result, outputs, ctx)
      if not ok then status, first_err = "failed", "result: " .. tostring(res) else result = res end
    else
      result = json.sanitize(outputs)
    end
  end

  if memo then
    -- The IPLD run record: what ran, with links to keys, outputs, recipe.
    -- Content-addressed, so it holds no wall-clock time: the run's id (a
    -- timestamp), start, durations and the run it resumed are in the runs
    -- and run_steps rows; two runs that did the same work share a record.
    local steps = {}
    for _, name in ipairs(order) do
      local st = states[name]
      local ins = {}
      for field, d in pairs(st.inputs or {}) do
        ins[field] = { step = d.step, output = d.cid and dagjson.link(d.cid) or nil }
      end
      -- The key document is stored too, so the record is a complete DAG:
      -- a node pinning it recursively (push) or a pull finds every block.
      if st.key and st.comp then
        local kcid = records.put_record(st.comp)
        assert(kcid == nil or kcid == st.key, "step key document does not hash to the step key")
      end
      steps[name] = { kind = st.kind, version = r.steps[name].kind.version, status = st.status,
        key = st.key and dagjson.link(st.key) or nil, output = st.output_cid and dagjson.link(st.output_cid) or nil,
        inputs = ins, attempts = st.attempts, error = st.error }
    end
    local record = { type = "ipk.run", version = 2, status = status,
      params = params, steps = steps, error = first_err,
      recipe = { name = r.name, path = opts.recipe_path,
                 cid = opts.recipe_cid and dagjson.link(opts.recipe_cid) or nil } }
    local ok, rcid = pcall(records.put_record, record)
    if not ok then rcid = nil end
    if rcid then store:pin_add(rcid, { recursive = false, name = "run:" .. run_id }) end
    summary.record_cid = rcid
    -- With --api, steps restored from the local cache shipped nothing: ship
    -- the record's whole DAG (outputs, artifacts) and pin it on the node, as
    -- `ipkrun push run:ID` does (what is pinned there already is skipped).
    if rcid and store.remote and store.writable then
      local res, terr = transfer.copy(store, store.remote, { rcid }, { name = "run:" .. run_id })
      if not res then
        summary.push_error = tostring(terr)
        local line = "run: artifacts not shipped to " .. store.remote:describe() .. ": " .. tostring(terr)
        if progress then progress:log(nil, line) else io.stderr:write(line, "\n") end
      end
    end
    db:tx(function()
      for _, l in ipairs(pending_logs) do
        db:query("INSERT INTO run_logs (run_id, step, seq, t, line) VALUES (?,?,?,?,?)", run_id, l[1], l[2], l[3], l[4])
      end
      for _, name in ipairs(order) do
        local st = states[name]
        local detail = st.comp and json.encode({ params = st.comp.params, inputs = st.comp.inputs and (function()
          local m = {}
          for f, l in pairs(st.comp.inputs) do m[f] = dagjson.is_link(l) end
          return m
        end)(), files = st.comp.files, code = st.comp.code, version = st.comp.version, context = st.comp.context }) or nil
        db:query("INSERT OR REPLACE INTO run_steps (run_id, step, kind, key, status, output_cid, started, seconds,"
          .. " attempts, error, why, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", run_id, name, st.kind, st.key,
          st.status, st.output_cid, st.started or wall_start, st.seconds, st.attempts, st.error, st.why, detail)
      end
      db:query("UPDATE runs SET status = ?, duration = ?, record_cid = ?, error = ? WHERE id = ?",
        status, duration, rcid, first_err, run_id)
    end)
  end
  if status ~= "ok" then return nil, first_err, summary end
  return result, nil, summary
end

local function add_recipe_bytes(bytes, path)
  local recipe_cid, aerr, aname = runtime.backend():add_bytes(bytes, {
    cid_version = 1, raw_leaves = true, chunker = "size-262144", name = "recipe:" .. path:gsub(".*/", "") })
  if not recipe_cid then return nil, "recipe: " .. tostring(aerr), aname end
  return recipe_cid
end

--- Run the recipe at path with param overrides (strings or typed values).
-- opts {force={step=true}, no_cache=bool, interruptible=bool, quiet=bool}
-- @return result, nil, summary or nil, msg, summary
function M.run_file(path, overrides, opts)
  opts = opts or {}
  local r, bytes = sandbox.load(path)
  if not r then return nil, bytes end
  local params, perr = recipe.resolve_params(r, overrides)
  if not params then return nil, perr end
  local recipe_cid, err = add_recipe_bytes(bytes, path)
  if not recipe_cid then return nil, err end
  runtime.log("recipe %s  cid=%s", r.name, recipe_cid)
  return M.execute(r, { params = params, log = opts.log or runtime.log, recipe_cid = recipe_cid,
    recipe_path = path, force = opts.force, no_cache = opts.no_cache, interruptible = opts.interruptible,
    quiet = opts.quiet, progress = opts.progress })
end

--- Continue run `id`: the same recipe bytes (by their CID, from the store)
-- and the same params; steps that finished are restored from the cache.
function M.resume(id, opts)
  opts = opts or {}
  local run, err = rundb.get_run(id)
  if not run then return nil, err end
  if run.status == "running" then
    return nil, "run " .. run.id .. " is still running (pid " .. tostring(run.pid) .. "); wait for it or stop it first"
  end
  if run.status == "ok" then runtime.log("run %s already succeeded; re-running it restores every step from the cache", run.id) end
  if not run.recipe_cid then return nil, "run " .. run.id .. " has no recorded recipe" end
  local chunks = {}
  local ok, cerr = runtime.backend():cat(run.recipe_cid, function(c) chunks[#chunks + 1] = c end)
  if not ok then return nil, "recipe " .. run.recipe_cid .. ": " .. tostring(cerr) end
  local r, lerr = sandbox.load_bytes(table.concat(chunks), run.recipe_path or run.recipe)
  if not r then return nil, lerr end
  local params, perr = recipe.resolve_params(r, run.params)
  if not params then return nil, perr end
  runtime.log("resuming run %s (%s, status %s)", run.id, r.name, run.status)
  return M.execute(r, { params = params, log = opts.log or runtime.log, recipe_cid = run.recipe_cid,
    recipe_path = run.recipe_path, resumed_from = run.id, interruptible = opts.interruptible,
    quiet = opts.quiet, force = opts.force, no_cache = opts.no_cache })
end

return M
