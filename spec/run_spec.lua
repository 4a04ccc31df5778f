-- ipk.run: the recipe engine in process (memoization, concurrency,
-- retries, timeouts, cancellation, sandbox, run records) and its commands
-- end to end (runs, plan, resume, logs, graph). Own temporary $IPK_HOME.
local u = support
local json = require "cjson"
local ffi = require "ffi"
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")

local home_root = u.tmpdir()
ffi.C.setenv("IPK_HOME", home_root .. "/home", 1)

local runner = require "ipk.run"
local recipe = require "ipk.run.recipe"
local sched = require "ipk.sched"
local runtime = require "ipk.runtime"
runtime.quiet = true

-- Counters of step executions, per label (only real runs bump them).
local calls = {}
local counted = recipe.kind { kind = "test.counted", version = 1, inputs = { from = true },
  run = function(_, a)
    calls[a.label] = (calls[a.label] or 0) + 1
    return { v = (a.from and a.from.v or 0) + a.n }
  end,
  encode = function(out) return { v = out.v } end,
  decode = function(rec) return { v = rec.v } end }

local function chain(params)
  return recipe.recipe { name = "chain", params = params or { a = 1, c = 100 }, steps = {
    a = counted { n = recipe.param "a", label = "a" },
    b = counted { from = "a", n = 10, label = "b" },
    c = counted { from = "b", n = recipe.param "c", label = "c" },
    side = counted { n = 5, label = "side" },
  } }
end

local function exec(r, overrides, opts)
  opts = opts or {}
  opts.params = assert(recipe.resolve_params(r, overrides or {}))
  opts.progress = false
  return sched.run_task(runner.execute, r, opts)
end

local function write(path, s) u.write(path, s) return path end

