--- ipk.dataset: dataset versions, statistics, shards, splits, diffs.
-- A dataset version is the UnixFS CID of a file or directory (what
-- `ipkrun add [-r] --cid-version=1 PATH` prints), recorded in the
-- `datasets` table of $IPK_HOME/ipk.db with its format, statistics and
-- import options, and pinned recursively. Formats are detected from content
-- (ipk.detect, in C); statistics use IPFS Kit's key names (num_rows,
-- num_columns, size_bytes, columns, dtypes).
-- Folders of IDX image/label pairs (Fashion-MNIST) keep their train/test
-- splits, which the FL split step reads; numeric data stays in cdata.
local core = require "ipk.core"
local recipe = require "ipk.recipe"
local runtime = require "ipk.runtime"
local json = require "ipk.json"
local detect = require "ipk.detect"
local ffi, lib = core.ffi, core.lib

local M = {}

-- Import options of a dataset version (recorded with it: the same bytes under
-- other options are another CID).
M.import = { cid_version = 1, raw_leaves = true, chunker = "size-262144" }

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS datasets (
  name TEXT NOT NULL, version TEXT NOT NULL, cid TEXT NOT NULL,
  format TEXT, stats TEXT NOT NULL, import TEXT NOT NULL, source TEXT,
  created_at TEXT NOT NULL, PRIMARY KEY (name, version));
]]

local function db()
  local d = runtime.store():db()
  d:exec(SCHEMA)
  return d
end

