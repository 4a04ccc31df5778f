-- ipk.backend: one protocol over the embedded store, a Kubo RPC node, a
-- trustless gateway and the tiered cache; ipk.backend.transfer between them.
local sched = require "ipk.sched"
local backend = require "ipk.backend"
local transfer = require "ipk.backend.transfer"
local cid = require "ipk.cid"
local dagjson = require "ipk.dagjson"
local nodes = require "support.ipfs_node"

local function run(fn) return sched.run_task(fn) end

local function embedded()
  return assert(backend.open { kind = "embedded", home = support.tmpdir() })
end

local function random_file(path, n)
  os.execute(("head -c %d /dev/urandom > %s"):format(n, support.q(path)))
end

-- dag-cbor by hand: {"a": CID-link, "b": [1, "x"]}
local function cbor_map_with_link(target)
  local cb = "\0" .. cid.to_bytes(target)
  assert(#cb < 256)
  return "\xa2" .. "\x61a" .. "\xd8\x2a" .. "\x58" .. string.char(#cb) .. cb .. "\x61b" .. "\x82\x01\x61x"
end

describe("ipk.backend", function()
  it("every implementation has the whole protocol", function()
    local home = support.tmpdir()
    local store = assert(require("ipk.store").open(home))
    local impls = {
      assert(backend.open { kind = "embedded", store = store }),
      assert(backend.open { kind = "kubo", url = "http://127.0.0.1:1" }),
      assert(backend.open { kind = "gateway", url = "http://127.0.0.1:1" }),
      assert(backend.open { kind = "kubo", url = "http://127.0.0.1:1", cache = true, store = store }),
    }
    local kinds = {}
    for _, b in ipairs(impls) do
      kinds[#kinds + 1] = b.kind
      for _, m in ipairs(backend.METHODS) do
        assert.is_function(b[m], b.kind .. " lacks " .. m)
      end
    end
    assert.are.same({ "embedded", "kubo", "gateway", "cache" }, kinds)
    store:close()
    support.rm_rf(home)
  end)

  it("refuses URLs that are not node URLs, clearly", function()
    local b, msg, name = backend.remote("127.0.0.1:5001")
    assert.is_nil(b)
    assert.are.equal("EINVAL", name)
    assert.matches("not a node URL", msg)
    assert.are.equal("gateway", assert(backend.remote("gateway+http://127.0.0.1:8080")).kind)
    assert.are.equal("kubo", assert(backend.remote("http://127.0.0.1:5001")).kind)
  end)

  describe("links", function()
    it("reads dag-pb, dag-json and dag-cbor links; raw has none", function()
      local target = cid.format(cid.of(1, "raw", "leaf"))
      local j = dagjson.encode({ x = dagjson.link(target), y = { dagjson.link(target), 3 } })
      assert.are.same({ target, target }, backend.links(cid.of(1, dagjson.codec, j), j))
      local cb = cbor_map_with_link(target)
      assert.are.same({ target }, backend.links(cid.of(1, "dag-cbor", cb), cb))
      assert.are.same({}, backend.links(cid.of(1, "raw", "leaf"), "leaf"))
      -- a dag-pb directory from the importer: its two links
      local home = support.tmpdir()
      os.execute("mkdir -p " .. home .. "/d && echo a > " .. home .. "/d/a && echo b > " .. home .. "/d/b")
      local e = embedded()
      local res = run(function() return assert(e:add(home .. "/d", { recursive = true, cid_version = 1 })) end)
      local l = assert(backend.links(res.root, assert(e:get(res.root))))
      assert.are.equal(2, #l)
      support.rm_rf(home)
    end)

    it("refuses a codec it cannot read and malformed blocks (never a silent leaf)", function()
      local c = cid.of(1, 0x78, "blob") -- git-raw: a codec ipk does not read
      local res, msg, name = backend.links(c, "blob")
      assert.is_nil(res)
      assert.are.equal("EUNSUPP", name)
      assert.matches("cannot read its links", msg)
      local trunc = "\xa1\x61a\xd8\x2a\x58\x40\0"
      res, msg, name = backend.links(cid.of(1, "dag-cbor", trunc), trunc)
      assert.is_nil(res)
      assert.are.equal("EFORMAT", name)
      assert.matches("dag%-cbor", msg)
      res, msg, name = backend.links(cid.of(1, dagjson.codec, "{not json"), "{not json")
      assert.is_nil(res)
      assert.matches("dag%-json", msg)
      assert.are.equal("EFORMAT", name)
    end)
  end)

  describe("embedded", function()
    local e, dir
    before_each(function() e = embedded(); dir = support.tmpdir() end)
    after_each(function() e:close(); support.rm_rf(dir) end)

    it("puts, gets, stats and deletes verified blocks", function()
      local c = cid.format(cid.of(1, "raw", "hello"))
      assert.is_true(e:put(c, "hello"))
      assert.are.equal("hello", e:get(c))
      assert.is_true(e:has(c))
      assert.are.same({ cid = c, size = 5 }, e:stat(c))
      local ok, msg, name = e:put(c, "hellO")
      assert.is_nil(ok)
      assert.are.equal("EVERIFY", name)
      assert.is_string(msg)
      assert.is_true(e:delete(c))
      assert.is_false(e:has(c))
      ok, msg, name = e:get(c)
      assert.is_nil(ok)
      assert.are.equal("ENOBLOCK", name)
      assert.is_string(msg)
      ok, msg, name = e:get("not-a-cid")
      assert.is_nil(ok)
      assert.are.equal("ECID", name)
      assert.matches("not%-a%-cid", msg)
    end)

    it("pins with one result shape: a sorted list of {cid, type, name}", function()
      local a = cid.format(cid.of(1, "raw", "a"))
      local b = cid.format(cid.of(1, "raw", "b"))
      e:put(a, "a"); e:put(b, "b")
      assert.is_true(e:pin_add(b, { name = "bee" }))
      assert.is_true(e:pin_add(a, { recursive = false }))
      local want = { { cid = a, type = "direct" }, { cid = b, type = "recursive", name = "bee" } }
      table.sort(want, function(x, y) return x.cid < y.cid end)
      assert.are.same(want, e:pin_ls())
      assert.are.same({ { cid = b, type = "recursive", name = "bee" } }, e:pin_ls({ type = "recursive" }))
      assert.are.same({ { cid = a, type = "direct" } }, e:pin_ls({ cid = a }))
      assert.is_true(e:pin_has(a))
      assert.is_true(e:pin_rm(a))
      assert.is_false(e:pin_has(a))
      local ok, _, name = e:pin_rm(a)
      assert.is_nil(ok)
      assert.are.equal("ENOENT", name)
    end)

    it("adds (pinned unless pin=false), cats with offset/length, saves, exports and imports CARs, gcs", function()
      local path = dir .. "/f.bin"
      random_file(path, 300000)
      local res = run(function() return assert(e:add(path, { cid_version = 1, name = "f" })) end)
      assert.are.equal(support.only_hash({}, path), res.root)
      assert.are.same({ { cid = res.root, type = "recursive", name = "f" } }, e:pin_ls())
      local parts = {}
      run(function() assert(e:cat(res.root, function(s) parts[#parts + 1] = s end, { offset = 1000, length = 70000 })) end)
      assert.is_true(support.read(path):sub(1001, 71000) == table.concat(parts))
      run(function() assert(e:save(res.root, dir .. "/copy")) end)
      assert.is_true(support.read(dir .. "/copy") == support.read(path))
      local info = run(function() return assert(e:export_dag(res.root, dir .. "/f.car")) end)
      assert.are.equal(3, info.blocks)
      -- a second store imports it, pinned; a CAR missing blocks is refused whole
      local e2 = embedded()
      local imp = run(function() return assert(e2:import_car(dir .. "/f.car", { name = "car" })) end)
      assert.are.same({ res.root }, imp.roots)
      assert.are.same({ { cid = res.root, type = "recursive", name = "car" } }, e2:pin_ls())
      e2:close()
      local c2, size = run(function() return e:add_bytes("small", { cid_version = 1, pin = false }) end)
      assert.are.equal(5, size)
      assert.is_false(e:pin_has(c2))
      local g = assert(e:gc())
      assert.are.equal(1, g.removed)
      assert.is_false(e:has(c2))
      assert.is_true(e:has(res.root))
    end)

    it("refuses a CAR whose DAG is incomplete before storing anything", function()
      local path = dir .. "/f.bin"
      random_file(path, 300000)
      local other = embedded()
      local res = run(function() return assert(other:add(path, { cid_version = 1 })) end)
      run(function() assert(other:export_dag(res.root, dir .. "/f.car")) end)
      other:close()
      -- drop the last section (a leaf): the root links a block the file lacks
      local carbytes = support.read(dir .. "/f.car")
      local r = assert(require("ipk.car").list(dir .. "/f.car"))
      local last = r.blocks[#r.blocks]
      local body = #cid.to_bytes(last.cid) + last.size
      support.write(dir .. "/cut.car", carbytes:sub(1, #carbytes - body - #cid.varint.encode(body)))
      local imp, msg, name = run(function() return e:import_car(dir .. "/cut.car") end)
      assert.is_nil(imp)
      assert.are.equal("ENOBLOCK", name)
      assert.matches("the DAG is incomplete", msg)
      assert.are.same({}, e:pin_ls())
      assert.is_false(e:has(res.root))
    end)
  end)

  it("a gateway backend refuses every write: read-only backend, EUNSUPP", function()
    local g = assert(backend.open { kind = "gateway", url = "http://127.0.0.1:1" })
    assert.is_false(g.writable)
    local c = cid.format(cid.of(1, "raw", "x"))
    for _, call in ipairs {
      function() return g:put(c, "x") end, function() return g:delete(c) end,
      function() return g:pin_add(c) end, function() return g:pin_rm(c) end,
      function() return g:import_car("/nonexistent.car") end, function() return g:add("/etc/hostname") end,
      function() return g:add_bytes("x") end, function() return g:gc() end,
    } do
      local ok, msg, name = call()
      assert.is_nil(ok)
      assert.are.equal("EUNSUPP", name)
      assert.matches("read%-only backend", msg)
    end
  end)

  it("runtime.backend() is always a backend: embedded unless --api/--gateway", function()
    local code, out, err = support.ipkrun({ "pin", "ls", "--json" }, { IPK_HOME = support.tmpdir() })
    assert.are.equal(0, code, err)
    assert.are.equal('{"Keys":{}}\n', out)
    -- a bad URL is a clear usage-style failure, not a silent local fallback
    local code2, _, err2 = support.ipkrun({ "--api", "localhost:5001", "pin", "ls" }, { IPK_HOME = support.tmpdir() })
    assert.are_not.equal(0, code2)
    assert.matches("%-%-api: .*must look like http://HOST:PORT", err2)
  end)

  describe("transfer", function()
    local src, dst, dir
    before_each(function() src, dst, dir = embedded(), embedded(), support.tmpdir() end)
    after_each(function() src:close(); dst:close(); support.rm_rf(dir) end)

    -- A run-record-like DAG: a record linking a UnixFS file, another record
    -- and a step key (a CID of something never stored).
    local function record_dag()
      local path = dir .. "/m.bin"
      random_file(path, 600000)
      local file = run(function() return assert(src:add(path, { cid_version = 1, pin = false })) end)
      local key = dagjson.cid({ kind = "k", never = "stored" })
      local inner_cid, inner = dagjson.cid({ out = { model = dagjson.link(file.root) } })
      assert(src:put(inner_cid, inner))
      local top_cid, top = dagjson.cid({ type = "ipk.run", steps = { s = { key = dagjson.link(key),
        output = dagjson.link(inner_cid) } } })
      assert(src:put(top_cid, top))
      return top_cid, inner_cid, file.root, key, path
    end

    it("copies records and UnixFS subtrees, pins the cover, lists non-content links as missing", function()
      local top, inner, file, key, path = record_dag()
      local res = run(function() return assert(transfer.copy(src, dst, { top }, { name = "t" })) end)
      assert.are.same({ top }, res.roots)
      assert.are.same({ key }, res.missing)
      assert.are.equal(2, res.records)
      assert.are.equal(1, res.subtrees)
      -- 2 records + the file's 3 blocks (root + 2 leaves of 256 KiB + 1)
      assert.are.equal(2 + 4, res.blocks)
      local pins = {}
      for _, p in ipairs(dst:pin_ls()) do pins[p.cid] = p.type end
      assert.are.same({ [top] = "direct", [inner] = "direct", [file] = "recursive" }, pins)
      local parts = {}
      run(function() assert(dst:cat(file, function(s) parts[#parts + 1] = s end)) end)
      assert.is_true(table.concat(parts) == support.read(path))
      -- again: the file is pinned there recursively, only the records go
      local again = run(function() return assert(transfer.copy(src, dst, { top }, { name = "t" })) end)
      assert.are.equal(2, again.blocks)
    end)

    it("fails on a missing root or a block missing inside a UnixFS DAG, pinning nothing", function()
      local absent = cid.format(cid.of(1, "raw", "absent"))
      local res, msg, name = run(function() return transfer.copy(src, dst, { absent }) end)
      assert.is_nil(res)
      assert.are.equal("ENOBLOCK", name)
      assert.matches(absent, msg, 1, true)
      local _, _, file = record_dag()
      -- lose one leaf of the file
      local leaf = assert(backend.links(file, assert(src:get(file))))[2]
      assert(src:delete(leaf))
      local top2 = dagjson.cid({ out = dagjson.link(file) })
      assert(src:put(top2, dagjson.encode({ out = dagjson.link(file) })))
      res, _, name = run(function() return transfer.copy(src, dst, { top2 }) end)
      assert.is_nil(res)
      assert.are.equal("ENOBLOCK", name)
      assert.are.same({}, dst:pin_ls())
    end)

    it("refuses a read-only destination", function()
      local g = assert(backend.open { kind = "gateway", url = "http://127.0.0.1:1" })
      local res, msg, name = run(function() return transfer.copy(src, g, { cid.format(cid.of(1, "raw", "x")) }) end)
      assert.is_nil(res)
      assert.are.equal("EUNSUPP", name)
      assert.matches("read%-only", msg)
    end)
  end)
end)

describe("ipk.backend on a real node", function()
  if not nodes.available() then
    pending("node/npm not installed: node specs skipped")
    return
  end
  local A, k, dir
  setup(function()
    dir = support.tmpdir()
    A = nodes.start()
    k = assert(backend.open { kind = "kubo", url = A.api })
  end)
  teardown(function()
    nodes.destroy(A)
    support.rm_rf(dir)
  end)

  it("puts blocks with their codec and multihash (dag-json, sha2-512, dag-pb v0) and checks the node's CID", function()
    local j, jb = dagjson.cid({ hello = "node", t = os.time() })
    local c512 = cid.of(1, "raw", "five twelve", "sha2-512")
    local v0 = cid.of(0, "dag-pb", "\10\2\8\1")
    run(function()
      assert(k:put(j, jb))
      assert.are.equal(jb, k:get(j))
      assert(k:put(c512, "five twelve"))
      assert.are.equal("five twelve", k:get(c512))
      assert(k:put(v0, "\10\2\8\1"))
      assert.is_true(k:has(v0))
      assert.are.same({ cid = j, size = #jb }, k:stat(j))
      local ok, msg, name = k:put(j, jb .. " ")
      assert.is_nil(ok)
      assert.are.equal("EVERIFY", name)
      assert.is_string(msg)
    end)
  end)

  it("lists pins in the same shape as the embedded store", function()
    local path = dir .. "/p.bin"
    random_file(path, 100000)
    local e = embedded()
    local pins = run(function()
      local r1 = assert(e:add(path, { cid_version = 1 }))
      local r2 = assert(k:add(path, { cid_version = 1 }))
      assert.are.equal(r1.root, r2.root)
      local d, db = dagjson.cid({ direct = os.time() })
      assert(e:put(d, db)); assert(e:pin_add(d, { recursive = false }))
      assert(k:put(d, db)); assert(k:pin_add(d, { recursive = false }))
      return { e:pin_ls(), k:pin_ls() }
    end)
    local function strip(list)
      local out = {}
      for _, p in ipairs(list) do out[#out + 1] = { cid = p.cid, type = p.type } end
      return out
    end
    assert.are.same(strip(pins[1]), strip(pins[2]))
    assert.are.equal(2, #pins[2])
    e:close()
  end)

  it("the cache ships what it pins: `--api add` leaves the DAG pinned on the node, cat through the node", function()
    local path = dir .. "/c.bin"
    random_file(path, 700000)
    local home = support.tmpdir()
    local code, out, err = support.ipkrun({ "--api", A.api, "add", "-Q", "--cid-version=1", path }, { IPK_HOME = home })
    assert.are.equal(0, code, err)
    local root = out:gsub("%s+$", "")
    assert.are.equal(support.only_hash({}, path), root)
    local list = run(function() return assert(k:pin_ls({ cid = root })) end)
    assert.are.same({ { cid = root, type = "recursive" } }, list)
    local _, curl = support.sh("curl -s -X POST " .. support.q(A.api .. "/api/v0/cat?arg=" .. root))
    assert.is_true(curl == support.read(path))
    -- pin ls --api answers the node's pins in the one shape
    local _, js = support.ipkrun({ "--api", A.api, "pin", "ls", "--json" }, { IPK_HOME = support.tmpdir() })
    assert.are.equal("recursive", require("cjson").decode(js).Keys[root].Type)
    support.rm_rf(home)
  end)

  it("a node answering a wrong block is refused (EVERIFY), nothing kept", function()
    local fdir = support.tmpdir()
    os.execute("mkdir -p " .. fdir .. "/blocks")
    local good = dagjson.encode({ record = "genuine" })
    local c = cid.format(cid.of(1, dagjson.codec, good))
    support.write(fdir .. "/blocks/" .. c, good)
    support.write(fdir .. "/tamper", c .. "\n")
    local fake = nodes.start_fake(fdir)
    finally(function() nodes.stop(fake); support.rm_rf(fdir) end)
    local store = assert(require("ipk.store").open(support.tmpdir()))
    local cache = assert(backend.open { kind = "kubo", url = fake.url, cache = true, store = store })
    local res, msg, name = run(function() return cache:get(c) end)
    assert.is_nil(res)
    assert.are.equal("EVERIFY", name)
    assert.matches("do not match", msg)
    assert.is_false(store:has(c))
  end)
end)
