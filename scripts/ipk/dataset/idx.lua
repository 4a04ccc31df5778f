--- ipk.dataset.idx: IDX arrays (gzip or plain) loaded by a C job into
-- cdata, and image rows as f32 features; numeric data stays in cdata.
local core = require "ipk.core"
local sched = require "ipk.sched"
local ffi, lib = core.ffi, core.lib

local M = {}

-- Buffers that C jobs point into, kept alive while the job runs.
local anchors = {} -- luacheck: ignore 241 (written, never read: it only anchors)

-- Loaded IDX arrays, per file path, for this process.
local idx_cache = {}

--- Load one IDX file (gzip or plain) as a cdata-backed array. The
-- decompression runs as a job on the thread pool (inside a task).
-- @return {dtype, dims={...}, count, data=uint8_t*} or nil, msg
function M.load(path)
  local c = idx_cache[path]
  if c then return c end
  local job = ffi.new("ipk_idx_load_job_t")
  local pathbuf = ffi.new("char[?]", #path + 1, path)
  job.path = pathbuf
  -- The C job holds a raw pointer: anchor the buffer until it completes.
  anchors[job] = pathbuf
  local rc = sched.job(lib.ipk_idx_load_job, job)
  anchors[job] = nil
  local ok, err, name = core.check(rc, job.eb)
  if not ok then return nil, err, name end
  -- Own the loaded array: ffi.gc on a private copy of the struct.
  local t = ffi.gc(ffi.new("ipk_idx_t[1]", job.out), function(p) lib.ipk_idx_free(p) end)
  local dims = {}
  for i = 0, t[0].ndim - 1 do dims[#dims + 1] = tonumber(t[0].dims[i]) end
  c = { raw = t, dtype = t[0].dtype, dims = dims, count = tonumber(t[0].count), data = t[0].data, path = path }
  idx_cache[path] = c
  return c
end

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


return M
