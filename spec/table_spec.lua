-- ipk.detect's table statistics (core/src/table.c) on a real CSV with
-- missing values (Palmer penguins from r-cran-palmerpenguins), checked
-- against Python's csv + statistics modules, and the record index.
local u = require "support.util"
local files = require "support.files"
local detect = require "ipk.detect"
local json = require "cjson"
local ipkjson = require "ipk.json"

local PY = [[
import csv, json, statistics, sys
with open(sys.argv[1], newline="", encoding="utf-8-sig") as f:
    rows = list(csv.reader(f))
hdr, body = rows[0], rows[1:]
out = {"num_rows": len(body), "columns": hdr, "cols": {}}
for i, h in enumerate(hdr):
    vals = [r[i] for r in body if r[i] not in ("", "NA")]
    c = {"missing": len(body) - len(vals)}
    try:
        xs = [float(v) for v in vals]
        c.update(min=min(xs), max=max(xs), mean=statistics.mean(xs), std=statistics.stdev(xs),
                 ints=all(v.lstrip("-").isdigit() for v in vals))
    except ValueError:
        c["string"] = True
    out["cols"][h] = c
print(json.dumps(out))
]]

describe("table statistics", function()
  it("match Python on Palmer penguins (numbers, categories, NA)", function()
    local root, why = files.deb("r-cran-palmerpenguins")
    if not root then pending(why) return end
    local csv = root .. "/usr/lib/R/site-library/palmerpenguins/extdata/penguins.csv"
    local st = assert(detect.table_stats(csv))
    local code, out, err = u.sh("/usr/bin/python3 -c " .. u.q(PY) .. " " .. u.q(csv))
    assert.equal(0, code, err)
    local py = json.decode(out)
    assert.equal(344, st.num_rows)
    assert.equal(py.num_rows, st.num_rows)
    assert.same(py.columns, st.columns)
    for _, c in ipairs(st.column_stats) do
      local w = py.cols[c.name]
      assert.equal(w.missing, c.missing, c.name)
      if w.string then
        assert.equal("string", c.dtype, c.name)
      else
        assert.equal(w.ints and "int64" or "float64", c.dtype, c.name)
        assert.near(w.min, c.min, 1e-9)
        assert.near(w.max, c.max, 1e-9)
        assert.near(w.mean, c.mean, 1e-9)
        assert.near(w.std, c.std, 1e-9)
      end
    end
    assert.equal(2, st.missing.bill_length_mm)
    assert.equal(11, st.missing.sex)
  end)

  it("indexes records across quoted newlines and CRLF", function()
    local t = u.tmpdir()
    local body = "\239\187\191a,b\r\n1,\"x\r\ny\"\r\n\r\n2,z\r\n"
    u.write(t .. "/q.csv", body)
    local x = assert(detect.table_index(t .. "/q.csv", nil, 1))
    assert.equal(2, x.rows)
    assert.same({ 3, 8 }, x.header)
    -- record 1 keeps its quoted CRLF; the blank line after it belongs to its range
    assert.equal("1,\"x\r\ny\"\r\n\r\n", body:sub(tonumber(x.offsets[0]) + 1, tonumber(x.offsets[1])))
    assert.equal(#body, tonumber(x.offsets[2]))
    local r, err = detect.table_index(t .. "/q.csv", nil, 5)
    assert.is_nil(r)
    assert.matches("key column 5 out of range", err)
    u.rm_rf(t)
  end)
  it("keeps C's statistics as JSON text that ipk.json would write (no Lua table per column)", function()
    local t = u.tmpdir()
    -- odd names (quote, backslash, control byte, UTF-8, a repeat) and values
    -- whose shortest round-trip forms need 15, 16 and 17 digits
    local names = { "id", 'q"uote', "back\\slash", "ctl\1x", "café", "id", "f" }
    local rows = { (table.concat(names, ","):gsub('q"uote', '"q""uote"')) }
    for i = 1, 50 do
      rows[#rows + 1] = table.concat({ i, i % 7 == 0 and "NA" or ("%.17g"):format(1 / i),
        i % 3 == 0 and '"NA"' or "x" .. i, ("%d"):format(-i * 1e6), "true", i * 0.1, 2 ^ 60 + i * 2 ^ 10 }, ",")
    end
    u.write(t .. "/odd.csv", table.concat(rows, "\n") .. "\n")
    local raw = assert(detect.table_stats_raw(t .. "/odd.csv"))
    for _, k in ipairs { "columns", "column_stats", "dtypes", "missing" } do
      assert.is_string(ipkjson.raw_text(raw[k]), k)
    end
    local dec = assert(detect.table_stats(t .. "/odd.csv"))
    -- the C text re-encoded by Lua is the same bytes: C follows ipk.json's rules
    assert.equal(ipkjson.encode(dec), ipkjson.encode(raw))
    assert.equal(require("ipk.dagjson").encode(raw):len(), ipkjson.encode(raw):len())
    assert.same({ "id", 'q"uote', "back\\slash", "ctl\1x", "café", "id", "f" }, dec.columns)
    assert.equal(50, dec.num_rows)
    assert.equal("int64", dec.dtypes.id)     -- first "id" column wins the name
    assert.equal(7, dec.missing['q"uote'])   -- bare NA at i = 7, 14, ..., 49
    assert.equal(0, dec.missing["back\\slash"]) -- quoted "NA" is a value
    assert.equal("string", dec.dtypes["back\\slash"])
    assert.equal("int64", dec.dtypes["ctl\1x"])
    assert.equal("bool", dec.dtypes["café"])
    assert.equal("float64", dec.dtypes.f)
    u.rm_rf(t)
  end)

  -- Python's csv.reader splits this file into
  --   ['a', 'b', 'c'], ['NA', 'NA', ''], ['', '', 'x'], ['N/A', 'N/A', 'y'], ['1', 'NA', 'z']
  -- and cannot tell quoted from bare fields; the quotes are kept here: a
  -- quoted "NA", "N/A" or "" is a value, bare NA, N/A and empty are missing.
  it("counts only unquoted NA, N/A and empty fields as missing", function()
    local t = u.tmpdir()
    u.write(t .. "/na.csv", 'a,b,c\n"NA",NA,\n"",,x\n"N/A",N/A,y\n1,NA,"z"\n')
    local st = assert(detect.table_stats(t .. "/na.csv"))
    assert.same({ a = 0, b = 4, c = 1 }, st.missing)
    assert.same({ a = "string", b = "empty", c = "string" }, st.dtypes)
    assert.equal(4, st.column_stats[1].count)
    assert.equal(0, st.column_stats[2].count)
    u.rm_rf(t)
  end)
  it("detects a one-column CSV (a header, then typed values) and leaves lines of words as text", function()
    local t = u.tmpdir()
    local cases = {
      { "label\n1\n0\n1\n", "csv", 3 },
      { "\239\187\191score\r\n0.5\r\nNA\r\n\r\n1e3\r\n", "csv", 3 },
      { "flag\ntrue\nFALSE\n", "csv", 2 },
      { 'name\n"Smith, J"\n"NA"\n', "csv", 2 },   -- quoted values (one with a comma)
      { "hello\nworld\n", "text" },               -- words: text
      { "1\n2\n3\n", "text" },                    -- no header
      { "x\n", "text" },                          -- a header alone
      { "label\n1\nfoo\n", "text" },              -- a word among numbers
      { "Dear reader, hello\n1\n", "text" },      -- a comma: 2 fields vs 1 (ragged, not a table)
    }
    for i, c in ipairs(cases) do
      local p = t .. "/f" .. i
      u.write(p, c[1])
      local d = assert(detect.file(p))
      assert.equal(c[2], d.format, c[1])
      if c[3] then
        local st = assert(detect.table_stats(p, d.info.delimiter))
        assert.equal(c[3], st.num_rows, c[1])
        assert.equal(1, st.num_columns)
      end
    end
    local st = assert(detect.table_stats(t .. "/f2"))
    assert.same({ "score" }, st.columns)
    assert.same({ count = 2, dtype = "float64", min = 0.5, max = 1000, mean = 500.25,
                  std = math.sqrt((499.75 ^ 2) * 2), missing = 1, name = "score" }, st.column_stats[1])
    u.rm_rf(t)
  end)
  -- Every numeric dtype numpy writes, both byte orders, C and Fortran
  -- order, .npy, .npz (stored) and .npz (deflated, members larger than the
  -- 64 KiB inflate window): the statistics C streams over the data against
  -- numpy's, computed here at test time.
  local NPY = [[
import json, sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
out = {}
def expect(x):
    x = np.asarray(x)
    f = x.astype(np.float64) if x.dtype.kind in "fb" else x
    fin = f[np.isfinite(f)] if x.dtype.kind in "fb" else f.ravel()
    nan = int(np.isnan(f).sum()) if x.dtype.kind == "f" else 0
    e = {"count": int(x.size) - nan, "nan": nan, "inf": int(np.isinf(f).sum()) if x.dtype.kind == "f" else 0}
    if fin.size:
        e["min"] = float(fin.min()); e["max"] = float(fin.max())
        e["mean"] = float(fin.astype(np.float64).mean())
    if fin.size > 1:
        e["std"] = float(fin.astype(np.float64).std(ddof=1))
    return e
arrays = {}
for code in ["?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"]:
    for bo in ("<", ">"):
        if code in ("?", "i1", "u1") and bo == ">":
            continue
        dt = np.dtype(bo + code if code != "?" else code)
        if dt.kind == "b":
            x = rng.random((70, 50)) < 0.3
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            x = rng.integers(info.min, info.max, size=(70, 50), dtype=dt.newbyteorder("="), endpoint=True)
            x[0, 0], x[1, 1] = info.min, info.max
        else:
            x = (rng.standard_normal((70, 50)) * 1000).astype(dt.newbyteorder("="))
            x[3, 4], x[5, 6], x[7, 8] = np.nan, np.inf, -np.inf
        x = x.astype(dt)
        for order in ("C", "F"):
            name = "%s%s_%s" % ("b" if bo == ">" else "l", code.replace("?", "bool"), order)
            y = np.asfortranarray(x) if order == "F" else np.ascontiguousarray(x)
            np.save("%s/%s.npy" % (d, name), y)
            out[name + ".npy"] = expect(y)
            arrays[name] = y
arrays["big"] = rng.standard_normal(40000)
arrays["allnan"] = np.full(5, np.nan, dtype="<f4")
arrays["one"] = np.array([2.5], dtype=">f2")
arrays["empty"] = np.zeros((0, 3), dtype="<i4")
np.savez("%s/stored.npz" % d, **arrays)
np.savez_compressed("%s/deflated.npz" % d, **arrays)
out["members"] = {k: expect(v) for k, v in arrays.items()}
print(json.dumps(out))
]]

  local function near(want, got, what)
    for _, k in ipairs { "count", "nan", "inf" } do assert.equal(want[k], got[k], what .. " " .. k) end
    for _, k in ipairs { "min", "max", "mean", "std" } do
      if want[k] == nil then assert.is_nil(got[k], what .. " " .. k)
      else
        assert.is_number(got[k], what .. " " .. k)
        local tol = 1e-12 * math.max(1, math.abs(want[k]))
        if k == "std" then tol = tol * 100 end -- two-pass numpy vs merged blocks
        assert(math.abs(want[k] - got[k]) <= tol, ("%s %s: numpy %.17g, ipk %.17g"):format(what, k, want[k], got[k]))
      end
    end
  end

  it("gives npy/npz arrays numpy's value statistics for every numeric dtype, byte order and order", function()
    local code0 = u.sh("/usr/bin/python3 -c 'import numpy' 2>/dev/null")
    if code0 ~= 0 then pending("python3-numpy is not installed") return end
    local t = u.tmpdir()
    local code, out, err = u.sh("/usr/bin/python3 -c " .. u.q(NPY) .. " " .. u.q(t))
    assert.equal(0, code, err)
    local want = json.decode(out)
    local n = 0
    for name, w in pairs(want) do
      if name ~= "members" then
        local d = assert(detect.file(t .. "/" .. name))
        assert.equal("npy", d.format)
        assert.is_table(d.info.stats, name)
        near(w, d.info.stats, name)
        n = n + 1
      end
    end
    assert.equal(2 * (3 + 2 * 9), n) -- 21 dtype/byte-order pairs, C and F
    for _, z in ipairs { "stored.npz", "deflated.npz" } do
      local d = assert(detect.file(t .. "/" .. z))
      assert.equal("npz", d.format)
      local seen = 0
      for _, a in ipairs(d.info.arrays) do
        near(want.members[a.name], a.stats, z .. ":" .. a.name)
        seen = seen + 1
      end
      assert.equal(46, seen)
    end
    u.rm_rf(t)
  end)
  -- JSON / JSON Lines records, computed in C; Python's json module reads
  -- the same files and applies the documented rules (a number token with a
  -- fraction or exponent is float64, an int64 column that meets a float is
  -- float64, any other mix or a nested value is object; null or absent is
  -- missing; statistics over the numbers of int64/float64 columns).
  local JS = [[
import json, math, random, statistics, sys
d = sys.argv[1]
random.seed(3)
recs = []
for i in range(500):
    r = {"id": i, "x": random.gauss(0, 10), "flag": random.random() < 0.5, "s\u00e9": "v%d" % i}
    if i % 7 == 0: r["x"] = None
    if i % 11 == 0: del r["flag"]
    if i % 13 == 0: r["mixed"] = "t" if i % 2 else 3
    if i % 17 == 0: r["nested"] = {"k": [1, 2, {"z": None}]}
    if i % 19 == 0: r["late\U0001F600"] = i * 1.5
    r["i_then_f"] = i if i < 250 else i + 0.25
    recs.append(r)
with open(d + "/r.jsonl", "w") as f:
    for r in recs:
        f.write(json.dumps(r) + ("\n\n" if r["id"] % 50 == 0 else "\n"))
with open(d + "/r.json", "w") as f:
    json.dump(recs, f, indent=1)
cols = sorted({k for r in recs for k in r})
def kind(v):
    if isinstance(v, bool): return "bool"
    if isinstance(v, int): return "int64"
    if isinstance(v, float): return "float64"
    if isinstance(v, str): return "string"
    return "object"
out = {"num_rows": len(recs), "columns": cols, "cols": {}}
for c in cols:
    vals = [r[c] for r in recs if r.get(c) is not None]
    t = "empty"
    for v in vals:
        k = kind(v)
        if t in ("empty", k): t = k
        elif {t, k} == {"int64", "float64"}: t = "float64"
        else: t = "object"
    e = {"dtype": t, "count": len(vals), "missing": len(recs) - len(vals)}
    if t in ("int64", "float64"):
        xs = [float(v) for v in vals]
        e.update(min=min(xs), max=max(xs), mean=statistics.fmean(xs))
        if len(xs) > 1: e["std"] = statistics.stdev(xs)
    out["cols"][c] = e
print(json.dumps(out))
]]

  it("gives JSON and JSON Lines records the statistics Python's json module reads", function()
    local t = u.tmpdir()
    local code, out, err = u.sh("/usr/bin/python3 -c " .. u.q(JS) .. " " .. u.q(t))
    assert.equal(0, code, err)
    local want = json.decode(out)
    for _, f in ipairs { "r.jsonl", "r.json" } do
      local raw = assert(detect.records_stats_raw(t .. "/" .. f, f == "r.jsonl"))
      assert.is_string(ipkjson.raw_text(raw.column_stats))
      assert.is_nil(raw.delimiter)
      local st = {}
      for k, v in pairs(raw) do st[k] = ipkjson.raw_text(v) and json.decode(ipkjson.raw_text(v)) or v end
      assert.equal(want.num_rows, st.num_rows, f)
      assert.same(want.columns, st.columns, f)
      for _, c in ipairs(st.column_stats) do
        local w = want.cols[c.name]
        assert.equal(w.dtype, c.dtype, f .. ":" .. c.name)
        assert.equal(w.dtype, st.dtypes[c.name])
        assert.equal(w.count, c.count, c.name)
        assert.equal(w.missing, c.missing, c.name)
        assert.equal(w.missing, st.missing[c.name])
        for _, k in ipairs { "min", "max", "mean", "std" } do
          if w[k] == nil then assert.is_nil(c[k], c.name .. " " .. k)
          else assert.near(w[k], c[k], 1e-9 * math.max(1, math.abs(w[k])), c.name .. " " .. k) end
        end
      end
    end
    -- errors name the file, the offset and (JSON Lines) the line
    u.write(t .. "/bad.jsonl", '{"a": 1}\n\n{"a": 2,}\n')
    local r, e = detect.records_stats_raw(t .. "/bad.jsonl", true)
    assert.is_nil(r)
    assert.equal(t .. "/bad.jsonl: offset 18: jsonl: line 3 is not JSON (an object key must be a string)", e)
    u.write(t .. "/bad.json", '[{"a": 1}, 2]')
    r, e = detect.records_stats_raw(t .. "/bad.json", false)
    assert.is_nil(r)
    assert.equal(t .. "/bad.json: offset 11: json: record 2 is not an object", e)
    u.write(t .. "/one.json", '{"a": {"b": 1}}')
    assert.same({ num_rows = 1, type = "object" }, detect.records_stats_raw(t .. "/one.json", false))
    u.rm_rf(t)
  end)
  it("reads recorded statistics back without decoding the per-column values (C cuts them out)", function()
    local t = u.tmpdir()
    u.write(t .. "/s.csv", 'a,"b,1",c\n1,x,\n2,"NA",0.5\n')
    local raw = assert(detect.table_stats_raw(t .. "/s.csv"))
    raw.format, raw.size_bytes, raw.nested = "csv", 30, { columns = { 1 } }
    local text = ipkjson.encode(raw)
    local back = assert(detect.stats_from_json(text))
    for _, k in ipairs { "columns", "column_stats", "dtypes", "missing" } do
      assert.equal(ipkjson.raw_text(raw[k]), ipkjson.raw_text(back[k]), k)
    end
    assert.same({ columns = { 1 } }, back.nested) -- only top-level keys are cut out
    assert.equal(text, ipkjson.encode(back))      -- the same canonical text
    assert.same({ num_rows = 1, type = "object" }, detect.stats_from_json('{"num_rows":1,"type":"object"}'))
    local r, err = detect.stats_from_json('{"columns":[1,}')
    assert.is_nil(r)
    assert.matches("statistics: offset 14: json:", err, 1, true)
    u.rm_rf(t)
  end)
end)
