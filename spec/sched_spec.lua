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
end)