describe("ipk.run", function()
  teardown(function() u.rm_rf(home_root) end)
  before_each(function() calls = {} end)

  it("memoizes by key: an unchanged re-run does no step work", function()
    local r = chain()
    local out, err, sum = exec(r)
    assert.is_nil(err)
    assert.equal(111, out.c.v)
    assert.same({ a = 1, b = 1, c = 1, side = 1 }, calls)
    assert.equal("ok", sum.steps.c.status)
    calls = {}
    out, err, sum = exec(r)
    assert.is_nil(err)
    assert.equal(111, out.c.v)
    assert.same({}, calls)
    for _, n in ipairs { "a", "b", "c", "side" } do assert.equal("cached", sum.steps[n].status) end
  end)

  it("changing one param re-runs exactly the steps downstream of it", function()
    local r = chain()
    exec(r)
    calls = {}
    local out = exec(r, { a = "2" })
    assert.equal(112, out.c.v)
    assert.same({ a = 1, b = 1, c = 1 }, calls)   -- side does not depend on a
    calls = {}
    out = exec(r, { a = "2", c = "200" })
    assert.equal(212, out.c.v)
    assert.same({ c = 1 }, calls)
  end)

  it("a changed upstream step with the same output does not re-run downstream", function()
    -- b's output is the same whatever `label` says: its output record (and
    -- so c's input link) is unchanged.
    local r = chain()
    exec(r)
    local r2 = recipe.recipe { name = "chain", params = { a = 1, c = 100 }, steps = {
      a = counted { n = recipe.param "a", label = "a2" },
      b = counted { from = "a", n = 10, label = "b" },
      c = counted { from = "b", n = recipe.param "c", label = "c" },
      side = counted { n = 5, label = "side" },
    } }
    calls = {}
    exec(r2)
    assert.same({ a2 = 1 }, calls)
  end)

  it("--force STEP re-runs that step; --no-cache re-runs all", function()
    local r = chain()
    exec(r)
    calls = {}
    local _, _, sum = exec(r, {}, { force = { b = true } })
    -- b re-ran with the same output, so c stays cached
    assert.same({ b = 1 }, calls)
    assert.equal("cached", sum.steps.c.status)
    calls = {}
    exec(r, {}, { no_cache = true })
    assert.same({ a = 1, b = 1, c = 1, side = 1 }, calls)
    local _, err = exec(r, {}, { force = { nope = true } })
    assert.equal("--force: recipe 'chain' has no step 'nope'", err)
  end)

  it("runs independent steps concurrently on the event loop", function()
    local r = recipe.recipe { name = "conc", steps = {
      x = recipe.step { cache = false, run = function() sched.sleep(0.3) return 1 end },
      y = recipe.step { cache = false, run = function() sched.sleep(0.3) return 2 end },
      z = recipe.step { cache = false, inputs = { x = "x", y = "y" }, run = function(_, i) return i.x + i.y end },
    } }
    local t0 = require("ipk.core").now()
    local out = exec(r)
    local dt = require("ipk.core").now() - t0
    assert.equal(3, out.z)
    assert.is_true(dt < 0.5, "steps ran one after the other: " .. dt)
  end)

  it("retries a failing step and records its attempts", function()
    local n = 0
    local r = recipe.recipe { name = "flaky", steps = {
      f = recipe.step { retries = 2, cache = false, run = function()
        n = n + 1
        if n < 3 then error("transient " .. n, 0) end
        return "fine"
      end },
    } }
    local out, err, sum = exec(r)
    assert.is_nil(err)
    assert.equal("fine", out.f)
    assert.equal(3, n)
    local rows = runner.run_steps(sum.id)
    assert.equal(3, rows[1].attempts)
    local logs = runner.logs(sum.id, "f")
    assert.equal("attempt 1/3 failed: transient 1", logs[1].line)
    assert.equal("attempt 2/3 failed: transient 2", logs[2].line)
    n = 0
    r = recipe.recipe { name = "flaky2", steps = {
      f = recipe.step { retries = 1, run = function() n = n + 1; error("always", 0) end } } }
    out, err = exec(r)
    assert.is_nil(out)
    assert.equal("step 'f': always", err)
    assert.equal(2, n)
  end)

  it("times a step out, records no output for it and skips what depends on it", function()
    local r = recipe.recipe { name = "slow", steps = {
      s = recipe.step { timeout = 0.2, run = function() sched.sleep(10) return 1 end },
      t = recipe.step { inputs = { s = "s" }, run = function(_, i) return i.s end },
    } }
    local t0 = require("ipk.core").now()
    local out, err, sum = exec(r)
    assert.is_true(require("ipk.core").now() - t0 < 2)
    assert.is_nil(out)
    assert.equal("step 's': cancelled: timeout after 0.2s", err)
    assert.equal("failed", sum.steps.s.status)
    assert.equal("skipped", sum.steps.t.status)
    assert.is_nil(sum.steps.s.output_cid)
    local run = runner.get_run(sum.id)
    assert.equal("failed", run.status)
  end)

  -- Ctrl-C (a signal handler of the ipkrun host, not of libipk) is tested
  -- with real ipkrun processes in spec/cancel_spec.lua.

  it("writes an IPLD run record (DAG-JSON block) linking keys, outputs and inputs", function()
    local _, _, sum = exec(chain())
    local run = runner.get_run(sum.id)
    assert.equal(sum.record_cid, run.record_cid)
    assert.matches("^baguqeera", run.record_cid)   -- CIDv1 dag-json sha2-256
    local rec = assert(runner.read_record(run.record_cid))
    local dagjson = require "ipk.dagjson"
    assert.equal("ipk.run", rec.type)
    assert.equal("ok", rec.status)
    assert.equal(sum.steps.b.output_cid, dagjson.is_link(rec.steps.b.output))
    assert.equal("a", rec.steps.b.inputs.from.step)
    assert.equal(sum.steps.a.output_cid, dagjson.is_link(rec.steps.b.inputs.from.output))
    assert.is_truthy(dagjson.is_link(rec.steps.b.key))
    -- every block the record links to is stored (a complete DAG: a node can
    -- pin it recursively); the key document is the step's key value
    for name in pairs(rec.steps) do
      local kcid = dagjson.is_link(rec.steps[name].key)
      local kdoc = assert(runner.read_record(kcid))
      assert.equal(rec.steps[name].kind, kdoc.kind)
      assert.is_true(runtime.backend():has(dagjson.is_link(rec.steps[name].output)))
    end
    assert.is_true(runtime.store():pin_has(run.record_cid))
    -- content-addressed: no wall-clock time (id, start, durations live in
    -- the runs/run_steps rows), so a run that does the same work again
    -- (every step cached, a second later) has the same record
    for _, k in ipairs { "id", "started", "duration", "resumed_from" } do assert.is_nil(rec[k], k) end
    for name, st in pairs(rec.steps) do assert.is_nil(st.seconds, name) end
    assert.is_number(run.started)
    local _, _, sum2 = exec(chain())
    local _, _, sum3 = exec(chain())
    assert.is_not.equal(sum2.id, sum3.id)
    assert.equal(sum2.record_cid, sum3.record_cid)
  end)

  it("lists runs newest first", function()
    local _, _, s1 = exec(chain())
    local _, _, s2 = exec(chain(), { a = "7" })
    local runs = runner.list_runs { recipe = "chain", limit = 2 }
    assert.equal(s2.id, runs[1].id)
    assert.equal(s1.id, runs[2].id)
    assert.equal(7, runs[1].params.a)
  end)

  it("memoizes custom steps by their code and plain-data outputs", function()
    local n = 0
    local function mk(k)
      return recipe.recipe { name = "custom", params = { k = k }, steps = {
        s = recipe.step { k = recipe.param "k", run = function(_, _, a) n = n + 1 return { sq = a.k * a.k } end },
      } }
    end
    assert.equal(9, exec(mk(3)).s.sq)
    assert.equal(9, exec(mk(3)).s.sq)
    assert.equal(1, n)
    assert.equal(16, exec(mk(4)).s.sq)
    assert.equal(2, n)
  end)

  describe("loading recipe files", function()
    local dir
    before_each(function() dir = u.tmpdir() end)
    after_each(function() u.rm_rf(dir) end)

    it("runs recipes sandboxed: no global writes, no io/os/require of other modules", function()
      local p = write(dir .. "/g.lua", 'local ipk = require "ipk"\nleak = 1\nreturn ipk.recipe { name = "g", steps = {} }\n')
      local r, err = runner.load(p)
      assert.is_nil(r)
      assert.matches("g%.lua:2: .*assignment to global 'leak'", err)
      p = write(dir .. "/io.lua", 'local f = io.open("/etc/passwd")\nreturn f\n')
      r, err = runner.load(p)
      assert.is_nil(r)
      assert.matches("io%.lua:1: attempt to index global 'io'", err)
      p = write(dir .. "/req.lua", 'local s = require "socket"\nreturn s\n')
      r, err = runner.load(p)
      assert.is_nil(r)
      assert.matches("require 'socket' is not allowed in a recipe", err)
      p = write(dir .. "/ffi.lua", 'local ffi = require "ffi"\nreturn ffi.C.system\n')
      r, err = runner.load(p)
      assert.is_nil(r)
      assert.matches("ffi%.C is not available in a recipe", err)
      -- regressions (review): no route to the raw FFI, no pointer types, no
      -- shared metatables, no rawset, read-only ipk modules
      local escapes = {
        { 'local c = require "ipk.core"', "require 'ipk.core' is not allowed in a recipe" },
        { 'local c = require("ipk").core', "ipk.core is not available in a recipe" },
        { 'local c = require("ipk").runtime', "ipk.runtime is not available in a recipe" },
        { 'local f = require "ffi"; local u = f.new("union{uint64_t i; char *p;}")',
          "ffi.new: only numeric scalar and array types in a recipe" },
        { 'local f = require "ffi"; local a = f.new("float[4]"); f.copy(a, string.rep("x", 64), 64)',
          "ffi.copy: size out of bounds" },
        { 'getmetatable("").__index = nil', "attempt to index a nil value" },
        { 'rawset(_G, "X", 1)', "attempt to call global 'rawset'" },
        { 'require("ipk").dataset.add = nil', "ipk.dataset is read-only in a recipe" },
        { 'require("ipk.fl").fedavg = nil', "ipk.fl is read-only in a recipe" },
        -- regressions (breaklua): ipk.fs removed any path, ipk.host lifted
        -- the memory cap and the step deadline
        { 'require("ipk.fs").rm_rf("/tmp/x")', "require 'ipk.fs' is not allowed in a recipe" },
        { 'require("ipk.host").set_memory_cap(0)', "require 'ipk.host' is not allowed in a recipe" },
        { 'local p = require "ipk.proc"', "require 'ipk.proc' is not allowed in a recipe" },
        { 'local s = require "ipk.staging"', "require 'ipk.staging' is not allowed in a recipe" },
        { 'local s = require "ipk.store"', "require 'ipk.store' is not allowed in a recipe" },
        -- regression (breaklua): replacing or shadowing the preemption poll
        -- switched timeouts and Ctrl-C off for the recipe's loops
        { '_G["__ipk_poll"] = os.time', "assignment to global '__ipk_poll'" },
        { '__ipk_poll = os.time', ":1: the name __ipk_poll is reserved" },
        { 'local x = 1\nlocal __ipk_poll = os.time', ":2: the name __ipk_poll is reserved (ipk's preemption poll)" },
      }
      for i, e in ipairs(escapes) do
        p = write(dir .. "/esc" .. i .. ".lua", e[1] .. '\nreturn 1\n')
        r, err = runner.load(p)
        assert.is_nil(r, e[1])
        assert.matches(e[2], err, 1, true)
      end
      -- a step function is sandboxed at run time too
      p = write(dir .. "/rt.lua", 'local ipk = require "ipk"\nreturn ipk.recipe { name = "rt", steps = {\n'
        .. '  s = ipk.step { cache = false, run = function() x = 1 return 1 end } } }\n')
      r = assert(runner.load(p))
      local _, rerr = exec(r)
      assert.matches("^step 's': [^\n]*rt%.lua:3: .*assignment to global 'x'", rerr)
    end)

    it("rejects cycles, unknown steps and unknown params with the recipe's file:line", function()
      local p = write(dir .. "/cyc.lua", table.concat({
        'local ipk = require "ipk"',
        'return ipk.recipe { name = "cyc", steps = {',
        '  a = ipk.step { inputs = { x = "b" }, run = function() return 1 end },',
        '  b = ipk.step { inputs = { x = "a" }, run = function() return 1 end },',
        '} }' }, "\n"))
      local r = assert(runner.load(p))
      local _, err = exec(r)
      assert.matches("cyc%.lua:3: cycle: a %-> b %-> a", err)
      p = write(dir .. "/unk.lua", 'local ipk = require "ipk"\nreturn ipk.recipe { name = "u", steps = {\n'
        .. '  a = ipk.step { inputs = { x = "zz" }, run = function() return 1 end } } }\n')
      r = assert(runner.load(p))
      _, err = exec(r)
      assert.matches("unk%.lua:3: step 'a': input 'x' names unknown step 'zz'", err)
      p = write(dir .. "/par.lua", 'local ipk = require "ipk"\nreturn ipk.recipe { name = "p", steps = {\n'
        .. '  a = ipk.step { n = ipk.param "nope", run = function() return 1 end } } }\n')
      local _, lerr = runner.load(p)
      assert.matches("par%.lua:3: step 'a': unknown param 'nope'", lerr)
    end)
  end)
end)

