-- ipk.staging: scratch directories under $IPK_HOME/staging never outlive
-- the command that made them: removed when the function returns, raises or
-- is cancelled, and (named after their process) swept by the next command
-- when the process was killed. Own temporary $IPK_HOME.
local u = support
local ffi = require "ffi"
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")

local home_root = u.tmpdir()
ffi.C.setenv("IPK_HOME", home_root .. "/home", 1)

local staging = require "ipk.staging"
local proc = require "ipk.proc"
local fs = require "ipk.fs"
local registry = require "ipk.registry"
local runtime = require "ipk.runtime"
runtime.quiet = true

local function entries()
  local list = fs.walk(home_root .. "/home/staging", { depth = 1 }) or {}
  local names = {}
  for _, e in ipairs(list) do names[#names + 1] = e.path end
  table.sort(names)
  return names
end

-- A pid that has certainly ended: a shell that printed its own and exited.
local function dead_pid()
  local _, out = u.sh("sh -c 'echo $$'")
  local pid = tonumber(out)
  assert(not proc.alive(pid))
  return pid
end

describe("ipk.staging", function()
  teardown(function() u.rm_rf(home_root) end)

  it("removes the directory when the function returns, fails or raises", function()
    local seen
    local a, b = staging.with("reg", function(d)
      seen = d
      u.write(d .. "/f", "x")
      return 1, 2
    end)
    assert.same({ 1, 2 }, { a, b })
    assert.matches("/staging/reg%." .. proc.pid() .. "%.[%w]+$", seen)
    assert.is_false(fs.exists(seen))
    local r, msg = staging.with("reg", function() return nil, "bad file" end)
    assert.is_nil(r)
    assert.equal("bad file", msg)
    local ok, err = pcall(staging.with, "ds", function(d) u.write(d .. "/g", "y"); error("disk full", 0) end)
    assert.is_false(ok)
    assert.equal("disk full", err)
    assert.same({}, entries())
  end)

  it("sweeps what killed processes left, keeps live ones' and foreign names", function()
    local base = home_root .. "/home/staging"
    local gone = base .. "/reg." .. dead_pid() .. ".abc123"
    assert(fs.mkdir_p(gone .. "/model"))
    u.write(gone .. "/model/w.bin", "partial")
    assert(fs.mkdir_p(base .. "/ds." .. dead_pid() .. ".zz9"))
    local mine = base .. "/reg." .. proc.pid() .. ".live01"
    assert(fs.mkdir_p(mine))
    assert(fs.mkdir_p(base .. "/notes"))
    local d = assert(staging.new("ds")) -- sweeps first
    assert.same({ d:match("[^/]+$"), "notes", "reg." .. proc.pid() .. ".live01" }, entries())
    staging.remove(d)
    staging.remove(base .. "/notes") -- not made here: left alone
    assert.is_true(fs.exists(base .. "/notes"))
    fs.rm_rf(mine)
    fs.rm_rf(base .. "/notes")
  end)

  it("a model add that fails or raises leaves no staging copy", function()
    local ok, err = pcall(function()
      return require("ipk.sched").run_task(registry.register, { name = "m", version = "1.0.0",
        model_cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", bytes = {} })
    end)
    assert.is_false(ok) -- writing a table as bytes raises inside the staged work
    assert.matches("bad argument #1 to 'write'", err, 1, true)
    assert.same({}, entries())
    local r, msg = require("ipk.sched").run_task(registry.register, { name = "m", version = "1.0.0",
      path = home_root .. "/nope.onnx" })
    assert.is_nil(r)
    assert.equal("registry: " .. home_root .. "/nope.onnx: no such file or directory", msg)
    assert.same({}, entries())
  end)
end)
