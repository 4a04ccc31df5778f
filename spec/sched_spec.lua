-- ipk.sched: tasks on the libuv loop; async calls yield and resume.
local sched = require "ipk.sched"

describe("ipk.sched", function()
  it("runs tasks concurrently: two sleeps overlap", function()
    local order = {}
    local t0 = require("ipk.core").now()
    sched.spawn(function() sched.sleep(0.05); order[#order + 1] = "a" end)
    sched.spawn(function() sched.sleep(0.01); order[#order + 1] = "b" end)
    sched.run()
    local dt = require("ipk.core").now() - t0
    assert.same({ "b", "a" }, order)
    assert.is_true(dt < 0.09, "sleeps ran one after the other: " .. dt)
  end)

  it("run_task returns the task's values and propagates errors", function()
    local a, b = sched.run_task(function(x) sched.sleep(0.001); return x + 1, "ok" end, 41)
    assert.equal(42, a)
    assert.equal("ok", b)
    assert.has_error(function() sched.run_task(function() error("boom", 0) end) end, "boom")
    -- regression (breaklua): error(nil) in a task was taken for a success
    -- (a recipe step then failed with an internal "attempt to index field 'result'")
    assert.has_error(function() sched.run_task(function() error(nil) end) end, "error(nil) raised with no message")
    assert.has_error(function() sched.run_task(function() error(false) end) end, "error(false) raised with no message")
  end)

  it("join collects results in order", function()
    local res = sched.run_task(function()
      local ts = {}
      for i = 1, 5 do ts[i] = sched.spawn(function() sched.sleep((6 - i) / 1000); return i * i end) end
      return sched.join(ts)
    end)
    assert.same({ 1, 4, 9, 16, 25 }, res)
  end)

  it("refuses a yielding call outside a task", function()
    assert.has_error(function() sched.sleep(0.001) end,
      "ipk: async call outside a task (use ipk.run or sched.spawn)")
  end)
end)

describe("ipk.sched cancellation", function()
  it("cancels a sleeping task at once with the reason", function()
    local t0 = require("ipk.core").now()
    local err
    sched.run_task(function()
      local t = sched.spawn(function() sched.sleep(5) end)
      sched.spawn(function() sched.sleep(0.02); sched.cancel(t, "timeout after 0.02s") end)
      local ok, e = pcall(sched.join, { t })
      assert.is_false(ok)
      err = e
    end)
    assert.equal("cancelled: timeout after 0.02s", err)
    -- the 5 s timer does not hold the run: only its completion is ignored
    assert.is_true(require("ipk.core").now() - t0 < 5)
  end)

  it("cancels a task waiting in join, and the joined task keeps running", function()
    local inner_done = false
    local res = sched.run_task(function()
      local inner = sched.spawn(function() sched.sleep(0.03); inner_done = true; return 7 end)
      local outer = sched.spawn(function() return sched.join({ inner })[1] end)
      sched.sleep(0.005)
      sched.cancel(outer, "stop")
      sched.settle({ outer, inner })
      return { outer.err, inner.result }
    end)
    assert.equal("cancelled: stop", res[1])
    assert.equal(7, res[2])
    assert.is_true(inner_done)
  end)

  it("a task cancelled before it starts raises at its first wait; check() raises too", function()
    local res = sched.run_task(function()
      local t = sched.spawn(function() sched.sleep(0.01); return "ran" end)
      sched.cancel(t, "early")
      local u = sched.spawn(function() for _ = 1, 3 do sched.check(); sched.yield() end return "ok" end)
      sched.cancel(u, "loop")
      sched.settle({ t, u })
      return { t.err, u.err }
    end)
    assert.same({ "cancelled: early", "cancelled: loop" }, res)
  end)
  it("cancelling a task whose timer already fired does not end the loop early (regression)", function()
    -- A and B sleep alike, so both timers complete in one loop turn; libuv
    -- runs close callbacks newest first, so B's wake-up is queued before
    -- A's. B cancels A while A's wake-up is already queued.
    local res = sched.run_task(function()
      local b
      local a = sched.spawn(function() sched.sleep(0.01) end)
      b = sched.spawn(function() sched.sleep(0.01); sched.cancel(a, "stop") end)
      sched.settle({ a, b })
      -- the scheduler must still wait for this timer
      sched.sleep(0.05)
      return a.err
    end)
    assert.matches("cancelled: stop", res)
  end)

  it("a cancelled sleep stops its timer: nothing stays pending", function()
    local core = require "ipk.core"
    local t0 = core.now()
    local err = sched.run_task(function()
      local t = sched.spawn(function() sched.sleep(60) end)
      sched.sleep(0.01)
      sched.cancel(t, "stop")
      sched.settle({ t })
      return t.err
    end)
    assert.equal("cancelled: stop", err)
    assert.is_true(core.now() - t0 < 3)
    -- the 60 s timer was stopped, not orphaned: the loop holds nothing
    assert.equal(0, tonumber(core.lib.ipk_loop_pending(sched.loop)))
  end)

  it("cancels a task waiting for a C job: the job stops between batches", function()
    local core = require "ipk.core"
    local ffi = core.ffi
    -- softmax training, 20000 epochs of 4000 rows x 256 features: minutes
    -- uncancelled; the cancel lands within one batch.
    local n, F, C = 4000, 256, 10
    local X, y, idx = ffi.new("float[?]", n * F), ffi.new("uint8_t[?]", n), ffi.new("uint32_t[?]", n)
    for i = 0, n * F - 1 do X[i] = (i % 13) / 13 end
    for i = 0, n - 1 do y[i] = i % C; idx[i] = i end
    local W, b = ffi.new("float[?]", C * F), ffi.new("float[?]", C)
    local job = ffi.new("ipk_softmax_train_job_t")
    job.cfg.features, job.cfg.classes, job.cfg.epochs, job.cfg.batch = F, C, 20000, 32
    job.cfg.lr, job.cfg.l2, job.cfg.seed = 0.01, 0, 1
    job.W, job.b, job.X, job.y, job.idx, job.n = W, b, X, y, idx, n
    local t0, rc_seen
    local err = sched.run_task(function()
      local t = sched.spawn(function() rc_seen = sched.job(core.lib.ipk_softmax_train_job, job) end)
      -- Cancel only once the job runs (it has moved W): on a loaded machine a
      -- queued job may not have started after a fixed delay, and a queued job
      -- is cancelled before it starts (no epoch message).
      for _ = 1, 400 do
        if W[0] ~= 0 then break end
        sched.sleep(0.05)
      end
      assert(W[0] ~= 0, "training job did not start within 20 s")
      t0 = core.now()
      sched.cancel(t, "timeout after 0.2s")
      sched.settle({ t })
      return t.err
    end)
    local dt = core.now() - t0
    assert.equal("cancelled: timeout after 0.2s", err)
    assert.is_nil(rc_seen)                      -- the wait raised, it did not return
    assert.is_true(dt < 5, "job not stopped between batches: " .. dt .. " s")
    assert.matches("^train: cancelled in epoch %d+$", ffi.string(job.eb.msg))
    assert.equal(0, tonumber(core.lib.ipk_loop_pending(sched.loop)))
  end)

  it("cancels a UnixFS import between batches of chunks", function()
    local core = require "ipk.core"
    local unixfs = require "ipk.unixfs"
    -- a sparse 64 GiB file: hashing it all takes tens of seconds
    local path = os.tmpname()
    assert(os.execute("truncate -s 64G " .. path) == 0)
    local t0, res
    local err = sched.run_task(function()
      local t = sched.spawn(function() res = { unixfs.add(path, { only_hash = true }) } end)
      sched.sleep(0.2)
      t0 = core.now()
      sched.cancel(t, "stop")
      sched.settle({ t })
      return t.err
    end)
    local dt = core.now() - t0
    os.remove(path)
    assert.equal("cancelled: stop", err)
    assert.is_nil(res)
    assert.is_true(dt < 5, "import not stopped between batches: " .. dt .. " s")
    assert.equal(0, tonumber(core.lib.ipk_loop_pending(sched.loop)))
  end)

  describe("HTTP waits (loopback server that accepts and never answers)", function()
    local http = require "ipk.http"
    local pid, url
    setup(function()
      -- python3: a silent listener; prints its pid and port
      local f = io.popen([[python3 -c 'import os,socket,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(64)
print(os.getpid(), s.getsockname()[1], flush=True); time.sleep(120)' &]])
      local line = f:read("*l")
      f:close()
      local p, port = line:match("^(%d+) (%d+)$")
      pid, url = p, "http://127.0.0.1:" .. port
    end)
    teardown(function() if pid then os.execute("kill " .. pid) end end)

    local function cancel_after(sec, body)
      local core = require "ipk.core"
      local t0, dt
      local err, active = sched.run_task(function()
        local t = sched.spawn(body)
        sched.sleep(sec)
        t0 = core.now()
        sched.cancel(t, "stop")
        sched.settle({ t })
        dt = core.now() - t0
        return t.err, http.active()
      end)
      return err, active, dt
    end

    it("a request wait ends at once and its transfer is removed", function()
      local got
      local err, active, dt = cancel_after(0.1, function()
        -- (timeout: the spec ends even if the cancel did not work)
        got = { http.request { url = url .. "/api/v0/id", idle_timeout = 0, timeout = 20 } }
      end)
      assert.equal("cancelled: stop", err)
      assert.is_nil(got)
      assert.equal(0, active)
      assert.is_true(dt < 3, dt)
    end)

    it("a stream read (a pubsub subscription's wait) ends at once", function()
      local reads = 0
      local err, active, dt = cancel_after(0.1, function()
        local st = assert(http.open { method = "POST", url = url .. "/api/v0/pubsub/sub?arg=x",
          idle_timeout = 0, timeout = 20 })
        while true do
          local chunk = st:read()
          reads = reads + 1
          if not chunk then break end
        end
      end)
      assert.equal("cancelled: stop", err)
      assert.equal(0, reads)
      assert.equal(0, active)
      assert.is_true(dt < 3, dt)
    end)
  end)
end)

describe("ipk.sched preemption poll", function()
  local host = require "ipk.host"
  local flag = host.preempt_flag()

  -- Regression (CI, sanitized build): a step that started a moment before
  -- its deadline spun forever. The poll saw the flag still raised by the
  -- previous step, asked preempt() ("not yet"), the watchdog raised the
  -- flag for this step's deadline meanwhile, and the poll then lowered it:
  -- the raise was lost. Here preempt() plays the watchdog firing while it
  -- decides: it raises the flag and answers "not yet" the first time.
  it("keeps a raise that arrives while preempt() decides; the next poll raises", function()
    local asked = 0
    local t = sched.spawn(function()
      for _ = 1, 1000 do sched.poll() end
      return "spun to the end"
    end)
    t.preempt = function()
      asked = asked + 1
      if asked == 1 then flag[0] = 1; return nil end
      return "timeout after 1s"
    end
    flag[0] = 1 -- the previous step's raise, never lowered
    sched.run()
    assert.equal(2, asked)
    assert.equal("cancelled: timeout after 1s", t.err)
    flag[0] = 0
  end)

  it("stays raised once it raised: a pcall in recipe code cannot swallow it", function()
    local swallowed = 0
    local t = sched.spawn(function()
      for _ = 1, 100 do
        if not pcall(function() for _ = 1, 100 do sched.poll() end end) then swallowed = swallowed + 1 end
        sched.poll()
      end
    end)
    t.preempt = function() return "interrupted (Ctrl-C)" end
    flag[0] = 1
    sched.run()
    assert.equal(1, swallowed)
    assert.equal("cancelled: interrupted (Ctrl-C)", t.err)
    flag[0] = 0
  end)

  it("a raise with no reason is lowered and the task goes on", function()
    local t = sched.spawn(function() for _ = 1, 10 do sched.poll() end return "done" end)
    t.preempt = function() return nil end
    flag[0] = 1
    sched.run()
    assert.is_nil(t.err)
    assert.equal("done", t.result)
    assert.equal(0, flag[0])
  end)
end)