describe("ipkrun runs/plan/run --resume/logs/graph", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  local GATE = [[
local ipk = require "ipk"
-- `gate` fails until a block with the bytes "open" is in the store.
return ipk.recipe {
  name = "gated",
  params = { n = 3, m = 10 },
  steps = {
    base = ipk.step { n = ipk.param "n", run = function(ctx, _, a) ctx.log("base n=%d", a.n) return a.n * 2 end },
    gate = ipk.step { inputs = { x = "base" }, run = function(ctx, i)
      if not ipk.store():has("bafkreibdjd4zq5cccjlv3bmvsz2psyd2wjxwo4eksfyvorzigi4ggn6jaq") then
        error("gate is closed", 0)
      end
      ctx.log("gate open")
      return i.x + 1
    end },
    other = ipk.step { m = ipk.param "m", run = function(_, _, a) return a.m end },
    total = ipk.step { inputs = { g = "gate", o = "other" }, run = function(_, i) return i.g + i.o end },
  },
}
]]

  it("resume continues a failed run: finished steps come from the cache", function()
    local p = tmp .. "/gated.lua"
    u.write(p, GATE)
    local code, out, err = u.ipkrun({ "run", p, "--param", "n=4" }, env)
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("ipkrun: run: step 'gate': gate is closed\n$", err)
    local _, rl = u.ipkrun({ "runs", "--json" }, env)
    local runs = json.decode(rl).runs
    assert.equal(1, #runs)
    assert.equal("failed", runs[1].status)
    assert.equal(4, runs[1].params.n)
    local failed = runs[1].id
    -- open the gate (the block of "open"), then resume with the same params
    u.write(tmp .. "/open.txt", "open")
    assert.equal(0, (u.ipkrun({ "add", "--cid-version=1", "-Q", tmp .. "/open.txt" }, env)))
    code, out = u.ipkrun({ "run", "--resume", failed, "--json" }, env)
    assert.equal(0, code)
    local r = json.decode(out)
    assert.equal(19, r.total)
    assert.equal("cached", r.run.steps.base.status)
    assert.equal("cached", r.run.steps.other.status)
    assert.equal("ok", r.run.steps.gate.status)
    _, rl = u.ipkrun({ "runs", "--json" }, env)
    runs = json.decode(rl).runs
    assert.equal(r.run.id, runs[1].id)   -- newest first
    assert.equal(failed, runs[1].resumed_from)
    -- logs kept with the run, per step
    code, out = u.ipkrun({ "logs", r.run.id, "gate" }, env)
    assert.equal(0, code)
    assert.equal("gate open\n", out)
    code, out = u.ipkrun({ "logs", failed }, env)
    assert.equal(0, code)
    assert.matches("base: base n=4\n", out, 1, true)
    assert.matches("gate: attempt 1/1 failed: gate is closed\n", out, 1, true)
    code, _, err = u.ipkrun({ "logs", "nosuchrun" }, env)
    assert.equal(1, code)
    assert.equal("ipkrun: logs: no run 'nosuchrun' (see ipkrun runs)\n", err)
  end)

  it("plan shows cached steps and why the others run", function()
    local p = tmp .. "/gated.lua"
    u.write(p, GATE)
    u.write(tmp .. "/open.txt", "open")
    u.ipkrun({ "add", "--cid-version=1", "-Q", tmp .. "/open.txt" }, env)
    local code, out = u.ipkrun({ "plan", p, "--json" }, env)
    assert.equal(0, code)
    local plan = json.decode(out)
    for _, s in ipairs(plan.steps) do assert.equal("run", s.status) end
    assert.equal(0, (u.ipkrun({ "run", p }, env)))
    code, out = u.ipkrun({ "plan", p }, env)
    assert.equal(0, code)
    assert.matches("0 of 4 steps to run", out, 1, true)
    code, out = u.ipkrun({ "plan", p, "--param", "m=11", "--json" }, env)
    assert.equal(0, code)
    plan = json.decode(out)
    local by = {}
    for _, s in ipairs(plan.steps) do by[s.step] = s end
    assert.equal("cached", by.base.status)
    assert.equal("cached", by.gate.status)
    assert.equal("run", by.other.status)
    assert.same({ "param m: 10 -> 11" }, by.other.why)
    assert.equal("run", by.total.status)
    assert.same({ "input 'inputs.o' will be recomputed (step other runs)" }, by.total.why)
    -- and the real run does exactly that
    code, out = u.ipkrun({ "run", p, "--param", "m=11", "--json" }, env)
    assert.equal(0, code)
    local r = json.decode(out)
    assert.equal(18, r.total)
    assert.equal("ok", r.run.steps.other.status)
    assert.equal("ok", r.run.steps.total.status)
    assert.equal("cached", r.run.steps.gate.status)
  end)

  it("graph prints DOT and Mermaid", function()
    local p = tmp .. "/gated.lua"
    u.write(p, GATE)
    local code, out = u.ipkrun({ "graph", p }, env)
    assert.equal(0, code)
    assert.matches('digraph "gated" {', out, 1, true)
    assert.matches('"gate" -> "total";', out, 1, true)
    assert.matches('"base" -> "gate";', out, 1, true)
    -- DOT's line break in a label is one backslash and n (was doubled: Graphviz showed "\\n")
    assert.matches('"gate" [label="gate\\n', out, 1, true)
    assert.is_nil(out:find('\\\\n', 1, true))
    code, out = u.ipkrun({ "graph", p, "--format", "mermaid" }, env)
    assert.equal(0, code)
    assert.matches("^flowchart LR\n", out)
    assert.matches("  other --> total\n", out, 1, true)
    code = u.ipkrun({ "graph", p, "--format", "png" }, env)
    assert.equal(2, code)
  end)

  it("ctrl-c on ipkrun run: exit 130, run recorded as cancelled", function()
    local p = tmp .. "/slow.lua"
    u.write(p, 'local ipk = require "ipk"\nreturn ipk.recipe { name = "slow", steps = {\n'
      .. '  a = ipk.step { run = function() ipk.sched.sleep(30) return 1 end } } }\n')
    -- A shell that starts ipkrun in the background, records its pid, waits
    -- for it and records its exit code.
    local script = ("IPK_HOME=%s %s run %s 2>%s & echo $! >%s; wait $!; echo $? >%s"):format(u.q(env.IPK_HOME),
      u.q(u.ipkrun_path), u.q(p), u.q(tmp .. "/err"), u.q(tmp .. "/pid"), u.q(tmp .. "/code"))
    os.execute("sh -c " .. u.q(script) .. " >/dev/null 2>&1 &")
    -- SIGINT once the step is running (the handler is installed by then): a
    -- fixed delay loses the race on a loaded machine.
    os.execute("for i in $(seq 300); do grep -q 'step a: running' " .. u.q(tmp .. "/err")
      .. " 2>/dev/null && break; sleep 0.1; done")
    local pid = u.read(tmp .. "/pid"):match("%d+")
    os.execute("kill -INT " .. pid)
    os.execute("for i in $(seq 100); do [ -s " .. u.q(tmp .. "/code") .. " ] && break; sleep 0.1; done")
    assert.equal("130", u.read(tmp .. "/code"):match("%d+"))
    local _, rl = u.ipkrun({ "runs", "--json" }, env)
    local runs = json.decode(rl).runs
    assert.equal("cancelled", runs[1].status)
    assert.is_true(runs[1].duration < 10, "run was not interrupted promptly")
    assert.matches("ipkrun: run: cancelled: interrupted %(Ctrl%-C%)\n$", u.read(tmp .. "/err"))
  end)
end)
