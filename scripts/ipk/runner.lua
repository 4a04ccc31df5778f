--- ipk.runner: the recipe engine. Loads recipe files in a sandbox, runs the
-- step DAG concurrently as scheduler tasks (retries, timeouts, Ctrl-C),
-- memoizes every step by the CID of its key and records each run.
--
-- Step key (a CID): DAG-JSON of {kind, version, params (resolved args),
-- inputs (links to the upstream steps' output records), profile (import
-- options), code (custom steps: bytecode hash), files (fingerprints of path
-- args), context (e.g. recipe_cid)}. A step whose key is in `step_cache` is
-- restored from its output record (a DAG-JSON block) by the kind's decode
-- and not run. Tables in $IPK_HOME/ipk.db: runs, run_steps, run_logs,
-- step_cache, artifacts. Each run also gets an IPLD run record (DAG-JSON
-- block, pinned) linking the recipe, every step's key and output record.
local recipe = require "ipk.recipe"
local runtime = require "ipk.runtime"
local dagjson = require "ipk.dagjson"
local json = require "ipk.json"

local M = {}

-- Import profile of artifacts written by the built-in kinds (ARCHITECTURE.md
-- section 4): part of every key, so another profile never hits the cache.
M.PROFILE = { cid_version = 1, raw_leaves = true, chunker = "size-262144" }

---------------------------------------------------------------------------
-- Sandbox
---------------------------------------------------------------------------

-- FFI for numeric buffers only (custom strategies): numeric scalar and
-- array types, bounds-checked copy/fill; no ffi.C, cdef, cast, load, and no
-- pointer or struct types (a union with a pointer member would let a recipe
-- write to any address). Note: cdata indexing itself is not bounds-checked
-- by LuaJIT, so the sandbox stops I/O and C calls, not a numeric
-- out-of-range index in user code from crashing the process.
local NUMERIC = { int8_t = true, uint8_t = true, int16_t = true, uint16_t = true, int32_t = true,
  uint32_t = true, int64_t = true, uint64_t = true, float = true, double = true, bool = true,
  char = true, int = true }
local function numeric_ct(ct)
  if type(ct) ~= "string" then return false end
  local base = ct:match("^%s*([%w_]+)%s*%[%s*[%?%d]*%s*%]%s*$") or ct:match("^%s*([%w_]+)%s*$")
  return base ~= nil and NUMERIC[base] == true
end

