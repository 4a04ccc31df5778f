-- ipk.json: the one encoder/decoder (CLI output, database columns, Kubo
-- replies; ipk.dagjson builds on it). Numbers and string escapes are checked
-- against Node's JSON.stringify / Number#toString (an independent writer).
local json = require "ipk.json"
local u = require "support.util"
local ffi = require "ffi"

local function node_available()
  local code = u.sh("node -e 0")
  if code ~= 0 and os.getenv("CI") == "true" then error("node is required with CI=true (test tooling)") end
  return code == 0
end

-- Run a Node script with input on stdin; returns stdout.
local function node(script, input)
  local dir = u.tmpdir()
  u.write(dir .. "/in", input or "")
  u.write(dir .. "/s.js", script)
  local code, out, err = u.sh("node " .. u.q(dir .. "/s.js") .. " " .. u.q(dir .. "/in"))
  u.rm_rf(dir)
  assert(code == 0, err)
  return out
end

describe("ipk.json", function()
  it("writes sorted keys, no whitespace, [] for marked and decoded empty lists", function()
    assert.equal('{"a":[],"b":{},"c":[1,"x",true,null],"d":{"e":[]}}',
      json.encode({ d = { e = json.array() }, c = { 1, "x", true, json.null }, b = {}, a = json.array {} }))
    local text = '{"a":[],"b":{},"c":[[],{}],"d":[null,1,null]}'
    assert.equal(text, json.encode(assert(json.decode(text))))
    assert.is_true(json.is_array(assert(json.decode("[]"))))
    assert.is_false(json.is_array(assert(json.decode("{}"))))
    -- sanitize keeps the mark
    assert.equal('{"s":[]}', json.encode(json.sanitize({ s = json.array() })))
  end)

  -- Doubles of every magnitude: chosen ones, random bit patterns, random integers.
  local function test_values()
    local vals = { 0, 1, -1, 0.1, 0.5, 1 / 3, 2 / 3, 1e21, 1e20, 123e-20, 1e-6, 1e-7, 5e-324, 2.2250738585072014e-308,
                   1.7976931348623157e308, 2 ^ 53, 2 ^ 53 + 2, -2 ^ 53 - 2, 2 ^ 63, 4.35, 100.25, 1e300, 9.5367431640625e-07 }
    -- and random doubles of every magnitude, from random bit patterns
    local box = ffi.new("union { uint64_t u; double d; }")
    math.randomseed(8)
    for _ = 1, 400 do
      box.u = ffi.cast("uint64_t", math.random(0, 2 ^ 31 - 1)) * 2 ^ 32 + math.random(0, 2 ^ 32 - 1)
      local d = box.d
      if d == d and d ~= math.huge and d ~= -math.huge then vals[#vals + 1] = d end
    end
    for _ = 1, 200 do vals[#vals + 1] = math.floor(math.random() * 2 ^ 53) * (math.random() < 0.5 and -1 or 1) end
    return vals
  end

  it("formats numbers as Node does (integers to 2^53, shortest round-trip floats, .0 beyond)", function()
    if not node_available() then pending("node not installed") return end
    local vals = test_values()
    local lines = {}
    for i, v in ipairs(vals) do lines[i] = ("%.17g"):format(v) end
    local got = node([[
      const lines = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n');
      for (const l of lines) {
        const x = Number(l);
        let s = JSON.stringify(x);
        // ipk's one extension: an integral value beyond 2^53 is written as a float
        if (Number.isInteger(x) && Math.abs(x) > 2 ** 53 && !/[.e]/.test(s)) s += '.0';
        console.log(s);
      }]], table.concat(lines, "\n") .. "\n")
    local i = 0
    for want in got:gmatch("[^\n]+") do
      i = i + 1
      assert.equal(want, json.number(vals[i]), "value " .. lines[i])
      assert.equal(vals[i], json.decode(want), "reads back " .. want)
    end
    assert.equal(#vals, i)
  end)

  it("has one number rule in Lua and in C (ipk_table_fmt_num writes the statistics spliced by json.raw)", function()
    local core = require "ipk.core"
    local buf = ffi.new("char[32]")
    for _, v in ipairs(test_values()) do
      core.lib.ipk_table_fmt_num(v, buf)
      assert.equal(json.number(v), ffi.string(buf), ("%.17g"):format(v))
    end
    -- C's statistics text (names with control bytes, DEL, UTF-8; floats of every layout) is already canonical
    local dir = u.tmpdir()
    u.write(dir .. "/t.csv", "\"a\1b\",\"del\127\",\"\195\169\",n\n1e-7,0.1,123456789012345678901234,-5\n"
      .. "2,0.25,1,7\n")
    local raw = assert(require("ipk.detect").table_stats_raw(dir .. "/t.csv"))
    u.rm_rf(dir)
    local text = assert(json.encode(raw))
    assert.matches('"del\127"', text, 1, true)
    assert.equal(text, json.encode(assert(json.decode(text))))
  end)

  it("escapes strings as JSON.stringify does (control bytes only; DEL and UTF-8 raw)", function()
    if not node_available() then pending("node not installed") return end
    local cps = {}
    for c = 0, 127 do cps[#cps + 1] = c end
    for _, c in ipairs { 0xe9, 0x2028, 0x2029, 0xfeff, 0x1f600 } do cps[#cps + 1] = c end
    local got = node([[
      const cps = require('fs').readFileSync(process.argv[2], 'utf8').trim().split(' ').map(Number);
      for (const c of cps) console.log(JSON.stringify(String.fromCodePoint(c) + 'x'));
    ]], table.concat(cps, " "))
    local i = 0
    for want in got:gmatch("[^\n]+") do
      i = i + 1
      local cp = cps[i]
      local s
      if cp < 0x80 then s = string.char(cp)
      elseif cp < 0x800 then s = string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
      elseif cp < 0x10000 then
        s = string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
      else
        s = string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                        0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
      end
      assert.equal(want, json.encode(s .. "x"), "code point " .. cp)
      assert.equal(s .. "x", json.decode(want))
    end
    assert.equal(#cps, i)
  end)

  it("returns nil, msg, name for values JSON cannot hold; never raises", function()
    local cases = {
      { 0 / 0, "json: cannot encode nan (NaN and infinities are not JSON) at $" },
      { { metrics = { acc = math.huge } }, "json: cannot encode inf (NaN and infinities are not JSON) at $.metrics.acc" },
      { { l = { 1, 2, -math.huge } }, "json: cannot encode -inf (NaN and infinities are not JSON) at $.l[3]" },
      { { f = print }, "json: cannot encode a function at $.f" },
      { { c = ffi.new("int[1]") }, "json: cannot encode a cdata at $.c" },
      { { s = "ok\192\128" }, "json: string is not valid UTF-8 (byte 3) at $.s" },
      { { [1] = "a", ["1"] = "b" }, 'json: two keys encode as "1" at $' },
    }
    local cyc = {}
    cyc.a = { cyc }
    cases[#cases + 1] = { cyc, "json: cycle (a table contains itself) at $.a[1]" }
    for _, c in ipairs(cases) do
      local ok, s, msg, name = pcall(json.encode, c[1])
      assert.is_true(ok, tostring(s))
      assert.is_nil(s)
      assert.equal(c[2], msg)
      assert.equal("EINVAL", name)
    end
    -- sanitize's result always encodes: functions are dropped, and
    -- non-finite numbers and cycles are shown, never dropped (regression: a
    -- step returning {loss = NaN} was printed as {} by `run --json`)
    assert.equal('{"a":1,"l":[1]}', json.encode(json.sanitize({ a = 1, f = print, l = { 1 } })))
    local cy = { n = 1 }
    cy.self = cy
    assert.equal('{"b":"NaN","c":["Infinity","-Infinity",2],"cyc":{"n":1,"self":"<cycle>"}}',
      json.encode(json.sanitize({ b = 0 / 0, c = { 1 / 0, -1 / 0, 2 }, cyc = cy })))
  end)

  it("decodes strictly, with nil, msg, name", function()
    local cases = {
      { "", "json: unexpected end of input at byte 1", "EFORMAT" },
      { "[1,]", "json: unexpected ']' at byte 4", "EFORMAT" },
      { '{"a":1,}', "json: expected a string key at byte 8", "EFORMAT" },
      { '{"a" 1}', "json: expected ':' after a key at byte 6", "EFORMAT" },
      { "01", "json: trailing data after the value at byte 2", "EFORMAT" },
      { "1.", "json: a digit must follow '.' at byte 2", "EFORMAT" },
      { '"\\ud800"', "json: lone surrogate \\ud800 at byte 2", "EFORMAT" },
      { '"a\nb"', "json: control byte in string (escape it) at byte 3", "EFORMAT" },
      { '"\237\160\128"', "json: invalid UTF-8 in string at byte 2", "EFORMAT" },
      { '{"a":1,"a":2}', 'json: duplicate key "a" at byte 8', "EFORMAT" },
      { "NaN", "json: unexpected 'N' at byte 1", "EFORMAT" },
      { "1e400", "json: number 1e400 is beyond a double's range at byte 1", "ERANGE" },
      { string.rep("[", 1001) .. string.rep("]", 1001), "json: nesting deeper than 1000 at byte 1001", "EFORMAT" },
    }
    for _, c in ipairs(cases) do
      local ok, v, msg, name = pcall(json.decode, c[1])
      assert.is_true(ok, tostring(v))
      assert.is_nil(v, c[1])
      assert.equal(c[2], msg)
      assert.equal(c[3], name)
    end
    assert.equal(2 ^ 53, json.decode("9007199254740992"))
    -- integers beyond 2^53: nearest double by default (user data), refused on request
    assert.equal(2 ^ 53, json.decode("9007199254740993"))
    assert.same({ nil, "json: integer 9007199254740993 is beyond 2^53 (a double cannot hold it exactly) at byte 2",
      "ERANGE" }, { json.decode("[9007199254740993]", { exact_ints = true }) })
    assert.same({ nil, "x: unexpected end of input at byte 1", "EFORMAT" }, { json.decode("", { prefix = "x" }) })
    assert.equal("😀", json.decode('"\\ud83d\\ude00"'))
    assert.equal(false, json.decode(" false "))
    assert.equal(json.null, json.decode("null"))
  end)

  it("decodes in linear time (regression: every string's UTF-8 check scanned to the end of the text)", function()
    local t = {}
    for i = 1, 20000 do t[i] = { name = "col" .. i, v = i * 0.25 } end
    local text = assert(json.encode(json.array(t)))
    assert.is_true(#text > 500000)
    local t0 = os.clock()
    local back = assert(json.decode(text))
    local took = os.clock() - t0
    assert.equal(20000, #back)
    -- linear: ~0.05 s here; the quadratic version took minutes on this input
    assert.is_true(took < 3, ("decoding %d bytes took %.2f s"):format(#text, took))
  end)

  it("parses number text for metrics and params, refusing what cannot be stored exactly", function()
    assert.equal(0.5, json.parse_number("0.5"))
    assert.equal(2 ^ 53, json.parse_number("9007199254740992"))
    assert.same({ nil, "'9007199254740993' is an integer beyond 2^53 (it would be stored as 9007199254740992); "
      .. "give it as a string", "ERANGE" }, { json.parse_number("9007199254740993") })
    assert.same({ nil, "'1e400' is not finite (NaN and infinities cannot be stored)", "EINVAL" },
      { json.parse_number("1e400") })
    assert.same({ nil, "'abc' is not a number", "EINVAL" }, { json.parse_number("abc") })
    assert.same({ nil, "metrics.acc[2] is nan: NaN and infinities cannot be stored (JSON has no such numbers)", "EINVAL" },
      { json.check_numbers({ acc = { 1, 0 / 0 } }, "metrics") })
    assert.is_true(json.check_numbers({ a = 1e300, b = { "x" } }, "params"))
  end)
end)

describe("ipkrun JSON output", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("keeps a rank-0 tensor's shape an array through model add/show --json (regression: \"shape\":{})", function()
    -- a safetensors file with one scalar tensor, written by Python (an independent writer)
    local path = tmp .. "/scalar.safetensors"
    local code, _, err = u.sh("/usr/bin/python3 -c " .. u.q([[
import json, struct, sys
hdr = json.dumps({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
                  "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
hdr += b" " * ((8 - len(hdr) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(hdr)) + hdr + struct.pack("<3f", 1.5, 2, 3))
]]) .. " " .. u.q(path))
    assert.equal(0, code, err)
    local added = u.ok_json(env, "model", "add", path, "--name", "scalar", "--version", "1.0.0", "--json")
    for _, args in ipairs { { "model", "show", "scalar@1.0.0", "--json" }, { "model", "show", "scalar@1.0.0" } } do
      local c, out, e = u.ipkrun(args, env)
      assert.equal(0, c, e)
      assert.matches('"name":"s","shape":%[%]', out, 1, false)
      assert.matches('"name":"v","shape":%[2%]', out, 1, false)
      assert.not_matches('"shape":{}', out, 1, true)
    end
    assert.equal(added.entry_cid, u.ok_json(env, "model", "show", "scalar@1.0.0", "--json").entry_cid)
  end)

  -- Numbers JSON cannot store exactly are refused before anything is staged
  -- or recorded (issue 8 item 7), in the registry, datasets and recipe params.
  it("refuses non-finite metrics/params and integers beyond 2^53 up front, staging nothing", function()
    local model = tmp .. "/m.safetensors"
    assert.equal(0, (u.sh("/usr/bin/python3 -c " .. u.q([[
import json, struct, sys
hdr = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(hdr)) + hdr + struct.pack("<f", 1))
]]) .. " " .. u.q(model))))
    local cases = {
      { { "--metric", "acc=1e400" }, "--metric acc: '1e400' is not finite (NaN and infinities cannot be stored)" },
      { { "--metric", "acc=nan" }, "--metric acc: 'nan' is not finite (NaN and infinities cannot be stored)" },
      { { "--metric", "acc=-inf" }, "--metric acc: '-inf' is not finite (NaN and infinities cannot be stored)" },
      { { "--param", "x=9007199254740993" }, "--param x: '9007199254740993' is an integer beyond 2^53 (it would be "
        .. 'stored as 9007199254740992); give it as a string (or quote it: x=\"9007199254740993\")' },
      { { "--param", "lr=1e400" }, "--param lr: '1e400' is not finite" },
    }
    for _, c in ipairs(cases) do
      local args = { "model", "add", model, "--name", "m", "--version", "1.0.0" }
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      local code, _, err = u.ipkrun(args, env)
      assert.equal(2, code, err)
      assert.equal("ipkrun: model add: " .. c[2], err:match("^([^\n]*)"):sub(1, #("ipkrun: model add: " .. c[2])))
    end
    local _, left = u.sh("ls -A " .. u.q(env.IPK_HOME .. "/staging") .. " 2>/dev/null")
    assert.equal("", left)
    assert.equal(0, u.ok_json(env, "model", "list", "--json").count)
    -- a quoted value is text, kept exactly; 2^53 itself is exact
    local e = u.ok_json(env, "model", "add", model, "--name", "m", "--version", "1.0.0", "--json",
      "--param", 'x="9007199254740993"', "--param", "y=9007199254740992", "--metric", "acc=0.5")
    assert.equal("9007199254740993", e.params.x)
    assert.equal(2 ^ 53, e.params.y)
    assert.equal(0.5, e.metrics.acc)

    -- recipe params: from --param text and from the recipe itself
    local recipe = tmp .. "/r.lua"
    u.write(recipe, [[
local ipk = require "ipk"
return ipk.recipe { name = "nums", params = { lr = 0.1, n = 1 },
  steps = { s = ipk.step { lr = ipk.param "lr", run = function(_, _, a) return a.lr end } } }
]])
    for _, c in ipairs {
      { "lr=1e400", "ipkrun: run: param 'lr': '1e400' is not finite (NaN and infinities cannot be stored)" },
      { "lr=nan", "ipkrun: run: param 'lr': 'nan' is not finite (NaN and infinities cannot be stored)" },
      { "n=9007199254740993", "ipkrun: run: param 'n': '9007199254740993' is an integer beyond 2^53" },
    } do
      local code, _, err = u.ipkrun({ "run", recipe, "--param", c[1] }, env)
      assert.equal(1, code, err)
      assert.matches(c[2], err, 1, true)
    end
    u.write(recipe, [[
local ipk = require "ipk"
return ipk.recipe { name = "nan", params = { lr = 0/0 },
  steps = { s = ipk.step { lr = ipk.param "lr", run = function(_, _, a) return a.lr end } } }
]])
    local code, _, err = u.ipkrun({ "run", recipe }, env)
    assert.equal(1, code, err)
    assert.matches("param 'lr' is nan: NaN and infinities cannot be stored (JSON has no such numbers) (recipe 'nan')",
      err, 1, true)
    assert.equal(0, #u.ok_json(env, "runs", "--json").runs)

    -- dataset options
    local csv = tmp .. "/d.csv"
    u.write(csv, "x,y\n1,a\n2,b\n3,a\n4,b\n")
    u.ok_json(env, "dataset", "add", csv, "--name", "d", "--json")
    for _, c in ipairs {
      { { "split", "d", "--test", "nan" }, "ipkrun: dataset split: split: test fraction must be in (0, 1), got nan" },
      { { "split", "d", "--seed", "1e400" }, "ipkrun: dataset split: split: seed must be an integer in [0, 2^53]: "
        .. "'1e400' is not finite" },
      { { "split", "d", "--seed", "9007199254740993" }, "'9007199254740993' is an integer beyond 2^53" },
      { { "shard", "d", "--count", "inf" }, "ipkrun: dataset shard: shard: count must be a positive integer, got inf" },
    } do
      local args = { "dataset" }
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      local code2, _, err2 = u.ipkrun(args, env)
      assert.equal(1, code2, err2)
      assert.matches(c[2], err2, 1, true)
    end
  end)

  -- regression (breaklua): a step output nested 100000 deep made the run's
  -- result a "json.lua: stack overflow"; check_numbers recursed as deep
  it("sanitize and check_numbers stop at the nesting limit", function()
    local t = {}
    local c = t
    for _ = 1, 100000 do c.x = {}; c = c.x end
    local s = json.sanitize(t)
    local d, v = 0, s
    while type(v) == "table" do d = d + 1; v = v.x end
    assert.equal(1000, d)
    assert.equal("<nested deeper than 1000 levels>", v)
    local ok, msg, name = json.check_numbers(t, "params")
    assert.is_nil(ok)
    assert.equal("ERANGE", name)
    assert.matches("^params%.x%.x.*: nested deeper than 1000 levels$", msg)
  end)
end)
