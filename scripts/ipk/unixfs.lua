--- ipk.unixfs: `ipfs add` / `cat` / `get` from Lua.
-- The work runs in C on the libuv thread pool (sched.job); inside a task the
-- calls yield, outside a task they run one scheduler turn themselves.
-- Expected failures return nil, message, name; bad option values too
-- (they are user input), while wrong argument types raise.
local core = require "ipk.core"
local sched = require "ipk.sched"
local cid = require "ipk.cid"
local fs = require "ipk.fs"
local lib, ffi = core.lib, core.ffi

local type, tonumber, pairs, error = type, tonumber, pairs, error
local ffi_new, ffi_string = ffi.new, ffi.string

local M = {}

--- Profile names (ARCHITECTURE.md section 4).
M.PROFILE_V0 = "unixfs-v0-2015"
M.PROFILE_V1 = "unixfs-v1-2025"

local KNOWN = {
  profile = true, cid_version = true, raw_leaves = true, chunker = true, max_links = true,
  hash = true, threads = true, recursive = true, only_hash = true, blocks = true, hidden = true,
}


--- Build ipk_unixfs_opts_t from a Lua table, with Kubo's flag semantics:
-- `profile` sets the defaults; cid_version=1 implies raw leaves unless
-- raw_leaves=false is given; a non-sha2-256 hash implies CIDv1. The
-- profile name is kept only when no option changes what it stands for.
-- @return opts cdata | nil, msg, name
function M.options(o)
  o = o or {}
  if type(o) ~= "table" then error("unixfs options: table expected", 3) end
  for k in pairs(o) do
    if not KNOWN[k] then return nil, "unknown unixfs option '" .. tostring(k) .. "'", "EINVAL" end
  end
  local opts, eb = ffi_new("ipk_unixfs_opts_t"), core.errbuf()
  local profile = o.profile
  if profile ~= nil and type(profile) ~= "string" then
    return nil, "profile must be a string", "EINVAL"
  end
  if lib.ipk_unixfs_opts_init(opts, profile) ~= 0 then
    return nil, "unknown profile '" .. profile .. "' (known: " .. M.PROFILE_V0 .. ", "
      .. M.PROFILE_V1 .. ")", "EINVAL"
  end
  local base = ffi_new("ipk_unixfs_opts_t", opts)
  if o.hash ~= nil then
    local code = cid.hash[o.hash] or (type(o.hash) == "number" and o.hash)
    if not code or code == 0 then
      return nil, "unsupported hash '" .. tostring(o.hash) .. "' (a multihash name: sha2-256, sha2-512, blake2b-256, "
        .. "sha3-256, keccak-256, ...)", "EUNSUPP"
    end
    opts.hash = code
    if code ~= 0x12 and o.cid_version == nil then opts.cid_version = 1 end
  end
  if o.cid_version ~= nil then
    if o.cid_version ~= 0 and o.cid_version ~= 1 then
      return nil, "cid_version must be 0 or 1, got " .. tostring(o.cid_version), "EINVAL"
    end
    opts.cid_version = o.cid_version
  end
  if o.raw_leaves ~= nil then
    if type(o.raw_leaves) ~= "boolean" then return nil, "raw_leaves must be a boolean", "EINVAL" end
    opts.raw_leaves = o.raw_leaves and 1 or 0
  elseif opts.cid_version == 1 then
    opts.raw_leaves = 1
  end
  if o.chunker ~= nil then
    if type(o.chunker) ~= "string" then return nil, "chunker must be a string like size-262144", "EINVAL" end
    local rc = lib.ipk_unixfs_opts_set_chunker(opts, o.chunker, eb)
    if rc ~= 0 then return core.check(rc, eb) end
  end
  if o.max_links ~= nil then
    if type(o.max_links) ~= "number" or o.max_links < 2 or o.max_links ~= math.floor(o.max_links) then
      return nil, "max_links must be an integer >= 2", "EINVAL"
    end
    opts.max_links = o.max_links
  end
  if o.hidden ~= nil then
    if type(o.hidden) ~= "boolean" then return nil, "hidden must be a boolean", "EINVAL" end
    opts.hidden = o.hidden and 1 or 0
  end
  if o.threads ~= nil then
    if type(o.threads) ~= "number" or o.threads < 0 then
      return nil, "threads must be a number >= 0", "EINVAL"
    end
    opts.threads = o.threads
  end
  if opts.cid_version == 0 and opts.hash ~= 0x12 then
    return nil, "CIDv0 requires sha2-256", "EINVAL"
  end
  if opts.cid_version ~= base.cid_version or opts.raw_leaves ~= base.raw_leaves
    or opts.chunk_size ~= base.chunk_size or opts.max_links ~= base.max_links
    or opts.hash ~= base.hash then
    opts.profile = ""
  end
  return opts
end

local function sink_ptr(blocks)
  if blocks == nil then return nil end
  if type(blocks) ~= "cdata" then error("unixfs: blocks must be an ipk_blocks_t cdata", 3) end
  if ffi.istype("ipk_blocks_t", blocks) then return ffi_new("ipk_blocks_t[1]", blocks) end
  return blocks
end

