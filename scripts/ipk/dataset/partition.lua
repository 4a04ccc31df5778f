--- ipk.dataset.partition: dividing data. IDX versions over federated clients
-- (Dirichlet non-IID or IID, in C), tabular versions into row shards or a
-- seeded (optionally stratified) train/test split, directories into file
-- shards. Derived data is added as pinned UnixFS directories.
local core = require "ipk.core"
local json = require "ipk.json"
local detect = require "ipk.detect"
local cidmod = require "ipk.cid"
local idxmod = require "ipk.dataset.idx"
local catalog = require "ipk.dataset.catalog"
local stage = require "ipk.dataset.stage"
local fs = require "ipk.fs"
local ffi, lib = core.ffi, core.lib

local M = {}

local is_dir = fs.is_dir

--- Split the training rows of a dataset version over clients.
-- @param v dataset version (from add_version)
-- @param opts {clients=N, alpha=0.5 (0 = IID), seed=int, min_rows=10, split="train"}
-- @return {clients={{id, n, idx=uint32_t*, cid, label_counts}}, train={X,y,rows,features}, test={...}}
function M.split_version(v, opts)
  local clients = opts.clients or 8
  local alpha, aerr = json.to_number(opts.alpha or 0.5)
  local seed, serr = json.to_number(opts.seed or 0)
  if type(clients) ~= "number" or clients < 1 or clients ~= math.floor(clients) then
    return nil, "split: clients must be a positive integer, got " .. tostring(clients), "EINVAL"
  end
  if not alpha then return nil, "split: alpha: " .. aerr, "EINVAL" end
  if alpha < 0 then return nil, "split: alpha must be >= 0, got " .. tostring(alpha), "EINVAL" end
  if not seed or seed < 0 or seed ~= math.floor(seed) or seed > 2 ^ 53 then
    return nil, "split: seed must be an integer in [0, 2^53]" .. (serr and (": " .. serr) or (", got " .. tostring(seed))), "EINVAL"
  end
  local s = v.splits[opts.split or "train"]
  if not s then return nil, "split: dataset has no '" .. (opts.split or "train") .. "' split", "ENOENT" end
  local im = assert(idxmod.load(s.images))
  local lb = assert(idxmod.load(s.labels))
  local n = lb.count
  local assign = ffi.new("uint32_t[?]", n)
  local eb = core.errbuf()
  local rc = lib.ipk_partition_dirichlet(lb.data, n, v.stats.splits.train.num_classes, clients,
    alpha, seed, opts.min_rows or 10, assign, eb)
  local ok, err, name = core.check(rc, eb, "split")
  if not ok then return nil, err, name end
  local counts = {}
  for k = 1, clients do counts[k] = 0 end
  for i = 0, n - 1 do counts[assign[i] + 1] = counts[assign[i] + 1] + 1 end
  local out = { clients = {}, alpha = alpha, seed = seed, dataset_cid = v.cid }
  local classes = v.stats.splits.train.num_classes
  for k = 1, clients do
    local idx = ffi.new("uint32_t[?]", math.max(counts[k], 1))
    out.clients[k] = { id = k - 1, n = 0, idx = idx, label_counts = {} }
    for c = 1, classes do out.clients[k].label_counts[c] = 0 end
  end
  for i = 0, n - 1 do
    local c = out.clients[assign[i] + 1]
    c.idx[c.n] = i
    c.n = c.n + 1
    local l = lb.data[i] + 1
    c.label_counts[l] = c.label_counts[l] + 1
  end
  -- A shard's CID is the raw CID of its row indices (u32 little endian), so
  -- the split is content-addressed and reproducible.
  for _, c in ipairs(out.clients) do
    c.cid = cidmod.format(assert(cidmod.of(1, 0x55, ffi.string(c.idx, c.n * 4))))
    c.label_counts = json.array(c.label_counts)
  end
  local tr = idxmod.features(im)
  out.train = { X = tr.X, y = lb.data, rows = tr.rows, features = tr.features }
  local t = v.splits.test
  if t then
    local tim, tlb = assert(idxmod.load(t.images)), assert(idxmod.load(t.labels))
    local te = idxmod.features(tim)
    out.test = { X = te.X, y = tlb.data, rows = te.rows, features = te.features }
  end
  out.classes = classes
  out.features = tr.features
  return out
end

