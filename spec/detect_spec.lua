-- ipk.detect: formats and frameworks from content, on real files from
-- Debian/npm packages and on files made by independent writers
-- (spec/support/make_files.py); damaged files fail naming file and offset.
local u = require "support.util"
local files = require "support.files"
local detect = require "ipk.detect"

local function d(path)
  local r, err = detect.file(path)
  assert(r, err)
  return r
end

local function cut(src, dst, n)
  assert.equal(0, (u.sh(("(head -c %d %s > %s)"):format(n, u.q(src), u.q(dst)))))
end

describe("detect: real files from packages", function()
  it("ONNX models from libonnx-testdata: IR version, opset, producer, signature", function()
    local root, why = files.deb("libonnx-testdata")
    if not root then pending(why) return end
    local base = root .. "/usr/share/libonnx-testdata/data"
    local r = d(base .. "/node/test_mod_uint32/model.onnx")
    assert.equal("onnx", r.format)
    assert.equal("onnx", r.framework)
    assert.equal(7, r.info.ir_version)
    assert.equal(13, r.info.opset)
    assert.equal("backend-test", r.info.producer_name)
    assert.same({ { name = "x", dtype = "uint32", shape = { 3 } }, { name = "y", dtype = "uint32", shape = { 3 } } },
      r.info.inputs)
    assert.same({ { name = "z", dtype = "uint32", shape = { 3 } } }, r.info.outputs)
    -- every model of the package is recognized as ONNX
    local p = io.popen("find " .. u.q(base) .. " -name model.onnx | head -300")
    local n = 0
    for f in p:lines() do
      local x = d(f)
      assert.equal("onnx", x.format, f)
      assert.is_true(x.info.ir_version >= 3, f)
      n = n + 1
    end
    p:close()
    assert.is_true(n >= 300)
  end)

  it("npy/npz from python3-pywt (incl. Python 2 shapes and Fortran order)", function()
    local root, why = files.deb("python3-pywt")
    if not root then pending(why) return end
    local base = root .. "/usr/lib/python3/dist-packages/pywt/data/"
    local r = d(base .. "ecg.npy")
    assert.equal("npy", r.format)
    assert.equal("<i4", r.info.dtype)
    assert.same({ 1024 }, r.info.shape)
    -- value statistics; numpy: e.min(), e.max(), e.mean(), e.std(ddof=1)
    local s = r.info.stats
    assert.same({ 1024, 0, 0, -112, 250 }, { s.count, s.nan, s.inf, s.min, s.max })
    assert.near(-56.3046875, s.mean, 1e-12)
    assert.near(39.69311575596482, s.std, 1e-10)
    r = d(base .. "sst_nino3.npz")
    assert.equal("npz", r.format)
    s = r.info.arrays[1].stats
    r.info.arrays[1].stats = nil
    assert.same({ { name = "sst_csv", dtype = "<f8", shape = { 800, 10 }, fortran_order = true } }, r.info.arrays)
    assert.same({ 8000, 0, 0, -2.75, 2016 }, { s.count, s.nan, s.inf, s.min, s.max })
    assert.near(209.31469625, s.mean, 1e-10)
    assert.near(591.3652727449074, s.std, 1e-9)
    r = d(base .. "camera.npz")
    assert.same({ 512, 512 }, r.info.arrays[1].shape)
  end)

  it("Parquet footer and pickles from python3-pandas", function()
    local root, why = files.deb("python3-pandas")
    if not root then pending(why) return end
    local base = root .. "/usr/lib/python3/dist-packages/pandas/tests/io/data/"
    local r = d(base .. "parquet/simple.parquet")
    assert.equal("parquet", r.format)
    assert.equal(3, r.info.num_rows)
    assert.equal(2, r.info.num_columns)
    assert.same({ "A", "B" }, r.info.columns)
    assert.same({ "int64", "string" }, r.info.dtypes)
    assert.matches("^parquet%-cpp", r.info.created_by)
    r = d(base .. "pickle/test_py27.pkl")
    assert.equal("pickle", r.format)
    assert.equal(2, r.info.protocol)
    assert.equal("pandas", r.framework)
    local mods = table.concat(r.info.modules, " ")
    assert.matches("pandas%.core%.frame", mods)
    r = d(base .. "legacy_pickle/1.2.4/empty_frame_v1_2_4-GH#42345.pkl")
    assert.equal(4, r.info.protocol)
  end)

  it("HDF5 from python-tables-data", function()
    local root, why = files.deb("python-tables-data")
    if not root then pending(why) return end
    local r = d(root .. "/usr/share/python-tables/tests/float.h5")
    assert.equal("hdf5", r.format)
    assert.equal(0, r.info.superblock_version)
  end)

  it("tfjs weight manifests from @vladmandic/face-api", function()
    local root, why = files.npm("@vladmandic/face-api")
    if not root then pending(why) return end
    local r = d(root .. "/model/age_gender_model-weights_manifest.json")
    assert.equal("tfjs-manifest", r.format)
    assert.equal("tensorflow.js", r.framework)
    local dir = detect.path(root .. "/model")
    assert.equal("tfjs", dir.format)
  end)

  it("gzip IDX from dataset-fashion-mnist", function()
    local f = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    if not u.exists(f) then pending("dataset-fashion-mnist not installed") return end
    local r = d(f)
    assert.equal("idx", r.format)
    assert.same({ 10000, 28, 28 }, r.info.shape)
  end)
end)

