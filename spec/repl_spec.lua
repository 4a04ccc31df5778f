-- ipk.repl: `ipkrun` alone. Piped: pretty-printed results, async calls,
-- :help. On a terminal (a pty from util-linux `script`): libedit line
-- editing, TAB completion of ipk.* and history.
local u = support

describe("ipkrun REPL", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  local function repl(input)
    u.write(tmp .. "/in", input)
    local parts = {}
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. u.q(v) end
    -- ( ) so our stdin redirection wins over u.sh's </dev/null
    return u.sh("(" .. table.concat(parts, " ") .. " " .. u.q(u.ipkrun_path) .. " < " .. u.q(tmp .. "/in") .. ")")
  end

  it("pretty-prints results, runs async calls directly, and has :help", function()
    u.write(tmp .. "/f.txt", "hello world")
    local code, out = repl(table.concat({
      "ipk.sched.sleep(0.01) and 40 + 2",
      "x = { b = { 2, 3 }, a = 1 }",
      "x",
      "ipk.unixfs.add(" .. ("%q"):format(tmp .. "/f.txt") .. ", { only_hash = true }).root",
      ":help",
      "error('boom', 0)",
      "1 +",
    }, "\n") .. "\n")
    assert.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]*") do lines[#lines + 1] = l end
    assert.matches("^ipk 0%.1%.0 %- Lua REPL", lines[1])
    assert.matches("\n42\n", out, 1, true)
    assert.matches('{\n  a = 1,\n  b = {\n    [1] = 2,\n    [2] = 3\n  }\n}\n', out, 1, true)
    assert.matches('"Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"\n', out, 1, true)
    assert.matches("TAB completes ipk.* names", out, 1, true)
    assert.matches("error: boom\n", out, 1, true)
    assert.matches("\nrepl:1: unexpected symbol near '1'\n", out, 1, true)
  end)

  it("lists completion words for the ipk modules", function()
    -- (asked through the REPL itself, in its own process)
    local code, out = repl('(function() local s = {} for _, w in ipairs(require("ipk.repl").words()) do s[w] = true end'
      .. ' return s["ipk.dataset.split("] and s["ipk.runner.plan("] and s["ipk.registry.list("] and s[":help"] end)()\n')
    assert.equal(0, code)
    assert.matches("\ntrue\n$", out)
  end)

  it("on a terminal: TAB completes ipk.* names and Up recalls history (libedit)", function()
    if (u.sh("command -v script")) ~= 0 then pending("util-linux script not installed") return end
    -- TAB after "ipk.cron.pa" completes to "ipk.cron.parse("; ESC [ A is Up.
    u.write(tmp .. "/keys", 'ipk.cron.pa\t"@hourly").min[0]\n\27[A\n:quit\n')
    local parts = {}
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. u.q(v) end
    local cmd = ("( (sleep 0.5; cat %s; sleep 1) | %s timeout 20 script -qec %s /dev/null )"):format(
      u.q(tmp .. "/keys"), table.concat(parts, " "), u.q(u.ipkrun_path))
    local code, out = u.sh(cmd)
    assert.equal(0, code)
    out = out:gsub("\r", "")
    local _, trues = out:gsub("\ntrue\n", "")
    assert.equal(2, trues)                       -- the line ran, then ran again from history
    assert.matches('ipk.cron.parse("@hourly").min[0]', out, 1, true)
  end)
end)
