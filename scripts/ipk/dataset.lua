--- ipk.dataset: dataset versions, statistics and client splits.
-- A dataset version is the UnixFS directory CID of its files (what
-- `ipkrun add -r --cid-version=1 DIR` prints), recorded in the `datasets`
-- table of $IPK_HOME/ipk.db with its statistics and pinned recursively.
-- Numeric data stays in cdata: images as f32 rows (pixels/255), labels u8.
local core = require "ipk.core"
local recipe = require "ipk.recipe"
local runtime = require "ipk.runtime"
local json = require "ipk.json"
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

local function is_dir(path)
  local ok = os.execute("test -d '" .. path:gsub("'", "'\\''") .. "'")
  return ok == true or ok == 0
end

-- Regular files directly in dir, sorted bytewise, with their sizes.
local function list_files(dir)
  local out, sizes = {}, {}
  local p = io.popen("find '" .. dir:gsub("'", "'\\''") .. "' -mindepth 1 -maxdepth 1 -type f -printf '%s %f\\n' | LC_ALL=C sort -k2")
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

--- Add a directory as a dataset version and compute its statistics.
-- @param args {path=dir, name=string, version=string|nil, package=hint|nil}
-- @return version table {name, version, cid, format, stats, splits, path} or nil, msg
function M.add_version(args)
  local path, name = args.path, args.name
  if type(path) ~= "string" or type(name) ~= "string" then
    error("dataset.add: 'path' and 'name' are required strings", 2)
  end
  path = path:gsub("/+$", "")
  if not is_dir(path) then
    local hint = args.package and (" (install the Debian package " .. args.package .. ")") or ""
    return nil, "dataset " .. name .. ": " .. path .. ": directory not found" .. hint
  end
  local files, sizes = list_files(path)
  local splits, names = idx_splits(path, files)
  if #names == 0 then return nil, "dataset " .. name .. ": " .. path .. ": no IDX image/label files found" end
  -- Validate and measure before anything is written: a corrupt file leaves
  -- no block, pin or row behind.
  local stats = { format = "idx", num_files = #files, splits = {}, num_rows = 0 }
  local classes = args.classes or 10
  for _, sname in ipairs(names) do
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
  local added, err = require("ipk.unixfs").add(path, {
    recursive = true, cid_version = M.import.cid_version, raw_leaves = M.import.raw_leaves,
    chunker = M.import.chunker, blocks = runtime.store():blocks() })
  if not added then return nil, "dataset " .. name .. ": " .. tostring(err) end
  local cid = added.root
  stats.size_bytes = 0
  for _, f in ipairs(files) do stats.size_bytes = stats.size_bytes + sizes[f] end
  stats.dag_size = added.size
  local version = args.version or cid
  local d = db()
  local rec = { name = name, version = version, cid = cid, format = "idx", stats = stats,
                import = M.import, source = path, splits = splits }
  local ok, terr = d:tx(function()
    local rows = d:query("SELECT cid FROM datasets WHERE name = ? AND version = ?", name, version)
    if rows[1] then
      if rows[1].cid ~= cid then
        error(("dataset %s@%s is already registered as %s; these files are %s (use another version)")
          :format(name, version, rows[1].cid, cid), 0)
      end
      return
    end
    runtime.store():pin_add(cid, { recursive = true, name = "dataset:" .. name .. "@" .. version })
    d:query("INSERT INTO datasets (name, version, cid, format, stats, import, source, created_at) VALUES (?,?,?,?,?,?,?,?)",
      name, version, cid, "idx", json.encode(stats), json.encode(M.import), path, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  end)
  if not ok then return nil, terr end
  return rec
end

--- Step: add a dataset version. Output: the version table.
M.add = recipe.kind { kind = "dataset.add", version = 1, run = function(ctx, args)
  local v, err = M.add_version(args)
  if not v then error(err, 0) end
  ctx.log("dataset %s@%s  cid=%s  rows=%d", v.name, v.version == v.cid and "-" or v.version, v.cid, v.stats.num_rows)
  return v
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
  end }

--- Rows of the datasets table (list of versions), newest first.
function M.list()
  local rows = db():query("SELECT name, version, cid, format, stats, created_at FROM datasets ORDER BY created_at DESC, name, version")
  for _, r in ipairs(rows) do r.stats = json.decode(r.stats) end
  return rows
end

return M
