-- ipkrun end to end: the host, add/cat/get/pin/gc, the main recipe, bad input.
-- Every test uses its own temporary $IPK_HOME.
local json = require "cjson"
local u = support

local DATA = "/usr/share/datasets/fashion-mnist"
local RECIPE = u.root .. "/recipes/fashion_mnist_fedavg.lua"

-- The error line: the last line of stderr (progress lines come before it).
local function last_line(s)
  return (s:match("([^\n]*\n)$")) or s
end

local function count_files(dir)
  local _, out = u.sh("find " .. u.q(dir) .. " -type f | wc -l")
  return tonumber(out)
end

describe("ipkrun", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("prints help and version", function()
    local code, out = u.ipkrun({ "--help" }, env)
    assert.equal(0, code)
    assert.matches("ipkrun run RECIPE.lua", out, 1, true)
    code, out = u.ipkrun({ "--version", "--json" }, env)
    assert.equal(0, code)
    assert.equal("0.1.0", json.decode(out).version)
  end)

  it("rejects an unknown flag and an unknown command with one line and exit 2", function()
    local code, out, err = u.ipkrun({ "add", "--frobnicate", "x" }, env)
    local _
    assert.equal(2, code)
    assert.equal("", out)
    assert.equal("ipkrun: add: unknown flag '--frobnicate'\n", err)
    code, _, err = u.ipkrun({ "launch" }, env)
    assert.equal(2, code)
    assert.equal("ipkrun: unknown command 'launch' (see ipkrun --help)\n", err)
  end)

  it("add prints Kubo's CIDs; cat and get read back verified", function()
    u.write(tmp .. "/hello.txt", "hello world")
    local code, out = u.ipkrun({ "add", "-Q", tmp .. "/hello.txt" }, env)
    assert.equal(0, code)
    assert.equal("Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD\n", out)
    code, out = u.ipkrun({ "add", "--cid-version=1", tmp .. "/hello.txt" }, env)
    assert.equal(0, code)
    assert.equal("added bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e hello.txt\n", out)
    code, out = u.ipkrun({ "cat", "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD" }, env)
    assert.equal(0, code)
    assert.equal("hello world", out)
    -- a directory, recursively, and back with get
    os.execute("mkdir -p " .. u.q(tmp .. "/planets"))
    u.write(tmp .. "/planets/mars.txt", "Hello Mars!\n")
    u.write(tmp .. "/planets/venus.txt", "Hello Venus!\n")
    code, out = u.ipkrun({ "add", "-r", tmp .. "/planets" }, env)
    assert.equal(0, code)
    assert.equal("added QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN planets/mars.txt\n" ..
      "added QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4 planets/venus.txt\n" ..
      "added QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY planets\n", out)
    code = u.ipkrun({ "get", "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY", "-o", tmp .. "/out" }, env)
    assert.equal(0, code)
    assert.equal("Hello Venus!\n", u.read(tmp .. "/out/venus.txt"))
    code, out = u.ipkrun({ "pin", "ls" }, env)
    assert.equal(0, code)
    assert.matches("QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY recursive", out, 1, true)
  end)

  it("add -n writes nothing to the store", function()
    u.write(tmp .. "/a.bin", string.rep("a", 1000))
    local code, out = u.ipkrun({ "add", "-n", "-Q", tmp .. "/a.bin" }, env)
    assert.equal(0, code)
    assert.matches("^Qm%w+\n$", out)
    local n = u.exists(tmp .. "/home/blocks") and count_files(tmp .. "/home/blocks") or 0
    assert.equal(0, n)
  end)

  it("gc removes unpinned blocks and keeps pinned ones", function()
    u.write(tmp .. "/keep.txt", "keep me")
    u.write(tmp .. "/drop.txt", "drop me")
    local _, keep = u.ipkrun({ "add", "-Q", tmp .. "/keep.txt" }, env)
    local _, drop = u.ipkrun({ "add", "-Q", "--pin=false", tmp .. "/drop.txt" }, env)
    keep, drop = keep:gsub("%s+$", ""), drop:gsub("%s+$", "")
    local code, out = u.ipkrun({ "gc", "--json" }, env)
    assert.equal(0, code)
    assert.equal(1, json.decode(out).removed)
    code, out = u.ipkrun({ "cat", keep }, env)
    assert.equal(0, code); assert.equal("keep me", out)
    local err
    code, _, err = u.ipkrun({ "cat", drop }, env)
    assert.equal(1, code)
    assert.matches("^ipkrun: cat: [^\n]*" .. drop .. "[^\n]*\n$", err)
  end)

  it("rejects a malformed CID and a missing block with one line", function()
    local code, _, err = u.ipkrun({ "cat", "QmNotACid" }, env)
    assert.equal(1, code)
    assert.matches("^ipkrun: cat: QmNotACid: [^\n]+\n$", err)
    code, _, err = u.ipkrun({ "cat", "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e" }, env)
    assert.equal(1, code)
    assert.matches("^ipkrun: cat: [^\n]*bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e[^\n]*\n$", err)
  end)

  describe("regressions", function()
    it("skips hidden files like Kubo unless -H, and adds symlinks as UnixFS symlinks", function()
      local d = tmp .. "/d"
      os.execute("mkdir -p " .. u.q(d .. "/sub") .. " && printf hi > " .. u.q(d .. "/sub/a.txt")
        .. " && printf x > " .. u.q(d .. "/.hidden") .. " && ln -s sub/a.txt " .. u.q(d .. "/link"))
      local _, without = u.ipkrun({ "add", "-r", "-n", "-Q", d }, env)
      os.execute("rm " .. u.q(d .. "/.hidden"))
      local _, plain = u.ipkrun({ "add", "-r", "-n", "-Q", d }, env)
      assert.equal(plain, without)
      u.write(d .. "/.hidden", "x")
      local _, with = u.ipkrun({ "add", "-r", "-n", "-Q", "-H", d }, env)
      assert.not_equal(plain, with)
      -- the symlink node: dag-pb {Data: UnixFS{Type: Symlink(4), Data: "sub/a.txt"}}
      local code, out = u.ipkrun({ "add", "-Q", "--cid-version=1", d .. "/link" }, env)
      assert.equal(0, code)
      local blk = "\x0a\x0d\x08\x04\x12\x09sub/a.txt"
      local cid = require("ipk.cid")
      assert.equal(cid.format(cid.of(1, 0x70, blk)) .. "\n", out)
      -- and get recreates it as a symlink, never following it
      local root = (select(2, u.ipkrun({ "add", "-r", "-Q", d }, env))):gsub("%s+$", "")
      assert.equal(0, (u.ipkrun({ "get", root, "-o", tmp .. "/out" }, env)))
      local _, target = u.sh("readlink " .. u.q(tmp .. "/out/link"))
      assert.equal("sub/a.txt\n", target)
    end)

    it("get refuses to overwrite and leaves nothing behind when a block is missing", function()
      os.execute("mkdir -p " .. u.q(tmp .. "/p"))
      u.write(tmp .. "/p/a.txt", "aaa")
      u.write(tmp .. "/p/b.txt", "bbb")
      local _, root = u.ipkrun({ "add", "-r", "-Q", tmp .. "/p" }, env)
      root = root:gsub("%s+$", "")
      u.write(tmp .. "/exists", "precious")
      local code, _, err = u.ipkrun({ "get", root, "-o", tmp .. "/exists" }, env)
      assert.equal(1, code)
      assert.matches("already exists", err)
      assert.equal("precious", u.read(tmp .. "/exists"))
      -- remove b.txt's block: get fails and writes no partial tree
      local _, bcid = u.ipkrun({ "add", "-n", "-Q", tmp .. "/p/b.txt" }, env)
      local key = require("ipk.cid").parse((bcid:gsub("%s+$", "")))
      assert.truthy(key)
      local st = assert(require("ipk.store").open(tmp .. "/home"))
      assert(st:del(key))
      st:close()
      code, _, err = u.ipkrun({ "get", root, "-o", tmp .. "/partial" }, env)
      assert.equal(1, code)
      assert.matches("block not found", err)
      assert.is_false(u.exists(tmp .. "/partial/a.txt"))
      local _, left = u.sh("ls -a " .. u.q(tmp))
      assert.not_matches("ipk%-get", left)
    end)

    it("a corrupt block is named as corrupt and re-adding the content repairs it", function()
      u.write(tmp .. "/m.bin", string.rep("0123456789", 1000))
      local _, c = u.ipkrun({ "add", "-Q", tmp .. "/m.bin" }, env)
      c = c:gsub("%s+$", "")
      -- the block holding the file's bytes (one block: the root)
      u.damage_blocks(tmp .. "/home", { c }, 100)
      local code, _, err = u.ipkrun({ "cat", c }, env)
      assert.equal(1, code)
      assert.matches("is corrupt in the store", err)
      assert.equal(0, (u.ipkrun({ "add", "-Q", tmp .. "/m.bin" }, env)))
      local out
      code, out = u.ipkrun({ "cat", c }, env)
      assert.equal(0, code)
      assert.equal(string.rep("0123456789", 1000), out)
    end)

    it("gc waits for, then refuses to run beside, another process using the store", function()
      -- a process holding the store open (as an import in flight does): the REPL
      -- It says OPEN once the store is open; gc starts only then (a fixed
      -- delay loses the race on a loaded machine).
      os.execute("(echo 'ipk.store() print([[OPEN]]) io.stdout:flush()'; sleep 12) | IPK_HOME=" .. u.q(env.IPK_HOME) .. " "
        .. u.q(u.build .. "/ipkrun") .. " >" .. u.q(tmp .. "/repl.out") .. " 2>&1 & echo $! > " .. u.q(tmp .. "/pid"))
      os.execute("for i in $(seq 200); do grep -q OPEN " .. u.q(tmp .. "/repl.out") .. " 2>/dev/null && break; sleep 0.1; done")
      assert.matches("OPEN", u.read(tmp .. "/repl.out") or "")
      local code, out, err = u.ipkrun({ "gc", "--json" }, env)
      os.execute("kill $(cat " .. u.q(tmp .. "/pid") .. ") 2>/dev/null")
      assert.equal(1, code)
      assert.matches("another ipkrun process is using the store", err)
      assert.equal("another", require("cjson").decode(out).error:match("another"))
    end)

    it("gc removes what a killed model/dataset add left in staging", function()
      os.execute("mkdir -p " .. u.q(tmp .. "/home/staging/reg.dead"))
      u.write(tmp .. "/home/staging/reg.dead/model.safetensors", string.rep("x", 1000))
      assert.equal(0, (u.ipkrun({ "gc" }, env)))
      assert.is_false(u.exists(tmp .. "/home/staging/reg.dead/model.safetensors"))
    end)

    it("resume refuses a run that is still running; once its process is killed it shows as interrupted", function()
      u.write(tmp .. "/slow.lua", 'local ipk = require "ipk"\nreturn ipk.recipe { name = "slow", steps = {\n'
        .. '  s = ipk.step { cache = false, run = function() ipk.sched.sleep(30) return 1 end } } }\n')
      os.execute("IPK_HOME=" .. u.q(env.IPK_HOME) .. " " .. u.q(u.build .. "/ipkrun") .. " run " .. u.q(tmp .. "/slow.lua")
        .. " >/dev/null 2>&1 & echo $! > " .. u.q(tmp .. "/pid"))
      os.execute("sleep 2")
      local _, out = u.ipkrun({ "runs", "--json" }, env)
      local run = json.decode(out).runs[1]
      assert.equal("running", run.status)
      local code, _, err = u.ipkrun({ "run", "--resume", run.id }, env)
      assert.equal(1, code)
      assert.matches("is still running", err)
      os.execute("kill -9 $(cat " .. u.q(tmp .. "/pid") .. "); sleep 0.5")
      _, out = u.ipkrun({ "runs", "--json" }, env)
      assert.equal("interrupted", json.decode(out).runs[1].status)
    end)

    -- Regression: `get -o ''` reached the C layer and said "NULL argument".
    -- Every value flag, in both forms, refuses an empty value up front.
    it("refuses an empty flag value in --long, --long= and -s forms, naming the flag", function()
      local cid = "bafkqaaa" -- the empty identity CID: nothing to fetch
      for _, argv in ipairs {
        { "get", cid, "-o", "" }, { "get", cid, "--output", "" }, { "get", cid, "--output=" },
        { "add", "--hash", "", "x" }, { "dataset", "list", "--name=" },
      } do
        local code, _, err = u.ipkrun(argv, env)
        assert.equal(2, code, table.concat(argv, " "))
        assert.matches("needs a non%-empty value", err)
        assert.not_matches("NULL", err)
      end
      assert.is_false(u.exists(tmp .. "/bafkqaaa"))
    end)

    it("escapes control characters of bad input in the one-line error", function()
      local code, out, err = u.ipkrun({ "cat", "Qm\nab\27c", "--json" }, env)
      assert.equal(1, code)
      assert.equal("ipkrun: cat: Qm\\nab\\x1bc: invalid CID 'Qm\\nab\\x1bc': unknown or malformed multibase\n", err)
      assert.equal(1, require("cjson").decode(out).exit_code)
    end)
  end)

  describe("main recipe", function()
    if not u.exists(DATA .. "/train-labels-idx1-ubyte.gz") then
      pending("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
      return
    end

    it("trains, registers, and is reproducible (small params, --json)", function()
      local args = { "run", RECIPE, "--param", "clients=3", "--param", "rounds=2", "--param", "seed=3", "--json" }
      local code, out, err = u.ipkrun(args, env)
      assert.equal(0, code, err)
      local r = json.decode(out)
      -- the dataset CID is the folder's `add -r --cid-version=1` CID
      local c2, out2 = u.ipkrun({ "add", "-r", "-n", "-Q", "--cid-version=1", DATA }, env)
      assert.equal(0, c2)
      assert.equal(out2:gsub("%s+$", ""), r.dataset_cid)
      assert.equal(60000, r.dataset.stats.splits.train.num_rows)
      assert.equal(10000, r.dataset.stats.splits.test.num_rows)
      assert.same({ 28, 28 }, r.dataset.stats.sample_shape)
      assert.equal(6000, r.dataset.stats.splits.train.label_counts[1])
      assert.equal(2, #r.history)
      assert.equal(2, r.history[2].round)
      assert.is_true(r.test_accuracy > 0.5 and r.test_accuracy <= 1)
      assert.equal(r.history[2].test_accuracy, r.test_accuracy)
      assert.matches("^bafkrei", r.model_cid)
      assert.equal("fashion-mnist-softmax", r.registry.name)
      assert.equal(r.model_cid, r.registry.model_cid)
      assert.equal(r.dataset_cid, r.registry.lineage.dataset_cid)
      assert.equal(r.recipe_cid, r.registry.lineage.recipe_cid)
      -- the recipe CID is the CID of the recipe file's bytes
      local _, rc = u.ipkrun({ "add", "-n", "-Q", "--cid-version=1", RECIPE }, env)
      assert.equal(rc:gsub("%s+$", ""), r.recipe_cid)
      -- the model file reads back as safetensors with the same CID
      local code3 = u.ipkrun({ "get", r.model_cid, "-o", tmp .. "/model.safetensors" }, env)
      assert.equal(0, code3)
      local _, mc = u.ipkrun({ "add", "-n", "-Q", "--cid-version=1", tmp .. "/model.safetensors" }, env)
      assert.equal(r.model_cid, (mc:gsub("%s+$", "")))
      -- same seed again: same model CID, registry no-op
      code, out, err = u.ipkrun(args, env)
      assert.equal(0, code, err)
      local again = json.decode(out)
      assert.equal(r.model_cid, again.model_cid)
      assert.is_true(again.registry.existing)
      -- another seed under the same version: a clear error naming both CIDs
      args[8] = "seed=4"
      code, out, err = u.ipkrun(args, env)
      assert.equal(1, code)
      -- with --json the failure is one JSON object on stdout too
      assert.matches("is already registered with model " .. r.model_cid, json.decode(out).error, 1, true)
      assert.matches("fashion%-mnist%-softmax@1%.0%.0 is already registered with model " .. r.model_cid, err)
      assert.matches("^ipkrun: run: [^\n]+\n$", last_line(err))
    end)

    it("reaches >= 0.82 test accuracy with the defaults (8 clients, Dirichlet 0.5)", function()
      local code, out, err = u.ipkrun({ "run", RECIPE, "--json" }, env)
      assert.equal(0, code, err)
      local r = json.decode(out)
      assert.equal(150, #r.history)
      assert.equal(8, r.params.clients)
      assert.equal(0.5, r.params.alpha)
      assert.is_true(r.test_accuracy >= 0.82, "final test accuracy " .. r.test_accuracy)
    end)

    it("fails cleanly on a missing dataset folder", function()
      local code, out, err = u.ipkrun({ "run", RECIPE, "--param", "data=" .. tmp .. "/nope" }, env)
      assert.equal(1, code)
      assert.equal("", out)
      assert.equal("ipkrun: run: step 'data': dataset fashion-mnist: " .. tmp ..
        "/nope: directory not found (install the Debian package dataset-fashion-mnist)\n", last_line(err))
      local _, pins = u.ipkrun({ "pin", "ls" }, env)
      assert.not_matches("dataset:", pins)
    end)

    it("fails cleanly on a truncated IDX file and leaves no pin or registry row", function()
      local d = tmp .. "/fm"
      os.execute("mkdir -p " .. u.q(d) .. " && cp " .. DATA .. "/*.gz " .. u.q(d))
      -- cut the gzip stream of the test labels short
      os.execute("head -c 3000 " .. DATA .. "/t10k-labels-idx1-ubyte.gz > " .. u.q(d .. "/t10k-labels-idx1-ubyte.gz"))
      local code, out, err = u.ipkrun({ "run", RECIPE, "--param", "data=" .. d, "--param", "rounds=1" }, env)
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^ipkrun: run: step 'data': [^\n]*t10k%-labels%-idx1%-ubyte%.gz: offset %d+: truncated[^\n]*\n$", last_line(err))
      local _, pins = u.ipkrun({ "pin", "ls" }, env)
      assert.not_matches("dataset:", pins)
      assert.not_matches("model:", pins)
    end)

    it("rejects an unknown or mistyped param", function()
      local code, _, err = u.ipkrun({ "run", RECIPE, "--param", "clients=two" }, env)
      assert.equal(1, code)
      assert.equal("ipkrun: run: param 'clients': expected integer, got 'two'\n", err)
    end)
  end)
end)
