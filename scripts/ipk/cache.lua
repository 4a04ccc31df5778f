--- ipk.cache: the tiered cache in front of a remote backend (kubo or
-- gateway): a small in-memory LRU of blocks, then the embedded store, then
-- the remote. Remote reads are verified by the backend and land in the
-- embedded store (verified again by it), so the next read is local.
-- Hits and misses are counted in ipk.db (table io_cache_stats) so
-- `ipkrun stats` shows them across runs.
local car = require "ipk.car"
local fs = require "ipk.fs"

local type, error, setmetatable, tostring = type, error, setmetatable, tostring

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

local Cache = {}
Cache.__index = Cache

--- A cache over remote (a kubo or gateway client) backed by store.
-- @param o {remote=, store=, capacity = blocks kept in memory (default 256)}
function M.new(o)
  if type(o) ~= "table" or not o.remote or not o.store then error("cache.new: {remote=, store=} expected", 2) end
  return setmetatable({
    remote = o.remote, store = o.store, capacity = o.capacity or 256,
    lru = {}, order = {}, n = 0, counts = {},
  }, Cache)
end

function Cache:count(k, d)
  self.counts[k] = (self.counts[k] or 0) + (d or 1)
end

--- Add this cache's counts to the persisted ones and reset them.
function Cache:flush()
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

--- A block: memory, else the embedded store, else the remote (verified,
-- then stored).
-- @return bytes | nil, msg, name
function Cache:get(c)
  local key = tostring(c)
  local b = self.lru[key]
  if b then self:count("mem_hits"); touch(self, key, b); return b end
  local data = self.store:get(c)
  if data then self:count("store_hits"); touch(self, key, data); return data end
  self:count("misses")
  local msg, name
  data, msg, name = self.remote:block_get(c)
  if not data then return nil, msg, name end
  local ok, perr, pname = self.store:put(c, data)
  if not ok then return nil, perr, pname end
  self:count("fetched_blocks"); self:count("fetched_bytes", #data)
  touch(self, key, data)
  return data
end

--- Make the whole DAG under root local: a complete local DAG is a hit;
-- otherwise the remote sends it as a CAR, verified block by block, and it
-- is imported into the embedded store (nothing if any block fails).
-- @return {local_=bool, blocks=n} | nil, msg, name
function Cache:fetch_dag(root)
  local null = assert(fs.create("/dev/null"))
  local have = car.export(root, self.store:blocks(), null)
  fs.close(null)
  if have then
    self:count("store_hits", have.blocks)
    return { local_ = true, blocks = have.blocks }
  end
  self:count("misses")
  local tmp = os.tmpname()
  local info, msg, name = self.remote:dag_export(root, tmp)
  if not info then os.remove(tmp); return nil, msg, name end
  local imp
  imp, msg, name = car.import(tmp, { sink = self.store:blocks() })
  os.remove(tmp)
  if not imp then return nil, msg, name end
  self:count("fetched_blocks", imp.blocks); self:count("fetched_bytes", imp.bytes)
  return { local_ = false, blocks = imp.blocks }
end

return M
