-- ipk.registry through `ipkrun model ...`: versions, semver latest, aliases
-- with history, queries, entries as UnixFS directories, the content-
-- addressed index, IPFS Kit export/import, concurrency and crash safety.
local u = require "support.util"
local files = require "support.files"
local json = require "cjson"

local run, ok_json, only_hash = u.run, u.ok_json, u.only_hash

describe("ipkrun model", function()
  local dir, why = files.made()
  if not dir then pending(why) return end
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("adds versions from content-detected formats; latest is by semver order", function()
    local a = ok_json(env, "model", "add", dir .. "/models/state_dict.pt", "--name", "net", "--version", "1.2.0",
      "--tag", "vision", "--metric", "accuracy=0.91", "--param", "lr=0.1", "--description", "first", "--json")
    assert.equal("pytorch", a.framework)
    assert.equal("pytorch", a.format)
    assert.equal("state_dict", a.info.pytorch_kind)
    assert.same({ "vision" }, a.tags)
    assert.same({ accuracy = 0.91 }, a.metrics)
    assert.same({ lr = 0.1 }, a.params)
    -- model_cid is the file's own CID; entry_cid a directory with metadata.json
    assert.equal(only_hash(env, dir .. "/models/state_dict.pt"), a.model_cid)
    assert.matches("^bafybei", a.entry_cid)
    ok_json(env, "model", "add", dir .. "/models/module.pt", "--name", "net", "--version", "1.10.0-rc.1", "--json")
    ok_json(env, "model", "add", dir .. "/models/script.pt", "--name", "net", "--version", "1.9.3", "--json")
    -- a pre-release of 1.10.0 is above 1.9.3 (semver.org section 11)
    assert.equal("1.10.0-rc.1", ok_json(env, "model", "show", "net", "--json").version)
    local b = ok_json(env, "model", "add", dir .. "/models/sklearn.pkl", "--name", "net", "--version", "1.10.0", "--json")
    assert.equal("sklearn", b.framework)
    local latest = ok_json(env, "model", "show", "net", "--json")
    assert.equal("1.10.0", latest.version) -- 1.10.0 > 1.10.0-rc.1 > 1.9.3 > 1.2.0
    local l = ok_json(env, "model", "list", "--json")
    local vs = {}
    for _, e in ipairs(l.models) do vs[#vs + 1] = e.version end
    assert.same({ "1.2.0", "1.9.3", "1.10.0-rc.1", "1.10.0" }, vs)
  end)

  it("gets an entry directory whose CIDs are the recorded ones", function()
    local e = ok_json(env, "model", "add", dir .. "/models/savedmodel", "--name", "tf", "--version", "0.1.0",
      "--dataset", "bafkreiei2sgneelwnkqhgtfmg2oivhmgozb647uoscr4dple5r6qw4gxiu", "--json")
    assert.equal("tf-savedmodel", e.format)
    assert.equal("tensorflow", e.framework)
    assert.equal("bafkreiei2sgneelwnkqhgtfmg2oivhmgozb647uoscr4dple5r6qw4gxiu", e.lineage.dataset_cid)
    local out = tmp .. "/got"
    ok_json(env, "model", "get", "tf@0.1.0", "-o", out, "--json")
    assert.equal(e.entry_cid, only_hash(env, out, true))
    assert.equal(e.model_cid, only_hash(env, out .. "/savedmodel", true))
    local meta = u.json_file(out .. "/metadata.json")
    assert.equal("tf", meta.name)
    assert.equal("0.1.0", meta.version)
    assert.equal("tf-savedmodel", meta.format)
    assert.is_nil(meta.created_at) -- no wall-clock time in the entry (it is in the row: e.created_at)
    assert.is_string(e.created_at)
    assert.same({ dataset_cid = "bafkreiei2sgneelwnkqhgtfmg2oivhmgozb647uoscr4dple5r6qw4gxiu" }, meta.lineage)
  end)

  it("fills the signature from an ONNX graph", function()
    local root, why2 = files.deb("libonnx-testdata")
    if not root then pending(why2) return end
    local e = ok_json(env, "model", "add", root .. "/usr/share/libonnx-testdata/data/node/test_mod_uint32/model.onnx",
      "--name", "mod", "--version", "1.0.0", "--json")
    assert.equal("onnx", e.framework)
    assert.same({ { name = "z", dtype = "uint32", shape = { 3 } } }, e.signature.outputs)
    assert.equal(2, #e.signature.inputs)
  end)

  it("queries by tag, framework and metric conditions", function()
    ok_json(env, "model", "add", dir .. "/models/state_dict.pt", "--name", "a", "--version", "1.0.0",
      "--tag", "vision", "--metric", "accuracy=0.95", "--json")
    ok_json(env, "model", "add", dir .. "/models/model.keras", "--name", "b", "--version", "1.0.0",
      "--tag", "vision", "--metric", "accuracy=0.85", "--json")
    ok_json(env, "model", "add", dir .. "/models/tiny.gguf", "--name", "c", "--version", "1.0.0",
      "--tag", "text", "--metric", "accuracy=0.99", "--json")
    local function names(...)
      local r = ok_json(env, "model", "list", "--json", ...)
      local t = {}
      for _, e in ipairs(r.models) do t[#t + 1] = e.name end
      return t
    end
    assert.same({ "a" }, names("--tag", "vision", "--where", "accuracy>0.9"))
    assert.same({ "a", "b" }, names("--tag", "vision"))
    assert.same({ "b" }, names("--framework", "keras"))
    assert.same({ "b", "c" }, names("--where", "accuracy!=0.95"))
    assert.same({ "b" }, names("--where", "accuracy<0.9,accuracy>=0.85"))
    local code, _, err = run(env, "model", "list", "--where", "accuracy>>1")
    assert.equal(1, code)
    assert.matches("^ipkrun: model list: registry: bad condition 'accuracy>>1'", err)
  end)

  it("keeps alias history; rm unpins and drops aliases; re-adding is a no-op, other bytes an error", function()
    ok_json(env, "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "1.0.0", "--alias", "champion", "--json")
    ok_json(env, "model", "add", dir .. "/models/weights.npz", "--name", "m", "--version", "2.0.0", "--json")
    assert.equal("1.0.0", ok_json(env, "model", "show", "m@champion", "--json").version)
    ok_json(env, "model", "alias", "m", "champion", "2.0.0", "--json")
    local s = ok_json(env, "model", "show", "m@champion", "--json")
    assert.equal("2.0.0", s.version)
    assert.same({ "champion" }, s.aliases)
    local h = ok_json(env, "model", "alias", "m", "champion", "--json").history
    assert.equal(2, #h)
    assert.equal("1.0.0", h[1].version)
    assert.equal("2.0.0", h[2].version)
    -- same bytes again: no-op; other bytes under the same version: error, nothing written
    local again = ok_json(env, "model", "add", dir .. "/models/weights.npz", "--name", "m", "--version", "2.0.0", "--json")
    assert.is_true(again.existing)
    -- regression (breaklua): re-adding with --alias reported success and
    -- dropped the alias; it is pointed (an invalid one is refused)
    again = ok_json(env, "model", "add", dir .. "/models/weights.npz", "--name", "m", "--version", "2.0.0",
      "--alias", "stable", "--json")
    assert.is_true(again.existing)
    assert.equal("2.0.0", ok_json(env, "model", "show", "m@stable", "--json").version)
    local acode, _, aerr = run(env, "model", "add", dir .. "/models/weights.npz", "--name", "m", "--version", "2.0.0",
      "--alias", "latest")
    assert.equal(1, acode)
    assert.matches("invalid alias 'latest'", aerr)
    local idx = ok_json(env, "model", "index", "--json").index_cid
    local code, _, err = run(env, "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "2.0.0")
    assert.equal(1, code)
    assert.matches("m@2%.0%.0 is already registered with model " .. s.model_cid, err)
    assert.equal(idx, ok_json(env, "model", "index", "--json").index_cid)
    -- rm
    local r = ok_json(env, "model", "rm", "m@2.0.0", "--json")
    assert.equal(s.entry_cid, r.removed.entry_cid)
    local _, pins = run(env, "pin", "ls")
    assert.not_matches(s.entry_cid, pins)
    assert.not_matches("model:m@2%.0%.0", pins)
    code, _, err = run(env, "model", "show", "m@champion")
    assert.equal(1, code)
    assert.matches("m@champion not found", err)
    assert.equal(3, #ok_json(env, "model", "alias", "m", "champion", "--json").history)
    assert.is_not.equal(idx, r.index_cid)
  end)

  it("rejects non-model content, bad names and versions, and corrupt files, writing nothing", function()
    local code, _, err = run(env, "model", "add", dir .. "/data/tricky.csv", "--name", "x", "--version", "1.0.0")
    assert.equal(1, code)
    assert.equal("ipkrun: model add: registry: " .. dir
      .. "/data/tricky.csv: not a recognized model format (content looks like csv)\n", err)
    code, _, err = run(env, "model", "add", dir .. "/models/tiny.gguf", "--name", "x", "--version", "1.0")
    assert.equal(1, code)
    assert.matches("is not semver", err)
    -- regressions (review): leading zeros; an alias that looks like a version
    code, _, err = run(env, "model", "add", dir .. "/models/tiny.gguf", "--name", "x", "--version", "01.0.0")
    assert.equal(1, code)
    assert.matches("must not have leading zeros", err)
    code, _, err = run(env, "model", "add", dir .. "/models/tiny.gguf", "--name", "x", "--version", "1.0.0",
      "--alias", "2.0.0")
    assert.equal(1, code)
    assert.matches("invalid alias '2.0.0'", err, 1, true)
    local bad = tmp .. "/cut.gguf"
    u.sh("(head -c 100 " .. u.q(dir .. "/models/tiny.gguf") .. " > " .. u.q(bad) .. ")")
    code, _, err = run(env, "model", "add", bad, "--name", "x", "--version", "1.0.0")
    assert.equal(1, code)
    assert.matches("^ipkrun: model add: registry: [^\n]*cut%.gguf: offset %d+: gguf: [^\n]+\n$", err)
    assert.equal(0, #ok_json(env, "model", "list", "--json").models)
    local _, pins = run(env, "pin", "ls")
    assert.not_matches("model:", pins)
    -- the staging area is cleaned up
    local _, left = u.sh("ls -A " .. u.q(env.IPK_HOME .. "/staging"))
    assert.equal("", left)
  end)

  it("exports IPFS Kit's model_registry.json layout; import elsewhere gives the same state CID", function()
    ok_json(env, "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "1.0.0", "--alias", "prod",
      "--metric", "loss=0.5", "--json")
    ok_json(env, "model", "add", dir .. "/models/tfjs", "--name", "web", "--version", "0.3.0", "--json")
    local idx = ok_json(env, "model", "index", "--json").index_cid
    local code = run(env, "model", "export", tmp .. "/model_registry.json")
    assert.equal(0, code)
    local ex = u.json_file(tmp .. "/model_registry.json")
    local v = ex.models.m["1.0.0"]
    assert.equal("numpy", v.framework)
    assert.matches("^bafk", v.cid)
    assert.matches("^%d%d%d%d%-", v.added_at)
    assert.same({ loss = 0.5 }, v.metadata.metrics)
    assert.equal("1.0.0", ex.aliases.m.prod)
    assert.equal("tensorflow.js", ex.models.web["0.3.0"].framework)
    -- the state CID is the CID of this JSON without its added_at times
    -- (canonical: sorted keys), so it depends on what is registered, not when
    local bytes, n = u.read(tmp .. "/model_registry.json"):gsub("\n$", ""):gsub('"added_at":"[^"]*",', "")
    assert.equal(2, n)
    u.write(tmp .. "/state.json", bytes)
    assert.equal(idx, only_hash(env, tmp .. "/state.json"))
    local env2 = { IPK_HOME = tmp .. "/home2" }
    local r = ok_json(env2, "model", "import", tmp .. "/model_registry.json", "--json")
    assert.equal(2, r.imported)
    assert.equal(2, #r.missing) -- the entries' blocks are not in the new store
    assert.equal(idx, r.index_cid)
    assert.equal("1.0.0", ok_json(env2, "model", "show", "m@prod", "--json").version)
    -- importing again skips; a conflicting cid fails and writes nothing
    assert.equal(2, ok_json(env2, "model", "import", tmp .. "/model_registry.json", "--json").skipped)
    ex.models.m["1.0.0"].cid = ex.models.web["0.3.0"].cid
    u.write(tmp .. "/bad.json", json.encode(ex))
    local code2, _, err = run(env2, "model", "import", tmp .. "/bad.json")
    assert.equal(1, code2)
    assert.matches("m@1%.0%.0 is registered with model", err)
    assert.equal(idx, ok_json(env2, "model", "index", "--json").index_cid)
  end)

  it("two processes adding versions of one model at once lose nothing", function()
    local n = 6
    -- distinct bytes per version: npy files of different shapes
    local code = u.sh("/usr/bin/python3 -c " .. u.q([[
import numpy as np, sys
for p in "ab":
    for i in range(1, 7):
        np.save(f"{sys.argv[1]}/{p}{i}.npy", np.full((i, 3 if p == "a" else 4), i, dtype="f4"))
]]) .. " " .. u.q(tmp))
    assert.equal(0, code)
    local script = ("for i in $(seq 1 %d); do %s model add %s/a$i.npy --name shared --version 1.$i.0 || exit 1; done & A=$!; "
      .. "for i in $(seq 1 %d); do %s model add %s/b$i.npy --name shared --version 2.$i.0 || exit 1; done & B=$!; "
      .. "wait $A || exit 1; wait $B || exit 1"):format(n, u.q(u.ipkrun_path), u.q(tmp), n, u.q(u.ipkrun_path), u.q(tmp))
    local c, _, err = u.sh("IPK_HOME=" .. u.q(env.IPK_HOME) .. " bash -c " .. u.q(script))
    assert.equal(0, c, err)
    local l = ok_json(env, "model", "list", "--name", "shared", "--json")
    assert.equal(2 * n, #l.models)
    local ex = ok_json(env, "model", "export")
    local count = 0
    for _ in pairs(ex.models.shared) do count = count + 1 end
    assert.equal(2 * n, count)
    local _, pins = run(env, "pin", "ls")
    for _, e in ipairs(l.models) do assert.matches(e.entry_cid, pins) end
  end)

  it("kill -9 during add leaves registry and store consistent", function()
    local big = tmp .. "/big.npy"
    local py = "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).random((4096, 4096), dtype='f4'))"
    assert.equal(0, (u.sh("/usr/bin/python3 -c " .. u.q(py) .. " " .. u.q(big))))
    ok_json(env, "model", "add", dir .. "/models/weights.npy", "--name", "k", "--version", "0.1.0", "--json")
    for i, delay in ipairs { 0.05, 0.15, 0.3, 0.5, 0.8 } do
      local script = ("%s model add %s --name k --version 1.%d.0 >/dev/null 2>&1 & P=$!; sleep %s; kill -9 $P; wait $P; true")
        :format(u.q(u.ipkrun_path), u.q(big), i, delay)
      u.sh("IPK_HOME=" .. u.q(env.IPK_HOME) .. " bash -c " .. u.q(script))
      -- every row is complete: pinned entry, readable (every block verified)
      local l = ok_json(env, "model", "list", "--name", "k", "--json")
      local _, pins = run(env, "pin", "ls")
      for _, e in ipairs(l.models) do
        assert.matches(e.entry_cid, pins)
        local out = ("%s/chk%d-%s"):format(tmp, i, e.version)
        assert.equal(0, (run(env, "get", e.entry_cid, "-o", out)))
        u.sh("rm -rf " .. u.q(out))
      end
      assert.equal(l.index_cid, ok_json(env, "model", "index", "--json").index_cid)
    end
    -- the add killed after 50 ms (a full add takes ~0.3 s) left no row
    assert.equal(1, (run(env, "model", "show", "k@1.1.0")))
    -- gc removes what the killed adds left; the store still serves every entry; adding again works
    assert.equal(0, (run(env, "gc")))
    local again = ok_json(env, "model", "add", big, "--name", "k", "--version", "9.0.0", "--json")
    assert.equal(0, (run(env, "get", again.entry_cid, "-o", tmp .. "/final")))
    local l = ok_json(env, "model", "list", "--name", "k", "--json")
    for _, e in ipairs(l.models) do assert.equal(0, (run(env, "get", e.entry_cid, "-o", tmp .. "/g" .. e.version))) end
  end)
  it("content-addressed documents hold no wall-clock time: the same model added again has the same entry_cid", function()
    local args = { "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "1.0.0",
                   "--metric", "acc=0.5", "--tag", "t", "--alias", "prod", "--json" }
    local a = ok_json(env, unpack(args))
    local idx = ok_json(env, "model", "index", "--json").index_cid
    ok_json(env, "model", "get", "m@1.0.0", "-o", tmp .. "/e1", "--json")
    local meta = u.json_file(tmp .. "/e1/metadata.json")
    assert.is_nil(meta.created_at)
    assert.equal("1.0.0", meta.version)
    assert.is_string(a.created_at) -- the time is in the row
    -- rm drops the alias with the version (MLflow does the same): export has none
    ok_json(env, "model", "rm", "m@1.0.0", "--json")
    assert.same({}, ok_json(env, "model", "export", "--json").aliases or {})
    u.sh("sleep 1.1") -- another second on the clock
    local b = ok_json(env, unpack(args))
    assert.is_not.equal(a.created_at, b.created_at)
    assert.equal(a.entry_cid, b.entry_cid)
    assert.equal(idx, ok_json(env, "model", "index", "--json").index_cid)
    -- the export for people keeps added_at (IPFS Kit's layout)
    assert.equal(b.created_at, ok_json(env, "model", "export", "--json").models.m["1.0.0"].added_at)
  end)

  it("import refuses an alias that would dangle (no such version), writing nothing", function()
    local a = ok_json(env, "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "1.0.0", "--json")
    local idx = ok_json(env, "model", "index", "--json").index_cid
    local function try(aliases)
      u.write(tmp .. "/reg.json", json.encode({ models = { n = { ["2.0.0"] = { cid = a.model_cid } } },
                                               aliases = aliases }))
      return run(env, "model", "import", tmp .. "/reg.json")
    end
    local code, _, err = try({ m = { prod = "9.9.9" } })
    assert.equal(1, code)
    assert.equal("ipkrun: model import: registry: import: alias m@prod points at version 9.9.9, which is not registered\n", err)
    code, _, err = try({ ghost = { a = "1.0.0" } })
    assert.equal(1, code)
    assert.matches("alias ghost@a points at version 1.0.0, which is not registered", err, 1, true)
    code, _, err = try({ n = { ["3.0.0"] = "2.0.0" } })
    assert.equal(1, code)
    assert.matches("invalid alias '3.0.0' of n", err, 1, true)
    assert.equal(idx, ok_json(env, "model", "index", "--json").index_cid)
    assert.equal(1, ok_json(env, "model", "list", "--json").count)
    -- aliases to versions in the file or already registered are fine
    assert.equal(0, (try({ n = { prod = "2.0.0" }, m = { champion = "1.0.0" } })))
    assert.equal("2.0.0", ok_json(env, "model", "show", "n@prod", "--json").version)
    assert.equal("1.0.0", ok_json(env, "model", "show", "m@champion", "--json").version)
  end)
  it("a failed model add (bad file, conflict, missing path) leaves no staging copy", function()
    local function staged()
      local list = require("ipk.fs").walk(tmp .. "/home/staging", { depth = 1 }) or {}
      return #list
    end
    assert.equal(1, (run(env, "model", "add", dir .. "/data/tricky.csv", "--name", "x", "--version", "1.0.0")))
    ok_json(env, "model", "add", dir .. "/models/weights.npy", "--name", "m", "--version", "1.0.0", "--json")
    assert.equal(1, (run(env, "model", "add", dir .. "/models/weights.npz", "--name", "m", "--version", "1.0.0")))
    assert.equal(1, (run(env, "model", "add", tmp .. "/nope.onnx", "--name", "m", "--version", "2.0.0")))
    assert.equal(1, (run(env, "dataset", "add", tmp .. "/nope.csv", "--name", "d")))
    assert.equal(0, staged())
  end)
end)