local function safe_ffi()
  local ffi = require "ffi"
  local t = {}
  for _, k in ipairs { "sizeof", "alignof", "istype", "string", "abi", "os", "arch" } do t[k] = ffi[k] end
  t.new = function(ct, ...)
    if not numeric_ct(ct) then error("ffi.new: only numeric scalar and array types in a recipe, not '" .. tostring(ct) .. "'", 2) end
    return ffi.new(ct, ...)
  end
  t.typeof = function(ct)
    if not numeric_ct(ct) then error("ffi.typeof: only numeric types in a recipe", 2) end
    return ffi.typeof(ct)
  end
  local function room(x)
    local ok, n = pcall(ffi.sizeof, x)
    return ok and n or nil
  end
  t.copy = function(dst, src, n)
    local cap = room(dst)
    local have = type(src) == "string" and #src or room(src)
    n = n or (type(src) == "string" and #src + 1)
    if not (cap and have and type(n) == "number" and n >= 0 and n <= cap and n <= have) then
      error("ffi.copy: size out of bounds", 2)
    end
    return ffi.copy(dst, src, n)
  end
  t.fill = function(dst, n, c)
    local cap = room(dst)
    if not (cap and type(n) == "number" and n >= 0 and n <= cap) then error("ffi.fill: size out of bounds", 2) end
    return ffi.fill(dst, n, c)
  end
  return setmetatable(t, { __index = function(_, k)
    error("ffi." .. tostring(k) .. " is not available in a recipe (file and network access only through ipk)", 2)
  end, __newindex = function() error("ffi is read-only in a recipe", 2) end, __metatable = false })
end

-- ipk modules a recipe may not reach: they hold the raw FFI binding, the
-- process state, or the command line.
local HIDDEN = { core = true, runtime = true, runner = true, cli = true, repl = true, store_mod = true,
  cdef = true, cmd = true, lineedit = true, sig = true }

-- A read-only view of a module table: recipes cannot replace ipk's
-- functions (which would change what later steps, or the host, do), and
-- fields holding the FFI binding are hidden.
local proxies = setmetatable({}, { __mode = "k" })
local function readonly(mod, name)
  if type(mod) ~= "table" then return mod end
  if proxies[mod] then return proxies[mod] end
  local p = setmetatable({}, {
    __index = function(_, k)
      if k == "ffi" or k == "lib" or (name == "ipk" and HIDDEN[k]) then
        error((name or "module") .. "." .. tostring(k) .. " is not available in a recipe", 2)
      end
      local v = mod[k]
      if name == "ipk" and type(v) == "table" and k ~= "param" then return readonly(v, "ipk." .. k) end
      return v
    end,
    __newindex = function(_, k)
      error((name or "module") .. " is read-only in a recipe (assignment to '" .. tostring(k) .. "')", 2)
    end,
    __call = function(_, ...) return mod(...) end,
    __metatable = false,
  })
  proxies[mod] = p
  return p
end

-- No rawset/rawget (they bypass the global-write guard) and no raw access
-- to metatables (the sandbox wraps getmetatable/setmetatable below).
local SAFE_GLOBALS = { "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select", "tonumber",
  "tostring", "type", "unpack", "rawequal", "_VERSION" }
local SAFE_LIBS = { "string", "table", "math", "bit" }

--- A fresh sandbox environment for recipe code: the pure standard library,
-- `require` of ipk modules (and a restricted ffi), print to stderr; no io,
-- os (except time/clock/date), load*, debug or package; global writes raise.
function M.sandbox(name)
  local g = {}
  for _, k in ipairs(SAFE_GLOBALS) do g[k] = _G[k] end
  for _, k in ipairs(SAFE_LIBS) do
    local src, copy = _G[k], {}
    for kk, vv in pairs(src) do copy[kk] = vv end
    g[k] = copy
  end
  g.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
  g.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    io.stderr:write(table.concat(parts, "\t"), "\n")
  end
  local ffi_proxy
  -- Metatables: strings' shared metatable and protected tables are not
  -- reachable; user tables work as usual.
  g.getmetatable = function(v)
    if type(v) ~= "table" then return nil end
    return getmetatable(v)
  end
  g.setmetatable = function(t, mt)
    if type(t) ~= "table" then error("setmetatable: table expected", 2) end
    return setmetatable(t, mt)
  end
  g.require = function(mod)
    if mod == "ipk" then return readonly(require("ipk"), "ipk") end
    local sub = type(mod) == "string" and mod:match("^ipk%.([%w_]+)$")
    if sub and not HIDDEN[sub] then return readonly(require(mod), mod) end
    if mod == "ffi" then ffi_proxy = ffi_proxy or safe_ffi(); return ffi_proxy end
    error("require '" .. tostring(mod) .. "' is not allowed in a recipe (only ipk modules and ffi)", 2)
  end
  g._G = g
  return setmetatable(g, {
    __newindex = function(_, k)
      error((name or "recipe") .. ": assignment to global '" .. tostring(k)
        .. "' (recipes are sandboxed: use local)", 2)
    end,
    __metatable = false,
  })
end

--- Load Lua source in the sandbox and run it; returns what the chunk returns.
-- @return value or nil, msg
function M.load_sandboxed(bytes, chunkname)
  local chunk, err = loadstring(bytes, "@" .. chunkname)
  if not chunk then return nil, err end
  setfenv(chunk, M.sandbox(chunkname))
  local ok, r = pcall(chunk)
  if not ok then return nil, tostring(r) end
  return r
end

--- Load a Lua script file in the sandbox (e.g. a user strategy).
-- @return value, bytes or nil, msg
function M.load_script(path)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, path .. ": " .. (oerr or "cannot open"):gsub("^[^:]*: ", "") end
  local bytes = f:read("*a")
  f:close()
  local v, err = M.load_sandboxed(bytes, path)
  if v == nil then return nil, err end
  return v, bytes
end

--- Load a recipe from its bytes (chunkname: its path, for file:line errors).
function M.load_bytes(bytes, path)
  local r, err = M.load_sandboxed(bytes, path)
  if r == nil then return nil, err end
  if not recipe.is_recipe(r) then return nil, path .. ": does not return ipk.recipe { ... }" end
  return r, bytes
end

--- Load a recipe file without running it.
-- @return recipe, bytes or nil, msg
function M.load(path)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, path .. ": " .. (oerr or "cannot open"):gsub("^[^:]*: ", "") end
  local bytes = f:read("*a")
  f:close()
  return M.load_bytes(bytes, path)
end

---------------------------------------------------------------------------
-- Database
---------------------------------------------------------------------------

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

local proc = { ffi = require "ffi" }
pcall(proc.ffi.cdef, "int kill(int pid, int sig); int getpid(void);")

local function alive(pid)
  if not pid then return false end
  -- A zombie (killed, not yet reaped by its parent) has finished too.
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if f then
    local st = f:read("*l") or ""
    f:close()
    if st:match("%) (%a)") == "Z" then return false end
  end
  if proc.ffi.C.kill(pid, 0) == 0 then return true end
  return proc.ffi.errno() == 1   -- EPERM: exists, not ours
end

-- Mark runs still "running" whose process is gone as "interrupted".
local function reap(d)
  for _, r in ipairs(d:query("SELECT id, pid FROM runs WHERE status = 'running'")) do
    local pid = tonumber(r.pid)
    if pid ~= proc.ffi.C.getpid() and not alive(pid) then
      d:query("UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
        "the process running it" .. (pid and (" (pid " .. pid .. ")") or "") .. " ended without finishing", r.id)
    end
  end
end

local function wallclock()
  local ffi = require "ffi"
  pcall(ffi.cdef, "typedef struct { long tv_sec; long tv_nsec; } ipk_timespec_t;"
    .. " int clock_gettime(int clk, ipk_timespec_t *ts);")
  local ts = ffi.new("ipk_timespec_t")
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
M.wallclock = wallclock

local function new_run_id()
  local f = io.open("/dev/urandom", "rb")
  local r = f and f:read(3) or tostring(os.clock())
  if f then f:close() end
  return os.date("!%Y%m%d-%H%M%S") .. "-" .. (r:gsub(".", function(c) return ("%02x"):format(c:byte()) end)):sub(1, 6)
end

--- A run row by id (or unique id prefix), params decoded.
function M.get_run(id)
  reap(M.db())
  local rows = M.db():query("SELECT * FROM runs WHERE id = ? OR id LIKE ? ORDER BY seq DESC", id, id .. "%")
  if #rows == 0 then return nil, "no run '" .. tostring(id) .. "' (see ipkrun runs)" end
  if #rows > 1 and rows[1].id ~= id then return nil, "run id prefix '" .. id .. "' is ambiguous" end
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

--- Read a DAG-JSON record block. @return value or nil, msg
function M.read_record(cid)
  local bytes, err = runtime.store():get(cid)
  if not bytes then return nil, err end
  return dagjson.decode(bytes)
end

local function put_record(v)
  local cid, bytes = dagjson.cid(v)
  local ok, err = runtime.store():put(cid, bytes)
  if not ok then return nil, err end
  return cid
end
M.put_record = put_record

---------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------

local function hash_hex(s)
  local cidmod = require "ipk.cid"
  return cidmod.format(assert(cidmod.of(1, 0x55, s)))
end

-- Canonical key value of an argument: functions by stripped bytecode (so
-- moving a line does not change it), tables recursively; cdata cannot be
-- keyed (nil, why).
local function canon(v, path)
  local t = type(v)
  if t == "function" then
    local ok, code = pcall(string.dump, v, true)
    if not ok then return nil, path .. ": a C function cannot be keyed" end
    return { fn = hash_hex(code) }
  elseif t == "table" then
    if dagjson.is_link(v) then return v end
    local out = {}
    for k, x in pairs(v) do
      local c, err = canon(x, path .. "." .. tostring(k))
      if c == nil and err then return nil, err end
      out[tostring(k)] = c
    end
    if getmetatable(v) and not next(v) then return dagjson.array({}) end
    return out
  elseif t == "cdata" or t == "userdata" or t == "thread" then
    return nil, path .. ": a " .. t .. " value cannot be keyed"
  end
  return v
end

-- Fingerprint of a file or directory: relative names, sizes, mtimes.
local function fingerprint(path)
  local q = "'" .. path:gsub("'", "'\\''") .. "'"
  local p = io.popen("find " .. q .. " -printf '%P\\t%y\\t%s\\t%T@\\n' 2>/dev/null | LC_ALL=C sort")
  local lines = p:read("*a")
  p:close()
  if lines == "" then return "missing" end
  return hash_hex(lines)
end

-- The key of step s: CID string, components (or nil, why).
local function step_key(s, args, input_cids, ctx)
  local k = s.kind
  local comp = { kind = k.kind, version = k.version, profile = k.profile or M.PROFILE, params = {}, inputs = {} }
  for a, v in pairs(args) do
    if not (recipe.META_ARGS[a] or k.inputs[a] or (k.custom and (a == "inputs" or a == "run"))) then
      local c, err = canon(v, a)
      if c == nil and err then return nil, err end
      comp.params[a] = c
    end
  end
  for field, dep in pairs(input_cids) do
    if not dep.cid then return nil, "input '" .. field .. "' (step " .. dep.step .. ") has no recorded output" end
    comp.inputs[field] = dagjson.link(dep.cid)
  end
  if k.custom then
    local ok, code = pcall(string.dump, s.args.run, true)
    if not ok then return nil, "custom step: run cannot be keyed" end
    comp.code = hash_hex(code)
  end
  local files
  for a, v in pairs(s.args) do
    if recipe.is_path(v) or (k.paths and k.paths[a] and type(args[a]) == "string") then
      files = files or {}
      files[a] = fingerprint(args[a])
    end
  end
  comp.files = files
  if k.context then
    comp.context = {}
    for _, f in ipairs(k.context) do comp.context[f] = ctx[f] end
  end
  return dagjson.cid(comp), comp
end

-- Input fields of step s -> upstream step names.
local function input_steps(s)
  local m = {}
  for field in pairs(s.kind.inputs) do
    if type(s.args[field]) == "string" then m[field] = s.args[field] end
  end
  if s.kind.custom and type(s.args.inputs) == "table" then
    for field, ref in pairs(s.args.inputs) do m["inputs." .. field] = ref end
  end
  return m
end

local function cache_get(key)
  local rows = M.db():query("SELECT output_cid FROM step_cache WHERE key = ?", key)
  return rows[1] and rows[1].output_cid
end

-- Every link inside a record value (the artifacts it points to).
local function links(v, out)
  out = out or {}
  local l = dagjson.is_link(v)
  if l then out[#out + 1] = l
  elseif type(v) == "table" then for _, x in pairs(v) do links(x, out) end end
  return out
end
M.links = links

---------------------------------------------------------------------------
-- Execution
---------------------------------------------------------------------------

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
  local sched = require "ipk.sched"
  local core = require "ipk.core"
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
  local run_id = opts.run_id or new_run_id()
  local t_start, wall_start = now(), wallclock()
  local db = memo and M.db()
  local store = memo and runtime.store()
  local progress = opts.progress
  if progress == nil then progress = require("ipk.progress").new(order, { quiet = opts.quiet or runtime.quiet }) end

  if memo then
    db:query("INSERT INTO runs (id, recipe, recipe_path, recipe_cid, params, status, started, resumed_from, pid)"
      .. " VALUES (?,?,?,?,?,?,?,?,?)", run_id, r.name, opts.recipe_path, opts.recipe_cid,
      json.encode(params), "running", wall_start, opts.resumed_from, proc.ffi.C.getpid())
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

  -- Ctrl-C and timeouts: one ticker task, started when a step really runs.
  local cancelled -- reason string once the run is cancelled
  local running = {} -- attempt task -> {deadline=, step=}
  local ticker, finished
  local function cancel_all(reason)
    if cancelled then return end
    cancelled = reason
    for t in pairs(running) do sched.cancel(t, reason) end
  end
  local function start_ticker()
    if ticker then return end
    if opts.interruptible then core.lib.ipk_sig_reset(SIGINT); core.lib.ipk_sig_watch(SIGINT) end
    ticker = sched.spawn(function()
      while not finished do
        sched.sleep(0.1)
        if opts.interruptible and core.lib.ipk_sig_count(SIGINT) > 0 then
          core.lib.ipk_sig_reset(SIGINT)
          cancel_all("interrupted (Ctrl-C)")
        end
        local t = now()
        for task, info in pairs(running) do
          if info.deadline and t >= info.deadline and not task.done then
            sched.cancel(task, ("timeout after %gs"):format(info.timeout))
          end
        end
      end
    end)
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
    for field, dep in pairs(input_steps(s)) do ins[field] = { step = dep, cid = states[dep].output_cid } end
    st.inputs = ins
    local key, comp
    if memo and s.args.cache ~= false then
      key, comp = step_key(s, args, ins, ctx)
      if not key then st.why = "not memoized: " .. comp; comp = nil end
    end
    st.key, st.comp = key, comp
    -- Cache lookup.
    if key and not opts.no_cache and not force[name] then
      local out_cid = cache_get(key)
      if out_cid then
        local rec, rerr = M.read_record(out_cid)
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
      running[t] = { deadline = timeout and (now() + timeout), timeout = timeout, step = name }
      sched.settle({ t })
      running[t] = nil
      if t.err == nil and t.result[1] ~= nil then
        outputs[name] = t.result[1]
        last_err = nil
        break
      end
      last_err = tostring(t.err or t.result[2] or "step returned nothing")
      ctx.log("attempt %d/%d failed: %s", attempt, retries + 1, last_err)
      if cancelled or last_err:match("^cancelled: interrupted") then break end
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
        local eok, c = pcall(put_record, record)
        if eok and c then out_cid = c else perr = c end
      else perr = rec end
      if out_cid then
        st.output_cid = out_cid
        db:tx(function()
          db:query("INSERT OR REPLACE INTO step_cache (key, kind, output_cid, seconds, created) VALUES (?,?,?,?,?)",
            key, s.kind.kind, out_cid, st.seconds, wallclock())
          for _, l in ipairs(links(rec)) do
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
  if opts.interruptible and ticker then core.lib.ipk_sig_unwatch(SIGINT) end
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
    local steps = {}
    for _, name in ipairs(order) do
      local st = states[name]
      local ins = {}
      for field, d in pairs(st.inputs or {}) do
        ins[field] = { step = d.step, output = d.cid and dagjson.link(d.cid) or nil }
      end
      steps[name] = { kind = st.kind, version = r.steps[name].kind.version, status = st.status,
        key = st.key and dagjson.link(st.key) or nil, output = st.output_cid and dagjson.link(st.output_cid) or nil,
        inputs = ins, seconds = st.seconds, attempts = st.attempts, error = st.error }
    end
    local record = { type = "ipk.run", version = 1, id = run_id, status = status, started = wall_start,
      duration = duration, params = params, steps = steps, error = first_err, resumed_from = opts.resumed_from,
      recipe = { name = r.name, path = opts.recipe_path,
                 cid = opts.recipe_cid and dagjson.link(opts.recipe_cid) or nil } }
    local ok, rcid = pcall(put_record, record)
    if not ok then rcid = nil end
    if rcid then store:pin_add(rcid, { recursive = false, name = "run:" .. run_id }) end
    summary.record_cid = rcid
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

---------------------------------------------------------------------------
-- Files, resume, plan
---------------------------------------------------------------------------

local function add_recipe_bytes(bytes, path)
  local store = runtime.store()
  local recipe_cid, aerr = require("ipk.unixfs").add_bytes(bytes, {
    cid_version = 1, raw_leaves = true, chunker = "size-262144", blocks = store:blocks() })
  if not recipe_cid then return nil, "recipe: " .. tostring(aerr) end
  local ok, pin_err = store:pin_add(recipe_cid, { recursive = true, name = "recipe:" .. path:gsub(".*/", "") })
  if not ok then return nil, pin_err end
  return recipe_cid
end

--- Run the recipe at path with param overrides (strings or typed values).
-- opts {force={step=true}, no_cache=bool, interruptible=bool, quiet=bool}
-- @return result, nil, summary or nil, msg, summary
function M.run_file(path, overrides, opts)
  opts = opts or {}
  local r, bytes = M.load(path)
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
  local run, err = M.get_run(id)
  if not run then return nil, err end
  if run.status == "running" then
    return nil, "run " .. run.id .. " is still running (pid " .. tostring(run.pid) .. "); wait for it or stop it first"
  end
  if run.status == "ok" then runtime.log("run %s already succeeded; re-running it restores every step from the cache", run.id) end
  if not run.recipe_cid then return nil, "run " .. run.id .. " has no recorded recipe" end
  local chunks = {}
  local ok, cerr = require("ipk.unixfs").cat(run.recipe_cid, runtime.store():blocks(),
    function(c) chunks[#chunks + 1] = c end)
  if not ok then return nil, "recipe " .. run.recipe_cid .. ": " .. tostring(cerr) end
  local r, lerr = M.load_bytes(table.concat(chunks), run.recipe_path or run.recipe)
  if not r then return nil, lerr end
  local params, perr = recipe.resolve_params(r, run.params)
  if not params then return nil, perr end
  runtime.log("resuming run %s (%s, status %s)", run.id, r.name, run.status)
  return M.execute(r, { params = params, log = opts.log or runtime.log, recipe_cid = run.recipe_cid,
    recipe_path = run.recipe_path, resumed_from = run.id, interruptible = opts.interruptible,
    quiet = opts.quiet, force = opts.force, no_cache = opts.no_cache })
end

local function describe_changes(old, comp)
  local why = {}
  if not old then return { "never run before" } end
  if old.version ~= comp.version then why[#why + 1] = ("kind version %s -> %s"):format(tostring(old.version), comp.version) end
  local function canon_s(v) local ok, e = pcall(dagjson.encode, v) return ok and e or tostring(v) end
  local function show(v) return v == nil and "unset" or (type(v) == "table" and canon_s(v) or tostring(v)) end
  local keys = {}
  for k in pairs(comp.params) do keys[k] = true end
  for k in pairs(old.params or {}) do keys[k] = true end
  local sorted = {}
  for k in pairs(keys) do sorted[#sorted + 1] = k end
  table.sort(sorted)
  for _, k in ipairs(sorted) do
    local a, b = (old.params or {})[k], comp.params[k]
    if canon_s(a) ~= canon_s(b) then why[#why + 1] = ("param %s: %s -> %s"):format(k, show(a), show(b)) end
  end
  for f, l in pairs(comp.inputs) do
    if (old.inputs or {})[f] ~= dagjson.is_link(l) then why[#why + 1] = "input '" .. f .. "' changed" end
  end
  for f, h in pairs(comp.files or {}) do
    if (old.files or {})[f] ~= h then why[#why + 1] = "files under '" .. f .. "' changed" end
  end
  if old.code ~= comp.code then why[#why + 1] = "step code changed" end
  if canon_s(old.context or {}) ~= canon_s(comp.context or {}) then why[#why + 1] = "recipe changed" end
  if #why == 0 then why[1] = "not in cache (outputs were removed or never recorded)" end
  return why
end

--- Plan a recipe without running it: each step as "cached" or "run", and
-- why (which param or input changed since the last run of this recipe).
-- @return {recipe=, steps={{step, kind, status, why={...}, key=, output_cid=}}} or nil, msg
function M.plan(path, overrides, opts)
  opts = opts or {}
  local r, bytes = M.load(path)
  if not r then return nil, bytes end
  local params, perr = recipe.resolve_params(r, overrides)
  if not params then return nil, perr end
  local order, deps = recipe.deps(r)
  if not order then return nil, deps end
  local recipe_cid = require("ipk.unixfs").add_bytes(bytes, { cid_version = 1, raw_leaves = true,
    chunker = "size-262144", only_hash = true })
  if type(recipe_cid) ~= "string" then recipe_cid = nil end
  -- The previous run's step details, for the "why".
  local prev = {}
  local last = M.db():query("SELECT id FROM runs WHERE recipe = ? ORDER BY seq DESC LIMIT 1", r.name)[1]
  if last then
    for _, row in ipairs(M.run_steps(last.id)) do prev[row.step] = row.detail end
  end
  local force = opts.force or {}
  local states, out = {}, {}
  for _, name in ipairs(order) do
    local s = r.steps[name]
    local args = recipe.resolve_args(s, params, {})
    local ins, blocked = {}, nil
    for field, dep in pairs(input_steps(s)) do
      ins[field] = { step = dep, cid = states[dep].output_cid }
      if states[dep].status ~= "cached" then blocked = blocked or { field, dep } end
    end
    local e = { step = name, kind = s.kind.kind, deps = deps[name] }
    if blocked then
      e.status, e.why = "run", { ("input '%s' will be recomputed (step %s runs)"):format(blocked[1], blocked[2]) }
    elseif s.args.cache == false then
      e.status, e.why = "run", { "cache = false" }
    else
      local key, comp = step_key(s, args, ins, { recipe_cid = recipe_cid })
      e.key = key
      if not key then
        e.status, e.why = "run", { "not memoized: " .. comp }
      elseif opts.no_cache then e.status, e.why = "run", { "--no-cache" }
      elseif force[name] then e.status, e.why = "run", { "forced" }
      else
        local oc = cache_get(key)
        if oc and runtime.store():has(oc) then
          e.status, e.output_cid, e.why = "cached", oc, {}
        else
          e.status, e.why = "run", describe_changes(prev[name], comp)
        end
      end
    end
    states[name] = { status = e.status, output_cid = e.output_cid }
    out[#out + 1] = e
  end
  return { recipe = r.name, params = params, steps = out, previous_run = last and last.id or nil }
end

return M
