-- ipk.lineage: `ipkrun verify CID` walks a model back through the run
-- records to the dataset bytes, re-hashing every block; the main recipe is
-- memoized step by step.
local u = support
local json = require "cjson"

local DATA = "/usr/share/datasets/fashion-mnist"
local RECIPE = u.root .. "/recipes/fashion_mnist_fedavg.lua"

describe("ipkrun verify and the memoized main recipe", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("re-runs nothing when unchanged, exactly the downstream steps on a param change; verify walks the chain", function()
    if not u.exists(DATA .. "/train-labels-idx1-ubyte.gz") then
      pending("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
      return
    end
    local args = { "run", RECIPE, "--param", "clients=3", "--param", "rounds=2", "--json" }
    local code, out, err = u.ipkrun(args, env)
    assert.equal(0, code, err)
    local first = json.decode(out)
    for _, s in pairs(first.run.steps) do assert.equal("ok", s.status) end

    -- unchanged: every step restored, same results, no step work
    code, out, err = u.ipkrun(args, env)
    assert.equal(0, code, err)
    local again = json.decode(out)
    for name, s in pairs(again.run.steps) do assert.equal("cached", s.status, name) end
    assert.equal(first.model_cid, again.model_cid)
    assert.same(first.history, again.history)
    assert.same(first.shards, again.shards)
    assert.is_true(again.registry.existing)
    assert.is_nil(err:find("round ", 1, true))  -- no training happened

    -- one param changed: only the model and what depends on it
    code, out, err = u.ipkrun({ "plan", RECIPE, "--param", "clients=3", "--param", "rounds=3",
      "--param", "version=1.0.1", "--json" }, env)
    assert.equal(0, code, err)
    local by = {}
    for _, s in ipairs(json.decode(out).steps) do by[s.step] = s end
    assert.equal("cached", by.data.status)
    assert.equal("cached", by.shards.status)
    assert.equal("run", by.model.status)
    assert.same({ "param rounds: 2 -> 3" }, by.model.why)
    assert.equal("run", by.publish.status)
    code, out, err = u.ipkrun({ "run", RECIPE, "--param", "clients=3", "--param", "rounds=3",
      "--param", "version=1.0.1", "--json" }, env)
    assert.equal(0, code, err)
    local third = json.decode(out)
    assert.equal("cached", third.run.steps.data.status)
    assert.equal("cached", third.run.steps.shards.status)
    assert.equal("ok", third.run.steps.model.status)
    assert.equal("ok", third.run.steps.publish.status)
    assert.equal(3, #third.history)
    assert.same(first.history[2], third.history[2])  -- the same seeded training, one round longer

    -- verify: model -> training -> shards -> dataset bytes, every block re-hashed
    code, out, err = u.ipkrun({ "verify", third.model_cid, "--json" }, env)
    assert.equal(0, code, err)
    local rep = json.decode(out)
    assert.is_true(rep.ok)
    assert.equal(third.run.id, rep.run)
    local steps = {}
    for _, e in ipairs(rep.chain) do steps[#steps + 1] = e.step end
    assert.same({ "model", "shards", "data" }, steps)   -- from the step that made the model
    local data = rep.chain[3]
    assert.equal("dataset.add", data.kind)
    assert.equal(third.dataset_cid, data.artifacts[1].cid)
    assert.is_true(data.artifacts[1].blocks > 100)
    assert.is_true(data.source.matches)
    assert.equal(3, #rep.chain[2].artifacts - 1)  -- 3 shard index blocks + the dataset
    assert.is_true(rep.recipe.ok)
    code, out = u.ipkrun({ "verify", third.model_cid }, env)
    assert.equal(0, code)
    assert.matches("verified\n$", out)

    -- a damaged model block: verify names it and fails
    u.damage_blocks(env.IPK_HOME, { third.model_cid }, 100)
    code, out, err = u.ipkrun({ "verify", third.model_cid }, env)
    assert.equal(1, code)
    assert.matches("FAIL " .. third.model_cid, out, 1, true)
    assert.matches("VERIFICATION FAILED\n$", out)
    assert.equal("ipkrun: verify: " .. third.model_cid .. ": lineage does not verify\n", err)
  end)

  it("a restored split loads its arrays once for all concurrent readers (regression)", function()
    if not u.exists(DATA .. "/train-labels-idx1-ubyte.gz") then
      pending("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
      return
    end
    -- Every fl.train client touched `train` at once and each started its own
    -- decompression (8x the work). Now one loader serves them all.
    local dataset = require "ipk.dataset"
    local sched = require "ipk.sched"
    local kind_add = dataset.add { path = DATA, name = "f" }.kind
    local kind_split = dataset.split { data = "x" }.kind
    local version = kind_add.decode({ name = "f", version = "v", cid = require("ipk.dagjson").link("bafkqaaa"),
      format = "idx", stats = {}, import = {}, source = DATA,
      files = { train = { images = "train-images-idx3-ubyte.gz", labels = "train-labels-idx1-ubyte.gz" },
                test = { images = "t10k-images-idx3-ubyte.gz", labels = "t10k-labels-idx1-ubyte.gz" } } })
    local sp = kind_split.decode({ dataset = require("ipk.dagjson").link("bafkqaaa"), alpha = 0, seed = 0,
      classes = 10, features = 784, clients = {} }, nil, { data = version })
    local idx = require "ipk.dataset.idx"
    local real, loads = idx.load, 0
    idx.load = function(p) loads = loads + 1 return real(p) end
    local rows = sched.run_task(function()
      local ts = {}
      for i = 1, 8 do ts[i] = sched.spawn(function() return sp.train.rows + sp.test.rows end) end
      return sched.join(ts)
    end)
    idx.load = real
    assert.equal(4, loads)   -- train images + labels, test images + labels
    for i = 1, 8 do assert.equal(70000, rows[i]) end
  end)

  it("refuses a CID no run produced", function()
    local code, _, err = u.ipkrun({ "verify", "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e" }, env)
    assert.equal(1, code)
    assert.equal("ipkrun: verify: bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e: no recorded run"
      .. " produced this CID (see ipkrun runs)\n", err)
    code, _, err = u.ipkrun({ "verify", "notacid" }, env)
    assert.equal(1, code)
    assert.matches("^ipkrun: verify: notacid: ", err)
  end)
end)
