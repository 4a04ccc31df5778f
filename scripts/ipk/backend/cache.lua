--- ipk.backend.cache: the tiered cache, a backend (ipk.backend) in front of
-- a remote one (kubo or gateway): a small in-memory LRU of blocks, then the
-- embedded store (the local tier), then the remote.
-- Reads: remote blocks are verified by the remote backend and land in the
-- local store (verified again by it), so the next read is local. Whole DAGs
-- (cat, save, export_dag) arrive as one verified CAR.
-- Writes: the importer writes into the local tier (blocks(), add, the
-- registry...); what is pinned is shipped to the remote before it is
-- pinned there (ipk.backend.transfer: CARs for UnixFS, block/put for
-- records), so `--api URL model add` leaves the entry pinned on the node.
-- put goes to the remote (and the local tier). Pins are the remote's: the
-- local copies are a cache that `ipkrun gc` without --api may drop.
-- Hits and misses are counted in ipk.db (table io_cache_stats) so `ipkrun
-- stats` shows them across runs.
local backend = require "ipk.backend.util"
local transfer = require "ipk.backend.transfer"
local embedded = require "ipk.backend.embedded"
local car = require "ipk.car"
local unixfs = require "ipk.unixfs"
local fs = require "ipk.fs"

local type, error, setmetatable, tostring, ipairs, pairs = type, error, setmetatable, tostring, ipairs, pairs

local M = {}

local COUNTERS = { "mem_hits", "store_hits", "misses", "fetched_blocks", "fetched_bytes" }
M.COUNTERS = COUNTERS