--- Import a file or (recursive=true) a directory, like `ipfs add`.
-- @param path string
-- @param o options: cid_version, raw_leaves, chunker ("size-N"), profile,
--   max_links, hash, threads, recursive, only_hash, blocks (ipk_blocks_t)
-- @return {root=cid string, size=cumulative size, profile=name or "",
--   entries={{path=,cid=,size=},...} in Kubo's output order} | nil, msg, name
function M.add(path, o)
  if type(path) ~= "string" then error("unixfs.add: path string expected", 2) end
  if not sched.in_task() then return sched.run_task(M.add, path, o) end
  o = o or {}
  local recursive, only_hash, blocks = o.recursive, o.only_hash, o.blocks
  local copts = {}
  for k, v in pairs(o) do
    if k ~= "recursive" and k ~= "only_hash" and k ~= "blocks" then copts[k] = v end
  end
  local opts, msg, name = M.options(copts)
  if not opts then return nil, msg, name end
  local sink = nil
  if not only_hash then sink = sink_ptr(blocks) end
  local job = ffi_new("ipk_unixfs_add_job_t")
  job.opts = opts
  job.path = path
  job.recursive = recursive and 1 or 0
  job.sink = sink
  -- A cancelled task raises from sched.job (after the job stopped): free
  -- what the job allocated before passing the cancellation on.
  local ok, rc = pcall(sched.job, lib.ipk_unixfs_add_job, job)
  if not ok then
    lib.ipk_unixfs_add_job_clear(job)
    error(rc, 0)
  end
  if rc ~= 0 then
    lib.ipk_unixfs_add_job_clear(job)
    return core.check(rc, job.eb)
  end
  local entries = {}
  for i = 0, tonumber(job.nentries) - 1 do
    local e = job.entries[i]
    entries[#entries + 1] = { path = ffi_string(e.path), cid = cid.format(e.cid), size = tonumber(e.size) }
  end
  lib.ipk_unixfs_add_job_clear(job)
  local _ = sink -- keep the sink copy alive across the job
  return {
    root = cid.format(job.root),
    root_cid = ffi_new("ipk_cid_t", job.root),
    size = tonumber(job.root_size),
    profile = ffi_string(opts.profile),
    entries = entries,
  }
end

--- Import a Lua string as one file (synchronous; meant for small data).
-- @return cid string, cumulative size | nil, msg, name
function M.add_bytes(data, o)
  if type(data) ~= "string" then error("unixfs.add_bytes: string expected", 2) end
  o = o or {}
  local copts = {}
  for k, v in pairs(o) do if k ~= "only_hash" and k ~= "blocks" and k ~= "recursive" then copts[k] = v end end
  local opts, msg, name = M.options(copts)
  if not opts then return nil, msg, name end
  local sink = (not o.only_hash) and sink_ptr(o.blocks) or nil
  local root, size, eb = ffi_new("ipk_cid_t"), ffi_new("uint64_t[1]"), core.errbuf()
  local rc = lib.ipk_unixfs_add_bytes(opts, data, #data, sink, root, size, eb)
  if rc ~= 0 then return core.check(rc, eb, "add bytes") end
  return cid.format(root), tonumber(size[0])
end

local function want_cid(c)
  if type(c) == "string" then return cid.parse(c) end
  if cid.is_cid(c) then return c end
  error("unixfs: CID (string or cdata) expected", 3)
end

--- Stream the file at cid to fd_or_writer: an integer fd, a function(chunk),
-- or an object with :write(chunk) (e.g. io.stdout). Every block is verified.
-- @return true | nil, msg, name
function M.cat(c, blocks, out)
  if not sched.in_task() then return sched.run_task(M.cat, c, blocks, out) end
  local root, msg, name = want_cid(c)
  if not root then return nil, msg, name end
  local src = sink_ptr(blocks)
  if src == nil then error("unixfs.cat: blocks expected", 2) end
  local job = ffi_new("ipk_unixfs_cat_job_t")
  job.src = src
  job.root = root
  if type(out) == "number" then
    job.fd = out
    local rc = sched.job(lib.ipk_unixfs_cat_job, job)
    if rc ~= 0 then return core.check(rc, job.eb) end
    return true
  end
  local write
  if type(out) == "function" then write = out
  elseif out and type(out.write) == "function" then write = function(s) return out:write(s) end
  else error("unixfs.cat: fd, function or object with :write expected", 2) end
  -- C never calls Lua (and the job runs on another thread), so stage the
  -- bytes in a temp file and replay them to the writer.
  local tmp = os.tmpname()
  local fd, ferr, fname = fs.create(tmp, { mode = 384 })
  if not fd then os.remove(tmp); return nil, "cat: temp file: " .. tostring(ferr), fname end
  job.fd = fd
  local rc = sched.job(lib.ipk_unixfs_cat_job, job)
  fs.close(fd)
  if rc ~= 0 then os.remove(tmp); return core.check(rc, job.eb) end
  local f = io.open(tmp, "rb")
  while true do
    local chunk = f:read(1048576)
    if not chunk then break end
    write(chunk)
  end
  f:close()
  os.remove(tmp)
  return true
end

--- Materialize cid (file or directory) at outpath, like `ipfs get -o`.
-- Unsafe link names are rejected before anything is written.
-- @return true | nil, msg, name
function M.get(c, blocks, outpath)
  if type(outpath) ~= "string" then error("unixfs.get: output path expected", 2) end
  if not sched.in_task() then return sched.run_task(M.get, c, blocks, outpath) end
  local root, msg, name = want_cid(c)
  if not root then return nil, msg, name end
  local src = sink_ptr(blocks)
  if src == nil then error("unixfs.get: blocks expected", 2) end
  local job = ffi_new("ipk_unixfs_get_job_t")
  job.src = src
  job.root = root
  job.outpath = outpath
  local rc = sched.job(lib.ipk_unixfs_get_job, job)
  if rc ~= 0 then return core.check(rc, job.eb) end
  return true
end

return M
