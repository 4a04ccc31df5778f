--- ipk.fs: the file system for the Lua layer (core/include/ipk/fs.h), so
-- nothing shells out: walks, stat, mkdir -p, temp dirs, rm -rf, copying or
-- hard-linking a tree, fingerprints, files created for writing.
-- Synchronous (these are metadata calls, not bulk I/O).
-- Errors: nil, msg, name (ENOENT, EEXIST, EUNSAFE, EIO, ...); misuse
-- (a non-string path) raises.
-- Symlinks are not followed unless {follow = true} is given.
local core = require "ipk.core"
local ffi, lib = core.ffi, core.lib

local type, tonumber, error = type, tonumber, error

local M = {}

local TYPES = { [lib.IPK_FS_FILE] = "file", [lib.IPK_FS_DIR] = "dir", [lib.IPK_FS_LINK] = "link",
                [lib.IPK_FS_OTHER] = "other" }

-- A non-string path is misuse (raises); an empty one is input (a user's
-- `dataset add ''`): the caller gets nil, "empty path", "EINVAL" (or false
-- from exists/is_dir), as from any path that cannot be used.
local function want_path(p, what)
  if type(p) ~= "string" then error("fs." .. what .. ": path string expected, got " .. type(p), 3) end
  return p ~= ""
end
local function empty(what) return nil, "fs." .. what .. ": empty path", "EINVAL" end

local function follow(o) return (o and o.follow) and lib.IPK_FS_FOLLOW or 0 end

-- One entry as a table: {path, type = "file"|"dir"|"link"|"other", size
-- (bytes), mtime (seconds since the epoch, fractional), ino}.
local function entry(e)
  return { path = ffi.string(e.path), type = TYPES[e.type] or "other", size = tonumber(e.size),
           mtime = tonumber(e.mtime_ns) / 1e9, ino = tonumber(e.ino) }
end

--- The entries under root, sorted bytewise by relative path (root itself
-- not included; directories are).
-- @param o {depth = 1 (direct children) | nil (all), follow = bool}
-- @return list of entries (see above) | nil, msg, name
function M.walk(root, o)
  if not want_path(root, "walk") then return empty("walk") end
  local depth = o and o.depth or 0
  local list, eb = ffi.new("ipk_fs_list_t"), core.errbuf()
  local rc = lib.ipk_fs_walk(root, depth, follow(o), list, eb)
  if rc ~= 0 then return core.check(rc, eb) end
  local out = {}
  for i = 0, tonumber(list.count) - 1 do out[i + 1] = entry(list.items[i]) end
  lib.ipk_fs_list_free(list)
  return out
end

--- lstat (stat with {follow = true}): an entry with path "" | nil, msg, name.
function M.stat(path, o)
  if not want_path(path, "stat") then return empty("stat") end
  local e, eb = ffi.new("ipk_fs_entry_t"), core.errbuf()
  local rc = lib.ipk_fs_stat(path, follow(o), e, eb)
  if rc ~= 0 then return core.check(rc, eb) end
  return entry(e)
end

--- Whether path exists (a symlink counts when its target exists, as test -e).
function M.exists(path)
  if not want_path(path, "exists") then return false end
  return M.stat(path, { follow = true }) ~= nil
end

--- Whether path is a directory (or a symlink to one, as test -d).
function M.is_dir(path)
  if not want_path(path, "is_dir") then return false end
  local e = M.stat(path, { follow = true })
  return e ~= nil and e.type == "dir"
end

--- mkdir -p (mode before umask, default 0755). @return true | nil, msg, name
function M.mkdir_p(path, mode)
  if not want_path(path, "mkdir_p") then return empty("mkdir_p") end
  local eb = core.errbuf()
  return core.check(lib.ipk_fs_mkdir_p(path, mode or 493, eb), eb)
end

--- A new directory dir/PREFIXxxxxxx (mode 0700; dir created if missing).
-- @return its path | nil, msg, name
function M.mkdtemp(dir, prefix)
  if not want_path(dir, "mkdtemp") then return empty("mkdtemp") end
  local buf, eb = ffi.new("char[4096]"), core.errbuf()
  local rc = lib.ipk_fs_mkdtemp(dir, prefix or "tmp.", buf, 4096, eb)
  if rc ~= 0 then return core.check(rc, eb) end
  return ffi.string(buf)
end

--- rm -rf: never follows a symlink, never crosses into another file system
-- (EUNSAFE). A missing path is success. @return true | nil, msg, name
function M.rm_rf(path)
  if not want_path(path, "rm_rf") then return empty("rm_rf") end
  local eb = core.errbuf()
  return core.check(lib.ipk_fs_rm_rf(path, eb), eb)
end

--- Copy the file or tree src to dst (which must not exist): files are
-- hard-linked when on the same file system, else copied; symlinks are
-- re-created. @param o {copy_only = bool}
-- @return number of files linked | nil, msg, name (dst may hold a partial copy)
function M.copy_tree(src, dst, o)
  if not want_path(src, "copy_tree") then return empty("copy_tree") end
  if not want_path(dst, "copy_tree") then return empty("copy_tree") end
  local n, eb = ffi.new("size_t[1]"), core.errbuf()
  local rc = lib.ipk_fs_copy_tree(src, dst, (o and o.copy_only) and lib.IPK_FS_COPY_ONLY or 0, n, eb)
  if rc ~= 0 then return core.check(rc, eb) end
  return tonumber(n[0])
end

--- Fingerprint of a file or tree from names, types, sizes, mtimes and
-- inodes (contents are not read), as 64 hex digits.
-- @return hex | nil, msg, name ("ENOENT" when path does not exist)
function M.fingerprint(path, o)
  if not want_path(path, "fingerprint") then return empty("fingerprint") end
  local out, eb = ffi.new("uint8_t[?]", lib.IPK_FS_FINGERPRINT_SIZE), core.errbuf()
  local rc = lib.ipk_fs_fingerprint(path, follow(o), out, eb)
  if rc ~= 0 then return core.check(rc, eb) end
  return (ffi.string(out, lib.IPK_FS_FINGERPRINT_SIZE):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- Open path for writing (created, truncated, close-on-exec).
-- @param o {mode = 420 (0644), excl = bool (must not exist)}
-- @return fd (close it with fs.close) | nil, msg, name
function M.create(path, o)
  if not want_path(path, "create") then return empty("create") end
  local fd, eb = ffi.new("int[1]"), core.errbuf()
  local rc = lib.ipk_fs_create(path, (o and o.excl) and lib.IPK_FS_EXCL or 0, o and o.mode or 420, fd, eb)
  if rc ~= 0 then return core.check(rc, eb) end
  return fd[0]
end

--- close(2) a descriptor from fs.create. @return true | nil, msg, name
function M.close(fd)
  if type(fd) ~= "number" then error("fs.close: fd number expected", 2) end
  local eb = core.errbuf()
  return core.check(lib.ipk_fs_close(fd, eb), eb)
end

return M
