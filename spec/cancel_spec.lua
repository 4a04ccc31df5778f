-- Everything cancellable, end to end: real ipkrun processes running recipes
-- whose steps spin in pure Lua, wait on a server that never answers, sit in
-- a C job (training, a large import) or allocate without bound. A step's
-- timeout and Ctrl-C (SIGINT) stop each of them; the memory cap stops the
-- allocation with an error naming the step and the cap. Processes are
-- started in the background, watched with bounded polls and killed by PID.
local u = support
local json = require "cjson"

local function sleep(s) os.execute("sleep " .. s) end

local function now()
  local p = io.popen("date +%s.%N"); local t = tonumber(p:read("*l")); p:close()
  return t
end

-- Start `ipkrun ARGS` in dir with env; returns a handle {pid=, dir=}. The
-- shell wrapper writes ipkrun's pid, then its exit status (128+N when killed
-- by signal N) once it ends.
local function start(dir, args, env)
  local parts = { "cd " .. u.q(dir) .. " && (" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. u.q(v) end
  parts[#parts + 1] = u.q(u.ipkrun_path)
  for _, a in ipairs(args) do parts[#parts + 1] = u.q(a) end
  local cmd = table.concat(parts, " ") .. " >out 2>err </dev/null & echo $! >pid; wait $!; echo $? >rc) >/dev/null 2>&1 &"
  os.remove(dir .. "/rc"); os.remove(dir .. "/pid")
  os.execute("sh -c " .. u.q(cmd))
  local pid
  for _ = 1, 100 do
    pid = u.exists(dir .. "/pid") and tonumber(u.read(dir .. "/pid"))
    if pid then break end
    sleep(0.05)
  end
  assert(pid, "ipkrun did not start")
  return { pid = pid, dir = dir }
end

-- Wait (at most limit s) for h to end; returns rc, stdout, stderr. On the
-- limit the process is killed (by its PID) and rc is nil.
local function finish(h, limit)
  local t0 = now()
  while now() - t0 < limit do
    if u.exists(h.dir .. "/rc") then
      local rc = tonumber(u.read(h.dir .. "/rc"))
      if rc then return rc, u.read(h.dir .. "/out"), u.read(h.dir .. "/err") end
    end
    sleep(0.05)
  end
  os.execute("kill -9 " .. h.pid .. " 2>/dev/null")
  -- The wrapper still writes the killed process's status (137) to rc: wait
  -- for it, or the next test in this dir (start() removes rc first) could
  -- read it as its own process's status.
  for _ = 1, 100 do
    if tonumber(u.read(h.dir .. "/rc") or "") then break end
    sleep(0.05)
  end
  return nil, u.read(h.dir .. "/out"), u.read(h.dir .. "/err")
end

-- Wait until h's stderr shows pattern (a step started); false after limit.
local function wait_for(h, pattern, limit)
  local t0 = now()
  while now() - t0 < limit do
    if (u.read(h.dir .. "/err") or ""):find(pattern) then return true end
    sleep(0.05)
  end
  return false
end

describe("recipe code instrumentation (ipk.run.sandbox.instrument)", function()
  local sandbox = require "ipk.run.sandbox"
  it("polls at loop bodies, repeat, goto and function entries, never in strings or comments", function()
    local src = table.concat({
      'local s = "while x do end" -- for i = 1, 2 do end',
      "--[==[ repeat function() end ]==] local l = [[do]]",
      "for i = 1, 3 do s = s .. i end",
      "while false do end repeat until true",
      "local function f(a, b) return a end",
      "local t = { g = function(...) return ... end }",
      "do ::top:: if false then goto top end end",
      "local n = 1e-5 .. 0x1F",
    }, "\n")
    local want = table.concat({
      'local s = "while x do end" -- for i = 1, 2 do end',
      "--[==[ repeat function() end ]==] local l = [[do]]",
      "for i = 1, 3 do __ipk_poll(); s = s .. i end",
      "while false do __ipk_poll(); end repeat __ipk_poll(); until true",
      "local function f(a, b) __ipk_poll(); return a end",
      "local t = { g = function(...) __ipk_poll(); return ... end }",
      "do __ipk_poll(); ::top:: if false then  __ipk_poll(); goto top end end",
      "local n = 1e-5 .. 0x1F",
    }, "\n")
    assert.equal(want, sandbox.instrument(src))
    -- the same lines, and code that parses as before (a statement after the
    -- poll that starts with "(" is not read as a call of the poll's result)
    local chunk = assert(loadstring(sandbox.instrument("local x = 0\ndo\n(function() x = 1 end)()\nend\nerror('line 5')")))
    local calls = 0
    setfenv(chunk, { __ipk_poll = function() calls = calls + 1 end, error = error })
    local ok, err = pcall(chunk)
    assert.is_false(ok)
    assert.matches(":5: line 5$", err)
    assert.equal(2, calls)   -- the do-block and the function entry
  end)
end)

describe("cancellation (ipkrun processes)", function()
  local dir, env
  setup(function()
    dir = u.tmpdir()
    env = { IPK_HOME = dir .. "/home" }
  end)
  teardown(function() u.rm_rf(dir) end)

  local function recipe(name, body)
    u.write(dir .. "/" .. name .. ".lua", "local ipk = require 'ipk'\nlocal ffi = require 'ffi'\n"
      .. "return ipk.recipe { name = '" .. name .. "', steps = {\n" .. body .. "\n} }\n")
    return name .. ".lua"
  end

  local function runs_status(id)
    local code, out = u.run(env, "runs", "--json")
    assert.equal(0, code)
    for _, r in ipairs(json.decode(out).runs) do
      if r.id == id or (not id) then return r.status, r end
    end
  end

  it("a step spinning in pure Lua ends at its timeout, naming the step", function()
    local file = recipe("spin", [[
  spin = ipk.step { timeout = 2, run = function() local n = 0 while true do n = n + 1 end end },]])
    local t0 = now()
    local rc, _, err = finish(start(dir, { "run", file }, env), 15)
    local dt = now() - t0
    assert.equal(1, rc)
    assert.is_true(dt < 6, "took " .. dt .. " s")
    assert.matches("step 'spin': cancelled: timeout after 2s", err, 1, true)
  end)

  it("a compiled goto loop and a tail-recursive function stop at their timeouts", function()
    local file = recipe("spin_more", [[
  jumps = ipk.step { timeout = 1, run = function() local n = 0 ::top:: n = n + 1 goto top end },
  recurse = ipk.step { timeout = 1, run = function()
    local function f(n) return f(n + 1) end
    return f(0)
  end },]])
    local t0 = now()
    local rc, _, err = finish(start(dir, { "run", file }, env), 20)
    local dt = now() - t0
    assert.equal(1, rc)
    assert.is_true(dt < 6, "took " .. dt .. " s")
    assert.matches("cancelled: timeout after 1s", err, 1, true)
    local code, out = u.run(env, "runs", "--json")
    assert.equal(0, code)
    local run = json.decode(out).runs[1]
    assert.equal("spin_more", run.recipe)
    assert.equal("failed", run.status)
  end)

  -- Regression (CI): independent steps are spawned together, so all but
  -- the first start at (or a moment before) their deadline; one of them
  -- once lost the watchdog's raise and spun forever (spec/sched_spec.lua).
  it("six independent spinning steps with one timeout all stop", function()
    local body = {}
    for i = 1, 6 do
      body[#body + 1] = ("  s%d = ipk.step { timeout = 0.5, run = function() local n = 0 while true do n = n + %d end end },"):format(i, i)
    end
    local file = recipe("spin_six", table.concat(body, "\n"))
    local t0 = now()
    local rc, _, err = finish(start(dir, { "run", file }, env), 20)
    local dt = now() - t0
    assert.equal(1, rc)
    assert.is_true(dt < 8, "took " .. dt .. " s")
    local _, n = err:gsub("cancelled: timeout after 0.5s", "")
    assert.is_true(n >= 6, err)
  end)

  it("Ctrl-C stops a spinning step (even inside pcall): exit 130, run 'cancelled', nothing recorded", function()
    local file = recipe("spin_int", [[
  first = ipk.step { run = function() return 1 end },
  spin = ipk.step { inputs = { f = "first" }, run = function()
    local t = {}
    while true do pcall(function() while true do t[1] = 1 end end) end
  end },
  after = ipk.step { inputs = { s = "spin" }, run = function() return 2 end },]])
    local h = start(dir, { "run", file }, env)
    assert.is_true(wait_for(h, "step spin: running", 20), "the step never started")
    sleep(0.5)
    local t0 = now()
    os.execute("kill -INT " .. h.pid)
    local rc, _, err = finish(h, 15)
    local dt = now() - t0
    assert.equal(130, rc)
    assert.is_true(dt < 4, "took " .. dt .. " s")
    assert.matches("cancelled: interrupted (Ctrl-C)", err, 1, true)
    local status, run = runs_status()
    assert.equal("spin_int", run.recipe)
    assert.equal("cancelled", status)
    -- the interrupted step left no cached output: a plan would run it again
    local code, out = u.run(env, "plan", dir .. "/" .. file, "--json")
    assert.equal(0, code)
    local plan = json.decode(out)
    local by = {}
    for _, s in ipairs(plan.steps) do by[s.step] = s.status end
    assert.equal("cached", by.first)
    assert.equal("run", by.spin)
  end)

  it("a step waiting on a server that never answers times out", function()
    local f = io.popen([[python3 -c 'import os,socket,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(64)
print(os.getpid(), s.getsockname()[1], flush=True); time.sleep(60)' &]])
    local pid, port = f:read("*l"):match("^(%d+) (%d+)$")
    f:close()
    local file = recipe("hang", ([[
  fetch = ipk.step { timeout = 1, run = function()
    return require("ipk.http").request { url = "http://127.0.0.1:%s/x", idle_timeout = 0, timeout = 30 }
  end },]]):format(port))
    local t0 = now()
    local rc, _, err = finish(start(dir, { "run", file }, env), 15)
    local dt = now() - t0
    os.execute("kill " .. pid)
    assert.equal(1, rc)
    assert.is_true(dt < 6, "took " .. dt .. " s")
    assert.matches("step 'fetch': cancelled: timeout after 1s", err, 1, true)
  end)

  it("a step in a C job (training) is cancelled between batches", function()
    local file = recipe("train", [[
  fit = ipk.step { timeout = 1, run = function()
    local n, F = 4000, 256
    local p = ipk.fl.model.new_params(ipk.fl.model.softmax { epochs = 1000000, batch = 32 }, F)
    local X, y, idx = ffi.new("float[?]", n * F), ffi.new("uint8_t[?]", n), ffi.new("uint32_t[?]", n)
    for i = 0, n - 1 do y[i] = i % 10; idx[i] = i end
    return ipk.fl.model.fit(p, { X = X, y = y }, idx, n, 1)
  end },]])
    local t0 = now()
    local rc, _, err = finish(start(dir, { "run", file }, env), 30)
    local dt = now() - t0
    assert.equal(1, rc)
    assert.is_true(dt < 6, "took " .. dt .. " s")
    assert.matches("step 'fit': cancelled: timeout after 1s", err, 1, true)
  end)

  it("a step importing a large file is cancelled between chunk batches", function()
    local big = dir .. "/sparse.bin"
    assert.equal(0, (u.sh("truncate -s 64G " .. u.q(big))))
    local file = recipe("import", ([[
  add = ipk.step { timeout = 1, run = function()
    return ipk.unixfs.add(%q, { only_hash = true })
  end },]]):format(big))
    local t0 = now()
    local rc, _, err = finish(start(dir, { "run", file }, env), 60)
    local dt = now() - t0
    os.remove(big)
    assert.equal(1, rc)
    assert.is_true(dt < 6, "took " .. dt .. " s")
    assert.matches("step 'add': cancelled: timeout after 1s", err, 1, true)
  end)

  it("the memory cap stops an unbounded allocation with a clear error; RSS stays below cap + headroom", function()
    local file = recipe("grow", [[
  grow = ipk.step { run = function()
    local t = {} while true do t[#t + 1] = string.rep("x", 1e6) .. #t end
  end },]])
    local h = start(dir, { "run", file, "--max-memory", "512M" }, env)
    -- peak RSS (VmHWM), sampled until the process ends
    local hwm = 0
    for _ = 1, 1200 do
      local f = io.open("/proc/" .. h.pid .. "/status")
      if not f then break end
      local st = f:read("*a")
      f:close()
      local kb = tonumber(st:match("VmHWM:%s*(%d+)"))
      if kb and kb > hwm then hwm = kb end
      if u.exists(dir .. "/rc") then break end
      sleep(0.05)
    end
    local rc, _, err = finish(h, 60)
    assert.equal(1, rc)
    assert.matches("step 'grow': memory cap exceeded", err, 1, true)
    assert.matches("cap 512.0 MiB: --max-memory or IPK_MAX_MEMORY", err, 1, true)
    assert.is_true(hwm > 400 * 1024, "peak RSS " .. hwm .. " kB: the recipe did not allocate")
    -- (ASan's shadow and quarantine are not the recipe's memory)
    if not u.sanitized then
      assert.is_true(hwm < (512 + 256) * 1024, "peak RSS " .. hwm .. " kB above cap + headroom")
    end
  end)

  it("IPK_MAX_MEMORY and --max-memory refuse what is not a size", function()
    local code, _, err = u.run({ IPK_HOME = env.IPK_HOME, IPK_MAX_MEMORY = "lots" }, "runs")
    assert.equal(2, code)
    assert.matches("IPK_MAX_MEMORY=lots: not a size", err, 1, true)
    code, _, err = u.run(env, "runs", "--max-memory", "2X")
    assert.equal(2, code)
    assert.matches("--max-memory: '2X' is not a size", err, 1, true)
  end)
end)
