--- ipk.registry.db: the registry's tables in $IPK_HOME/ipk.db (models,
-- model_aliases, registry_index) and row helpers shared by the catalog and
-- the export.
local runtime = require "ipk.runtime"
local json = require "ipk.json"

local type, tostring, ipairs, pairs, error = type, tostring, ipairs, pairs, error

local M = {}

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS models (
  name TEXT NOT NULL, version TEXT NOT NULL, model_cid TEXT NOT NULL,
  framework TEXT, format TEXT, metrics TEXT NOT NULL, params TEXT NOT NULL,
  lineage TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS model_aliases (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, alias TEXT NOT NULL,
  version TEXT, set_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registry_index (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, cid TEXT NOT NULL, created_at TEXT NOT NULL);
]]

-- Columns added to the issue-2 `models` table (migrated in place).
local NEW_COLUMNS = { entry_cid = "TEXT", tags = "TEXT", description = "TEXT", signature = "TEXT",
                      info = "TEXT", file = "TEXT" }

local migrated = setmetatable({}, { __mode = "k" })

--- The store's database with the registry tables (migrated in place once).
function M.db()
  local d = runtime.store():db()
  if migrated[d] then return d end
  d:exec(SCHEMA)
  local have = {}
  for _, r in ipairs(d:query("PRAGMA table_info(models)")) do have[r.name] = true end
  local missing = false
  for k in pairs(NEW_COLUMNS) do if not have[k] then missing = true end end
  if missing then
    -- Under the write lock, re-checked: two processes may migrate at once.
    local ok, err = d:tx(function()
      local now = {}
      for _, r in ipairs(d:query("PRAGMA table_info(models)")) do now[r.name] = true end
      for k, t in pairs(NEW_COLUMNS) do
        if not now[k] then d:exec("ALTER TABLE models ADD COLUMN " .. k .. " " .. t) end
      end
    end)
    if not ok then error("registry: migrate: " .. tostring(err), 0) end
  end
  migrated[d] = true
  return d
end

--- UTC time as ISO 8601 (the created_at/set_at columns).
function M.now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

--- A models row with its JSON columns decoded (in place).
function M.decode_row(r)
  if not r then return nil end
  r.metrics = json.decode(r.metrics) or {}
  r.params = json.decode(r.params) or {}
  r.lineage = json.decode(r.lineage) or {}
  r.tags = json.array(r.tags and json.decode(r.tags) or {})
  r.signature = r.signature and json.decode(r.signature) or nil
  r.info = r.info and json.decode(r.info) or nil
  if r.framework == "" then r.framework = nil end
  if r.format == "" then r.format = nil end
  return r
end

--- Whether n is a valid model or alias name.
function M.valid_name(n) return type(n) == "string" and n:match("^[%w][%w._-]*$") ~= nil end

--- Current version an alias points to, or nil.
function M.alias_target(d, name, alias)
  local rows = d:query("SELECT version FROM model_aliases WHERE name = ? AND alias = ? ORDER BY seq DESC LIMIT 1",
    name, alias)
  return rows[1] and rows[1].version or nil
end

--- Every current alias: {name = {alias = version}}.
function M.all_aliases(d)
  local out = {}
  for _, r in ipairs(d:query("SELECT name, alias, version FROM model_aliases ORDER BY seq")) do
    out[r.name] = out[r.name] or {}
    out[r.name][r.alias] = r.version or nil
  end
  return out
end

return M
