-- One error table: every error name the Lua layer returns is in
-- IPK_ERRNO_MAP (core/include/ipk/err.h), C knows each of them, and error
-- messages carry each prefix once ("ipkrun: CMD: module: what: why").
local core = require "ipk.core"
local u = require "support.util"

-- {name = message} of the X-macro table, parsed from the header.
local function header_table()
  local text = u.read(u.root .. "/core/include/ipk/err.h")
  local map = text:match("#define IPK_ERRNO_MAP%(X%)(.-)\n\n")
  assert(map, "IPK_ERRNO_MAP not found in err.h")
  local t, order = {}, {}
  for name, msg in map:gmatch('X%(%s*([%u%d_]+)%s*,%s*"([^"]*)"%s*%)') do
    t["E" .. name] = msg
    order[#order + 1] = "E" .. name
  end
  return t, order
end

-- Every .lua file under dir (recursive).
local function lua_files(dir)
  local p = io.popen("find " .. u.q(dir) .. " -name '*.lua' -type f | LC_ALL=C sort")
  local files = {}
  for l in p:lines() do files[#files + 1] = l end
  p:close()
  return files
end

describe("the error table", function()
  it("is the same in the header and in C (names, messages, codes in order)", function()
    local t, order = header_table()
    assert.is_true(#order >= 27)
    local c = core.errors()
    local n = 0
    for _ in pairs(c) do n = n + 1 end
    assert.equal(#order, n)
    for i, name in ipairs(order) do
      assert.is_table(c[name], name .. " is in err.h but C does not know it")
      assert.equal(t[name], c[name].message)
      assert.equal(-1000 + i, c[name].code)
    end
  end)

  it("holds every error name used in scripts/ipk and bindings/lua", function()
    local t = header_table()
    local files = lua_files(u.root .. "/scripts/ipk")
    for _, f in ipairs(lua_files(u.root .. "/bindings/lua")) do files[#files + 1] = f end
    assert.is_true(#files > 20)
    local missing, seen = {}, 0
    for _, f in ipairs(files) do
      local ln = 0
      for line in io.lines(f) do
        ln = ln + 1
        local code = line:gsub("%-%-.*$", "") -- comments may name errors in prose
        for q, name in code:gmatch("([\"'])(E[%u]+)%1") do
          local _ = q
          seen = seen + 1
          if not t[name] then missing[#missing + 1] = f:sub(#u.root + 2) .. ":" .. ln .. ": " .. name end
        end
      end
    end
    assert.is_true(seen > 40, "expected many error names, found " .. seen)
    assert.same({}, missing)
  end)

  it("core.check adds the caller's context once, never the module's prefix again", function()
    local eb = core.errbuf()
    require("ffi").copy(eb.msg, "safetensors: header is short")
    local _, msg, name = core.check(-1000 + 8, eb, "safetensors")
    assert.equal("safetensors: header is short", msg)
    assert.equal("EFORMAT", name)
    _, msg = core.check(-1000 + 8, eb, "model.bin")
    assert.equal("model.bin: safetensors: header is short", msg)
    _, msg, name = core.check(core.errors().ECID.code)
    assert.equal("invalid CID", msg)
    assert.equal("ECID", name)
  end)
end)

describe("error messages through the CLI", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  -- The ": "-separated segments of an error line; a one-word segment
  -- (a prefix such as "registry" or "safetensors") must occur once.
  local function assert_single_prefixes(line)
    local counts = {}
    for seg in (line .. ": "):gmatch("(.-): ") do
      if seg:match("^[%a][%w%-_]*$") then
        counts[seg] = (counts[seg] or 0) + 1
        assert.is_true(counts[seg] == 1, "prefix '" .. seg .. "' twice in: " .. line)
      end
    end
  end

  it("carry each prefix once", function()
    local bad = tmp .. "/bad.safetensors"
    -- header length 16 but the header is 7 bytes of JSON and 9 spaces: not a safetensors header object
    u.write(bad, string.char(16, 0, 0, 0, 0, 0, 0, 0) .. '{"a":1}         ')
    local cases = {
      { { "cat", "notacid" }, "^ipkrun: cat: " },
      { { "model", "show", "nosuch" }, "^ipkrun: model show: " },
      { { "dataset", "show", "nosuch" }, "^ipkrun: dataset show: " },
      { { "car", "import", tmp .. "/missing.car" }, "^ipkrun: car" },
      { { "model", "add", bad, "--name", "b", "--version", "1.0.0" }, "^ipkrun: model add: " },
      { { "model", "add", bad, "--name", "b", "--version", "1.0.0", "--metric", "acc=1e400" }, "^ipkrun: model add: " },
      { { "run", tmp .. "/missing.lua" }, "^ipkrun: run: " },
    }
    for _, c in ipairs(cases) do
      local code, _, err = u.ipkrun(c[1], env)
      assert.is_true(code ~= 0, table.concat(c[1], " ") .. " should fail")
      local line = err:match("[^\n]*ipkrun: [^\n]*")
      assert.is_string(line, "no error line from " .. table.concat(c[1], " ") .. ": " .. err)
      assert.matches(c[2], line)
      assert_single_prefixes(line)
    end
  end)

  it("from a library call carry the module prefix once (safetensors through train)", function()
    local train = require "ipk.train"
    local v, msg = train.from_safetensors(string.char(16, 0, 0, 0, 0, 0, 0, 0) .. '{"a":1}         ')
    assert.is_nil(v)
    assert.matches("^safetensors: ", msg)
    assert_single_prefixes(msg)
  end)
end)