describe("detect: files made by independent writers", function()
  local dir, why = files.made()
  if not dir then pending(why) return end
  local cases = {
    { "models/state_dict.pt", "pytorch", "pytorch", function(i) assert.equal("state_dict", i.pytorch_kind) end },
    { "models/module.pt", "pytorch", "pytorch", function(i)
        assert.equal("module", i.pytorch_kind)
        assert.matches("torch%.nn%.modules%.linear%.Linear", table.concat(i.globals, " "))
      end },
    { "models/script.pt", "torchscript", "pytorch" },
    { "models/sklearn.pkl", "pickle", "sklearn", function(i)
        assert.equal(4, i.protocol)
        assert.equal("sklearn.linear_model._logistic", i.modules[1])
      end },
    { "models/proto0.pkl", "pickle", "python", function(i) assert.equal(0, i.protocol) end },
    { "models/keras_model.h5", "keras-h5", "keras" },
    { "models/model.keras", "keras", "keras", function(i) assert.equal("3.0.5", i.keras_version) end },
    { "models/weights.npy", "npy", "numpy", function(i) assert.same({ 2, 3 }, i.shape) end },
    { "models/weights.npz", "npz", "numpy", function(i) assert.equal(2, #i.arrays) end },
    { "models/model.safetensors", "safetensors", "safetensors", function(i) assert.equal(4, i.num_parameters) end },
    { "models/tiny.gguf", "gguf", "gguf", function(i)
        assert.equal(3, i.version)
        assert.equal(1, i.tensor_count)
        assert.same({ "general.architecture", "general.name", "llama.context_length", "tokenizer.ggml.tokens" },
          i.metadata_keys)
        assert.equal("llama", i.architecture)
      end },
    { "models/tfjs/model.json", "tfjs-model", "tensorflow.js" },
    { "models/savedmodel/saved_model.pb", "tf-savedmodel-pb", "tensorflow", function(i)
        assert.same({ "serve" }, i.tags)
        assert.equal("2.13.0", i.tensorflow_version)
      end },
    { "data/tricky.csv", "csv", "", function(i) assert.is_true(i.bom) end },
    { "data/iris.tsv", "tsv", "" },
    { "data/rows.jsonl", "jsonl", "" },
    { "data/rows.json", "json", "" },
    { "data/table.h5", "hdf5", "" },
    { "data/train.tfrecord", "tfrecord", "tensorflow", function(i) assert.equal(3, i.num_records) end },
    { "data/labels.idx", "idx", "", function(i) assert.same({ 5 }, i.shape) end },
    { "images/cat/a.png", "png", "", function(i) assert.equal(4, i.width); assert.equal(3, i.height) end },
    { "images/dog/d.bmp", "bmp", "", function(i) assert.equal(3, i.width); assert.equal(2, i.height) end },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " -> " .. c[2], function()
      local r = d(dir .. "/" .. c[1])
      assert.equal(c[2], r.format)
      assert.equal(c[3], r.framework)
      if c[4] then c[4](r.info) end
    end)
  end

  it("directories: SavedModel, tfjs, image folders", function()
    assert.equal("tf-savedmodel", detect.path(dir .. "/models/savedmodel").format)
    assert.equal("tfjs", detect.path(dir .. "/models/tfjs").format)
    local im = detect.path(dir .. "/images")
    assert.equal("images", im.format)
    assert.equal(4, #im.files)
  end)

  it("never trusts the extension", function()
    local t = u.tmpdir()
    os.execute(("cp %s %s"):format(u.q(dir .. "/models/module.pt"), u.q(t .. "/data.csv")))
    os.execute(("cp %s %s"):format(u.q(dir .. "/data/tricky.csv"), u.q(t .. "/model.onnx")))
    os.execute(("cp %s %s"):format(u.q(dir .. "/models/tiny.gguf"), u.q(t .. "/weights.safetensors")))
    assert.equal("pytorch", d(t .. "/data.csv").format)
    assert.equal("csv", d(t .. "/model.onnx").format)
    assert.equal("gguf", d(t .. "/weights.safetensors").format)
    u.rm_rf(t)
  end)

  it("truncated or corrupt files: a clear error naming file and offset", function()
    local t = u.tmpdir()
    local cuts = {
      { "models/state_dict.pt", 300, "zip" }, { "models/tiny.gguf", 100, "gguf" },
      { "models/weights.npy", 100, "npy" }, { "models/model.safetensors", 60, "safetensors" },
      { "models/sklearn.pkl", 200, "pickle" }, { "data/train.tfrecord", 30, "tfrecord" },
      { "models/model.keras", 200, "zip" },
    }
    for _, c in ipairs(cuts) do
      local f = t .. "/" .. c[1]:match("[^/]+$")
      cut(dir .. "/" .. c[1], f, c[2])
      local r, err = detect.file(f)
      assert.is_nil(r, c[1])
      assert.matches("^" .. f:gsub("%p", "%%%0") .. ": offset %d+: " .. c[3], err)
    end
    local root = files.deb("python3-pandas")
    if root then
      local pq = root .. "/usr/lib/python3/dist-packages/pandas/tests/io/data/parquet/simple.parquet"
      cut(pq, t .. "/cut.parquet", 1000)
      local r, err = detect.file(t .. "/cut.parquet")
      assert.is_nil(r)
      assert.matches("cut%.parquet: offset 1000: parquet: no PAR1 footer", err)
    end
    u.rm_rf(t)
  end)
end)

describe("detect: tables", function()
  local dir, why = files.made()
  if not dir then pending(why) return end

  it("CSV statistics match Python's csv + statistics modules", function()
    local st = assert(detect.table_stats(dir .. "/data/tricky.csv"))
    local code, out = u.sh("/usr/bin/python3 -c " .. u.q([[
import csv, json, statistics, sys
with open(sys.argv[1], newline="", encoding="utf-8-sig") as f:
    rows = list(csv.reader(f))
hdr, body = rows[0], rows[1:]
out = {"num_rows": len(body), "columns": hdr}
def num(v):
    if v in ("true", "false"): return 1.0 if v == "true" else 0.0
    return float(v)
for i, h in enumerate(hdr):
    vals = [r[i] for r in body if r[i] not in ("", "NA")]
    try:
        xs = [num(v) for v in vals]
        out[h] = [min(xs), max(xs), statistics.mean(xs), statistics.stdev(xs), len(body) - len(vals)]
    except ValueError:
        out[h] = None
print(json.dumps(out))
]]) .. " " .. u.q(dir .. "/data/tricky.csv"))
    assert.equal(0, code)
    local py = require("cjson").decode(out)
    assert.equal(py.num_rows, st.num_rows)
    assert.same(py.columns, st.columns)
    for _, c in ipairs(st.column_stats) do
      local want = py[c.name]
      if want == require("cjson").null then
        assert.equal("string", c.dtype)
        assert.is_nil(c.mean)
      else
        assert.near(want[1], c.min, 1e-12)
        assert.near(want[2], c.max, 1e-12)
        assert.near(want[3], c.mean, 1e-12)
        assert.near(want[4], c.std, 1e-12)
        assert.equal(want[5], c.missing)
      end
    end
    assert.same({ id = "int64", name = "string", score = "float64", flag = "bool" }, st.dtypes)
  end)
end)

-- No Debian package ships or writes Arrow IPC / Feather files (pyarrow is not
-- in bookworm), so these are byte strings laid out by hand from the Arrow
-- format spec (file = "ARROW1" + padding ... footer + "ARROW1"; Feather v1
-- = "FEA1" ... "FEA1"), not by ipk. Detection is by these magics only.
describe("detect: Arrow and Feather by their magics", function()
  local tmp
  before_each(function() tmp = u.tmpdir() end)
  after_each(function() u.rm_rf(tmp) end)
  it("recognizes an Arrow IPC file and a Feather v1 file; a cut one names the offset", function()
    u.write(tmp .. "/t.arrow", "ARROW1\0\0" .. string.rep("\0", 32) .. "\16\0\0\0ARROW1")
    local r = d(tmp .. "/t.arrow")
    assert.equal("arrow", r.format)
    u.write(tmp .. "/t.feather", "FEA1" .. string.rep("\0", 16) .. "FEA1")
    r = d(tmp .. "/t.feather")
    assert.equal("feather", r.format)
    u.write(tmp .. "/cut.arrow", "ARROW1\0\0" .. string.rep("\0", 32))
    local x, err = detect.file(tmp .. "/cut.arrow")
    assert.is_nil(x)
    assert.matches("cut%.arrow: offset %d+: arrow: no ARROW1 footer magic", err)
  end)
end)