local function ensure_table(db)
  db:exec("CREATE TABLE IF NOT EXISTS io_cache_stats (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
end

--- Persisted counters of a store: {mem_hits=, store_hits=, misses=, ...}.
function M.stats(store)
  local db = store:db()
  ensure_table(db)
  local out = {}
  for _, k in ipairs(COUNTERS) do out[k] = 0 end
  for _, row in ipairs(db:query("SELECT name, n FROM io_cache_stats")) do out[row.name] = row.n end
  return out
end

local C = {}
C.__index = C

--- A cache over remote (a kubo or gateway backend) backed by store (an
-- open ipk.store, the local tier).
-- @param o {remote=, store=, capacity = blocks kept in memory (default 256)}
function M.new(o)
  if type(o) ~= "table" or type(o.remote) ~= "table" or not o.store then
    error("cache.new: {remote = backend, store = ipk.store} expected", 2)
  end
  return setmetatable({
    kind = "cache", remote = o.remote, store = o.store, url = o.remote.url, writable = o.remote.writable,
    local_ = embedded.new { store = o.store }, capacity = o.capacity or 256,
    lru = {}, order = {}, n = 0, counts = {}, shipped = {},
  }, C)
end

function C:describe() return self.remote:describe() .. " (cached in " .. tostring(self.store.home) .. ")" end

function C:count(k, d)
  self.counts[k] = (self.counts[k] or 0) + (d or 1)
end

--- Add this cache's counts to the persisted ones and reset them.
function C:flush()
  local db = self.store:db()
  ensure_table(db)
  for k, v in pairs(self.counts) do
    db:query("INSERT INTO io_cache_stats(name, n) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET n = n + excluded.n", k, v)
  end
  self.counts = {}
end

local function touch(self, key, bytes)
  if not self.lru[key] then
    self.n = self.n + 1
    if self.n > self.capacity then
      local old = table.remove(self.order, 1)
      self.lru[old] = nil
      self.n = self.n - 1
    end
  else
    for i, k in ipairs(self.order) do if k == key then table.remove(self.order, i) break end end
  end
  self.order[#self.order + 1] = key
  self.lru[key] = bytes
end

--- A block: memory, else the local store, else the remote (verified, then
-- stored locally).
function C:get(c, o)
  local p, key = backend.want(c)
  if not p then return nil, key, "ECID" end
  local b = self.lru[key]
  if b then self:count("mem_hits"); touch(self, key, b); return b end
  local data = self.store:get(p)
  if data then self:count("store_hits"); touch(self, key, data); return data end
  self:count("misses")
  local msg, name
  data, msg, name = self.remote:get(p, o)
  if not data then return nil, msg, name end
  local ok, perr, pname = self.store:put(p, data)
  if not ok then return nil, perr, pname end
  self:count("fetched_blocks"); self:count("fetched_bytes", #data)
  touch(self, key, data)
  return data
end

function C:has(c, o)
  local here = self.store:has(c)
  if here then return true end
  return self.remote:has(c, o)
end

function C:stat(c, o)
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  local data = self.lru[s] or self.store:get(p)
  if data then return { cid = s, size = #data } end
  return self.remote:stat(p, o)
end

function C:put(c, bytes)
  if not self.writable then return backend.read_only(self.remote.kind, "put") end
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  local ok, msg, name = self.remote:put(p, bytes)
  if not ok then return nil, msg, name end
  self.shipped[s] = true
  return self.store:put(p, bytes)
end

function C:delete(c)
  local ok, msg, name = self.remote:delete(c)
  if not ok then return nil, msg, name end
  self.store:del(c) -- the local copy too (absent is fine)
  local _, s = backend.want(c)
  if self.lru[s] then self.lru[s] = nil; self.n = self.n - 1
    for i, k in ipairs(self.order) do if k == s then table.remove(self.order, i) break end end
  end
  return true
end

--- Make the whole DAG under root local: a complete local DAG is a hit;
-- otherwise the remote sends it as a CAR, verified block by block, and it
-- is imported into the local store (nothing if any block fails).
-- @return {local_=bool, blocks=n} | nil, msg, name
function C:fetch_dag(root)
  local null = assert(fs.create("/dev/null"))
  local have = car.export(root, self.store:blocks(), null)
  fs.close(null)
  if have then
    self:count("store_hits", have.blocks)
    return { local_ = true, blocks = have.blocks }
  end
  self:count("misses")
  local tmp = os.tmpname()
  local info, msg, name = self.remote:export_dag(root, tmp)
  if not info then os.remove(tmp); return nil, msg, name end
  local imp
  imp, msg, name = car.import(tmp, { sink = self.store:blocks() })
  os.remove(tmp)
  if not imp then return nil, msg, name end
  self:count("fetched_blocks", imp.blocks); self:count("fetched_bytes", imp.bytes)
  return { local_ = false, blocks = imp.blocks }
end

--- Pin on the remote: when the DAG is (partly) in the local tier it is
-- shipped first (what the node lacks would otherwise have to come from
-- elsewhere), then pinned there.
function C:pin_add(c, o)
  o = o or {}
  if not self.writable then return backend.read_only(self.remote.kind, "pin add") end
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  if self.store:has(p) then
    if o.recursive == false and not self.shipped[s] then
      local bytes, msg, name = self.store:get(p)
      if not bytes then return nil, msg, name end
      local ok
      ok, msg, name = self.remote:put(p, bytes)
      if not ok then return nil, msg, name end
      self.shipped[s] = true
    elseif o.recursive ~= false then
      local res, msg, name = transfer.copy(self.local_, self.remote, { s }, { pin = false })
      -- a DAG only partly local: the node may hold (or find) the rest
      if not res and name ~= "ENOBLOCK" then return nil, msg, name end
    end
  end
  return self.remote:pin_add(p, o)
end

function C:pin_rm(c) return self.remote:pin_rm(c) end
function C:pin_ls(o) return self.remote:pin_ls(o) end
function C:pin_has(c) return self.remote:pin_has(c) end

--- A CAR into the remote (verified locally first; the local tier keeps
-- nothing: the remote is where it was asked to go).
function C:import_car(path, o)
  if not self.writable then return backend.read_only(self.remote.kind, "import CAR") end
  return self.remote:import_car(path, o)
end

function C:export_dag(c, path)
  local got, msg, name = self:fetch_dag(c)
  if not got then return nil, msg, name end
  return car.export(c, self.store:blocks(), path)
end

--- UnixFS import into the local tier, then shipped to the remote and pinned
-- there (o.pin ~= false), or shipped unpinned.
function C:add(path, o)
  o = o or {}
  if o.only_hash then return self.local_:add(path, o) end
  if not self.writable then return backend.read_only(self.remote.kind, "add") end
  local lo = {}
  for k, v in pairs(o) do lo[k] = v end
  lo.pin = false
  local res, msg, name = self.local_:add(path, lo)
  if not res then return nil, msg, name end
  local ok
  ok, msg, name = transfer.copy(self.local_, self.remote, { res.root }, { pin = o.pin ~= false, name = o.name })
  if not ok then return nil, msg, name end
  return res
end

function C:add_bytes(s, o)
  o = o or {}
  if not self.writable then return backend.read_only(self.remote.kind, "add") end
  local lo = {}
  for k, v in pairs(o) do lo[k] = v end
  lo.pin = false
  local c, size, name = self.local_:add_bytes(s, lo)
  if not c then return nil, size, name end
  local ok, msg, cname = transfer.copy(self.local_, self.remote, { c }, { pin = o.pin ~= false, name = o.name })
  if not ok then return nil, msg, cname end
  return c, size
end

--- File bytes, every block verified: the DAG is made local first (one
-- CAR from the remote on a miss), then the local verified cat.
function C:cat(c, out, o)
  local got, msg, name = self:fetch_dag(c)
  if not got then return nil, msg, name end
  return self.local_:cat(c, out, o)
end

function C:save(c, path)
  local got, msg, name = self:fetch_dag(c)
  if not got then return nil, msg, name end
  return unixfs.get(c, self.store:blocks(), path)
end

--- The local tier's block view: what is written there reaches the remote
-- when it is pinned (pin_add ships it).
function C:blocks() return self.store:blocks() end

--- The remote's gc (a node's repo/gc; a gateway has none).
function C:gc() return self.remote:gc() end

function C:close() self:flush() end

return M
