--- Test support shared by every spec: fixtures, temp dirs, running ipkrun.
local M = {}

-- The sanitizer pass preloads libasan into this luajit (LD_PRELOAD). Child
-- processes must not inherit it: the sanitized ipkrun links it itself, and
-- tools like pkill or chromium hang or crash with it preloaded.
-- Specs that start luajit themselves (loading the sanitized libipk.so) use
-- M.luajit, which puts the preload back for that process only.
M.luajit = "luajit"
local preload = os.getenv("LD_PRELOAD")
if preload and preload ~= "" then
  local ffi = require "ffi"
  pcall(ffi.cdef, "int unsetenv(const char *name);")
  ffi.C.unsetenv("LD_PRELOAD")
  M.luajit = "LD_PRELOAD='" .. preload:gsub("'", "'\\''") .. "' luajit"
end
-- The sanitized pass (ipkrun built with ASan: more memory per allocation,
-- a quarantine of freed blocks, no RLIMIT_DATA part of the memory cap).
M.sanitized = (preload or ""):match("asan") ~= nil

local root = os.getenv("IPK_SOURCE_DIR")
if not root or root == "" then
  local p = io.popen("pwd"); root = p:read("*l"); p:close()
end
M.root = root
M.build = os.getenv("IPK_BUILD_DIR") or (root .. "/build")
M.ipkrun_path = M.build .. "/ipkrun"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end
M.exists = exists

--- Fixtures folder: $IPK_FIXTURES, else <repo root>/../shared/fixtures.
-- Returns nil when absent outside CI (callers mark their tests skipped);
-- with CI=true a missing folder is an error.
function M.fixtures()
  local dir = os.getenv("IPK_FIXTURES")
  if not dir or dir == "" then dir = root .. "/../shared/fixtures" end
  if exists(dir .. "/README.md") then return dir end
  if os.getenv("CI") == "true" then
    error("fixtures folder missing: " .. dir .. " (CI=true requires it)", 2)
  end
  return nil
end

--- Read a whole file (binary).
function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a"); f:close(); return s
end

--- Write a whole file (binary).
function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data); f:close()
end

function M.json_file(path)
  return require("cjson").decode(M.read(path))
end

--- Shell-quote one argument.
function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- A new empty temporary directory (removed by M.rm_rf).
function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/ipk-spec.XXXXXX"); local d = p:read("*l"); p:close()
  return d
end

function M.rm_rf(d)
  if d and d:match("^/tmp/ipk%-spec%.") then os.execute("rm -rf " .. M.q(d)) end
end

--- Run a shell command; returns exit code, stdout, stderr.
function M.sh(cmd)
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute(cmd .. " >" .. out .. " 2>" .. err .. " </dev/null")
  if type(ok) == "number" then code = ok / 256 elseif how == "signal" then code = 128 + code end
  local so, se = M.read(out), M.read(err)
  os.remove(out); os.remove(err)
  return code or 0, so, se
end

--- Run ipkrun with args (a list, quoted here) and env (table, optional).
-- Returns exit code, stdout, stderr.
function M.ipkrun(args, env)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. M.q(v) end
  parts[#parts + 1] = M.q(M.ipkrun_path)
  for _, a in ipairs(args) do parts[#parts + 1] = M.q(a) end
  return M.sh(table.concat(parts, " "))
end

--- ipkrun with varargs: run(env, "model", "list") -> code, stdout, stderr.
function M.run(env, ...)
  return M.ipkrun({ ... }, env)
end

--- ipkrun that must succeed; returns its stdout decoded as JSON.
function M.ok_json(env, ...)
  local code, out, err = M.run(env, ...)
  assert(code == 0, table.concat({ ... }, " ") .. ": " .. err)
  return require("cjson").decode(out)
end

--- The CID `ipkrun add -n -Q --cid-version=1 [-r] PATH` prints.
function M.only_hash(env, path, recursive)
  local args = { "add", "-n", "-Q", "--cid-version=1" }
  if recursive then table.insert(args, 2, "-r") end
  args[#args + 1] = path
  local code, out, err = M.ipkrun(args, env)
  assert(code == 0, "add -n " .. path .. ": " .. err)
  return (out:gsub("%s+$", ""))
end

--- Blocks stored in the home's store (packs and old-layout files), by
-- opening it in this process; 0 for a home that has no store yet.
function M.store_blocks(home)
  if not exists(home .. "/blocks") then return 0 end
  local s = assert(require("ipk.store").open(home))
  local st = assert(s:stat())
  s:close()
  return st.blocks + st.legacy_blocks
end

--- Damage stored blocks on disk: flip the byte at `at` (default 0) of the
-- stored bytes of each CID given, or of every block when cids is nil.
function M.damage_blocks(home, cids, at)
  local store = require "ipk.store"
  local s = assert(store.open(home))
  local locs = {}
  if cids then
    for _, c in ipairs(cids) do locs[#locs + 1] = assert(s:locate(c), "not stored: " .. c) end
  else
    -- the index schema is documented in core/include/ipk/store.h
    assert(s:sync())
    local idx = assert(store.db_open(home .. "/blocks/index.db"))
    for _, r in ipairs(idx:query("SELECT pack, off FROM blocks")) do
      locs[#locs + 1] = { path = ("%s/blocks/packs/%010d.pack"):format(home, r.pack), offset = r.off }
    end
    idx:close()
  end
  s:close()
  for _, l in ipairs(locs) do
    local f = assert(io.open(l.path, "r+b"))
    f:seek("set", l.offset + (at or 0))
    local b = f:read(1)
    f:seek("set", l.offset + (at or 0))
    f:write(string.char((b:byte() + 1) % 256))
    f:close()
  end
  return #locs
end

return M
