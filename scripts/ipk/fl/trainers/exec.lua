--- ipk.fl.trainers.exec: any command as a trainer (a PyTorch script, a
-- binary), behind the trainer contract (ipk.fl.trainers). The exchange
-- (files, config.json, result.json, environment) is documented in
-- docs/fl-trainers.md; in short, each call runs the command (an argv list,
-- no shell) in a fresh directory (ipk.staging, removed afterwards) holding
--   config.json        mode ("fit" | "evaluate" | "init"), client, round,
--                      seed, epochs, lr, batch, proximal_mu, features,
--                      classes, the strategy's hints, and the file names
--   model.safetensors  the global model (fit, evaluate)
--   train.safetensors  the client's rows: "x" F32 [n, features], "y" I64
--                      [n] class ids (regression: "y" F32 [n, outputs])
--   test.safetensors   the same for its test rows (when the shard has them)
-- and reads back what it wrote:
--   out.safetensors    the updated model (fit) / initial model (init):
--                      the global's names, shapes and dtypes, finite
--   result.json        {"num_examples": n, "metrics": {...}} (fit) or
--                      {"num_examples", "loss", "accuracy", ...} (evaluate)
-- The same paths are in the environment (IPK_TRAINER_MODE, _DIR, _CONFIG,
-- _MODEL, _TRAIN, _TEST, _OUT, _RESULT).
--
-- The process runs on the event loop (ipk_train_spawn: nothing blocks, the
-- task waits like for a job) in its own process group: the timeout
-- (spec.timeout seconds, default 3600) and a cancelled task (a step's
-- timeout, Ctrl-C) kill the group. A non-zero exit (the error carries the
-- tail of its stderr), a timeout, a missing or malformed output, NaN/inf,
-- and a wrong tensor name, shape or dtype are errors naming the client:
-- the round loop rejects that update.
--
-- Shard files are written once per (client, rows) and trainer (a cache
-- under ipk.staging, each file's CID checked on write and its
-- size/mtime/inode before every reuse), then hard-linked into each call's
-- directory: a 400-round run does not rewrite its data 400 times.
--
-- Spec: {kind = "exec", command = {"python3", "client.py", ...},
--        timeout = 3600, env = {NAME = "value"}, init = "model.safetensors"
--        (optional: the initial model; else the command runs in mode
--        "init"), epochs, lr, batch (defaults for config), config = {...}
--        (more defaults passed through), parallel = 0 (at most that many
--        commands of this trainer at once; 0: no limit), keep = false (keep
--        the directories for debugging)}
local core = require "ipk.core"
local sched = require "ipk.sched"
local json = require "ipk.json"
local cidmod = require "ipk.cid"
local fs = require "ipk.fs"
local staging = require "ipk.staging"
local T = require "ipk.fl.tensors"
local base = require "ipk.fl.trainers.contract"

local ffi, lib = core.ffi, core.lib
local type, tostring, ipairs, pairs, floor = type, tostring, ipairs, pairs, math.floor

local M = {}

M.DEFAULT_TIMEOUT = 3600

local ETIMEDOUT = core.errors().ETIMEDOUT.code

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, bytes)
  local f, err = io.open(path, "wb")
  if not f then return nil, tostring(err), "EIO" end
  local ok, werr = f:write(bytes)
  local cok, cerr = f:close()
  if not ok or not cok then return nil, path .. ": " .. tostring(werr or cerr), "EIO" end
  return true
end

-- A command's result.json larger than this is refused unread: it holds a
-- count and a few metrics, and a runaway writer must not exhaust memory.
M.RESULT_MAX = 16 * 1024 * 1024