local function write_ranges(src, dst, header, ranges)
  local fi = assert(io.open(src, "rb"))
  local fo, err = io.open(dst, "wb")
  if not fo then fi:close(); return nil, err, "EIO" end
  fi:seek("set", header[1])
  fo:write(fi:read(header[2] - header[1]))
  for _, r in ipairs(ranges) do
    fi:seek("set", r[1])
    local s = fi:read(r[2] - r[1])
    fo:write(s)
    if s:sub(-1) ~= "\n" then fo:write("\n") end
  end
  fi:close()
  fo:close()
  return true
end

local function tabular(v)
  return v.format == "csv" or v.format == "tsv"
end

--- Shard a version: tabular files by rows (the header in every shard),
-- directories by files (round robin in path order). The shards form a
-- UnixFS directory (pinned) whose CID is returned with each shard's CID.
-- @param opts {count = N}
-- @return {cid, count, shards = {{name, cid, rows|files}}} or nil, msg
function M.shard(ref, opts)
  local count = json.to_number(opts and opts.count)
  if not count or count < 1 or count ~= math.floor(count) or count > 2 ^ 31 then
    return nil, "shard: count must be a positive integer, got " .. tostring(opts and opts.count), "EINVAL"
  end
  local v, err, name = catalog.resolve(ref)
  if not v then return nil, err, name end
  local data, tmp, sname = stage.local_copy(v)
  if not data then return nil, "shard: " .. tostring(tmp), sname end
  local out = tmp .. "/shards"
  local made, merr, mname = fs.mkdir_p(out)
  if not made then stage.rm_rf(tmp); return nil, "shard: " .. tostring(merr), mname end
  local shards = {}
  if not is_dir(data) then
    if not tabular(v) then
      local det = detect.file(data)
      if not det or (det.format ~= "csv" and det.format ~= "tsv") then
        stage.rm_rf(tmp)
        return nil, "shard: " .. tostring(ref) .. ": only tabular files (csv, tsv) and directories can be sharded", "EUNSUPP"
      end
    end
    local ext = v.format == "tsv" and "tsv" or "csv"
    local x; x, err, name = detect.table_index(data)
    if not x then stage.rm_rf(tmp); return nil, "shard: " .. tostring(err), name end
    -- more shards than rows would be empty shards (count = 1e9 wrote
    -- files until the disk or the user gave up)
    if count > x.rows then
      stage.rm_rf(tmp)
      return nil, ("shard: %s has %d rows, cannot make %d non-empty shards"):format(tostring(ref), x.rows, count), "ERANGE"
    end
    for k = 0, count - 1 do
      -- balanced: shard sizes differ by at most one row
      local a, b = math.floor(k * x.rows / count), math.floor((k + 1) * x.rows / count)
      local nm = ("shard-%05d-of-%05d.%s"):format(k, count, ext)
      local ranges = {}
      if b > a then ranges[1] = { tonumber(x.offsets[a]), tonumber(x.offsets[b]) } end
      local ok, werr, wname = write_ranges(data, out .. "/" .. nm, x.header, ranges)
      if not ok then stage.rm_rf(tmp); return nil, "shard: " .. tostring(werr), wname end
      shards[#shards + 1] = { name = nm, rows = b - a }
    end
  else
    local files, werr, wname = detect.walk(data)
    if not files then stage.rm_rf(tmp); return nil, "shard: " .. tostring(werr), wname end
    if count > #files then
      stage.rm_rf(tmp)
      return nil, ("shard: %s has %d files, cannot make %d non-empty shards"):format(tostring(ref), #files, count), "ERANGE"
    end
    local groups = {}
    for k = 1, count do groups[k] = {} end
    for i, f in ipairs(files) do table.insert(groups[(i - 1) % count + 1], f) end
    for k = 1, count do
      local nm = ("shard-%05d-of-%05d"):format(k - 1, count)
      made, merr = fs.mkdir_p(out .. "/" .. nm)
      -- each file linked into its shard (copied across file systems)
      for _, f in ipairs(groups[k]) do
        if not made then break end
        local dst = out .. "/" .. nm .. "/" .. f
        made, merr = fs.mkdir_p(dst:match("^(.*)/[^/]+$"))
        if made then made, merr = fs.copy_tree(data .. "/" .. f, dst) end
      end
      if not made then stage.rm_rf(tmp); return nil, "shard: " .. tostring(merr), "EIO" end
      shards[#shards + 1] = { name = nm, files = #groups[k] }
    end
  end
  local root, by, bname = stage.add_and_pin(out, "dataset-shards:" .. tostring(v.name) .. "@" .. tostring(v.version))
  stage.rm_rf(tmp)
  if not root then return nil, "shard: " .. tostring(by), bname end
  for _, s in ipairs(shards) do s.cid = by[s.name] and by[s.name].cid end
  return { cid = root, count = count, dataset_cid = v.cid, shards = json.array(shards) }
end

--- Seeded train/test split of a tabular version, optionally stratified by a
-- column (each class split in the same proportion). Row order inside each
-- part follows the file. The result is a UnixFS directory (pinned) with
-- train.EXT and test.EXT.
-- @param opts {test = 0.2, seed = 0, stratify = column name|nil}
-- @return {cid, train = {cid, rows}, test = {cid, rows}, seed, test_fraction, stratify} or nil, msg
function M.split_rows(ref, opts)
  opts = opts or {}
  local frac = json.to_number(opts.test or 0.2)
  local seed, serr = json.to_number(opts.seed or 0)
  if not frac or not (frac > 0 and frac < 1) then
    return nil, "split: test fraction must be in (0, 1), got " .. tostring(opts.test), "EINVAL"
  end
  if not seed or seed < 0 or seed ~= math.floor(seed) or seed > 2 ^ 53 then
    return nil, "split: seed must be an integer in [0, 2^53]" .. (serr and (": " .. serr) or (", got " .. tostring(seed))), "EINVAL"
  end
  local v, err, name = catalog.resolve(ref)
  if not v then return nil, err, name end
  local data, tmp, sname = stage.local_copy(v)
  if not data then return nil, "split: " .. tostring(tmp), sname end
  local function fail(msg, fname) stage.rm_rf(tmp); return nil, "split: " .. msg, fname or "EINVAL" end
  if is_dir(data) then return fail(tostring(ref) .. ": only tabular files (csv, tsv) can be split by rows", "EUNSUPP") end
  local st; st, err, name = detect.table_stats(data)
  if not st then return fail(tostring(err), name) end
  local key
  if opts.stratify then
    for i, c in ipairs(st.columns) do if c == opts.stratify then key = i - 1 end end
    if not key then return fail("no column '" .. tostring(opts.stratify) .. "' (columns: " .. table.concat(st.columns, ", ") .. ")") end
  end
  local x; x, err, name = detect.table_index(data, st.delimiter, key)
  if not x then return fail(tostring(err), name) end
  -- Groups of row indices (one group unless stratified), in first-seen order.
  local groups, order = {}, {}
  for i = 0, x.rows - 1 do
    local g = key and tostring(x.keys[i]) or "all"
    if not groups[g] then groups[g] = {}; order[#order + 1] = g end
    local t = groups[g]
    t[#t + 1] = i
  end
  local rng = ffi.new("ipk_rng_t")
  lib.ipk_rng_seed(rng, seed, 0)
  local is_test = {}
  for _, g in ipairs(order) do
    local t = groups[g]
    local n = #t
    local idx = ffi.new("uint32_t[?]", math.max(n, 1))
    for i = 1, n do idx[i - 1] = t[i] end
    lib.ipk_rng_shuffle_u32(rng, idx, n)
    local ntest = math.floor(n * frac + 0.5)
    for i = 0, ntest - 1 do is_test[idx[i]] = true end
  end
  local tr, te = {}, {}
  for i = 0, x.rows - 1 do
    local r = { tonumber(x.offsets[i]), tonumber(x.offsets[i + 1]) }
    if is_test[i] then te[#te + 1] = r else tr[#tr + 1] = r end
  end
  local ext = st.delimiter == "\t" and "tsv" or "csv"
  local out = tmp .. "/split"
  local ok, werr, wname = fs.mkdir_p(out)
  if not ok then return fail(tostring(werr), wname) end
  ok, werr, wname = write_ranges(data, out .. "/train." .. ext, x.header, tr)
  if ok then ok, werr, wname = write_ranges(data, out .. "/test." .. ext, x.header, te) end
  if not ok then return fail(tostring(werr), wname) end
  local root, by, bname = stage.add_and_pin(out, "dataset-split:" .. tostring(v.name) .. "@" .. tostring(v.version))
  stage.rm_rf(tmp)
  if not root then return nil, "split: " .. tostring(by), bname end
  return { cid = root, dataset_cid = v.cid, seed = seed, test_fraction = frac, stratify = opts.stratify,
           train = { cid = by["train." .. ext].cid, rows = #tr }, test = { cid = by["test." .. ext].cid, rows = #te } }
end

return M