local is_dir = detect.is_dir

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Regular files directly in dir, sorted bytewise, with their sizes.
local function list_files(dir)
  local out, sizes = {}, {}
  local p = io.popen("find " .. q(dir) .. " -mindepth 1 -maxdepth 1 -type f -printf '%s %f\\n' | LC_ALL=C sort -k2")
  for l in p:lines() do
    local sz, f = l:match("^(%d+) (.*)$")
    out[#out + 1] = f
    sizes[f] = tonumber(sz)
  end
  p:close()
  return out, sizes
end

-- Buffers that C jobs point into, kept alive while the job runs.
local anchors = {} -- luacheck: ignore 241 (written, never read: it only anchors)

-- Loaded IDX arrays, per file path, for this process.
local idx_cache = {}

--- Load one IDX file (gzip or plain) as a cdata-backed array. The
-- decompression runs as a job on the thread pool (inside a task).
-- @return {dtype, dims={...}, count, data=uint8_t*} or nil, msg
function M.load_idx(path)
  local c = idx_cache[path]
  if c then return c end
  local job = ffi.new("ipk_idx_load_job_t")
  local pathbuf = ffi.new("char[?]", #path + 1, path)
  job.path = pathbuf
  -- The C job holds a raw pointer: anchor the buffer until it completes.
  anchors[job] = pathbuf
  local rc = require("ipk.sched").job(lib.ipk_idx_load_job, job)
  anchors[job] = nil
  local ok, err = core.check(rc, job.eb)
  if not ok then return nil, err end
  -- Own the loaded array: ffi.gc on a private copy of the struct.
  local t = ffi.gc(ffi.new("ipk_idx_t[1]", job.out), function(p) lib.ipk_idx_free(p) end)
  local dims = {}
  for i = 0, t[0].ndim - 1 do dims[#dims + 1] = tonumber(t[0].dims[i]) end
  c = { raw = t, dtype = t[0].dtype, dims = dims, count = tonumber(t[0].count), data = t[0].data, path = path }
  idx_cache[path] = c
  return c
end

-- Pair IDX files into splits: PREFIX-images-idx3-ubyte[.gz] + PREFIX-labels-idx1-ubyte[.gz].
local function idx_splits(dir, files)
  local splits, names = {}, {}
  for _, f in ipairs(files) do
    local prefix, what = f:match("^(.-)%-(%a+)%-idx%d%-ubyte")
    if prefix and (what == "images" or what == "labels") then
      local name = (prefix == "t10k" or prefix == "test") and "test" or prefix
      if not splits[name] then splits[name] = {}; names[#names + 1] = name end
      splits[name][what] = dir .. "/" .. f
    end
  end
  table.sort(names)
  return splits, names
end

--- Statistics of an IDX image/label split, IPFS Kit key names where they exist.
local function idx_stats(images, labels, classes)
  local counts = {}
  for i = 0, classes - 1 do counts[i + 1] = 0 end
  local y = labels.data
  for i = 0, labels.count - 1 do
    local v = y[i]
    if v >= classes then return nil, labels.path .. ": label " .. v .. " at row " .. i .. " is >= " .. classes end
    counts[v + 1] = counts[v + 1] + 1
  end
  local shape = {}
  for i = 2, #images.dims do shape[#shape + 1] = images.dims[i] end
  return { num_rows = images.dims[1], sample_shape = json.array(shape), dtype = "uint8",
           label_counts = json.array(counts), num_classes = classes }
end

-- Statistics of a list of JSON records (objects): columns in first-seen
-- order, inferred dtypes, missing counts (absent or null), numeric stats.
local function records_stats(recs, where)
  local cols, seen, acc = {}, {}, {}
  for i, r in ipairs(recs) do
    if type(r) ~= "table" then return nil, where .. ": record " .. i .. " is not an object" end
    for k in pairs(r) do
      if not seen[k] then seen[k] = true; cols[#cols + 1] = k end
    end
  end
  table.sort(cols)
  for _, k in ipairs(cols) do acc[k] = { missing = 0, n = 0, mean = 0, m2 = 0, dtype = "empty" } end
  local function merge(a, b)
    if a == "empty" or a == b then return b end
    if (a == "int64" and b == "float64") or (a == "float64" and b == "int64") then return "float64" end
    return "object"
  end
  for _, r in ipairs(recs) do
    for _, k in ipairs(cols) do
      local v, a = r[k], acc[k]
      if v == nil or v == json.null then a.missing = a.missing + 1
      else
        local t = type(v) == "number" and (v == math.floor(v) and "int64" or "float64")
          or type(v) == "boolean" and "bool" or type(v) == "string" and "string" or "object"
        a.dtype = merge(a.dtype, t)
        if type(v) == "number" then
          a.n = a.n + 1
          local d = v - a.mean
          a.mean = a.mean + d / a.n
          a.m2 = a.m2 + d * (v - a.mean)
          a.min = math.min(a.min or v, v)
          a.max = math.max(a.max or v, v)
        end
      end
    end
  end
  local dtypes, missing, cstats = {}, {}, {}
  for _, k in ipairs(cols) do
    local a = acc[k]
    dtypes[k], missing[k] = a.dtype, a.missing
    local numeric = a.dtype == "int64" or a.dtype == "float64"
    cstats[#cstats + 1] = { name = k, dtype = a.dtype, missing = a.missing, count = #recs - a.missing,
      min = numeric and a.min or nil, max = numeric and a.max or nil, mean = numeric and a.n > 0 and a.mean or nil,
      std = numeric and a.n > 1 and math.sqrt(a.m2 / (a.n - 1)) or nil }
  end
  return { num_rows = #recs, num_columns = #cols, columns = json.array(cols), dtypes = dtypes,
           missing = missing, column_stats = json.array(cstats) }
end

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- JSON / JSON Lines records; a bad line is an error naming file, line and offset.
local function json_stats(path, format)
  local s, err = read_all(path)
  if not s then return nil, path .. ": " .. tostring(err) end
  if s:sub(1, 3) == "\239\187\191" then s = s:sub(4) end
  local recs = {}
  if format == "jsonl" then
    local off, line = 0, 0
    for l in (s .. "\n"):gmatch("([^\n]*)\n") do
      line = line + 1
      if l:match("%S") then
        local v, jerr = json.decode(l)
        if v == nil then
          return nil, ("%s: offset %d: jsonl: line %d is not JSON (%s)"):format(path, off, line, tostring(jerr))
        end
        recs[#recs + 1] = v
      end
      off = off + #l + 1
    end
  else
    local v, jerr = json.decode(s)
    if v == nil then return nil, path .. ": offset 0: json: " .. tostring(jerr) end
    if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then return { num_rows = 1, type = "object" } end
    recs = v
  end
  return records_stats(recs, path)
end

--- Statistics of one file, by its detected format.
-- @return stats table (always with format and size_bytes) or nil, msg
function M.file_stats(path, det)
  local st, err
  local f = det.format
  if f == "csv" or f == "tsv" then
    st, err = detect.table_stats(path, det.info.delimiter)
  elseif f == "json" or f == "jsonl" then
    st, err = json_stats(path, f)
  else
    st = {}
    for k, v in pairs(det.info or {}) do st[k] = v end
  end
  if not st then return nil, err end
  st.format = f
  st.size_bytes = det.size
  return st
end

-- Statistics of a directory from its per-file detection.
local function dir_stats(path, det)
  local st = { format = det.format, num_files = #det.files, size_bytes = 0, formats = det.formats }
  for _, d in ipairs(det.files) do st.size_bytes = st.size_bytes + d.size end
  if det.format == "images" then
    local classes, sizes, fmts = {}, {}, {}
    local wmin, wmax, hmin, hmax
    for _, d in ipairs(det.files) do
      local cls = d.path:match("^([^/]+)/")
      if cls then classes[cls] = (classes[cls] or 0) + 1 end
      fmts[d.format] = (fmts[d.format] or 0) + 1
      local w, h = d.info.width, d.info.height
      if w and h then
        local key = w .. "x" .. h
        sizes[key] = (sizes[key] or 0) + 1
        wmin, wmax = math.min(wmin or w, w), math.max(wmax or w, w)
        hmin, hmax = math.min(hmin or h, h), math.max(hmax or h, h)
      end
    end
    st.num_images = #det.files
    st.num_rows = #det.files
    st.image_formats = fmts
    st.sizes = sizes
    st.width = { min = wmin, max = wmax }
    st.height = { min = hmin, max = hmax }
    if next(classes) then
      st.classes = classes
      local n = 0
      for _ in pairs(classes) do n = n + 1 end
      st.num_classes = n
    end
    return st
  end
  local files, rows = {}, 0
  for _, d in ipairs(det.files) do
    local fs, err = M.file_stats(path .. "/" .. d.path, d)
    if not fs then return nil, err end
    fs.path = d.path
    fs.column_stats = nil
    files[#files + 1] = fs
    if type(fs.num_rows) == "number" then rows = rows + fs.num_rows end
  end
  st.files = json.array(files)
  st.num_rows = rows
  local only
  for f in pairs(det.formats) do only = only == nil and f or false end
  if only then st.format = only end
  return st
end

local function now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- Insert a version row and pin it in one transaction (no-op when the same
-- CID is already registered under name@version; an error for another CID).
local function record(name, version, cid, format, stats, source)
  local d = db()
  return d:tx(function()
    local rows = d:query("SELECT cid FROM datasets WHERE name = ? AND version = ?", name, version)
    if rows[1] then
      if rows[1].cid ~= cid then
        error(("dataset %s@%s is already registered as %s; these files are %s (use another version)")
          :format(name, version, rows[1].cid, cid), 0)
      end
      return
    end
    local ok, err = runtime.store():pin_add(cid, { recursive = true, name = "dataset:" .. name .. "@" .. version })
    if not ok then error("dataset " .. name .. ": pin " .. cid .. ": " .. tostring(err), 0) end
    d:query("INSERT INTO datasets (name, version, cid, format, stats, import, source, created_at) VALUES (?,?,?,?,?,?,?,?)",
      name, version, cid, format, json.encode(json.sanitize(stats)), json.encode(M.import), source, now())
  end)
end

local function valid_name(n) return type(n) == "string" and n:match("^[%w][%w._-]*$") ~= nil end

--- Add a file or directory as a dataset version and compute its statistics.
-- Everything is validated and measured before anything is written: a
-- corrupt file leaves no pin or row (and only unpinned blocks at worst).
-- @param args {path=file|dir, name=string, version=string|nil (default: the CID), package=hint|nil}
-- @return version table {name, version, cid, format, stats, splits, source} or nil, msg
function M.add_version(args)
  local path, name = args.path, args.name
  if type(path) ~= "string" or type(name) ~= "string" then
    error("dataset.add: 'path' and 'name' are required strings", 2)
  end
  if not valid_name(name) then return nil, "dataset: invalid name '" .. name .. "'" end
  if args.version ~= nil and (type(args.version) ~= "string" or not args.version:match("^[%w][%w.+_-]*$")) then
    return nil, "dataset " .. name .. ": invalid version '" .. tostring(args.version) .. "'"
  end
  path = path:gsub("(.)/+$", "%1")
  local dir = is_dir(path)
  if not dir and not detect.exists(path) then
    if args.package then
      return nil, "dataset " .. name .. ": " .. path .. ": directory not found (install the Debian package "
        .. args.package .. ")"
    end
    return nil, "dataset " .. name .. ": " .. path .. ": no such file or directory"
  end
  local stats, format, splits
  local files, sizes = {}, {}
  if dir then files, sizes = list_files(path) end
  local snames
  if dir then splits, snames = idx_splits(path, files) end
  if dir and #snames > 0 then
    format = "idx"
    stats = { format = "idx", num_files = #files, splits = {}, num_rows = 0, size_bytes = 0 }
    local classes = args.classes or 10
    for _, sname in ipairs(snames) do
      local s = splits[sname]
      if not (s.images and s.labels) then return nil, "dataset " .. name .. ": split '" .. sname .. "' lacks images or labels" end
      local im, err = M.load_idx(s.images)
      if not im then return nil, err end
      local lb; lb, err = M.load_idx(s.labels)
      if not lb then return nil, err end
      if #im.dims < 2 or #lb.dims ~= 1 or im.dims[1] ~= lb.dims[1] then
        return nil, ("dataset %s: split '%s': %d images but %d labels"):format(name, sname, im.dims[1], lb.dims[1] or -1)
      end
      local st; st, err = idx_stats(im, lb, classes)
      if not st then return nil, err end
      stats.splits[sname] = st
      stats.num_rows = stats.num_rows + st.num_rows
      stats.sample_shape = st.sample_shape
    end
    for _, f in ipairs(files) do stats.size_bytes = stats.size_bytes + sizes[f] end
  else
    splits = {}
    local det, err = detect.path(path)
    if not det then return nil, "dataset " .. name .. ": " .. tostring(err) end
    if dir then stats, err = dir_stats(path, det)
    else stats, err = M.file_stats(path, det) end
    if not stats then return nil, "dataset " .. name .. ": " .. tostring(err) end
    format = stats.format
  end
  local added, err = require("ipk.unixfs").add(path, {
    recursive = dir, cid_version = M.import.cid_version, raw_leaves = M.import.raw_leaves,
    chunker = M.import.chunker, blocks = runtime.store():blocks() })
  if not added then return nil, "dataset " .. name .. ": " .. tostring(err) end
  local cid = added.root
  stats.dag_size = added.size
  local version = args.version or cid
  local ok, terr = record(name, version, cid, format, stats, path)
  if not ok then return nil, terr end
  return { name = name, version = version, cid = cid, format = format, stats = stats,
           import = M.import, source = path, splits = splits }
end

--- Step: add a dataset version. Output: the version table.
-- Memoized (ipk.runner): the key covers the folder's fingerprint (names,
-- sizes, mtimes: `paths`) and the import options (`profile`); the output
-- record keeps the version's fields and file names, and decode rebuilds the
-- version table without reading the files (arrays load lazily on use).
M.add = recipe.kind { kind = "dataset.add", version = 1, paths = { path = true }, profile = M.import,
  run = function(ctx, args)
    local v, err = M.add_version(args)
    if not v then error(err, 0) end
    ctx.log("dataset %s%s  cid=%s  rows=%d", v.name, v.version == v.cid and "" or ("@" .. v.version), v.cid, v.stats.num_rows)
    return v
  end,
  encode = function(v)
    local files = {}
    for sname, sp in pairs(v.splits) do
      files[sname] = { images = sp.images:match("[^/]+$"), labels = sp.labels:match("[^/]+$") }
    end
    return { name = v.name, version = v.version, cid = recipe.link(v.cid), format = v.format, stats = v.stats,
             import = v.import, source = v.source, files = files }
  end,
  decode = function(r)
    local splits = {}
    for sname, f in pairs(r.files) do
      splits[sname] = { images = r.source .. "/" .. f.images, labels = r.source .. "/" .. f.labels }
    end
    return { name = r.name, version = r.version, cid = recipe.link_cid(r.cid), format = r.format, stats = r.stats,
             import = r.import, source = r.source, splits = splits }
  end }

--- Images of a split as f32 rows scaled to [0,1] (cdata float*, n rows x d).
local f32_cache = setmetatable({}, { __mode = "k" })
function M.features(images)
  local c = f32_cache[images]
  if c then return c end
  local n = images.count
  local X = ffi.new("float[?]", n)
  local eb = core.errbuf()
  assert(core.check(lib.ipk_idx_to_f32(images.raw, 255, X, eb), eb, images.path))
  c = { X = X, rows = images.dims[1], features = n / images.dims[1] }
  f32_cache[images] = c
  return c
end

--- Split the training rows of a dataset version over clients.
-- @param v dataset version (from add_version)
-- @param opts {clients=N, alpha=0.5 (0 = IID), seed=int, min_rows=10, split="train"}
-- @return {clients={{id, n, idx=uint32_t*, cid, label_counts}}, train={X,y,rows,features}, test={...}}
function M.split_version(v, opts)
  local clients = opts.clients or 8
  local alpha = opts.alpha or 0.5
  local seed = opts.seed or 0
  if type(clients) ~= "number" or clients < 1 or clients ~= math.floor(clients) then
    return nil, "split: clients must be a positive integer, got " .. tostring(clients)
  end
  if type(alpha) ~= "number" or alpha < 0 then return nil, "split: alpha must be >= 0, got " .. tostring(alpha) end
  local s = v.splits[opts.split or "train"]
  if not s then return nil, "split: dataset has no '" .. (opts.split or "train") .. "' split" end
  local im = assert(M.load_idx(s.images))
  local lb = assert(M.load_idx(s.labels))
  local n = lb.count
  local assign = ffi.new("uint32_t[?]", n)
  local eb = core.errbuf()
  local rc = lib.ipk_partition_dirichlet(lb.data, n, v.stats.splits.train.num_classes, clients,
    alpha, seed, opts.min_rows or 10, assign, eb)
  local ok, err = core.check(rc, eb, "split")
  if not ok then return nil, err end
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
  local cidmod = require "ipk.cid"
  for _, c in ipairs(out.clients) do
    c.cid = cidmod.format(assert(cidmod.of(1, 0x55, ffi.string(c.idx, c.n * 4))))
    c.label_counts = json.array(c.label_counts)
  end
  local tr = M.features(im)
  out.train = { X = tr.X, y = lb.data, rows = tr.rows, features = tr.features }
  local t = v.splits.test
  if t then
    local tim, tlb = assert(M.load_idx(t.images)), assert(M.load_idx(t.labels))
    local te = M.features(tim)
    out.test = { X = te.X, y = tlb.data, rows = te.rows, features = te.features }
  end
  out.classes = classes
  out.features = tr.features
  return out
end

--- Step: split a dataset over federated clients (Dirichlet non-IID or IID).
M.split = recipe.kind { kind = "dataset.split", version = 1, inputs = { data = true },
  run = function(ctx, args)
    local sp, err = M.split_version(args.data, args)
    if not sp then error(err, 0) end
    local sizes = {}
    for _, c in ipairs(sp.clients) do sizes[#sizes + 1] = c.n end
    ctx.log("split %d clients (%s): rows %s", #sp.clients,
      sp.alpha == 0 and "IID" or ("Dirichlet alpha=" .. sp.alpha), table.concat(sizes, " "))
    return sp
  end,
  -- Memoized: each shard's row indices are stored as the raw block its CID
  -- names (u32 little endian) and pinned; decode reads them back (verified)
  -- and loads the train/test arrays of the input version lazily.
  encode = function(sp)
    local store = runtime.store()
    local clients = {}
    for i, c in ipairs(sp.clients) do
      assert(store:put(c.cid, ffi.string(c.idx, c.n * 4)))
      assert(store:pin_add(c.cid, { recursive = false, name = "shard" }))
      clients[i] = { id = c.id, n = c.n, cid = recipe.link(c.cid), label_counts = c.label_counts }
    end
    return { dataset = recipe.link(sp.dataset_cid), alpha = sp.alpha, seed = sp.seed, classes = sp.classes,
             features = sp.features, clients = clients }
  end,
  decode = function(r, _, args)
    local store = runtime.store()
    local v = args.data
    local out = { alpha = r.alpha, seed = r.seed, dataset_cid = recipe.link_cid(r.dataset), classes = r.classes,
                  features = r.features, clients = {} }
    for i, c in ipairs(r.clients) do
      local cid = recipe.link_cid(c.cid)
      local bytes, err = store:get(cid)
      if not bytes then return nil, "shard " .. cid .. ": " .. tostring(err) end
      local idx = ffi.new("uint32_t[?]", math.max(c.n, 1))
      ffi.copy(idx, bytes, #bytes)
      out.clients[i] = { id = c.id, n = c.n, idx = idx, cid = cid, label_counts = c.label_counts }
    end
    -- One loader for all readers: the clients of fl.train touch `train`
    -- concurrently, and each must not start its own decompression.
    local sched = require "ipk.sched"
    local loader
    local function load(t)
      local function arrays(sname)
        local sp = v.splits[sname]
        if not sp then return nil end
        local im, lb = assert(M.load_idx(sp.images)), assert(M.load_idx(sp.labels))
        local f = M.features(im)
        return { X = f.X, y = lb.data, rows = f.rows, features = f.features }
      end
      rawset(t, "train", arrays("train"))
      rawset(t, "test", arrays("test"))
      return true
    end
    return setmetatable(out, { __index = function(t, k)
      if k ~= "train" and k ~= "test" then return nil end
      if not sched.in_task() then sched.run_task(load, t) return rawget(t, k) end
      loader = loader or sched.spawn(load, t)
      sched.join({ loader })
      return rawget(t, k)
    end })
  end }

------------------------------------------------------------------------------
-- versions

local function decode(r)
  if not r then return nil end
  r.stats = json.decode(r.stats) or {}
  r.import = r.import and json.decode(r.import) or nil
  return r
end

--- Rows of the datasets table (list of versions), newest first.
-- @param filter {name=, format=} optional
function M.list(filter)
  filter = filter or {}
  local rows = db():query("SELECT name, version, cid, format, stats, source, created_at FROM datasets"
    .. " ORDER BY created_at DESC, rowid DESC")
  local out = {}
  for _, r in ipairs(rows) do
    if (not filter.name or r.name == filter.name) and (not filter.format or r.format == filter.format) then
      out[#out + 1] = decode(r)
    end
  end
  return out
end

--- Parse "name[@version]".
function M.parse_ref(s)
  local name, v = tostring(s):match("^([^@]+)@(.+)$")
  if name then return name, v end
  return s, nil
end

--- A version by name and version (nil = the most recently added), or by
-- "name@version" in one string.
-- @return version row {name, version, cid, format, stats, import, source, created_at} or nil, msg
function M.get(name, version)
  if version == nil and type(name) == "string" and name:find("@", 1, true) then name, version = M.parse_ref(name) end
  local d = db()
  local r
  if version and version ~= "latest" then
    r = d:query("SELECT * FROM datasets WHERE name = ? AND version = ?", name, version)[1]
    if not r then return nil, "dataset " .. tostring(name) .. "@" .. version .. " not found", "ENOENT" end
  else
    r = d:query("SELECT * FROM datasets WHERE name = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", name)[1]
    if not r then return nil, "dataset " .. tostring(name) .. ": no versions", "ENOENT" end
  end
  return decode(r)
end

-- A ref that may also be a bare CID (for diff/verify of anything in the store).
local function resolve(ref)
  local v = M.get(ref)
  if v then return v end
  if require("ipk.cid").parse(ref) then return { cid = ref, name = ref, version = ref } end
  return M.get(ref)
end

local function mktemp()
  local base = runtime.home() .. "/staging"
  os.execute("mkdir -p " .. q(base))
  local p = io.popen("mktemp -d " .. q(base .. "/ds.XXXXXX"))
  local d = p:read("*l")
  p:close()
  return d
end

local function rm_rf(d)
  if d and d:match("/staging/[%w.]+$") then os.execute("rm -rf " .. q(d)) end
end

--- Materialize a version at outdir (every block verified; link names that
-- would escape outdir - "..", "/", NUL - are rejected before writing).
-- @return version or nil, msg
function M.fetch(ref, outdir)
  local v, err = resolve(ref)
  if not v then return nil, err end
  local ok, gerr = require("ipk.unixfs").get(v.cid, runtime.store():blocks(), outdir)
  if not ok then return nil, "dataset " .. tostring(ref) .. ": " .. tostring(gerr) end
  v.path = outdir
  return v
end

-- The version's bytes as a local path: its recorded source when it still
-- hashes to the CID would be faster, but the store is the truth: materialize.
local function local_copy(v)
  local tmp = mktemp()
  local out = tmp .. "/data"
  local ok, err = require("ipk.unixfs").get(v.cid, runtime.store():blocks(), out)
  if not ok then rm_rf(tmp); return nil, tostring(err) end
  return out, tmp
end

-- Add dir (recursive) with the dataset import options and pin it.
local function add_and_pin(dir, pin_name)
  local store = runtime.store()
  local opts = { recursive = true, blocks = store:blocks() }
  for k, x in pairs(M.import) do opts[k] = x end
  local added, err = require("ipk.unixfs").add(dir, opts)
  if not added then return nil, err end
  local ok, perr = store:pin_add(added.root, { recursive = true, name = pin_name })
  if not ok then return nil, perr end
  local by = {}
  local top = dir:match("[^/]+$")
  for _, e in ipairs(added.entries) do by[e.path:sub(#top + 2)] = e end
  return added.root, by
end

local function write_ranges(src, dst, header, ranges)
  local fi = assert(io.open(src, "rb"))
  local fo, err = io.open(dst, "wb")
  if not fo then fi:close(); return nil, err end
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
  local count = tonumber(opts and opts.count)
  if not count or count < 1 or count ~= math.floor(count) then
    return nil, "shard: count must be a positive integer, got " .. tostring(opts and opts.count)
  end
  local v, err = resolve(ref)
  if not v then return nil, err end
  local data, tmp = local_copy(v)
  if not data then return nil, "shard: " .. tostring(tmp) end
  local out = tmp .. "/shards"
  os.execute("mkdir -p " .. q(out))
  local shards = {}
  if not is_dir(data) then
    if not tabular(v) then
      local det = detect.file(data)
      if not det or (det.format ~= "csv" and det.format ~= "tsv") then
        rm_rf(tmp)
        return nil, "shard: " .. tostring(ref) .. ": only tabular files (csv, tsv) and directories can be sharded"
      end
    end
    local ext = v.format == "tsv" and "tsv" or "csv"
    local x; x, err = detect.table_index(data)
    if not x then rm_rf(tmp); return nil, "shard: " .. tostring(err) end
    for k = 0, count - 1 do
      -- balanced: shard sizes differ by at most one row
      local a, b = math.floor(k * x.rows / count), math.floor((k + 1) * x.rows / count)
      local nm = ("shard-%05d-of-%05d.%s"):format(k, count, ext)
      local ranges = {}
      if b > a then ranges[1] = { tonumber(x.offsets[a]), tonumber(x.offsets[b]) } end
      local ok, werr = write_ranges(data, out .. "/" .. nm, x.header, ranges)
      if not ok then rm_rf(tmp); return nil, "shard: " .. tostring(werr) end
      shards[#shards + 1] = { name = nm, rows = b - a }
    end
  else
    local files = detect.walk(data)
    local groups = {}
    for k = 1, count do groups[k] = {} end
    for i, f in ipairs(files) do table.insert(groups[(i - 1) % count + 1], f) end
    for k = 1, count do
      local nm = ("shard-%05d-of-%05d"):format(k - 1, count)
      os.execute("mkdir -p " .. q(out .. "/" .. nm))
      for _, f in ipairs(groups[k]) do
        local dst = out .. "/" .. nm .. "/" .. f
        os.execute("mkdir -p " .. q(dst:match("^(.*)/[^/]+$")) .. " && ln " .. q(data .. "/" .. f) .. " " .. q(dst))
      end
      shards[#shards + 1] = { name = nm, files = #groups[k] }
    end
  end
  local root, by = add_and_pin(out, "dataset-shards:" .. tostring(v.name) .. "@" .. tostring(v.version))
  rm_rf(tmp)
  if not root then return nil, "shard: " .. tostring(by) end
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
  local frac = tonumber(opts.test or 0.2)
  local seed = tonumber(opts.seed or 0)
  if not frac or frac <= 0 or frac >= 1 then return nil, "split: test fraction must be in (0, 1), got " .. tostring(opts.test) end
  if not seed or seed < 0 or seed ~= math.floor(seed) then return nil, "split: seed must be an integer >= 0" end
  local v, err = resolve(ref)
  if not v then return nil, err end
  local data, tmp = local_copy(v)
  if not data then return nil, "split: " .. tostring(tmp) end
  local function fail(msg) rm_rf(tmp); return nil, "split: " .. msg end
  if is_dir(data) then return fail(tostring(ref) .. ": only tabular files (csv, tsv) can be split by rows") end
  local st; st, err = detect.table_stats(data)
  if not st then return fail(tostring(err)) end
  local key
  if opts.stratify then
    for i, c in ipairs(st.columns) do if c == opts.stratify then key = i - 1 end end
    if not key then return fail("no column '" .. tostring(opts.stratify) .. "' (columns: " .. table.concat(st.columns, ", ") .. ")") end
  end
  local x; x, err = detect.table_index(data, st.delimiter, key)
  if not x then return fail(tostring(err)) end
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
  os.execute("mkdir -p " .. q(out))
  local ok, werr = write_ranges(data, out .. "/train." .. ext, x.header, tr)
  if ok then ok, werr = write_ranges(data, out .. "/test." .. ext, x.header, te) end
  if not ok then return fail(tostring(werr)) end
  local root, by = add_and_pin(out, "dataset-split:" .. tostring(v.name) .. "@" .. tostring(v.version))
  rm_rf(tmp)
  if not root then return nil, "split: " .. tostring(by) end
  return { cid = root, dataset_cid = v.cid, seed = seed, test_fraction = frac, stratify = opts.stratify,
           train = { cid = by["train." .. ext].cid, rows = #tr }, test = { cid = by["test." .. ext].cid, rows = #te } }
end

------------------------------------------------------------------------------
-- diff / verify

local cidmod = require "ipk.cid"

-- UnixFS node type from a dag-pb Data field (field 1, varint): 1 dir, 2 file.
local function unixfs_type(data, n)
  if n >= 2 and data[0] == 0x08 then return data[1] end
  return nil
end

-- Files of a DAG: path -> {cid, leaves = {cid -> size}, size}; every block is
-- read through the store (so verified against its CID).
local function tree(root)
  local store = runtime.store()
  local files = {}
  local function blk(c)
    local b, err = store:get(c)
    if not b then error("block " .. c .. ": " .. tostring(err), 0) end
    return b
  end
  local function leaves_of(c, acc)
    local b = blk(c)
    local parsed = assert(cidmod.parse(c))
    if parsed.codec == 0x55 then acc[c] = #b; return #b end
    local node, eb = ffi.new("ipk_dagpb_node_t"), core.errbuf()
    local rc = lib.ipk_dagpb_decode(b, #b, node, eb)
    if rc ~= 0 then error("block " .. c .. ": " .. ffi.string(eb.msg), 0) end
    local n, size = tonumber(node.nlinks), 0
    if n == 0 then acc[c] = #b; size = #b end
    local kids = {}
    for i = 0, n - 1 do kids[#kids + 1] = cidmod.format(node.links[i].cid) end
    lib.ipk_dagpb_node_free(node)
    for _, k in ipairs(kids) do size = size + leaves_of(k, acc) end
    return size
  end
  local function walk(c, prefix)
    local parsed = assert(cidmod.parse(c))
    if parsed.codec == 0x55 then
      local acc = {}
      files[prefix] = { cid = c, size = leaves_of(c, acc), leaves = acc }
      return
    end
    local b = blk(c)
    local node, eb = ffi.new("ipk_dagpb_node_t"), core.errbuf()
    local rc = lib.ipk_dagpb_decode(b, #b, node, eb)
    if rc ~= 0 then error("block " .. c .. ": " .. ffi.string(eb.msg), 0) end
    local t = node.has_data ~= 0 and unixfs_type(node.data, tonumber(node.data_len)) or nil
    if t == 1 then
      local kids = {}
      for i = 0, tonumber(node.nlinks) - 1 do
        local l = node.links[i]
        kids[#kids + 1] = { ffi.string(l.name, l.name_len), cidmod.format(l.cid) }
      end
      lib.ipk_dagpb_node_free(node)
      for _, k in ipairs(kids) do walk(k[2], prefix == "" and k[1] or (prefix .. "/" .. k[1])) end
    else
      lib.ipk_dagpb_node_free(node)
      local acc = {}
      files[prefix] = { cid = c, size = leaves_of(c, acc), leaves = acc }
    end
  end
  walk(root, "")
  return files
end

--- Compare two versions (refs "name@version" or CIDs): files added,
-- removed, changed (with chunks changed) and unchanged; bytes shared
-- counts the distinct leaf blocks both contain.
-- @return {a, b, added, removed, changed, unchanged, chunks_shared, bytes_shared, bytes_a, bytes_b} or nil, msg
function M.diff(ref_a, ref_b)
  local va, err = resolve(ref_a)
  if not va then return nil, err end
  local vb; vb, err = resolve(ref_b)
  if not vb then return nil, err end
  local ok, ta = pcall(tree, va.cid)
  if not ok then return nil, "diff: " .. tostring(ta) end
  local tb
  ok, tb = pcall(tree, vb.cid)
  if not ok then return nil, "diff: " .. tostring(tb) end
  local res = { a = va.cid, b = vb.cid, added = {}, removed = {}, changed = {}, unchanged = 0,
                chunks_shared = 0, bytes_shared = 0, bytes_a = 0, bytes_b = 0 }
  local la, lb = {}, {}
  for p, f in pairs(ta) do
    for c, s in pairs(f.leaves) do la[c] = s end
    local g = tb[p]
    if not g then res.removed[#res.removed + 1] = p
    elseif g.cid == f.cid then res.unchanged = res.unchanged + 1
    else
      local total, same = 0, 0
      for c in pairs(g.leaves) do total = total + 1; if f.leaves[c] then same = same + 1 end end
      res.changed[#res.changed + 1] = { path = p, chunks = total, chunks_changed = total - same,
                                        size_a = f.size, size_b = g.size }
    end
  end
  for p, g in pairs(tb) do
    for c, s in pairs(g.leaves) do lb[c] = s end
    if not ta[p] then res.added[#res.added + 1] = p end
  end
  for c, s in pairs(la) do
    res.bytes_a = res.bytes_a + s
    if lb[c] then res.chunks_shared = res.chunks_shared + 1; res.bytes_shared = res.bytes_shared + s end
  end
  for _, s in pairs(lb) do res.bytes_b = res.bytes_b + s end
  table.sort(res.added)
  table.sort(res.removed)
  table.sort(res.changed, function(x, y) return x.path < y.path end)
  res.added, res.removed, res.changed = json.array(res.added), json.array(res.removed), json.array(res.changed)
  return res
end

--- Verify a version: read every block back from the store (each checked
-- against its CID), re-import the bytes with the recorded options and
-- compare the root CID; also report whether the recorded source still
-- gives the same CID.
-- @return {cid, ok, recomputed, source, source_matches} or nil, msg
function M.verify(ref)
  local v, err = resolve(ref)
  if not v then return nil, err end
  local data, tmp = local_copy(v)
  if not data then return nil, "verify " .. v.cid .. ": " .. tostring(tmp) end
  local o = { recursive = is_dir(data), only_hash = true }
  for k, x in pairs(v.import or M.import) do o[k] = x end
  local again, aerr = require("ipk.unixfs").add(data, o)
  rm_rf(tmp)
  if not again then return nil, "verify " .. v.cid .. ": " .. tostring(aerr) end
  local res = { cid = v.cid, recomputed = again.root, ok = again.root == v.cid, name = v.name, version = v.version }
  if v.source and detect.exists(v.source) then
    o.recursive = is_dir(v.source)
    local src = require("ipk.unixfs").add(v.source, o)
    res.source = v.source
    res.source_matches = src ~= nil and src.root == v.cid
  end
  return res
end

return M
