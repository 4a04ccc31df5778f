--- ipk.car: CAR archives (CARv1 write/read, CARv2 read) over core/include/ipk/car.h.
-- Every block read is verified against its CID by the core. Imports verify
-- the whole file before the first block reaches the store, so a corrupt
-- file imports nothing. Expected failures return nil, msg, name.
local core = require "ipk.core"
local sched = require "ipk.sched"
local cid = require "ipk.cid"
local fs = require "ipk.fs"
local lib, ffi = core.lib, core.ffi

local type, tonumber, error, setmetatable = type, tonumber, error, setmetatable
local ffi_new, ffi_string, ffi_gc = ffi.new, ffi.string, ffi.gc

local M = {}

M.ZERO_LEN_EOF = 1

local function flags_of(o)
  return (o and o.zero_len_eof) and M.ZERO_LEN_EOF or 0
end

local Reader = {}
Reader.__index = Reader

--- Open a CAR file (v1 or v2) and read its header.
-- @param path string
-- @param o {zero_len_eof = bool}: a zero-length section ends the data
--   (go-car's ZeroLengthSectionAsEOF) instead of being an error
-- @return reader | nil, msg, name
function M.open(path, o)
  if type(path) ~= "string" then error("car.open: path string expected", 2) end
  local out, eb = ffi_new("ipk_car_reader_t*[1]"), core.errbuf()
  local rc = lib.ipk_car_reader_open(path, flags_of(o), out, eb)
  if rc ~= 0 then return core.check(rc, eb, path) end
  return setmetatable({ h = ffi_gc(out[0], lib.ipk_car_reader_free), path = path }, Reader)
end

--- Header facts: {version=1|2, roots={cid strings}, data_offset=, data_size=, index_offset=}.
function Reader:info()
  local i = lib.ipk_car_reader_info(self.h)
  local roots = {}
  for k = 0, tonumber(i.nroots) - 1 do roots[#roots + 1] = cid.format(i.roots[k]) end
  return {
    version = i.version, roots = roots, data_offset = tonumber(i.data_offset),
    data_size = tonumber(i.data_size), index_offset = tonumber(i.index_offset),
  }
end

--- Next verified block: cid string, bytes, payload offset; nil at the end;
-- nil, msg, name on a bad section.
function Reader:next()
  local c, d, n, off, eb = ffi_new("ipk_cid_t"), ffi_new("const uint8_t*[1]"), ffi_new("size_t[1]"),
    ffi_new("uint64_t[1]"), core.errbuf()
  local rc = lib.ipk_car_reader_next(self.h, c, d, n, off, eb)
  if rc < 0 then return core.check(rc, eb, self.path) end
  if rc == 0 then return nil end
  return cid.format(c), ffi_string(d[0], n[0]), tonumber(off[0])
end

--- Release the file.
function Reader:close()
  if self.h then lib.ipk_car_reader_free(ffi_gc(self.h, nil)); self.h = nil end
end

--- Read a whole CAR: header facts plus every block's {cid, offset, size}
-- (synchronous; for listing and tests).
-- @return {version=, roots=, blocks={...}, ...} | nil, msg, name
function M.list(path, o)
  local r, msg, name = M.open(path, o)
  if not r then return nil, msg, name end
  local res = r:info()
  res.blocks = {}
  while true do
    local c, data, off = r:next()
    if not c then
      if data then r:close(); return nil, data, off end
      break
    end
    res.blocks[#res.blocks + 1] = { cid = c, offset = off, size = #data }
  end
  r:close()
  return res
end

--- Verify a CAR file and (when sink is given) put its blocks there. Runs on
-- the thread pool; yields inside a task. Nothing is stored unless every
-- block of the file verified.
-- @param path string
-- @param o {sink = ipk_blocks_t cdata | nil, zero_len_eof = bool}
-- @return {version=, roots={...}, blocks=n, bytes=n} | nil, msg, name
function M.import(path, o)
  if type(path) ~= "string" then error("car.import: path string expected", 2) end
  if not sched.in_task() then return sched.run_task(M.import, path, o) end
  o = o or {}
  local job = ffi_new("ipk_car_import_job_t")
  local sink = o.sink and ffi_new("ipk_blocks_t[1]", o.sink) or nil
  job.path = path
  job.flags = flags_of(o)
  job.sink = sink
  local rc = sched.job(lib.ipk_car_import_job, job)
  local _ = sink   -- anchored until the job is done
  if rc ~= 0 then
    lib.ipk_car_import_job_clear(job)
    return core.check(rc, job.eb, path)
  end
  local roots = {}
  for k = 0, tonumber(job.nroots) - 1 do roots[#roots + 1] = cid.format(job.roots[k]) end
  lib.ipk_car_import_job_clear(job)
  return { version = job.version, roots = roots, blocks = tonumber(job.blocks), bytes = tonumber(job.bytes) }
end

--- Write the DAG under root as a CARv1 (root first, each block once) to
-- path (written to a temp name, then renamed: never a partial file) or to
-- an open fd. Blocks come from src (ipk_blocks_t), verified.
-- @return {blocks=n, bytes=n} | nil, msg, name
function M.export(root, src, out)
  if not sched.in_task() then return sched.run_task(M.export, root, src, out) end
  local rc_cid, msg, name = root, nil, nil
  if type(root) == "string" then rc_cid, msg, name = cid.parse(root) end
  if not rc_cid then return nil, msg, name end
  if type(src) ~= "cdata" then error("car.export: blocks (ipk_blocks_t) expected", 2) end
  local srcp = ffi_new("ipk_blocks_t[1]", src)
  local fd, tmp = out, nil
  if type(out) == "string" then
    tmp = out .. ".ipk-tmp-" .. ffi.C.getpid()
    local ferr, fname
    fd, ferr, fname = fs.create(tmp, { excl = true, mode = 420 })
    if not fd then return nil, "car: " .. tostring(ferr), fname end
  elseif type(out) ~= "number" then
    error("car.export: output path or fd expected", 2)
  end
  local job = ffi_new("ipk_car_export_job_t")
  job.src = srcp
  job.root = rc_cid
  job.fd = fd
  local rc = sched.job(lib.ipk_car_export_job, job)
  if tmp then
    if rc == 0 and ffi.C.fsync(fd) ~= 0 then rc = -1 end
    if not fs.close(fd) and rc == 0 then rc = -1 end
    if rc == 0 and not os.rename(tmp, out) then rc = -1 end
    if rc ~= 0 then os.remove(tmp) end
    if rc == -1 then return nil, "car: cannot write " .. out, "EIO" end
  end
  if rc ~= 0 then return core.check(rc, job.eb) end
  return { blocks = tonumber(job.blocks), bytes = tonumber(job.bytes) }
end

--- The varint-framed CARv1 header for a list of root CIDs (strings or cdata).
function M.header(roots)
  local n = #roots
  local arr = ffi_new("ipk_cid_t[?]", n > 0 and n or 1)
  for i, r in ipairs(roots) do
    local c, msg, name = r, nil, nil
    if type(r) == "string" then c, msg, name = cid.parse(r) end
    if not c then return nil, msg, name end
    arr[i - 1] = c
  end
  local buf = ffi_new("uint8_t[?]", 64 + n * 200)
  local len = lib.ipk_car_header(arr, n, buf, 64 + n * 200)
  if len < 0 then return core.check(len) end
  return ffi_string(buf, len)
end

local Writer = {}
Writer.__index = Writer

--- A section writer appending to a new file at path (the header is written
-- separately, once the roots are known; see M.header). Its :blocks() is a
-- thread-safe sink for the importer.
-- @return writer | nil, msg, name
function M.writer(path)
  local fd, ferr, fname = fs.create(path, { mode = 384 })
  if not fd then return nil, ferr, fname end
  local out = ffi_new("ipk_car_writer_t*[1]")
  local rc = lib.ipk_car_writer_new(fd, out)
  if rc ~= 0 then fs.close(fd); return core.check(rc) end
  return setmetatable({ h = ffi_gc(out[0], lib.ipk_car_writer_free), fd = fd, path = path }, Writer)
end

--- The writer as an ipk_blocks_t sink (valid while the writer is open).
function Writer:blocks()
  return lib.ipk_car_writer_blocks(self.h)
end

--- Sections written (blocks, bytes).
function Writer:counts()
  return tonumber(lib.ipk_car_writer_blocks_written(self.h)), tonumber(lib.ipk_car_writer_bytes(self.h))
end

--- Close the file (the writer's sink becomes invalid).
function Writer:close()
  if self.h then
    lib.ipk_car_writer_free(ffi_gc(self.h, nil))
    self.h = nil
    fs.close(self.fd)
  end
end

return M
