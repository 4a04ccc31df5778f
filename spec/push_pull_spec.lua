-- ipkrun push / pull (DVC's, over a real js-ipfs node) and `--api` for
-- model add / dataset add: one node, two IPK_HOMEs; a fake node and a fake
-- gateway that answer wrong bytes.
local u = require "support.util"
local files = require "support.files"
local nodes = require "support.ipfs_node"
local cjson = require "cjson"
local sched = require "ipk.sched"

local run, ok_json = u.run, u.ok_json

local function strip(s) return (s:gsub("%s+$", "")) end

describe("ipkrun push/pull and --api on a real node", function()
  if not nodes.available() then
    pending("node/npm not installed: push/pull specs skipped")
    return
  end
  local dir, why = files.made()
  if not dir then pending(why) return end
  local A, node, tmp, envA, envB

  -- The node's pins as {cid = type} (through the backend protocol).
  local function node_pins()
    return sched.run_task(function()
      local out = {}
      for _, p in ipairs(assert(node:pin_ls())) do out[p.cid] = p.type end
      return out
    end)
  end

  -- The node's bytes for a path (Kubo's cat, through curl).
  local function node_cat(path)
    local code, out = u.sh("curl -sf -X POST " .. u.q(A.api .. "/api/v0/cat?arg=" .. path))
    assert.are.equal(0, code, "cat " .. path .. " on the node")
    return out
  end

  setup(function()
    A = nodes.start()
    node = assert(require("ipk.backend").open { kind = "kubo", url = A.api })
  end)
  teardown(function() nodes.destroy(A) end)
  before_each(function()
    tmp = u.tmpdir()
    envA, envB = { IPK_HOME = tmp .. "/a" }, { IPK_HOME = tmp .. "/b" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("--api model add and dataset add put their blocks and pins on the node", function()
    local e = ok_json(envA, "--api", A.api, "model", "add", dir .. "/models/weights.npy", "--name", "w",
      "--version", "1.0.0", "--metric", "acc=0.5", "--json")
    local pins = node_pins()
    assert.are.equal("recursive", pins[e.entry_cid], "entry pinned on the node")
    assert.is_true(node_cat(e.model_cid) == u.read(dir .. "/models/weights.npy"))
    assert.are.equal(e.model_cid, u.only_hash({}, dir .. "/models/weights.npy"))
    local meta = cjson.decode(node_cat(e.entry_cid .. "/metadata.json"))
    assert.are.equal("w", meta.name)
    -- the registry index is pinned there too
    local idx = strip(select(2, run(envA, "model", "index")))
    assert.are.equal("recursive", pins[idx])
    local v = ok_json(envA, "--api", A.api, "dataset", "add", dir .. "/data/tricky.csv", "--name", "t",
      "--version", "1", "--json")
    assert.are.equal("recursive", node_pins()[v.cid])
    assert.is_true(node_cat(v.cid) == u.read(dir .. "/data/tricky.csv"))
  end)

  it("pushes a model version and pulls it into an empty home: same entry, metrics, files", function()
    local e = ok_json(envA, "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "1.2.3",
      "--metric", "acc=0.93", "--param", "lr=0.1", "--tag", "demo", "--json")
    local p = ok_json(envA, "push", "model:m@1.2.3", "--to", A.api, "--json")
    assert.are.same({ e.entry_cid }, p.pushed)
    assert.are.same({ e.entry_cid }, p.pinned)
    assert.is_true(p.blocks >= 3 and p.bytes > 0)
    assert.are.equal("recursive", node_pins()[e.entry_cid])
    -- text mode prints the CIDs to pull
    local code, out = run(envA, "push", "model:m@1.2.3", "--to", A.api)
    assert.are.equal(0, code)
    assert.are.equal(e.entry_cid .. "\n", out)
    local got = ok_json(envB, "pull", e.entry_cid, "--from", A.api, "--json")
    assert.are.same({ { cid = e.entry_cid, kind = "model", ref = "model:m@1.2.3" } }, got.pulled)
    local sa = ok_json(envA, "model", "show", "m@1.2.3", "--json")
    local sb = ok_json(envB, "model", "show", "m@1.2.3", "--json")
    for _, k in ipairs { "entry_cid", "model_cid", "metrics", "params", "tags", "format", "framework", "info",
                         "lineage", "file" } do
      assert.are.same(sa[k], sb[k], k)
    end
    assert.are.equal(0.93, sb.metrics.acc)
    -- the pulled copy is complete: get works without the node
    assert.are.equal(0, (run(envB, "model", "get", "m@1.2.3", "-o", tmp .. "/got")))
    assert.is_true(u.read(tmp .. "/got/weights.npy") == u.read(dir .. "/models/weights.npy"))
    -- pulling again is a no-op
    got = ok_json(envB, "pull", e.entry_cid, "--from", A.api, "--json")
    assert.are.equal("model", got.pulled[1].kind)
    assert.are.equal(1, #ok_json(envB, "model", "list", "--json").models)
  end)

  it("pushes a dataset version (its record) and pulls it back into the catalog", function()
    local v = ok_json(envA, "dataset", "add", dir .. "/data/tricky.csv", "--name", "tr", "--version", "2", "--json")
    local p = ok_json(envA, "push", "dataset:tr@2", "--to", A.api, "--json")
    assert.are.equal(1, #p.pushed)
    local rec = p.pushed[1]
    assert.matches("^baguqeera", rec) -- a DAG-JSON record (sent by block/put)
    local pins = node_pins()
    assert.are.equal("recursive", pins[v.cid])
    assert.are.equal("direct", pins[rec])
    -- the same version always gives the same record
    assert.are.same(p.pushed, ok_json(envA, "push", "dataset:tr@2", "--to", A.api, "--json").pushed)
    local got = ok_json(envB, "pull", rec, "--from", A.api, "--json")
    assert.are.same({ { cid = rec, kind = "dataset", ref = "dataset:tr@2" } }, got.pulled)
    local sa = ok_json(envA, "dataset", "show", "tr@2", "--json")
    local sb = ok_json(envB, "dataset", "show", "tr@2", "--json")
    for _, k in ipairs { "cid", "format", "stats", "import", "source" } do assert.are.same(sa[k], sb[k], k) end
    assert.are.equal(0, (run(envB, "dataset", "verify", "tr@2")))
  end)

  it("--api run of a recipe whose steps all come from the local cache still ships and pins its artifacts", function()
    local csv = tmp .. "/t.csv"
    u.write(csv, "a,b\n1,2\n3,4\n")
    local rp = tmp .. "/tiny.lua"
    u.write(rp, 'local ipk = require "ipk"\nreturn ipk.recipe { name = "tiny-api", steps = {\n'
      .. '  data = ipk.dataset.add { path = ' .. ("%q"):format(csv) .. ', name = "tiny-api" } } }\n')
    local r1 = ok_json(envA, "run", rp, "--json")                     -- local only: nothing on the node
    local dcid = ok_json(envA, "dataset", "show", "tiny-api", "--json").cid
    assert.is_nil(node_pins()[dcid])
    local r2 = ok_json(envA, "--api", A.api, "run", rp, "--json")     -- every step cached
    assert.are.equal("ok", r1.run.steps.data.status)
    assert.are.equal("cached", r2.run.steps.data.status)
    local pins = node_pins()
    assert.are.equal("recursive", pins[dcid], "the cached dataset step's artifact is pinned on the node")
    assert.is_truthy(pins[r2.run.record_cid], "the run record is pinned on the node")
    assert.are.equal("a,b\n1,2\n3,4\n", node_cat(dcid))
  end)

  it("pushes a run (record, outputs, artifacts) and a model it made; verify passes where they are pulled", function()
    if not u.exists("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") then
      pending("dataset-fashion-mnist not installed")
      return
    end
    local r = ok_json(envA, "run", u.root .. "/recipes/fashion_mnist_fedavg.lua", "--param", "clients=2",
      "--param", "rounds=1", "--json")
    local p = ok_json(envA, "push", "run:" .. r.run.id, "--to", A.api, "--json")
    assert.are.same({ r.run.record_cid }, p.pushed)
    -- every link of a run record is content (the step key documents are
    -- stored with the run), so nothing is left behind
    assert.are.same({}, p.missing)
    local pins = node_pins()
    assert.are.equal("direct", pins[r.run.record_cid])
    assert.are.equal("recursive", pins[r.model_cid])
    assert.are.equal("recursive", pins[r.dataset_cid])
    local got = ok_json(envB, "pull", r.run.record_cid, "--from", A.api, "--json")
    assert.are.equal("run", got.pulled[1].kind)
    -- a record holds no wall-clock time: the run gets an id where it arrives
    local runs = ok_json(envB, "runs", "--json").runs
    assert.are.equal(1, #runs)
    assert.are.equal("run:" .. runs[1].id, got.pulled[1].ref)
    assert.are.same({ r.run.record_cid, "ok", r.recipe_cid }, { runs[1].record_cid, runs[1].status, runs[1].recipe_cid })
    -- pulling it again is that run, not another one
    assert.are.equal(got.pulled[1].ref, ok_json(envB, "pull", r.run.record_cid, "--from", A.api, "--json").pulled[1].ref)
    assert.are.equal(1, #ok_json(envB, "runs", "--json").runs)
    local code, out, err = run(envB, "verify", r.model_cid)
    assert.are.equal(0, code, err)
    assert.matches("verified\n$", out)
    -- the model version: its entry and the run that made it
    local m = ok_json(envA, "push", "model:" .. r.registry.name .. "@" .. r.registry.version, "--to", A.api, "--json")
    assert.are.same({ r.registry.entry_cid, r.run.record_cid }, m.pushed)
    local envC = { IPK_HOME = tmp .. "/c" }
    local got2 = ok_json(envC, "pull", m.pushed[1], m.pushed[2], "--from", A.api, "--json")
    assert.are.equal("model", got2.pulled[1].kind)
    assert.are.equal("run", got2.pulled[2].kind)
    local sa = ok_json(envA, "model", "show", r.registry.name, "--json")
    local sc = ok_json(envC, "model", "show", r.registry.name, "--json")
    assert.are.same({ sa.entry_cid, sa.metrics }, { sc.entry_cid, sc.metrics })
    assert.are.equal(0, (run(envC, "verify", r.model_cid)))
  end)

  it("refuses bad input clearly: unknown refs, unreachable URLs, no --to", function()
    local code, _, err = run(envA, "push", "model:nope@1.0.0", "--to", A.api)
    assert.are.equal(1, code)
    assert.matches("^ipkrun: push: registry: no versions of nope\n$", err)
    code, _, err = run(envA, "push", "model:nope", "--to", A.api)
    assert.are.equal(1, code)
    assert.matches("give the version", err)
    code, _, err = run(envA, "push", "run:no-such-run", "--to", A.api)
    assert.are.equal(1, code)
    assert.matches("no run 'no%-such%-run'", err)
    code, _, err = run(envA, "push", "notacid", "--to", A.api)
    assert.are.equal(1, code)
    assert.matches("neither model:NAME@VERSION", err)
    code, _, err = run(envA, "push", "model:m@1.0.0")
    assert.are.equal(2, code)
    assert.matches("%-%-to URL is required", err)
    ok_json(envA, "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "1.0.0", "--json")
    code, _, err = run(envA, "push", "model:m@1.0.0", "--to", "http://127.0.0.1:1")
    assert.are.equal(1, code)
    assert.matches("^ipkrun: push: to kubo node http://127%.0%.0%.1:1: .*127%.0%.0%.1:1", err)
    code, _, err = run(envB, "pull", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", "--from",
      "http://127.0.0.1:1")
    assert.are.equal(1, code)
    assert.matches("127%.0%.0%.1:1", err)
    code, _, err = run(envB, "pull", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", "--from", "127.0.0.1:1")
    assert.are.equal(2, code)
    assert.matches("not a node URL", err)
  end)

  it("a node or gateway answering a wrong block: verified, refused, nothing recorded", function()
    -- genuine content from home A through the real node
    ok_json(envA, "dataset", "add", dir .. "/data/tricky.csv", "--name", "tr", "--version", "1", "--json")
    local rec = ok_json(envA, "push", "dataset:tr@1", "--to", A.api, "--json").pushed[1]
    local fdir = tmp .. "/fake"
    os.execute("mkdir -p " .. u.q(fdir .. "/blocks") .. " " .. u.q(fdir .. "/cars"))
    local bytes = select(2, u.sh("curl -sf -X POST " .. u.q(A.api .. "/api/v0/block/get?arg=" .. rec)))
    u.write(fdir .. "/blocks/" .. rec, bytes)
    u.write(fdir .. "/tamper", rec .. "\n")
    local fake = nodes.start_fake(fdir)
    finally(function() nodes.stop(fake) end)
    -- the record comes back with one flipped byte (block/get of the fake node)
    local code, _, err = run(envB, "pull", rec, "--from", fake.url)
    assert.are.equal(1, code)
    assert.matches("do not match the CID", err)
    assert.are.same({}, ok_json(envB, "dataset", "list", "--json").datasets)
    assert.are.same({}, ok_json(envB, "pin", "ls", "--json").Keys)
    -- through a gateway: the record is fine, the data's CAR is tampered
    local v = ok_json(envA, "dataset", "show", "tr@1", "--json")
    u.write(fdir .. "/tamper", "\n")
    u.write(fdir .. "/blocks/" .. v.cid, select(2, u.sh("curl -sf -X POST " .. u.q(A.api .. "/api/v0/block/get?arg=" .. v.cid))))
    local car = select(2, u.sh("curl -sf -X POST " .. u.q(A.api .. "/api/v0/dag/export?arg=" .. v.cid)))
    assert.is_true(#car > 100)
    u.write(fdir .. "/cars/" .. v.cid .. ".car", car:sub(1, #car - 5) .. string.char((car:byte(#car - 4) + 1) % 256)
      .. car:sub(#car - 3))
    code, _, err = run(envB, "pull", rec, "--from", "gateway+" .. fake.url)
    assert.are.equal(1, code)
    assert.matches("gateway: .*do not match", err)
    assert.are.same({}, ok_json(envB, "dataset", "list", "--json").datasets)
    assert.are.same({}, ok_json(envB, "pin", "ls", "--json").Keys)
    -- the genuine CAR: the same pull succeeds
    u.write(fdir .. "/cars/" .. v.cid .. ".car", car)
    local got = ok_json(envB, "pull", rec, "--from", "gateway+" .. fake.url, "--json")
    assert.are.equal("dataset:tr@1", got.pulled[1].ref)
  end)
end)
