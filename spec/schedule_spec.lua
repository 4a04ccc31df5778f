-- ipk.cron and ipk.schedule: cron expressions, `ipkrun serve` running due
-- recipes on libuv timers (recorded, never overlapping, surviving failures)
-- and `ipkrun schedule ls`.
local u = support
local json = require "cjson"
local cron = require "ipk.cron"

local function at(y, mo, d, h, mi, s)
  return os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s or 0 }
end

describe("ipk.cron", function()
  it("computes the next due time", function()
    local t = at(2025, 3, 14, 10, 7, 30)
    assert.equal(at(2025, 3, 14, 10, 15), cron.next(assert(cron.parse("*/15 * * * *")), t))
    assert.equal(at(2025, 3, 14, 10, 8), cron.next(assert(cron.parse("* * * * *")), t))
    assert.equal(at(2025, 3, 15, 0, 0), cron.next(assert(cron.parse("@daily")), t))
    assert.equal(at(2025, 3, 17, 9, 0), cron.next(assert(cron.parse("0 9 * * 1-5")), at(2025, 3, 14, 9, 0)))  -- Fri -> Mon
    assert.equal(at(2025, 4, 1, 0, 30), cron.next(assert(cron.parse("30 0 1 * *")), t))
    assert.equal(at(2025, 3, 14, 10, 7, 31), cron.next(assert(cron.parse("* * * * * *")), t))
    assert.equal(at(2025, 3, 14, 10, 7, 40), cron.next(assert(cron.parse("*/20 * * * * *")), t))
    assert.equal(at(2028, 2, 29, 0, 0), cron.next(assert(cron.parse("0 0 29 2 *")), t))
    -- either day field matches when both are restricted
    assert.equal(at(2025, 3, 16, 0, 0), cron.next(assert(cron.parse("0 0 1 * 0")), t))  -- Sunday 16th
    assert.equal(at(2025, 3, 16, 0, 0), cron.next(assert(cron.parse("0 0 * * 7")), t))
  end)

  it("rejects bad expressions with the field named", function()
    local _, err = cron.parse("61 * * * *")
    assert.equal("cron: '61 * * * *': minute: '61' is outside 0-59", err)
    _, err = cron.parse("* * *")
    assert.equal("cron: '* * *': expected 5 or 6 fields (got 3)", err)
    _, err = cron.parse("*/0 * * * *")
    assert.equal("cron: '*/0 * * * *': minute: step must be >= 1", err)
    _, err = cron.parse("a * * * *")
    assert.equal("cron: 'a * * * *': minute: bad field 'a'", err)
  end)
end)

describe("ipkrun serve / schedule ls", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
    os.execute("mkdir -p " .. u.q(tmp .. "/r"))
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("runs due recipes, records each run, never overlaps a run with itself, survives failures", function()
    -- every second; each run takes 1.3 s, so ticks pass while it runs
    u.write(tmp .. "/r/tick.lua", [[
local ipk = require "ipk"
return ipk.recipe { name = "tick", schedule = "* * * * * *", steps = {
  a = ipk.step { cache = false, run = function() ipk.sched.sleep(1.3) return 1 end } } }
]])
    u.write(tmp .. "/r/bad.lua", [[
local ipk = require "ipk"
return ipk.recipe { name = "bad", schedule = "* * * * * *", steps = {
  a = ipk.step { cache = false, run = function() error("always fails", 0) end } } }
]])
    u.write(tmp .. "/r/manual.lua", [[
local ipk = require "ipk"
return ipk.recipe { name = "manual", steps = { a = ipk.step { run = function() return 1 end } } }
]])
    local code, out, err = u.ipkrun({ "schedule", "ls", tmp .. "/r", "--json" }, env)
    assert.equal(0, code, err)
    local ls = json.decode(out).schedules
    assert.equal(2, #ls)
    assert.equal("bad", ls[1].name)
    assert.equal("* * * * * *", ls[1].schedule)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", ls[1].next)

    code, out, err = u.ipkrun({ "serve", tmp .. "/r", "--for", "4.5", "--json" }, env)
    assert.equal(0, code, err)
    local s = json.decode(out)
    assert.equal("time", s.stopped)
    local _, rl = u.ipkrun({ "runs", "--json" }, env)
    local runs = json.decode(rl).runs
    local ticks, bads = {}, 0
    for _, r in ipairs(runs) do
      if r.recipe == "tick" then ticks[#ticks + 1] = r end
      if r.recipe == "bad" then bads = bads + 1; assert.equal("failed", r.status) end
      assert.is_true(r.recipe ~= "manual")
    end
    -- failures did not stop the server: bad ran about every second
    assert.is_true(bads >= 3, "bad ran " .. bads .. " times")
    assert.is_true(#ticks >= 2 and #ticks <= 4, "tick ran " .. #ticks .. " times")
    assert.equal(bads + #ticks, s.runs)
    assert.is_true(s.skipped >= 1)
    -- tick's runs never overlap: each starts after the previous one ended
    table.sort(ticks, function(a, b) return a.started < b.started end)
    for i = 2, #ticks do
      assert.equal("ok", ticks[i].status)
      assert.is_true(ticks[i].started >= ticks[i - 1].started + ticks[i - 1].duration - 0.01,
        "run " .. ticks[i].id .. " overlaps " .. ticks[i - 1].id)
    end
    code, out = u.ipkrun({ "schedule", "ls", tmp .. "/r" }, env)
    assert.equal(0, code)
    assert.matches("tick%s+%* %* %* %* %* %*%s+%S+%s+%S+ ok", out)
  end)

  it("refuses a bad schedule and a folder without schedules", function()
    u.write(tmp .. "/r/m.lua", 'local ipk = require "ipk"\nreturn ipk.recipe { name = "m", steps = {} }\n')
    local code, _, err = u.ipkrun({ "serve", tmp .. "/r", "--for", "1" }, env)
    assert.equal(1, code)
    assert.matches("ipkrun: serve: no recipe with a schedule in " .. tmp:gsub("%p", "%%%0") .. "/r\n$", err)
    u.write(tmp .. "/r/b.lua", 'local ipk = require "ipk"\nreturn ipk.recipe { name = "b", schedule = "99 * * * *", steps = {} }\n')
    code, _, err = u.ipkrun({ "schedule", "ls", tmp .. "/r" }, env)
    assert.equal(0, code)
    assert.matches("b%.lua: cron: '99 %* %* %* %*': minute: '99' is outside 0%-59", err)
  end)
end)
