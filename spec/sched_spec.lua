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
