-- spec for scripts/ipk/store.lua: the embedded store and its db through FFI.
local store = require "ipk.store"
local core = require "ipk.core"
local lib, ffi = core.lib, core.ffi

-- CID of raw bytes, computed by the core (no Lua hashing here).
local function raw_cid(bytes, version)
  local c = ffi.new("ipk_cid_t")
  assert(lib.ipk_cid_of(version or 1, 0x55, bytes, #bytes, c) == 0)
  return c
end

local function cid_str(c)
  local buf = ffi.new("char[256]")
  assert(lib.ipk_cid_format(c, 0, buf, 256) >= 0)
  return ffi.string(buf)
end

-- A multi-block UnixFS file (16-byte chunks) imported through blocks().
local function add_file(s, data)
  local o = ffi.new("ipk_unixfs_opts_t")
  assert(lib.ipk_unixfs_opts_init(o, "unixfs-v1-2025") == 0)
  o.chunk_size = 16
  o.max_links = 4
  local root, size, eb = ffi.new("ipk_cid_t"), ffi.new("uint64_t[1]"), core.errbuf()
  local rc = lib.ipk_unixfs_add_bytes(o, data, #data, s and s:blocks() or nil, root, size, eb)
  assert(rc == 0, ffi.string(eb.msg))
  return root
end

-- Blocks the store holds (packs and old-layout files).
local function block_count(st)
  local r = assert(st:stat())
  return r.blocks + r.legacy_blocks
end

-- Flip the stored byte at offset `at` of block c.
local function damage(st, c, at)
  local l = assert(st:locate(c))
  local f = assert(io.open(l.path, "r+b"))
  f:seek("set", l.offset + (at or 0))
  local b = f:read(1)
  f:seek("set", l.offset + (at or 0))
  f:write(string.char((b:byte() + 1) % 256))
  f:close()
  return l
end

describe("ipk.store", function()
  local home, s

  before_each(function()
    home = support.tmpdir()
    s = assert(store.open(home))
  end)

  after_each(function()
    if s then s:close() end
    support.rm_rf(home)
  end)

  describe("blocks", function()
    it("round-trips a block by cdata or string CID", function()
      local c = raw_cid("hello store")
      assert.is_true(s:put(c, "hello store"))
      assert.is_true(s:has(c))
      assert.are.equal("hello store", s:get(c))
      assert.are.equal("hello store", s:get(cid_str(c)))
      assert.is_true(s:put(cid_str(c), "hello store"))   -- present: no-op
      assert.is_true(s:del(c))
      assert.is_false(s:has(c))
    end)

    it("keeps binary bytes intact", function()
      local bytes = "\0\1\2\255\0" .. string.rep("x", 100000)
      local c = raw_cid(bytes)
      assert.is_true(s:put(c, bytes))
      assert.are.equal(bytes, s:get(c))
    end)

    it("reports a missing block as ENOBLOCK naming the CID", function()
      local c = raw_cid("not here")
      local v, msg, name = s:get(c)
      assert.is_nil(v)
      assert.are.equal("ENOBLOCK", name)
      assert.truthy(msg:find(cid_str(c), 1, true))
      local ok, _, dname = s:del(c)
      assert.is_nil(ok)
      assert.are.equal("ENOBLOCK", dname)
    end)

    it("refuses bytes that do not hash to the CID", function()
      local c = raw_cid("right")
      local ok, msg, name = s:put(c, "wrong")
      assert.is_nil(ok)
      assert.are.equal("EVERIFY", name)
      assert.truthy(msg:find(cid_str(c), 1, true))
      assert.is_false(s:has(c))
    end)

    it("verifies on read: a corrupted file is EVERIFY", function()
      local c = raw_cid("precious")
      assert(s:put(c, "precious"))
      assert.are.equal(1, block_count(s))
      local l = damage(s, c, 0)
      assert.are.equal("pack", l.layout)
      assert.are.equal(8, l.length)
      local v, msg, name = s:get(c)
      assert.is_nil(v)
      assert.are.equal("EVERIFY", name)
      assert.truthy(msg:find(cid_str(c), 1, true))
      -- re-adding the bytes repairs it
      assert(s:put(c, "precious"))
      assert.are.equal("precious", s:get(c))
    end)

    it("stores CIDv0 and CIDv1 of the same bytes once", function()
      local data = "\10\2\8\1"
      local v0, v1 = ffi.new("ipk_cid_t"), ffi.new("ipk_cid_t")
      assert(lib.ipk_cid_of(0, 0x70, data, #data, v0) == 0)
      assert(lib.ipk_cid_of(1, 0x70, data, #data, v1) == 0)
      assert(s:put(v0, data))
      assert.is_true(s:has(v1))
      assert(s:put(v1, data))
      assert.are.equal(1, block_count(s))
      assert.are.same(s:locate(v0), s:locate(v1))
    end)

    it("a bad CID string is an expected failure; a wrong type is misuse", function()
      local v, _, name = s:get("not-a-cid")
      assert.is_nil(v)
      assert.are.equal("ECID", name)
      assert.has_error(function() s:get(42) end)
      assert.has_error(function() s:put(raw_cid("x"), 5) end)
    end)

    it("serves the UnixFS importer through blocks()", function()
      local parts = {}
      for i = 1, 60 do parts[i] = ("chunk %09d|"):format(i) end   -- 16 distinct bytes each
      local data = table.concat(parts)
      local root = add_file(s, data)
      assert.is_true(s:has(root))
      local n = block_count(s)
      assert.is_true(n > 60)   -- 60 leaves plus the tree above them
      local st = assert(s:stat())
      assert.is_true(st.bytes > #data)   -- the leaves' bytes plus the tree nodes
      assert.are.equal(st.bytes, st.stored_bytes)   -- no compression by default
    end)
  end)

  describe("pins", function()
    it("pins a complete DAG recursively and lists it", function()
      local root = add_file(s, string.rep("pinned data ", 20))
      local rs = cid_str(root)
      assert.is_true(s:pin_add(rs, { recursive = true, name = "model:x@1" }))
      assert.is_true(s:pin_has(rs))
      local pins = s:pin_ls()
      assert.are.equal(1, #pins)
      assert.are.equal(rs, pins[1].cid)
      assert.are.equal("recursive", pins[1].type)
      assert.are.equal("model:x@1", pins[1].name)
      assert.is_number(pins[1].created_at)
    end)

    it("refuses a recursive pin of an incomplete DAG and writes nothing", function()
      local root = add_file(nil, string.rep("only hashed ", 20))   -- -n: no blocks
      local ok, msg, name = s:pin_add(root)
      assert.is_nil(ok)
      assert.are.equal("ENOBLOCK", name)
      assert.truthy(msg:find(cid_str(root), 1, true))
      assert.are.same({}, s:pin_ls())
    end)

    it("direct pins, conflicts and pin rm of an unpinned CID", function()
      local c = raw_cid("direct")
      assert(s:put(c, "direct"))
      assert.is_true(s:pin_add(c, { recursive = false }))
      assert.are.equal("direct", s:pin_ls()[1].type)
      assert.is_nil(s:pin_ls()[1].name)
      assert.is_true(s:pin_add(c))   -- recursive upgrades a direct pin
      local ok, _, name = s:pin_add(c, { recursive = false })
      assert.is_nil(ok)
      assert.are.equal("ECONFLICT", name)
      assert.is_true(s:pin_rm(c))
      local msg
      ok, msg, name = s:pin_rm(c)
      assert.is_nil(ok)
      assert.are.equal("ENOENT", name)
      assert.truthy(msg:find("not pinned", 1, true))
      assert.truthy(msg:find(cid_str(c), 1, true))
    end)
  end)

  describe("gc", function()
    it("keeps pinned DAGs and removes the rest", function()
      local keep = add_file(s, string.rep("keep me ", 30))
      assert(s:pin_add(keep))
      local direct = raw_cid("direct one")
      assert(s:put(direct, "direct one"))
      assert(s:pin_add(direct, { recursive = false }))
      local before = block_count(s)
      local junk = add_file(s, string.rep("junk junk ", 30))
      local loose = raw_cid("loose")
      assert(s:put(loose, "loose"))
      local with_junk = block_count(s)
      local r = assert(s:gc())
      assert.are.equal(with_junk - before, r.removed)
      assert.is_true(r.bytes > 0)
      assert.is_false(s:has(junk))
      assert.is_false(s:has(loose))
      assert.is_true(s:has(keep))
      assert.is_true(s:has(direct))
      assert.are.equal(before, block_count(s))
      -- the kept file still reads back through the exporter
      local chunks = {}
      local cb = ffi.cast("ipk_unixfs_write_cb", function(_, p, n) chunks[#chunks + 1] = ffi.string(p, n) return 0 end)
      local eb = core.errbuf()
      local rc = lib.ipk_unixfs_cat(s:blocks(), keep, cb, nil, eb)
      cb:free()
      assert.are.equal(0, rc, ffi.string(eb.msg))
      assert.are.equal(string.rep("keep me ", 30), table.concat(chunks))
      assert.are.same({ removed = 0, bytes = 0 }, s:gc())
    end)
  end)

  describe("db", function()
    it("queries with typed parameters and returns rows by column name", function()
      local d = s:db()
      assert.are.equal(d, s:db())
      d:exec("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, n TEXT)")
      d:query("INSERT INTO t VALUES (?, ?, ?, ?, ?)", 42, 1.5, "héllo", store.blob("\0\1"), nil)
      d:query("INSERT INTO t VALUES (?, ?, ?, ?, ?)", 2 ^ 40, -0.25, "", store.blob(""), true)
      local rows = d:query("SELECT * FROM t ORDER BY i")
      assert.are.equal(2, #rows)
      assert.are.same({ i = 42, f = 1.5, s = "héllo", b = "\0\1" }, rows[1])
      assert.are.same({ i = 2 ^ 40, f = -0.25, s = "", b = "", n = "1" }, rows[2])
      assert.are.equal(1, d:changes())
      local big = d:query("SELECT 9007199254740993 AS v")[1].v
      assert.are.equal("cdata", type(big))   -- beyond 2^53 stays int64
      assert.are.same({}, d:query("SELECT * FROM t WHERE i = ?", 7))
    end)

    it("raises on SQL errors and misuse", function()
      local d = s:db()
      assert.has_error(function() d:query("SELEC 1") end)
      assert.has_error(function() d:query("SELECT ?", 1, 2) end)
      assert.has_error(function() d:query("SELECT ?", {}) end)
      d:exec("CREATE TABLE u (k TEXT PRIMARY KEY)")
      d:query("INSERT INTO u VALUES (?)", "a")
      local ok, err = pcall(d.query, d, "INSERT INTO u VALUES (?)", "a")
      assert.is_false(ok)
      assert.truthy(tostring(err):find("UNIQUE", 1, true))
    end)

    it("tx commits, rolls back on error or nil,msg, and nests", function()
      local d = s:db()
      d:exec("CREATE TABLE k (v INTEGER)")
      local ok, res = d:tx(function(db) db:query("INSERT INTO k VALUES (1)") return "done" end)
      assert.is_true(ok)
      assert.are.equal("done", res)
      local msg
      ok, msg = d:tx(function(db) db:query("INSERT INTO k VALUES (2)") error("boom", 0) end)
      assert.is_nil(ok)
      assert.are.equal("boom", msg)
      local name
      ok, msg, name = d:tx(function(db) db:query("INSERT INTO k VALUES (3)") return nil, "refused", "EINVAL" end)
      assert.is_nil(ok)
      assert.are.equal("refused", msg)
      assert.are.equal("EINVAL", name)
      ok = d:tx(function(db)
        db:query("INSERT INTO k VALUES (4)")
        local iok = db:tx(function(db2) db2:query("INSERT INTO k VALUES (5)") error("inner", 0) end)
        assert(iok == nil)
        db:query("INSERT INTO k VALUES (6)")
      end)
      assert.is_true(ok)
      local vals = {}
      for _, r in ipairs(d:query("SELECT v FROM k ORDER BY v")) do vals[#vals + 1] = r.v end
      assert.are.same({ 1, 4, 6 }, vals)
      -- the SQL error of a query inside tx comes back as nil, msg
      ok, msg = d:tx(function(db) db:query("INSERT INTO nosuch VALUES (1)") end)
      assert.is_nil(ok)
      assert.truthy(msg:find("nosuch", 1, true))
    end)

    it("pin_add inside a tx rolls back with it", function()
      local c = raw_cid("tx pin")
      assert(s:put(c, "tx pin"))
      local d = s:db()
      local ok = d:tx(function() assert(s:pin_add(c)) error("abort", 0) end)
      assert.is_nil(ok)
      assert.is_false(s:pin_has(c))
    end)

    it("opens a standalone database file", function()
      local d = assert(store.db_open(home .. "/other.db"))
      d:exec("CREATE TABLE x (a)")
      assert.are.same({ { n = 0 } }, d:query("SELECT count(*) AS n FROM x"))
      d:close()
      assert.has_error(function() d:query("SELECT 1") end)
      local bad, msg, name = store.db_open("/nonexistent-ipk-dir/x.db")
      assert.is_nil(bad)
      assert.are.equal("EDB", name)
      assert.truthy(msg:find("/nonexistent-ipk-dir/x.db", 1, true))
    end)
  end)

  describe("lifecycle", function()
    it("persists blocks, pins and tables across reopen", function()
      local c = raw_cid("persist")
      assert(s:put(c, "persist"))
      assert(s:pin_add(c, { name = "p" }))
      s:db():exec("CREATE TABLE reg (name TEXT)")
      s:db():query("INSERT INTO reg VALUES (?)", "m")
      s:close()
      s = assert(store.open(home))
      assert.are.equal("persist", s:get(c))
      assert.are.equal("p", s:pin_ls()[1].name)
      assert.are.equal("m", s:db():query("SELECT name FROM reg")[1].name)
    end)

    it("raises on use after close", function()
      local d = s:db()
      s:close()
      assert.has_error(function() s:get(raw_cid("x")) end)
      assert.has_error(function() d:query("SELECT 1") end)
      s:close()   -- idempotent
      s = nil
    end)

    it("defaults home to $IPK_HOME, then the XDG data dir", function()
      local lp = "package.path='bindings/lua/?.lua;scripts/?.lua;'..package.path "
      local prog = "print(require('ipk.store').default_home())"
      local code, out = support.sh("IPK_HOME=/x/h " .. support.luajit .. " -e " .. support.q(lp .. prog))
      assert.are.equal(0, code)
      assert.are.equal("/x/h\n", out)
      code, out = support.sh("env -u IPK_HOME XDG_DATA_HOME=/x/d " .. support.luajit .. " -e " .. support.q(lp .. prog))
      assert.are.equal(0, code)
      assert.are.equal("/x/d/ipk\n", out)
      code, out = support.sh("env -u IPK_HOME -u XDG_DATA_HOME HOME=/x/me " .. support.luajit .. " -e " .. support.q(lp .. prog))
      assert.are.equal(0, code)
      assert.are.equal("/x/me/.local/share/ipk\n", out)
    end)

    it("fails to open a home it cannot create, with the path", function()
      local v, msg, name = store.open("/proc/ipk-cannot")
      assert.is_nil(v)
      assert.are.equal("EIO", name)
      assert.truthy(msg:find("/proc/ipk-cannot", 1, true))
    end)
  end)

  describe("zstd at rest", function()
    it("keeps compressible blocks compressed, addresses and verifies the plain bytes", function()
      assert.are.equal("none", s:compression())
      local ok, msg, name = s:set_compression("gzip")
      assert.is_nil(ok)
      assert.are.equal("EINVAL", name)
      assert.truthy(msg:find("gzip", 1, true))
      assert(s:set_compression("zstd:5"))
      local text = string.rep("layer.0.weight 0.000 ", 5000)
      local c = raw_cid(text)
      assert(s:put(c, text))
      assert.are.equal(text, s:get(c))
      local l = assert(s:locate(c))
      assert.is_true(l.length < #text / 20)
      local st = assert(s:stat())
      assert.are.equal(#text, st.bytes)
      assert.are.equal(l.length, st.stored_bytes)
      -- the setting holds for the next process
      s:close()
      s = assert(store.open(home))
      assert.are.equal("zstd:5", s:compression())
      assert.are.equal(text, s:get(c))
      -- one flipped byte of the compressed form is caught on read
      damage(s, c, math.floor(l.length / 2))
      local v, m2, n2 = s:get(c)
      assert.is_nil(v)
      assert.are.equal("EVERIFY", n2)
      assert.truthy(m2:find("corrupt", 1, true))
    end)
  end)

  describe("repo", function()
    local function ipk(args) return support.ipkrun(args, { IPK_HOME = home }) end

    it("verify re-hashes every block and checks every pin (--json lists what is bad)", function()
      local root = add_file(s, string.rep("pinned file ", 20))
      assert(s:pin_add(root, { name = "f" }))
      local direct = raw_cid("direct pin")
      assert(s:put(direct, "direct pin"))
      assert(s:pin_add(direct, { recursive = false }))
      local loose = raw_cid("loose block")
      assert(s:put(loose, "loose block"))
      local total = block_count(s)
      s:close()
      s = nil
      local code, out = ipk({ "repo", "verify", "--json" })
      assert.are.equal(0, code)
      local r = require("cjson").decode(out)
      assert.are.same({ ok = true, blocks = total, bad_blocks = 0, pins = 2, bad_pins = 0,
                        bad_block_list = {}, bad_pin_list = {} }, r)
      code, out = ipk({ "repo", "verify" })
      assert.are.equal(0, code)
      assert.are.equal(("verified %d blocks (0 bad) and 2 pins (0 bad)\nrepo is ok\n"):format(total), out)

      -- corrupt one leaf of the pinned file and the loose block; lose the direct pin's block
      s = assert(store.open(home))
      local leaf = cid_str(raw_cid("pinned file pinn"))   -- the first 16-byte chunk
      assert.is_true(s:has(leaf))
      damage(s, leaf, 3)
      damage(s, loose, 0)
      assert(s:del(direct))
      s:close()
      s = nil
      code, out = ipk({ "repo", "verify", "--json" })
      assert.are.equal(1, code)
      r = require("cjson").decode(out)
      assert.is_false(r.ok)
      assert.are.equal(total - 1, r.blocks)
      assert.are.equal(2, r.bad_blocks)
      assert.are.equal(2, r.pins)
      assert.are.equal(2, r.bad_pins)
      local bad = {}
      for _, b in ipairs(r.bad_block_list) do bad[b.cid] = b.error end
      assert.matches("^corrupt: .*%.pack at offset %d+ %(16 bytes%) does not hash to its CID$", bad[leaf])
      assert.matches("^corrupt: ", bad[cid_str(loose)])
      local pins = {}
      for _, p in ipairs(r.bad_pin_list) do pins[p.cid] = p.error end
      assert.are.equal("block " .. leaf .. " is corrupt", pins[cid_str(root)])
      assert.are.equal("block " .. cid_str(direct) .. " is missing", pins[cid_str(direct)])
      code, out = ipk({ "repo", "verify" })
      assert.are.equal(1, code)
      assert.matches("bad pin " .. cid_str(direct) .. ": block " .. cid_str(direct) .. " is missing\n", out, 1, true)
      local tail = ("verified %d blocks (2 bad) and 2 pins (2 bad)\nREPO HAS PROBLEMS\n"):format(total - 1)
      assert.are.equal(tail, out:sub(-#tail))
    end)

    it("a deleted blocks/index.db is rebuilt from the packs: cat, verify, add and gc work", function()
      s:close()
      s = nil
      local data = string.rep("index lost ", 30000)   -- 330000 bytes: several leaves
      support.write(home .. "/f.txt", data)
      local code, out = ipk({ "add", "-Q", home .. "/f.txt" })
      assert.are.equal(0, code)
      local cid = out:match("^(%S+)\n$")
      assert.truthy(cid)
      code, out = ipk({ "repo", "stat", "--json" })
      assert.are.equal(0, code)
      local blocks = require("cjson").decode(out).blocks
      assert.is_true(blocks > 1)
      for _, sfx in ipairs({ "", "-wal", "-shm" }) do os.remove(home .. "/blocks/index.db" .. sfx) end
      code, out = ipk({ "cat", cid })
      assert.are.equal(0, code)
      assert.is_true(out == data)
      code, out = ipk({ "repo", "verify", "--json" })
      assert.are.equal(0, code)
      assert.are.same({ ok = true, blocks = blocks, bad_blocks = 0, pins = 1, bad_pins = 0,
                        bad_block_list = {}, bad_pin_list = {} }, require("cjson").decode(out))
      -- a new add works (it failed with "leaf at offset 0: i/o error")
      support.write(home .. "/g.txt", "after the rebuild")
      local acode, _, aerr = ipk({ "add", "-Q", home .. "/g.txt" })
      assert.are.equal(0, acode, aerr)
      code, out = ipk({ "gc" })
      assert.are.equal(0, code)
      assert.are.equal("removed 0 blocks (0 bytes)\n", out)
      code, out = ipk({ "cat", cid })
      assert.are.equal(0, code)
      assert.is_true(out == data)
      code, out = ipk({ "repo", "verify" })
      assert.are.equal(0, code)
      assert.are.equal(("verified %d blocks (0 bad) and 2 pins (0 bad)\nrepo is ok\n"):format(blocks + 1), out)
    end)

    it("a kill -9 in the middle of an import leaves a store that verifies, imports and gcs", function()
      s:close()
      s = nil
      local f = home .. "/big.bin"
      assert.are.equal(0, (support.sh("head -c 100000000 /dev/urandom > " .. support.q(f))))
      -- killed while it writes blocks (or, on a fast machine, just after)
      local cmd = ("IPK_HOME=%s %s add -Q %s >/dev/null 2>&1 & p=$!; sleep 0.4; kill -9 $p; wait $p; exit 0")
        :format(support.q(home), support.q(support.ipkrun_path), support.q(f))
      assert.are.equal(0, (support.sh(cmd)))
      local code, out, err = ipk({ "repo", "verify" })
      assert.are.equal(0, code, out .. err)
      local cid
      code, cid, err = ipk({ "add", "-Q", f })
      assert.are.equal(0, code, err)
      cid = cid:gsub("%s+$", "")
      local cat_cmp = "IPK_HOME=" .. support.q(home) .. " " .. support.q(support.ipkrun_path)
        .. " cat " .. cid .. " | cmp -s - " .. support.q(f)
      assert.are.equal(0, (support.sh(cat_cmp)))
      code = ipk({ "gc" })
      assert.are.equal(0, code)
      code, out = ipk({ "repo", "verify", "--json" })
      assert.are.equal(0, code)
      local r = require("cjson").decode(out)
      assert.are.equal(0, r.bad_blocks)
      assert.are.equal(1, r.pins)
      assert.are.equal(0, (support.sh(cat_cmp)))
    end)

    it("stat counts blocks and bytes; compression is a store setting", function()
      local c = raw_cid(string.rep("z", 10000))
      assert(s:put(c, string.rep("z", 10000)))
      s:close()
      s = nil
      local code, out = ipk({ "repo", "compression" })
      assert.are.equal(0, code)
      assert.are.equal("none\n", out)
      code, out = ipk({ "repo", "stat", "--json" })
      assert.are.equal(0, code)
      local r = require("cjson").decode(out)
      assert.are.equal(1, r.blocks)
      assert.are.equal(10000, r.bytes)
      assert.are.equal(10000, r.stored_bytes)
      assert.are.equal("none", r.compression)
      local err, _
      code, _, err = ipk({ "repo", "compression", "brotli" })
      assert.are.equal(2, code)
      assert.matches("brotli", err)
      code, out = ipk({ "repo", "compression", "zstd" })
      assert.are.equal(0, code)
      assert.are.equal("zstd\n", out)
      -- a new block is stored compressed; the old one stays as it was
      support.write(home .. "/z.txt", string.rep("compress me ", 10000))
      code = ipk({ "add", "-Q", home .. "/z.txt" })
      assert.are.equal(0, code)
      code, out = ipk({ "repo", "stat", "--json" })
      assert.are.equal(0, code)
      r = require("cjson").decode(out)
      assert.are.equal("zstd", r.compression)
      assert.is_true(r.bytes > 120000)
      assert.is_true(r.stored_bytes < 10000 + 120000 / 20)
      assert.are.equal(0, (ipk({ "repo", "verify" })))
      code, _, err = ipk({ "repo", "frobnicate" })
      assert.are.equal(2, code)
      assert.matches("expected: repo verify", err, 1, true)
      -- the local store only: a remote node is refused, not silently ignored
      code, _, err = ipk({ "--api", "http://127.0.0.1:9", "repo", "verify" })
      assert.are.equal(2, code)
      assert.matches("works on the local store", err, 1, true)
    end)
  end)

  describe("two processes", function()
    it("write to one store and db at once without losing anything", function()
      s:db():exec("CREATE TABLE IF NOT EXISTS log (who TEXT, i INTEGER)")
      local N = 150
      local script = home .. "/writer.lua"
      support.write(script, ([[
package.path = 'bindings/lua/?.lua;scripts/?.lua;' .. package.path
local store = require 'ipk.store'
local core = require 'ipk.core'
local lib, ffi = core.lib, core.ffi
local who = arg[1]
local s = assert(store.open(%q))
local d = s:db()
for i = 1, %d do
  -- alternate autocommit writes and explicit transactions
  if i %% 2 == 0 then
    d:query('INSERT INTO log VALUES (?, ?)', who, i)
  else
    assert(d:tx(function() d:query('INSERT INTO log VALUES (?, ?)', who, i) end))
  end
  local bytes = who .. ' block ' .. i
  local c = ffi.new('ipk_cid_t')
  assert(lib.ipk_cid_of(1, 0x55, bytes, #bytes, c) == 0)
  assert(s:put(c, bytes))
  if i %% 10 == 0 then assert(s:pin_add(c, { name = who })) end
end
s:close()
]]):format(home, N))
      local cmd = ("cd %s && { IPK_BUILD_DIR=%s %s %s A & a=$!; IPK_BUILD_DIR=%s %s %s B & b=$!; wait $a && wait $b; }")
        :format(support.q(support.root), support.q(support.build), support.luajit, support.q(script),
                support.q(support.build), support.luajit, support.q(script))
      local code, _, err = support.sh("bash -c " .. support.q(cmd))
      assert.are.equal(0, code, err)
      local d = s:db()
      assert.are.same({ { n = 2 * N } }, d:query("SELECT count(*) AS n FROM log"))
      assert.are.same({ { n = N } }, d:query("SELECT count(DISTINCT i) AS n FROM log WHERE who = 'A'"))
      assert.are.same({ { n = N } }, d:query("SELECT count(DISTINCT i) AS n FROM log WHERE who = 'B'"))
      assert.are.equal(2 * N / 10, #s:pin_ls())
      assert.are.equal(2 * N, block_count(s))
      assert.are.equal("B block 7", s:get(raw_cid("B block 7")))
    end)
  end)
end)
