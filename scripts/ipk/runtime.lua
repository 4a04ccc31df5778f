--- ipk.runtime: process-wide state: $IPK_HOME, the open store, logging.
-- Logging goes to stderr (stdout carries results: one JSON object with --json).
local store = require "ipk.store"
local backend = require "ipk.backend"

local M = {}

local store_obj

--- The store home ($IPK_HOME, else the XDG data dir).
function M.home()
  local h = os.getenv("IPK_HOME")
  if h and h ~= "" then return h end
  local x = os.getenv("XDG_DATA_HOME")
  if x and x ~= "" then return x .. "/ipk" end
  local home = os.getenv("HOME")
  -- Never guess (a store at /.local/share would surprise everyone).
  if not home or home == "" then error("store: no home: set IPK_HOME (or XDG_DATA_HOME or HOME)", 0) end
  return home .. "/.local/share/ipk"
end

--- The embedded store, opened once (raises with a clear message on failure).
function M.store()
  if store_obj then return store_obj end
  local s, err = store.open(M.home())
  if not s then error("store: " .. tostring(err), 0) end
  store_obj = s
  return s
end

--- Backend selection (issue 3, issue 8): `--api URL` (cli.lua sets M.api)
-- or $IPK_API make every command use that Kubo RPC node; `--gateway URL`
-- or $IPK_GATEWAY a read-only trustless gateway. $IPK_API_AUTH (or
-- --api-auth) is sent as the Authorization header ("Bearer TOKEN",
-- "Basic …"). runtime.store() stays the embedded store: it holds the
-- catalog (ipk.db) and is the local tier remote reads land in.
M.api, M.api_auth, M.gateway = nil, nil, nil

local backend_obj

local function env(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
  return nil
end

--- Where blocks and pins go: an ipk.backend (see backend/init.lua for the
-- protocol). The embedded store by default; with --api/--gateway the
-- tiered cache (memory + embedded store) in front of that remote. Always
-- a backend: callers never branch on local vs remote.
-- Raises with a clear message when the URL is not one (a usage error).
function M.backend()
  if backend_obj then return backend_obj end
  local b = backend
  local api, gw = M.api or env("IPK_API"), M.gateway or env("IPK_GATEWAY")
  local obj, err
  if api then
    obj, err = b.open { kind = "kubo", url = api, auth = M.api_auth or env("IPK_API_AUTH"), cache = true, store = M.store() }
  elseif gw then
    obj, err = b.open { kind = "gateway", url = gw, cache = true, store = M.store() }
  else
    obj, err = b.open { kind = "embedded", store = M.store() }
  end
  if not obj then error((api and "--api: " or gw and "--gateway: " or "store: ") .. tostring(err), 0) end
  backend_obj = obj
  return obj
end

--- Use b as the backend from now on (specs, `push`/`pull` helpers); nil
-- forgets the current one so the next M.backend() opens it again.
function M.set_backend(b)
  backend_obj = b
end

--- Persist the cache's hit/miss counts (no-op without a cache).
function M.flush_stats()
  if backend_obj and backend_obj.flush then pcall(backend_obj.flush, backend_obj) end
end

M.quiet = false

--- Progress/log line on stderr.
function M.log(fmt, ...)
  if M.quiet then return end
  io.stderr:write(string.format(fmt, ...), "\n")
  io.stderr:flush()
end

return M
