-- ipk.fs: the Lua wrapper of core/include/ipk/fs.h (tables, error triples,
-- misuse) and the step-key fingerprint built on it.
local fs = require "ipk.fs"
local key = require "ipk.run.key"
local u = support

describe("ipk.fs", function()
  local dir
  before_each(function() dir = u.tmpdir() end)
  after_each(function() u.rm_rf(dir) end)

  it("walks a tree sorted bytewise, with types and sizes, without following links", function()
    assert(fs.mkdir_p(dir .. "/t/sub/deep"))
    u.write(dir .. "/t/b", "hello")
    u.write(dir .. "/t/B", "")
    u.write(dir .. "/t/sub/deep/x", "123")
    assert.equal(0, (u.sh("ln -s " .. u.q(dir .. "/t/sub") .. " " .. u.q(dir .. "/t/ln"))))
    local got = {}
    for _, e in ipairs(assert(fs.walk(dir .. "/t"))) do got[#got + 1] = e.path .. ":" .. e.type .. ":" .. e.size end
    assert.same({ "B:file:0", "b:file:5", "ln:link:" .. #(dir .. "/t/sub"), "sub:dir:0", "sub/deep:dir:0",
                  "sub/deep/x:file:3" }, got)
    local top = assert(fs.walk(dir .. "/t", { depth = 1 }))
    assert.equal(4, #top)
    local e = assert(fs.stat(dir .. "/t/b"))
    assert.equal("file", e.type)
    assert.is_true(e.mtime > 1e9 and e.ino > 0)
  end)

  it("returns nil, msg, name for expected failures and raises on misuse", function()
    local v, msg, name = fs.walk(dir .. "/none")
    assert.is_nil(v)
    assert.equal("ENOENT", name)
    assert.matches(dir .. "/none", msg, 1, true)
    u.write(dir .. "/f", "x")
    v, msg, name = fs.mkdir_p(dir .. "/f/sub")
    assert.is_nil(v)
    assert.equal("EEXIST", name)
    assert.matches("not a directory", msg, 1, true)
    assert.has_error(function() fs.walk(nil) end, "fs.walk: path string expected, got nil")
    assert.is_false(fs.exists(dir .. "/none"))
    assert.is_true(fs.exists(dir .. "/f"))
    assert.is_false(fs.is_dir(dir .. "/f"))
    assert.is_true(fs.is_dir(dir))
    -- regression (breaklua): an empty path is a user's input (`dataset add ''`
    -- raised "fs.is_dir: path string expected, got string" with a file:line)
    assert.is_false(fs.exists(""))
    assert.is_false(fs.is_dir(""))
    for _, f in ipairs { "walk", "stat", "mkdir_p", "mkdtemp", "rm_rf", "fingerprint", "create" } do
      v, msg, name = fs[f]("")
      assert.is_nil(v, f)
      assert.equal("fs." .. f .. ": empty path", msg)
      assert.equal("EINVAL", name)
    end
    v, msg, name = fs.copy_tree(dir .. "/f", "")
    assert.same({ nil, "fs.copy_tree: empty path", "EINVAL" }, { v, msg, name })
  end)

  it("makes temp dirs, copies trees by hard links, removes them", function()
    local t = assert(fs.mkdtemp(dir .. "/staging", "ds."))
    assert.matches("/staging/ds%.%w+$", t)
    assert(fs.mkdir_p(t .. "/src/a"))
    u.write(t .. "/src/a/one", "1")
    assert.equal(1, assert(fs.copy_tree(t .. "/src", t .. "/dst")))
    assert.equal(fs.stat(t .. "/src/a/one").ino, fs.stat(t .. "/dst/a/one").ino)
    assert.equal(0, assert(fs.copy_tree(t .. "/src", t .. "/copy", { copy_only = true })))
    assert.are_not.equal(fs.stat(t .. "/src/a/one").ino, fs.stat(t .. "/copy/a/one").ino)
    local _, _, name = fs.copy_tree(t .. "/src", t .. "/dst")
    assert.equal("EEXIST", name)
    assert(fs.rm_rf(t))
    assert.is_false(fs.exists(t))
    assert.is_true(fs.rm_rf(t)) -- already gone
  end)

  it("creates files for writing without O_* numbers in Lua", function()
    local fd = assert(fs.create(dir .. "/w", { mode = 384 }))
    assert(fs.close(fd))
    assert.equal("", u.read(dir .. "/w"))
    local _, _, name = fs.create(dir .. "/w", { excl = true })
    assert.equal("EEXIST", name)
    _, _, name = fs.close(-1)
    assert.equal("EIO", name)
  end)

  it("fingerprints a path for step keys: stable, changed by any change, 'missing' when absent", function()
    assert(fs.mkdir_p(dir .. "/d"))
    u.write(dir .. "/d/x", "abc")
    local a = assert(key.fingerprint(dir .. "/d"))
    assert.matches("^%x+$", a)
    assert.equal(64, #a)
    assert.equal(a, key.fingerprint(dir .. "/d"))
    u.write(dir .. "/d/y", "")
    assert.are_not.equal(a, key.fingerprint(dir .. "/d"))
    assert.equal("missing", key.fingerprint(dir .. "/nothing"))
    assert.equal("missing", key.fingerprint(""))
  end)
end)
