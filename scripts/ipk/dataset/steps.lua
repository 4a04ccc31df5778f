--- ipk.dataset.steps: the dataset step constructors a recipe uses
-- (ipk.dataset.add{...}, ipk.dataset.split{...}); each returns a step
-- description the engine runs and memoizes (ipk.run).
local recipe = require "ipk.run.recipe"
local runtime = require "ipk.runtime"
local sched = require "ipk.sched"
local core = require "ipk.core"
local idxmod = require "ipk.dataset.idx"
local catalog = require "ipk.dataset.catalog"
local partition = require "ipk.dataset.partition"
local ffi = core.ffi

local M = {}

--- Step: add a dataset version. Output: the version table.
-- Memoized (ipk.run): the key covers the folder's fingerprint (names,
-- sizes, mtimes: `paths`) and the import options (`profile`); the output
-- record keeps the version's fields and file names, and decode rebuilds the
-- version table without reading the files (arrays load lazily on use).
M.add = recipe.kind { kind = "dataset.add", version = 1, paths = { path = true }, profile = catalog.import,
  args = { "path", "name", "version", "package", "classes" },
  run = function(ctx, args)
    local v, err = catalog.add_version(args)
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

--- Step: split a dataset over federated clients (Dirichlet non-IID or IID).
M.split = recipe.kind { kind = "dataset.split", version = 1, inputs = { data = true },
  args = { "clients", "alpha", "seed", "split", "min_rows" },
  run = function(ctx, args)
    local sp, err = partition.split_version(args.data, args)
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
    local store = runtime.backend()
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
    local store = runtime.backend()
    local v = args.data
    local out = { alpha = r.alpha, seed = r.seed, dataset_cid = recipe.link_cid(r.dataset), classes = r.classes,
                  features = r.features, clients = {} }
    for i, c in ipairs(r.clients) do
      local cid = recipe.link_cid(c.cid)
      local bytes, err, name = store:get(cid)
      if not bytes then return nil, "shard " .. cid .. ": " .. tostring(err), name end
      local idx = ffi.new("uint32_t[?]", math.max(c.n, 1))
      ffi.copy(idx, bytes, #bytes)
      out.clients[i] = { id = c.id, n = c.n, idx = idx, cid = cid, label_counts = c.label_counts }
    end
    -- One loader for all readers: the clients of fl.train touch `train`
    -- concurrently, and each must not start its own decompression.
    local loader
    local function load(t)
      local function arrays(sname)
        local sp = v.splits[sname]
        if not sp then return nil end
        local im, lb = assert(idxmod.load(sp.images)), assert(idxmod.load(sp.labels))
        local f = idxmod.features(im)
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

return M
