--- ipk.runtime: process-wide state: $IPK_HOME, the open store, logging.
-- Logging goes to stderr (stdout carries results: one JSON object with --json).
local store = require "ipk.store"
local kubo = require "ipk.kubo"
local gateway = require "ipk.gateway"
local cache = require "ipk.cache"

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

--- Remote node selection (issue 3): `--api URL` (cli.lua sets M.api) or
-- $IPK_API make commands use that Kubo RPC node; `--gateway URL` or
-- $IPK_GATEWAY a read-only trustless gateway. $IPK_API_AUTH (or
-- --api-auth) is sent as the Authorization header ("Bearer TOKEN",
-- "Basic …"). runtime.store() stays the embedded store: it is the local
-- cache remote reads land in.
M.api, M.api_auth, M.gateway = nil, nil, nil

local backend_obj, cache_obj

--- The remote backend (an ipk.kubo or ipk.gateway client), or nil when
-- everything is local (the embedded store).
function M.backend()
  if backend_obj then return backend_obj end
  local api = M.api or os.getenv("IPK_API")
  if api and api ~= "" then
    local auth = M.api_auth or os.getenv("IPK_API_AUTH")
    backend_obj = kubo.new { url = api, auth = (auth ~= "" and auth) or nil }
    return backend_obj
  end
  local gw = M.gateway or os.getenv("IPK_GATEWAY")
  if gw and gw ~= "" then
    backend_obj = gateway.new { url = gw }
    return backend_obj
  end
  return nil
end

--- The tiered cache (memory LRU + embedded store) in front of the remote
-- backend, or nil without one. Call runtime.flush_stats() before exiting.
function M.cache()
  if cache_obj then return cache_obj end
  local b = M.backend()
  if not b then return nil end
  cache_obj = cache.new { remote = b, store = M.store() }
  return cache_obj
end

--- Persist the cache's hit/miss counts (no-op without a cache).
function M.flush_stats()
  if cache_obj then pcall(cache_obj.flush, cache_obj) end
end

M.quiet = false

--- Progress/log line on stderr.
function M.log(fmt, ...)
  if M.quiet then return end
  io.stderr:write(string.format(fmt, ...), "\n")
  io.stderr:flush()
end

return M
