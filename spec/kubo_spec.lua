-- ipk.kubo and ipkrun --api against real js-ipfs nodes on loopback
-- (spec/support/ipfs_node.lua installs them with npm and stops them by PID).
local nodes = require "support.ipfs_node"
local sched = require "ipk.sched"

local function run(fn) return sched.run_task(fn) end

local function random_file(path, mib)
  os.execute(("head -c %d /dev/urandom > %s"):format(mib * 1048576, support.q(path)))
end

describe("kubo backend on real nodes", function()
  if not nodes.available() then
    pending("node/npm not installed: integration specs skipped")
    return
  end
  local kubo = require "ipk.kubo"
  local cid = require "ipk.cid"
  local A, B, a, b, dir

  setup(function()
    dir = support.tmpdir()
    A = nodes.start()
    B = nodes.start()
    a, b = kubo.new(A.api), kubo.new(B.api)
  end)
  teardown(function()
    nodes.destroy(A)
    nodes.destroy(B)
    support.rm_rf(dir)
  end)

  it("answers id and version", function()
    local id, v = run(function() return a:id(), a:version() end)
    assert.are.equal(A.peer, id.ID)
    assert.is_string(v.Version)
  end)

  it("adds through ipk on A with the offline CID, cats on B after swarm connect", function()
    local path = dir .. "/f.bin"
    random_file(path, 3)
    local home = support.tmpdir()
    local code, offline = support.ipkrun({ "add", "-Q", "--cid-version=1", path }, { IPK_HOME = home })
    assert.are.equal(0, code)
    offline = offline:gsub("%s+$", "")
    local res = run(function() return assert(a:add(path, { cid_version = 1 })) end)
    assert.are.equal(offline, res.root)
    local pins = run(function() return assert(a:pin_ls()) end)
    assert.are.equal("recursive", pins[res.root])
    run(function() assert(b:swarm_connect(A.swarm)) end)
    local peers = run(function() return assert(b:swarm_peers()) end)
    local seen = false
    for _, p in ipairs(peers) do if p.Peer == A.peer then seen = true end end
    assert.is_true(seen)
    local parts = {}
    local n = run(function() return assert(b:cat(res.root, { write = function(s) parts[#parts + 1] = s end })) end)
    assert.are.equal(3 * 1048576, n)
    assert.are.equal(support.read(path), table.concat(parts))
    -- offset / length
    parts = {}
    run(function() assert(b:cat(res.root, { offset = 1000, length = 5000, write = function(s) parts[#parts + 1] = s end })) end)
    assert.are.equal(support.read(path):sub(1001, 6000), table.concat(parts))
    -- through ipkrun --api on B, default CIDv0 profile too
    local _, offline0 = support.ipkrun({ "add", "-Q", path }, { IPK_HOME = home })
    local code2, remote = support.ipkrun({ "--api", A.api, "add", "-Q", path }, { IPK_HOME = home })
    assert.are.equal(0, code2)
    assert.are.equal(offline0, remote)
    local code3, out = support.ipkrun({ "cat", (remote:gsub("%s+$", "")) }, { IPK_HOME = support.tmpdir(), IPK_API = B.api })
    assert.are.equal(0, code3)
    assert.are.equal(support.read(path), out)
    support.rm_rf(home)
  end)

  it("puts, gets and stats blocks across nodes, verified", function()
    run(function() assert(b:swarm_connect(A.swarm)) end)
    local c = run(function() return assert(a:block_put("block bytes " .. os.time())) end)
    assert.matches("^bafkrei", c)
    local data = run(function() return assert(b:block_get(c)) end)
    assert.matches("^block bytes", data)
    local st = run(function() return assert(b:block_stat(c)) end)
    assert.are.equal(#data, st.Size)
  end)

  it("names an unknown CID clearly (ENOBLOCK) within the timeout", function()
    local unknown = cid.format(cid.of(1, 0x55, "never stored " .. os.time()))
    local res, msg, name = run(function() return a:block_get(unknown, { timeout = 1 }) end)
    assert.is_nil(res)
    assert.are.equal("ENOBLOCK", name)
    assert.matches(unknown, msg, 1, true)
  end)

  it("pins and unpins", function()
    local c = run(function() return assert(a:block_put("pin me " .. os.time())) end)
    run(function() assert(a:pin_add(c, { recursive = false })) end)
    local pins = run(function() return assert(a:pin_ls({ type = "direct" })) end)
    assert.are.equal("direct", pins[c])
    run(function() assert(a:pin_rm(c)) end)
    pins = run(function() return assert(a:pin_ls({ type = "direct" })) end)
    assert.is_nil(pins[c])
  end)

  it("exports a verified CAR from a node and imports it into another", function()
    local path = dir .. "/g.bin"
    random_file(path, 1)
    local res = run(function() return assert(a:add(path, { cid_version = 1, chunker = "size-65536" })) end)
    local carpath = dir .. "/g.car"
    local info = run(function() return assert(a:dag_export(res.root, carpath)) end)
    assert.are.same({ res.root }, info.roots)
    assert.are.equal(17, info.blocks)
    local C = nodes.start()
    finally(function() nodes.destroy(C) end)
    local c = kubo.new(C.api)
    local imp = run(function() return assert(c:dag_import(carpath)) end)
    assert.are.equal(17, imp.blocks)
    local parts = {}
    run(function() assert(c:cat(res.root, { write = function(s) parts[#parts + 1] = s end })) end)
    assert.are.equal(support.read(path), table.concat(parts))
    nodes.destroy(C)
  end)

  it("CAR-exports from the embedded store, imports into a node, the root resolves there", function()
    local home = support.tmpdir()
    local path = home .. "/h.bin"
    random_file(path, 2)
    local code, root = support.ipkrun({ "add", "-Q", path }, { IPK_HOME = home })
    assert.are.equal(0, code)
    root = root:gsub("%s+$", "")
    local carpath = home .. "/h.car"
    assert.are.equal(0, (support.ipkrun({ "car", "export", root, "-o", carpath }, { IPK_HOME = home })))
    local code2, out, err = support.ipkrun({ "--api", B.api, "car", "import", carpath }, { IPK_HOME = support.tmpdir() })
    assert.are.equal(0, code2, err)
    assert.are.equal("pinned root " .. root .. "\n", out)
    local st = run(function() return assert(b:block_stat(root, { timeout = 2 })) end)
    assert.is_true(st.Size > 0)
    local code3, bytes = support.ipkrun({ "--api", B.api, "cat", root }, { IPK_HOME = home })
    assert.are.equal(0, code3)
    assert.are.equal(support.read(path), bytes)
    -- get through --api: fetched as a verified CAR into a fresh local cache
    local home2 = support.tmpdir()
    assert.are.equal(0, (support.ipkrun({ "--api", B.api, "get", root, "-o", home2 .. "/copy" }, { IPK_HOME = home2 })))
    assert.are.equal(support.read(path), support.read(home2 .. "/copy"))
    local _, sj = support.ipkrun({ "stats", "--json" }, { IPK_HOME = home2 })
    local s = require("cjson").decode(sj).cache
    assert.are.equal(1, s.misses)
    assert.are.equal(9, s.fetched_blocks)
    assert.are.equal(0, (support.ipkrun({ "--api", B.api, "get", root, "-o", home2 .. "/copy2" }, { IPK_HOME = home2 })))
    _, sj = support.ipkrun({ "stats", "--json" }, { IPK_HOME = home2 })
    s = require("cjson").decode(sj).cache
    assert.are.equal(1, s.misses)
    assert.are.equal(9, s.store_hits)
    support.rm_rf(home); support.rm_rf(home2)
  end)

  it("carries pubsub from A to B, topics multibase-encoded", function()
    run(function() assert(b:swarm_connect(A.swarm)) end)
    local topic = "ipk/fl/test/" .. os.time()
    local msg = run(function()
      local sub = assert(b:pubsub_sub(topic))
      local got
      local reader = sched.spawn(function() got = assert(sub:next()) end)
      -- the gossipsub mesh takes a moment: publish until B has the message
      for _ = 1, 100 do
        if got then break end
        local peers = assert(a:pubsub_peers(topic))
        if #peers > 0 then assert(a:pubsub_pub(topic, "hello B")) end
        sched.sleep(0.1)
      end
      sched.join({ reader })
      local ls = assert(b:pubsub_ls())
      sub:cancel()
      return { got = got, ls = ls }
    end)
    assert.are.equal("hello B", msg.got.data)
    assert.are.equal(A.peer, msg.got.from)
    assert.are.same({ topic }, msg.got.topics)
    assert.are.same({ topic }, msg.ls)
  end)

  it("publishes and resolves an IPNS name", function()
    local c = run(function() return assert(a:block_put("ipns target " .. os.time())) end)
    local pub = run(function() return assert(a:name_publish(c)) end)
    assert.matches(A.peer, pub.Name, 1, true)
    local path = run(function() return assert(a:name_resolve("/ipns/" .. A.peer)) end)
    local pc = cid.parse(path:match("^/ipfs/(.+)$"))
    assert.is_true(cid.equal(pc, cid.parse(c)))
  end)

  it("completes 128 concurrent requests", function()
    local cids = run(function()
      local out = {}
      for i = 1, 32 do out[i] = assert(a:block_put("concurrent " .. i)) end
      return out
    end)
    local results = run(function()
      local tasks = {}
      for i = 1, 128 do
        tasks[i] = sched.spawn(function()
          if i % 2 == 0 then return a:block_get(cids[(i % 32) + 1]) end
          return a:id() and "id"
        end)
      end
      return sched.join(tasks)
    end)
    for i = 1, 128 do
      if i % 2 == 0 then assert.are.equal("concurrent " .. ((i % 32) + 1), results[i])
      else assert.are.equal("id", results[i]) end
    end
  end)

  it("a node killed mid-transfer gives a clear error; after a restart the retry succeeds", function()
    local N = nodes.start()
    finally(function() nodes.destroy(N) end)
    local n = kubo.new(N.api)
    local path = dir .. "/big.bin"
    random_file(path, 96)
    local res = run(function() return assert(n:add(path, { cid_version = 1 })) end)
    local out = dir .. "/big.out"
    local got, msg, name = run(function()
      local f = io.open(out, "wb")
      local ffi = require "ffi"
      pcall(ffi.cdef, "int fileno(void *stream);")
      local killer = sched.spawn(function()
        for _ = 1, 500 do
          local g = io.open(out, "rb"); local size = g:seek("end"); g:close()
          if size > 1048576 then nodes.stop(N, "KILL") return end
          sched.sleep(0.005)
        end
      end)
      local r1, r2, r3 = n:cat(res.root, { fd = ffi.C.fileno(f) })
      f:close()
      sched.join({ killer })
      return r1, r2, r3
    end)
    assert.is_nil(got)
    assert.is_truthy(name == "ETRUNC" or name == "EIO", tostring(name) .. ": " .. tostring(msg))
    assert.matches("cat", msg)
    assert.is_true(#support.read(out) < 96 * 1048576)
    -- restart on the same repo and API port: the retry succeeds
    local port = N.api:match(":(%d+)$")
    local N2 = nodes.start { repo = N.repo, api_port = port }
    finally(function() nodes.destroy(N2) end)
    local code, bytes = support.ipkrun({ "--api", N2.api, "cat", res.root }, { IPK_HOME = dir })
    assert.are.equal(0, code)
    assert.is_true(bytes == support.read(path))
    nodes.destroy(N2)
  end)

  it("reports a node that is down, and a wrong port, in one line", function()
    local D = nodes.start()
    finally(function() nodes.destroy(D) end)
    nodes.stop(D)
    local code, _, err = support.ipkrun({ "--api", D.api, "cat", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" },
      { IPK_HOME = dir })
    assert.are.equal(1, code)
    assert.matches("^ipkrun: cat: POST http://127%.0%.0%.1:%d+/api/v0/dag/export%?arg=[^:]+: .*[Cc]ouldn't connect", err)
    assert.are.equal(1, select(2, err:gsub("\n", "")))
    nodes.destroy(D)
    code, _, err = support.ipkrun({ "--api", "http://127.0.0.1:1", "pin", "ls" }, { IPK_HOME = dir })
    assert.are.equal(1, code)
    assert.matches("^ipkrun: pin ls: .*127%.0%.0%.1:1", err)
  end)
  it("runs a recipe with --api: same CIDs as offline, artifacts pinned on the node", function()
    if not support.exists("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") then
      pending("dataset-fashion-mnist not installed")
      return
    end
    local recipe = support.root .. "/recipes/fashion_mnist_fedavg.lua"
    local args = { "run", recipe, "--param", "clients=2", "--param", "rounds=1", "--json" }
    local code, out, err = support.ipkrun(args, { IPK_HOME = support.tmpdir() })
    assert.are.equal(0, code, err)
    local offline = require("cjson").decode(out)
    local with_api = { "--api", A.api }
    for _, x in ipairs(args) do with_api[#with_api + 1] = x end
    code, out, err = support.ipkrun(with_api, { IPK_HOME = support.tmpdir() })
    assert.are.equal(0, code, err)
    local r = require("cjson").decode(out)
    assert.are.equal(offline.model_cid, r.model_cid)
    assert.are.equal(offline.dataset_cid, r.dataset_cid)
    -- every pin the run makes is made on the node (ipk.backend: the cache
    -- ships each DAG before pinning it there): UnixFS artifacts recursively,
    -- shard index blocks and DAG-JSON records directly
    local pins = {}
    run(function()
      for _, p in ipairs(assert(require("ipk.backend").open { kind = "kubo", url = A.api }:pin_ls())) do
        pins[p.cid] = p.type
      end
    end)
    for _, c in ipairs { r.model_cid, r.dataset_cid, r.recipe_cid } do
      assert.are.equal("recursive", pins[c], c .. " not pinned on the node")
    end
    -- shard index blocks are raw leaves: the run pins them directly, the
    -- run's shipping of its record DAG recursively (the same one block)
    for _, c in ipairs { r.shards[1], r.shards[2] } do
      assert.is_truthy(pins[c] == "direct" or pins[c] == "recursive", c .. " not pinned on the node")
    end
    assert.are.equal("direct", pins[r.run.record_cid], "run record not pinned on the node")
    -- the node serves the model's bytes
    local parts = {}
    run(function() return assert(a:cat(r.model_cid, { write = function(x) parts[#parts + 1] = x end })) end)
    assert.are.equal(r.model_cid, cid.format(cid.of(1, 0x55, table.concat(parts))))
  end)
end)
