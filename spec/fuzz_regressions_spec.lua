-- Lua-side inputs the fuzz harnesses (fuzz/) found failing, each with the
-- value the parser must give; the inputs are also files under
-- fuzz/regressions/<harness>/, replayed by fuzz/run.sh. (Kubo replies:
-- spec/kubo_replies_spec.lua; C parsers: core/test/test_fuzz_regressions.c.)
local json = require "ipk.json"
local dagjson = require "ipk.dagjson"

describe("fuzz regressions", function()
  -- fuzz/regressions/json/exponent-too-long-for-luajit-tonumber.json:
  -- LuaJIT's tonumber returns nil for an exponent too long for its scanner,
  -- and decode returned nil without a message. Overflow is ERANGE,
  -- underflow and zero mantissas are zero, as strtod and JSON.parse give.
  it("json: numbers whose exponent LuaJIT cannot scan", function()
    local v, msg, name = json.decode("1e40007199254740993")
    assert.is_nil(v)
    assert.are.equal("ERANGE", name)
    assert.are.equal("json: number 1e40007199254740993 is beyond a double's range at byte 1", msg)
    v, msg, name = json.decode("[2, 1.5e999999999]")
    assert.is_nil(v)
    assert.are.equal("ERANGE", name)
    assert.matches("at byte 5$", msg)
    assert.are.same({ 0, 0 }, { json.decode("-1e-99999999999"), json.decode("0e99999999999") })
    assert.are.equal(-math.huge, 1 / json.decode("-1e-99999999999"))   -- -0 keeps its sign
    local r = json.decode(io.open("fuzz/regressions/json/exponent-too-long-for-luajit-tonumber.json"):read("*a"))
    assert.is_nil(r)
    local d, dmsg, dname = dagjson.decode("{\"a\":1e99999999999}")
    assert.is_nil(d)
    assert.are.equal("ERANGE", dname)
    assert.matches("^dagjson: ", dmsg)
  end)
end)