-- The size of a file (nil if it cannot be opened).
local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- The last lines of a stderr file (at most 15 lines / 2000 bytes). Only
-- the last 2000 bytes are read: a command may write gigabytes to stderr.
local function tail(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local size = f:seek("end") or 0
  f:seek("set", math.max(0, size - 2000))
  local s = f:read(2000) or ""
  f:close()
  if size > 2000 then s = s:gsub("^[^\n]*\n", "") end
  local lines = {}
  for l in s:gmatch("[^\n]+") do lines[#lines + 1] = l end
  local from = math.max(1, #lines - 14)
  return table.concat(lines, "\n", from)
end

--- The safetensors bytes of one shard part: "x" F32 [n, F] (its rows
-- gathered through idx), "y" I64 [n] (labels) or F32 [n, T] (targets).
function M.part_bytes(shard, part, which)
  local n, F = part.n or 0, shard.features
  local set = T.new { ["ipk.client"] = tostring(shard.client), ["ipk.part"] = which }
  local x = set:add("x", "F32", { n, F })
  local X, idx = part.X, part.idx
  for i = 0, n - 1 do
    local row = idx and idx[i] or i
    ffi.copy(x.ptr + i * F, X + row * F, F * 4)
  end
  if part.targets ~= nil then
    local Tn = shard.outputs or 1
    local y = set:add("y", "F32", Tn == 1 and { n } or { n, Tn })
    for i = 0, n - 1 do
      local row = idx and idx[i] or i
      ffi.copy(y.ptr + i * Tn, part.targets + row * Tn, Tn * 4)
    end
  else
    local labels = part.labels or part.y
    if labels == nil then return nil, "shard " .. which .. " part has neither labels nor targets", "EINVAL" end
    local y = set:add("y", "I64", { n })
    for i = 0, n - 1 do y.ptr[i] = labels[idx and idx[i] or i] end
  end
  return set:to_safetensors()
end

-- A NULL-terminated const char* array of a Lua list of strings (filled
-- one by one: a table initializer of one element would be replicated into
-- the terminator). The strings stay owned by the list.
local function cstrings(list)
  local a = ffi.new("const char*[?]", #list + 1)
  for i, v in ipairs(list) do a[i - 1] = v end
  return a
end

local function argv_of(spec)
  local c = spec.command
  if type(c) == "string" then
    return nil, "exec trainer: command must be a list of arguments (no shell), e.g. {\"python3\", \"client.py\"}, got a string", "EINVAL"
  end
  if type(c) ~= "table" or #c == 0 then return nil, "exec trainer: command must be a non-empty list of arguments", "EINVAL" end
  local out = {}
  for i, a in ipairs(c) do
    if type(a) ~= "string" and type(a) ~= "number" then
      return nil, "exec trainer: command[" .. i .. "] must be a string, got " .. type(a), "EINVAL"
    end
    out[i] = tostring(a)
    if out[i]:find("\0", 1, true) then return nil, "exec trainer: command[" .. i .. "] holds a NUL byte", "EINVAL" end
  end
  return out
end

--- An exec trainer for spec (see the module comment).
function M.new(spec)
  local argv, aerr, aname = argv_of(spec)
  if not argv then return nil, aerr, aname end
  local timeout = spec.timeout or M.DEFAULT_TIMEOUT
  if type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0 or timeout > 2 ^ 40 then
    return nil, "exec trainer: timeout must be a positive number of seconds, got " .. tostring(spec.timeout), "EINVAL"
  end
  local parallel = spec.parallel or 0
  if type(parallel) ~= "number" or parallel < 0 or parallel ~= floor(parallel) then
    return nil, "exec trainer: parallel must be an integer >= 0 (0: no limit), got " .. tostring(spec.parallel), "EINVAL"
  end
  local env = {}
  for k, v in pairs(spec.env or {}) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") or (type(v) ~= "string" and type(v) ~= "number") then
      return nil, "exec trainer: env must map NAME = string, got " .. tostring(k) .. " = " .. tostring(v), "EINVAL"
    end
    env[#env + 1] = k .. "=" .. tostring(v)
  end
  table.sort(env)
  local shown = table.concat(argv, " ")
  if #shown > 80 then shown = shown:sub(1, 77) .. "..." end
  local tr = { kind = "exec", name = argv[1], spec = spec }
  local cache = { dir = nil, files = {}, n = 0 }

  -- Path and CID of the cached file of one shard part, written (and its
  -- bytes' CID checked) when missing or changed since.
  local function part_file(shard, part, which)
    -- The rows' identity: their cid, else the hash of their row ids (an
    -- address alone could be reused by another array); rows 0..n-1 of an
    -- X without ids are not cached (key nil: written for each call).
    local rows = part.cid
    if not rows and part.idx ~= nil and (part.n or 0) > 0 then
      rows = cidmod.format(assert(cidmod.of(1, 0x55, ffi.string(part.idx, part.n * 4))))
        .. "@" .. tostring(ffi.cast("uintptr_t", part.X))
    end
    local key = rows and table.concat({ tostring(shard.client), which, rows, tostring(part.n or 0) }, "|")
    local c = key and cache.files[key]
    if c and fs.fingerprint(c.path) == c.fp then return c.path, c.cid end
    if not cache.dir then
      local d, err, name = staging.new("trainerdata")
      if not d then return nil, err, name end
      cache.dir = d
    end
    local bytes, berr, bname = M.part_bytes(shard, part, which)
    if not bytes then return nil, berr, bname end
    cache.n = cache.n + 1
    local path = ("%s/%d-%s.safetensors"):format(cache.dir, cache.n, which)
    local ok, werr, wname = write_file(path, bytes)
    if not ok then return nil, werr, wname end
    local want = cidmod.format(assert(cidmod.of(1, 0x55, bytes)))
    local back = read_file(path)
    local got = back and cidmod.format(assert(cidmod.of(1, 0x55, back)))
    if got ~= want then return nil, path .. ": the shard file read back differs from what was written", "EIO" end
    local fp, ferr, fname = fs.fingerprint(path)
    if not fp then return nil, ferr, fname end
    if key then cache.files[key] = { path = path, fp = fp, cid = want } end
    return path, want
  end

  -- Run the command once in a fresh directory. prep(dir) writes the
  -- inputs and returns the config table; returns the directory (the
  -- caller reads the outputs, then calls done(dir)).
  local function run_once(mode, shard, prep)
    local who = base.who(shard)
    local dir, derr, dname = staging.new("trainer")
    if not dir then return nil, who .. ": " .. tostring(derr), dname end
    local function fail(msg, name)
      if not spec.keep then staging.remove(dir) end
      return nil, base.prefixed(who, msg), name
    end
    local cfg, perr, pname = prep(dir)
    if not cfg then return fail(perr, pname) end
    cfg.mode = mode
    cfg.client = tostring(shard and shard.client or "")
    cfg.model = cfg.model or (mode ~= "init" and "model.safetensors" or nil)
    cfg.out, cfg.result = "out.safetensors", "result.json"
    local text, jerr = json.encode(cfg)
    if not text then return fail("config.json: " .. tostring(jerr), "EINVAL") end
    local ok, werr, wname = write_file(dir .. "/config.json", text)
    if not ok then return fail(werr, wname) end
    local envs = { "IPK_TRAINER_MODE=" .. mode, "IPK_TRAINER_DIR=" .. dir,
      "IPK_TRAINER_CONFIG=" .. dir .. "/config.json", "IPK_TRAINER_OUT=" .. dir .. "/out.safetensors",
      "IPK_TRAINER_RESULT=" .. dir .. "/result.json" }
    if cfg.model then envs[#envs + 1] = "IPK_TRAINER_MODEL=" .. dir .. "/" .. cfg.model end
    if cfg.train then envs[#envs + 1] = "IPK_TRAINER_TRAIN=" .. dir .. "/" .. cfg.train.path end
    if cfg.test then envs[#envs + 1] = "IPK_TRAINER_TEST=" .. dir .. "/" .. cfg.test.path end
    for _, e in ipairs(env) do envs[#envs + 1] = e end
    local c_argv, c_env = cstrings(argv), cstrings(envs)
    -- the C struct borrows these strings: locals keep them alive
    local out_path, err_path = dir .. "/.stdout", dir .. "/.stderr"
    local o = ffi.new("ipk_train_spawn_opts_t")
    o.argv, o.cwd, o.env_add = c_argv, dir, c_env
    o.stdout_path, o.stderr_path = out_path, err_path
    o.timeout_ms = floor(timeout * 1000 + 0.5)
    local pp, id, eb = ffi.new("ipk_train_proc_t*[1]"), ffi.new("uint64_t[1]"), core.errbuf()
    local rc = lib.ipk_train_spawn(sched.loop, o, pp, id, eb)
    if rc ~= 0 then
      local _, msg, name = core.check(rc, eb)
      return fail("exec trainer: " .. msg, name)
    end
    local proc = ffi.gc(pp[0], lib.ipk_train_proc_free)
    local _ = { c_argv, c_env, argv, envs, out_path, err_path } -- borrowed until the spawn returned
    local okw, wrc = pcall(sched.await, id[0])
    if not okw then
      -- cancelled: the group was killed and reaped before the wake-up
      if not spec.keep then staging.remove(dir) end
      error(wrc, 0)
    end
    if wrc == ETIMEDOUT then
      local t = tail(dir .. "/.stderr")
      return fail(("exec trainer '%s': timed out after %gs (killed)%s"):format(shown, timeout,
        t ~= "" and (":\n" .. t) or ""), "ETIMEDOUT")
    elseif wrc ~= 0 then
      local _, msg, name = core.check(wrc, nil)
      return fail("exec trainer '" .. shown .. "': " .. msg, name)
    end
    local st, sig = ffi.new("int64_t[1]"), ffi.new("int[1]")
    lib.ipk_train_proc_status(proc, st, sig)
    if sig[0] ~= 0 or st[0] ~= 0 then
      local how = sig[0] ~= 0 and ("killed by signal " .. sig[0]) or ("exit code " .. tonumber(st[0]))
      local t = tail(dir .. "/.stderr")
      return fail(("exec trainer '%s': %s%s"):format(shown, how, t ~= "" and (":\n" .. t) or " (no stderr)"), "EIO")
    end
    return dir
  end

  -- At most `parallel` commands of this trainer at once (the round loop
  -- starts every client together): a call waits for a slot, cancellably.
  local active = 0
  local function run(mode, shard, prep)
    while parallel > 0 and active >= parallel do sched.sleep(0.02) end
    active = active + 1
    local r = { pcall(run_once, mode, shard, prep) }
    active = active - 1
    if not r[1] then error(r[2], 0) end
    return r[2], r[3], r[4]
  end

  local function done(dir)
    if not spec.keep then staging.remove(dir) end
  end

  -- like = the global model when there is one: an update has its layout, so
  -- a file larger than its data plus the largest safetensors header (1e8
  -- bytes, the format's limit) is refused unread instead of exhausting memory
  local function read_model(dir, who, like)
    if like then
      local max = 8 + 100000000
      for _, n in ipairs(like.names) do max = max + like.tensors[n].nbytes end
      local size = file_size(dir .. "/out.safetensors")
      if size and size > max then
        return nil, ("%s: out.safetensors: %d bytes, more than the %d a model of the global's layout can take"):format(
          who, size, max), "EFORMAT"
      end
    end
    local bytes = read_file(dir .. "/out.safetensors")
    if not bytes then return nil, who .. ": exec trainer '" .. shown .. "' wrote no out.safetensors", "ENOENT" end
    return T.from_safetensors(bytes, who .. ": out.safetensors")
  end

  local function read_json(dir, who)
    local size = file_size(dir .. "/result.json")
    if size and size > M.RESULT_MAX then
      return nil, ("%s: result.json: %d bytes, more than the limit of %d"):format(who, size, M.RESULT_MAX), "EFORMAT"
    end
    local text = read_file(dir .. "/result.json")
    if not text then return nil, who .. ": exec trainer '" .. shown .. "' wrote no result.json", "ENOENT" end
    local v, err, name = json.decode(text, { prefix = "result.json" })
    if v == nil then
      if text:find("NaN", 1, true) or text:find("Infinity", 1, true) then
        return nil, who .. ": result.json holds NaN or Infinity (not JSON, and not a usable metric): " .. err, "ERANGE"
      end
      return nil, who .. ": " .. err, name
    end
    return v
  end

  -- Inputs shared by fit and evaluate: the model and the shard parts.
  local function prep_inputs(dir, global, shard, parts, config)
    local bytes, err, name = global:to_safetensors()
    if not bytes then return nil, err, name end
    local ok, werr, wname = write_file(dir .. "/model.safetensors", bytes)
    if not ok then return nil, werr, wname end
    local cfg = {}
    for k, v in pairs(spec.config or {}) do cfg[k] = v end
    for _, k in ipairs { "epochs", "lr", "batch" } do
      if spec[k] ~= nil then cfg[k] = spec[k] end
    end
    for k, v in pairs(config or {}) do cfg[k] = v end
    cfg.features = shard.features
    cfg.classes = shard.classes
    cfg.outputs = shard.outputs
    for _, which in ipairs(parts) do
      local part = shard[which]
      if part then
        local path, cid, pname = part_file(shard, part, which)
        if not path then return nil, cid, pname end
        local n, lerr, lname = fs.copy_tree(path, dir .. "/" .. which .. ".safetensors")
        if not n then return nil, lerr, lname end
        cfg[which] = { path = which .. ".safetensors", rows = part.n or 0, cid = cid }
      end
    end
    return cfg
  end

  function tr.init(sp, features, classes, seed)
    sp = sp or spec
    local who = "exec trainer init"
    if sp.init then
      local bytes = read_file(sp.init)
      if not bytes then return nil, who .. ": cannot read " .. tostring(sp.init), "ENOENT" end
      local set, err, name = T.from_safetensors(bytes, sp.init)
      if not set then return nil, err, name end
      local ok, ferr, fname = set:check_finite(sp.init)
      if not ok then return nil, ferr, fname end
      return set
    end
    local shard = { client = "init", features = features, classes = classes }
    local dir, err, name = run("init", shard, function()
      return { features = features, classes = classes, seed = seed or 0 }
    end)
    if not dir then return nil, err, name end
    local set
    set, err, name = read_model(dir, base.who(shard))
    if set then
      local ok
      ok, err, name = set:check_finite(base.who(shard))
      if not ok then set = nil
      elseif set:count() == 0 then set, err, name = nil, base.who(shard) .. ": out.safetensors holds no tensor", "EFORMAT"
      end
    end
    done(dir)
    return set, err, name
  end

  function tr.fit(global, shard, config)
    local who = base.who(shard)
    if not shard.train then return nil, who .. ": the shard has no train part", "EINVAL" end
    local dir, err, name = run("fit", shard, function(d)
      return prep_inputs(d, global, shard, { "train", "test" }, config)
    end)
    if not dir then return nil, err, name end
    local set, r
    set, err, name = read_model(dir, who, global)
    if set then
      local ok
      ok, err, name = base.check_update(global, set, who)
      if not ok then set = nil end
    end
    if set then
      r, err, name = read_json(dir, who)
      if r ~= nil then r, err, name = base.check_result(r, who) end
    end
    done(dir)
    if not (set and r) then return nil, err, name end
    -- the global's metadata (ipk.model ...) stays with the model
    set.metadata = {}
    for k, v in pairs(global.metadata) do set.metadata[k] = v end
    return set, r
  end

  function tr.evaluate(tensors, shard)
    local who = base.who(shard)
    if not shard.test then return nil, who .. ": the shard has no test part to evaluate on", "EINVAL" end
    local dir, err, name = run("evaluate", shard, function(d)
      return prep_inputs(d, tensors, shard, { "test" }, nil)
    end)
    if not dir then return nil, err, name end
    local r
    r, err, name = read_json(dir, who)
    if r ~= nil then r, err, name = base.check_eval(r, who) end
    done(dir)
    return r, err, name
  end

  function tr.close()
    if cache.dir then staging.remove(cache.dir) end
    cache.dir, cache.files = nil, {}
  end

  return tr
end

return M
