-- ipk.dataset through `ipkrun dataset ...`: versions with detected formats
-- and statistics, get (safe), shard, split, diff, verify, corrupt input,
-- concurrency and crash safety.
local u = require "support.util"
local files = require "support.files"

local run, ok_json, only_hash = u.run, u.ok_json, u.only_hash

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("ipkrun dataset", function()
  local dir, why = files.made()
  if not dir then pending(why) return end
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("adds a CSV version with IPFS Kit statistics (quotes, newlines, NA, BOM)", function()
    local v = ok_json(env, "dataset", "add", dir .. "/data/tricky.csv", "--name", "tricky", "--version", "1", "--json")
    assert.equal("csv", v.format)
    assert.equal(only_hash(env, dir .. "/data/tricky.csv"), v.cid)
    local s = v.stats
    assert.equal(4, s.num_rows)
    assert.equal(4, s.num_columns)
    assert.equal(108, s.size_bytes)
    assert.same({ "id", "name", "score", "flag" }, s.columns)
    assert.same({ id = "int64", name = "string", score = "float64", flag = "bool" }, s.dtypes)
    assert.same({ id = 0, name = 0, score = 1, flag = 1 }, s.missing)
    assert.is_true(s.bom)
    assert.near(4 / 3, s.column_stats[3].mean, 1e-12)
    -- show / list
    local shown = ok_json(env, "dataset", "show", "tricky@1", "--json")
    assert.equal(v.cid, shown.cid)
    assert.same(s.columns, shown.stats.columns)
    assert.equal(1, ok_json(env, "dataset", "list", "--json").count)
  end)

  it("detects and describes JSONL, TSV, TFRecord, IDX, HDF5 and image folders", function()
    local j = ok_json(env, "dataset", "add", dir .. "/data/rows.jsonl", "--name", "j", "--json")
    assert.equal("jsonl", j.format)
    assert.equal(3, j.stats.num_rows)
    assert.same({ "a", "b", "c" }, j.stats.columns)
    assert.same({ a = "float64", b = "string", c = "bool" }, j.stats.dtypes)
    assert.same({ a = 0, b = 2, c = 2 }, j.stats.missing)
    assert.equal(j.cid, j.version) -- no --version: the CID
    local t = ok_json(env, "dataset", "add", dir .. "/data/iris.tsv", "--name", "t", "--json")
    assert.equal("tsv", t.format)
    assert.equal(3, t.stats.num_rows)
    assert.equal(3, ok_json(env, "dataset", "add", dir .. "/data/train.tfrecord", "--name", "tf", "--json").stats.num_records)
    assert.same({ 5 }, ok_json(env, "dataset", "add", dir .. "/data/labels.idx", "--name", "i", "--json").stats.shape)
    assert.equal("hdf5", ok_json(env, "dataset", "add", dir .. "/data/table.h5", "--name", "h", "--json").format)
    local im = ok_json(env, "dataset", "add", dir .. "/images", "--name", "img", "--version", "1", "--json")
    assert.equal("images", im.format)
    assert.equal(only_hash(env, dir .. "/images", true), im.cid)
    assert.equal(4, im.stats.num_images)
    assert.same({ cat = 2, dog = 2 }, im.stats.classes)
    assert.same({ png = 3, bmp = 1 }, im.stats.image_formats)
    assert.same({ ["4x3"] = 2, ["8x6"] = 1, ["3x2"] = 1 }, im.stats.sizes)
  end)

  it("reads Parquet statistics from the footer (python3-pandas' simple.parquet)", function()
    local root, why2 = files.deb("python3-pandas")
    if not root then pending(why2) return end
    local pq = root .. "/usr/lib/python3/dist-packages/pandas/tests/io/data/parquet/simple.parquet"
    local v = ok_json(env, "dataset", "add", pq, "--name", "pq", "--json")
    assert.equal("parquet", v.format)
    assert.equal(3, v.stats.num_rows)
    assert.equal(2, v.stats.num_columns)
    assert.same({ "A", "B" }, v.stats.columns)
    -- a truncated copy: a clear error with file and offset; no row, no pin
    local cut = tmp .. "/cut.parquet"
    u.sh("(head -c 2000 " .. u.q(pq) .. " > " .. u.q(cut) .. ")")
    local code, out, err = run(env, "dataset", "add", cut, "--name", "pq2")
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ipkrun: dataset add: dataset pq2: " .. cut .. ": offset 2000: parquet: no PAR1 footer magic (truncated?)\n", err)
    local _, pins = run(env, "pin", "ls")
    assert.not_matches("dataset:pq2", pins)
    assert.equal(1, ok_json(env, "dataset", "list", "--json").count)
  end)

  it("rejects a ragged CSV naming file and offset", function()
    u.write(tmp .. "/r.csv", "a,b\n1,2\n3\n")
    local code, _, err = run(env, "dataset", "add", tmp .. "/r.csv", "--name", "r")
    assert.equal(1, code)
    assert.equal("ipkrun: dataset add: dataset r: " .. tmp .. "/r.csv: offset 8: csv: record 2 has 1 fields, the header has 2\n", err)
  end)

  it("shards rows with the header in every shard, and folders by files", function()
    local src = tmp .. "/n.csv"
    local rows = { "id,v" }
    for i = 1, 10 do rows[#rows + 1] = i .. ",\"x\n" .. i .. "\"" end
    u.write(src, table.concat(rows, "\n") .. "\n")
    ok_json(env, "dataset", "add", src, "--name", "n", "--version", "1", "--json")
    local r = ok_json(env, "dataset", "shard", "n@1", "--count", "3", "--json")
    assert.equal(3, #r.shards)
    local got, total = {}, 0
    for i, s in ipairs(r.shards) do
      assert.equal(("shard-%05d-of-00003.csv"):format(i - 1), s.name)
      total = total + s.rows
      local out = tmp .. "/s" .. i .. ".csv"
      assert.equal(0, (run(env, "get", s.cid, "-o", out)))
      local body = u.read(out)
      assert.equal("id,v\n", body:sub(1, 5))
      got[#got + 1] = body:sub(6)
    end
    assert.same({ 3, 3, 4 }, { r.shards[1].rows, r.shards[2].rows, r.shards[3].rows })
    assert.equal(10, total)
    assert.equal(u.read(src):sub(6), table.concat(got))
    local im = ok_json(env, "dataset", "add", dir .. "/images", "--name", "img", "--json")
    local d = ok_json(env, "dataset", "shard", im.cid, "--count", "2", "--json")
    assert.same({ 2, 2 }, { d.shards[1].files, d.shards[2].files })
    -- regression (breaklua): more shards than rows or files were empty
    -- shards (--count 1e9 ran until killed); refused, nothing left behind
    local code, _, err = run(env, "dataset", "shard", "n@1", "--count", "1000000000")
    assert.equal(1, code)
    assert.matches("shard: n@1 has 10 rows, cannot make 1000000000 non%-empty shards", err)
    code, _, err = run(env, "dataset", "shard", im.cid, "--count", "5")
    assert.equal(1, code)
    assert.matches("has 4 files, cannot make 5 non%-empty shards", err)
    local _, pins = run(env, "pin", "ls")
    assert.matches(d.cid, pins)
  end)

  it("splits seeded and stratified", function()
    local src = tmp .. "/s.csv"
    local rows = { "x,label" }
    for i = 1, 100 do rows[#rows + 1] = i .. "," .. (i % 4 == 0 and "pos" or "neg") end
    u.write(src, table.concat(rows, "\n") .. "\n")
    ok_json(env, "dataset", "add", src, "--name", "s", "--version", "1", "--json")
    local a = ok_json(env, "dataset", "split", "s@1", "--test", "0.2", "--seed", "7", "--stratify", "label", "--json")
    local b = ok_json(env, "dataset", "split", "s@1", "--test", "0.2", "--seed", "7", "--stratify", "label", "--json")
    local c = ok_json(env, "dataset", "split", "s@1", "--test", "0.2", "--seed", "8", "--stratify", "label", "--json")
    assert.equal(a.cid, b.cid)
    assert.is_not.equal(a.cid, c.cid)
    assert.equal(80, a.train.rows)
    assert.equal(20, a.test.rows)
    assert.equal(0, (run(env, "get", a.test.cid, "-o", tmp .. "/test.csv")))
    assert.equal(0, (run(env, "get", a.train.cid, "-o", tmp .. "/train.csv")))
    local t = lines(u.read(tmp .. "/test.csv"))
    assert.equal("x,label", t[1])
    local pos = 0
    for i = 2, #t do if t[i]:match(",pos$") then pos = pos + 1 end end
    assert.equal(5, pos) -- 25 positives * 0.2
    -- train and test partition the rows
    local seen = {}
    for _, f in ipairs { "test", "train" } do
      local l = lines(u.read(tmp .. "/" .. f .. ".csv"))
      for i = 2, #l do assert.is_nil(seen[l[i]]); seen[l[i]] = true end
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(100, n)
    local code, _, err = run(env, "dataset", "split", "s@1", "--stratify", "nope")
    assert.equal(1, code)
    assert.matches("no column 'nope'", err)
  end)

  it("diffs two versions by files and chunks", function()
    local d1, d2 = tmp .. "/v1", tmp .. "/v2"
    os.execute("mkdir -p " .. u.q(d1) .. " " .. u.q(d2))
    -- 1 MiB = 4 chunks of 256 KiB; v2 changes one byte in the third chunk
    u.sh("(head -c 1048576 /dev/urandom > " .. u.q(d1 .. "/big.bin") .. ")")
    u.write(d1 .. "/same.txt", "same\n")
    u.write(d1 .. "/gone.txt", "gone\n")
    local big = u.read(d1 .. "/big.bin")
    local p = 600000
    local flip = string.char((big:byte(p) + 1) % 256)
    u.write(d2 .. "/big.bin", big:sub(1, p - 1) .. flip .. big:sub(p + 1))
    u.write(d2 .. "/same.txt", "same\n")
    u.write(d2 .. "/new.txt", "new\n")
    ok_json(env, "dataset", "add", d1, "--name", "d", "--version", "1", "--json")
    ok_json(env, "dataset", "add", d2, "--name", "d", "--version", "2", "--json")
    local r = ok_json(env, "dataset", "diff", "d@1", "d@2", "--json")
    assert.same({ "new.txt" }, r.added)
    assert.same({ "gone.txt" }, r.removed)
    assert.equal(1, r.unchanged)
    assert.equal(1, #r.changed)
    assert.equal("big.bin", r.changed[1].path)
    assert.equal(4, r.changed[1].chunks)
    assert.equal(1, r.changed[1].chunks_changed)
    assert.equal(3 * 262144 + 5, r.bytes_shared)
  end)

  it("verifies by re-hashing and notices a corrupt block", function()
    local v = ok_json(env, "dataset", "add", dir .. "/data/tricky.csv", "--name", "c", "--version", "1", "--json")
    local r = ok_json(env, "dataset", "verify", "c@1", "--json")
    assert.is_true(r.ok)
    assert.equal(v.cid, r.recomputed)
    assert.is_true(r.source_matches)
    -- damage every stored block file: the re-read must fail verification
    assert.is_true(u.damage_blocks(env.IPK_HOME) > 0)
    local code, _, err = run(env, "dataset", "verify", "c@1")
    assert.equal(1, code)
    assert.matches("^ipkrun: dataset verify: [^\n]*" .. v.cid, err)
  end)

  it("get materializes safely: names from a DAG never escape the target", function()
    local v = ok_json(env, "dataset", "add", dir .. "/images", "--name", "img", "--version", "1", "--json")
    ok_json(env, "dataset", "get", "img@1", "-o", tmp .. "/out", "--json")
    assert.equal(v.cid, only_hash(env, tmp .. "/out", true))
    -- a hand-made directory node with a ".." link
    local core = require "ipk.core"
    local ffi, lib = core.ffi, core.lib
    local cidm = require "ipk.cid"
    local s = assert(require("ipk.store").open(env.IPK_HOME))
    local leaf = "escaped!"
    local lc = assert(cidm.of(1, 0x55, leaf))
    assert(s:put(lc, leaf))
    local links = ffi.new("ipk_dagpb_link_t[1]")
    links[0].cid = lc
    links[0].name, links[0].name_len, links[0].has_name = "..", 2, 1
    links[0].tsize, links[0].has_tsize = #leaf, 1
    local node = ffi.new("ipk_dagpb_node_t")
    node.links, node.nlinks = links, 1
    node.data, node.data_len, node.has_data = "\8\1", 2, 1
    local outp, outn = ffi.new("uint8_t*[1]"), ffi.new("size_t[1]")
    assert.equal(0, lib.ipk_dagpb_encode(node, outp, outn))
    local bytes = ffi.string(outp[0], outn[0])
    ffi.C.free(outp[0])
    local dc = cidm.format(assert(cidm.of(1, 0x70, bytes)))
    assert(s:put(dc, bytes))
    s:close()
    os.execute("mkdir -p " .. u.q(tmp .. "/t"))
    local code, _, err = run(env, "dataset", "get", dc, "-o", tmp .. "/t/evil")
    assert.equal(1, code)
    assert.matches("^ipkrun: dataset get: [^\n]*unsafe", err)
    local _, found = u.sh("grep -rl 'escaped!' " .. u.q(tmp .. "/t") .. " " .. u.q(tmp) .. "/*.* 2>/dev/null")
    assert.equal("", found)
  end)

  it("two processes adding versions of one dataset at once lose nothing", function()
    for i = 1, 6 do
      u.write(("%s/a%d.csv"):format(tmp, i), "x\n" .. i .. "\n")
      u.write(("%s/b%d.csv"):format(tmp, i), "y\n" .. i .. "\n")
    end
    local script = ("for i in $(seq 1 6); do %s dataset add %s/a$i.csv --name shared --version a$i || exit 1; done & A=$!; "
      .. "for i in $(seq 1 6); do %s dataset add %s/b$i.csv --name shared --version b$i || exit 1; done & B=$!; "
      .. "wait $A || exit 1; wait $B || exit 1"):format(u.q(u.ipkrun_path), u.q(tmp), u.q(u.ipkrun_path), u.q(tmp))
    local c, _, err = u.sh("IPK_HOME=" .. u.q(env.IPK_HOME) .. " bash -c " .. u.q(script) .. " >/dev/null")
    assert.equal(0, c, err)
    local l = ok_json(env, "dataset", "list", "--name", "shared", "--json")
    assert.equal(12, l.count)
    local _, pins = run(env, "pin", "ls")
    for _, v in ipairs(l.datasets) do assert.matches("dataset:shared@" .. v.version, pins) end
  end)

  it("kill -9 during add leaves the datasets table and store consistent", function()
    local big = tmp .. "/big.csv"
    assert.equal(0, (u.sh("/usr/bin/python3 -c " .. u.q([[
import sys, random
r = random.Random(1)
with open(sys.argv[1], "w") as f:
    f.write("a,b,c\n")
    for i in range(600000):
        f.write(f"{i},{r.random()},\"t {i}\"\n")
]]) .. " " .. u.q(big))))
    for i, delay in ipairs { 0.05, 0.2, 0.5, 1.0 } do
      local script = ("%s dataset add %s --name k --version %d >/dev/null 2>&1 & P=$!; sleep %s; kill -9 $P; wait $P; true")
        :format(u.q(u.ipkrun_path), u.q(big), i, delay)
      u.sh("IPK_HOME=" .. u.q(env.IPK_HOME) .. " bash -c " .. u.q(script))
      local l = ok_json(env, "dataset", "list", "--json")
      local _, pins = run(env, "pin", "ls")
      for _, v in ipairs(l.datasets) do
        assert.matches(v.cid, pins)
        assert.is_true(ok_json(env, "dataset", "verify", v.name .. "@" .. v.version, "--json").ok)
      end
    end
    assert.equal(1, (run(env, "dataset", "show", "k@1")))
    assert.equal(0, (run(env, "gc")))
    local v = ok_json(env, "dataset", "add", big, "--name", "k", "--version", "9", "--json")
    assert.equal(600000, v.stats.num_rows)
    assert.is_true(ok_json(env, "dataset", "verify", "k@9", "--json").ok)
  end)
end)
