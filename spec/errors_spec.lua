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

-- `return nil, X` statements with no third value (a name), as {line, text}.
-- A small scanner: strings, long strings and comments are skipped; the
-- expression ends at a newline outside brackets unless the line continues
-- (a trailing `..`, `,`, operator, or a next line starting with `..`/`:`).
local function unnamed_returns(src)
  local out = {}
  local i, n = 1, #src
  while true do
    local s, e = src:find("return%s+nil%s*,", i)
    if not s then break end
    -- skip if inside a comment line
    local ls = src:sub(1, s):match(".*\n()") or 1
    local prefix = src:sub(ls, s - 1)
    if prefix:find("%-%-") then i = e + 1 goto continue end
    do
      local depth, commas, j = 0, 0, e + 1
      while j <= n do
        local c = src:sub(j, j)
        if c == '"' or c == "'" then
          local k = j + 1
          while k <= n do
            local d = src:sub(k, k)
            if d == "\\" then k = k + 2
            elseif d == c then break
            else k = k + 1 end
          end
          j = k + 1
        elseif src:sub(j, j + 1) == "[[" then
          local _, k = src:find("]]", j + 2, true); j = (k or n) + 1
        elseif src:sub(j, j + 1) == "--" then
          local k = src:find("\n", j, true) or n; j = k
        elseif c == "(" or c == "{" or c == "[" then depth = depth + 1; j = j + 1
        elseif c == ")" or c == "}" or c == "]" then
          if depth == 0 then break end
          depth = depth - 1; j = j + 1
        elseif c == "," and depth == 0 then commas = commas + 1; j = j + 1
        elseif c == "\n" and depth == 0 then
          local before = src:sub(e + 1, j - 1):gsub("%-%-[^\n]*", ""):gsub("%s+$", "")
          local nextl = src:match("^%s*([^\n]*)", j + 1) or ""
          if before:find("%.%.$") or before:find(",$") or before:find("[%+%-%*/]$")
            or before:find("%f[%w]and$") or before:find("%f[%w]or$") or nextl:find("^%.%.") or nextl:find("^:")
            or nextl:find("^or%f[%W]") or nextl:find("^and%f[%W]") then
            j = j + 1
          else break end
        elseif depth == 0 and src:sub(j - 1, j - 1):match("[%s;]")
            and (src:find("^end%f[%W]", j) or src:find("^else%f[%W]", j) or src:find("^elseif%f[%W]", j)) then
          break
        else j = j + 1 end
      end
      if commas == 0 then
        local line = select(2, src:sub(1, s):gsub("\n", "")) + 1
        out[#out + 1] = { line, (src:sub(s, j - 1):gsub("%s+", " ")) }
      end
      i = e + 1
    end
    ::continue::
  end
  return out
end

-- Returns that may carry no name, each with its reason.
local UNNAMED_OK = {
  ["scripts/ipk/run/exec.lua"] = "execute, run_file and resume return nil, msg, summary: a run's third value is its "
    .. "summary (ipkrun run prints it), not a name",
  ["scripts/ipk/store.lua:69"] = "bind of an unsupported Lua type: a programming error reported to the caller's query",
  ["scripts/ipk/store.lua:190"] = "an error raised inside a transaction carries only its message; callers name it",
}

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

  it("is used by every domain module: each `return nil, msg` also returns a name (luv's triple)", function()
    local files = lua_files(u.root .. "/scripts/ipk")
    for _, f in ipairs(lua_files(u.root .. "/bindings/lua")) do files[#files + 1] = f end
    local bad = {}
    for _, f in ipairs(files) do
      local rel = f:sub(#u.root + 2)
      -- the CLI's own helpers return a message to the command that prints it
      if not rel:match("^scripts/ipk/cmd/") and rel ~= "scripts/ipk/cli.lua" then
        for _, r in ipairs(unnamed_returns(u.read(f))) do
          local at = rel .. ":" .. r[1]
          if not (UNNAMED_OK[at] or UNNAMED_OK[rel]) then bad[#bad + 1] = at .. ": " .. r[2] end
        end
      end
    end
    assert.same({}, bad)
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

  -- The ": "-separated segments of an error line; a prefix segment of one
  -- or two words ("registry", "safetensors", "car export") must occur once.
  local function assert_single_prefixes(line)
    local counts = {}
    for seg in (line .. ": "):gmatch("(.-): ") do
      if seg:match("^[%a][%w%-_]*$") or seg:match("^[%a][%w%-_]* [%a][%w%-_]*$") then
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
      { { "model", "add", bad, "--name", "b", "--version", "1.0.0" },
        "^ipkrun: model add: registry: " .. tmp:gsub("%p", "%%%0") .. "/bad.safetensors: safetensors: " },
      { { "model", "add", bad, "--name", "b", "--version", "1.0.0", "--metric", "acc=1e400" }, "^ipkrun: model add: " },
      { { "run", tmp .. "/missing.lua" }, "^ipkrun: run: " },
      { { "car", "export", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", "-o", tmp .. "/x.car" },
        "^ipkrun: car export: car: block not found" },
      { { "dataset", "split", "nosuch", "--test", "nan" }, "^ipkrun: dataset split: " },
      -- regressions (breaklua): "pin rm: pin rm CID: not pinned", the path
      -- twice ("model import: F: F: No such file"), a directory as a recipe
      -- (an internal error: "attempt to get length of local 'src'")
      { { "pin", "rm", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" },
        "^ipkrun: pin rm: bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am: not pinned$" },
      { { "model", "import", tmp .. "/missing.json" },
        "^ipkrun: model import: " .. tmp:gsub("%p", "%%%0") .. "/missing%.json: No such file or directory$" },
      { { "model", "export", tmp .. "/no/dir.json" },
        "^ipkrun: model export: " .. tmp:gsub("%p", "%%%0") .. "/no/dir%.json: No such file or directory$" },
      { { "model", "import", tmp }, "^ipkrun: model import: " .. tmp:gsub("%p", "%%%0") .. ": Is a directory$" },
      { { "dataset", "add", "", "--name", "e" }, "^ipkrun: dataset add: dataset e: : no such file or directory$" },
      { { "graph", tmp }, "^ipkrun: graph: " .. tmp:gsub("%p", "%%%0") .. ": Is a directory$" },
      { { "run", tmp }, "^ipkrun: run: " .. tmp:gsub("%p", "%%%0") .. ": Is a directory$" },
    }
    for _, c in ipairs(cases) do
      local code, _, err = u.ipkrun(c[1], env)
      assert.is_true(code ~= 0, table.concat(c[1], " ") .. " should fail")
      local line = err:match("[^\n]*ipkrun: [^\n]*")
      assert.is_string(line, "no error line from " .. table.concat(c[1], " ") .. ": " .. err)
      assert.matches(c[2], line)
      assert_single_prefixes(line)
      -- the user's path, never ipk's staging copy (a path is not a Lua pattern: "ipk-spec" has a "-")
      assert.is_nil(line:find("/staging/", 1, true), line)
    end
  end)

  -- regression (breaklua): tonumber("nan") passed `x < 0` / `x <= 0`
  -- checks: cat --offset=nan printed the whole file, runs --limit nan was an
  -- internal SQLite error with a file:line
  it("numeric flags refuse nan, inf and fractions with a usage error", function()
    local cases = {
      { { "cat", "--offset=nan", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" },
        "ipkrun: cat: --offset and --length take byte counts >= 0" },
      { { "cat", "--length=1.5", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" },
        "ipkrun: cat: --offset and --length take byte counts >= 0" },
      { { "runs", "--limit", "nan" }, "ipkrun: runs: --limit expects a positive integer" },
      { { "pull", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", "--from", "http://127.0.0.1:1",
          "--link-timeout=inf" }, "ipkrun: pull: --link-timeout takes seconds > 0" },
      { { "serve", "--for", "nan" }, "ipkrun: serve: --for expects seconds > 0" },
    }
    for _, c in ipairs(cases) do
      local code, out, err = u.ipkrun(c[1], env)
      assert.equal(2, code, table.concat(c[1], " "))
      assert.equal("", out)
      assert.equal(c[2] .. "\n", err)
    end
  end)

  it("from a library call carry the module prefix once (safetensors through ipk.fl.model)", function()
    local train = require "ipk.fl.model"
    local v, msg = train.from_safetensors(string.char(16, 0, 0, 0, 0, 0, 0, 0) .. '{"a":1}         ')
    assert.is_nil(v)
    assert.matches("^safetensors: ", msg)
    assert_single_prefixes(msg)
  end)
end)
