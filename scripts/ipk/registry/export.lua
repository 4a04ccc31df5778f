--- ipk.registry.export: the registry as IPFS Kit's model_registry.json
-- ({models = {name = {version = {framework, cid, metadata, added_at}}},
-- aliases = {name = {alias = version}}}), its state CID (the CID of that
-- canonical JSON as a UnixFS file, pinned, in `registry_index`), and the
-- import of such a file.
local runtime = require "ipk.runtime"
local json = require "ipk.json"
local cidmod = require "ipk.cid"
local unixfs = require "ipk.unixfs"
local rdb = require "ipk.registry.db"
local semver = require "ipk.registry.semver"

local type, tostring, ipairs, pairs, error = type, tostring, ipairs, pairs, error

local M = {}

--- Import options of model files and entries (a model's CID is what
-- `ipkrun add --cid-version=1` prints for its file).
M.import = { cid_version = 1, raw_leaves = true, chunker = "size-262144" }

-- timeless: leave out added_at (the registry state's CID must not depend on
-- when versions were added, only on what is registered).
local function export_from(d, timeless)
  local models = {}
  for _, r in ipairs(d:query("SELECT * FROM models ORDER BY name, version")) do
    rdb.decode_row(r)
    models[r.name] = models[r.name] or {}
    models[r.name][r.version] = {
      framework = r.framework or "", cid = r.model_cid, added_at = not timeless and r.created_at or nil,
      metadata = { entry_cid = r.entry_cid, format = r.format, metrics = r.metrics, params = r.params,
                   tags = r.tags, description = r.description, signature = r.signature, lineage = r.lineage,
                   file = r.file },
    }
  end
  local aliases = {}
  for name, al in pairs(rdb.all_aliases(d)) do
    for a, v in pairs(al) do aliases[name] = aliases[name] or {}; aliases[name][a] = v end
  end
  return { models = models, aliases = aliases }
end

-- Recompute the registry's state CID inside the caller's transaction: the
-- export without its added_at times (a content-addressed document holds no
-- wall-clock time) as canonical JSON (sorted keys) stored as a UnixFS file,
-- pinned; the previous state's pin is dropped.
function M.update_index(d)
  local store = runtime.backend()
  local bytes, jerr = json.encode(export_from(d, true))
  if not bytes then error("registry: index: " .. jerr, 0) end
  local cid, err = unixfs.add_bytes(bytes, {
    cid_version = 1, raw_leaves = true, chunker = M.import.chunker, blocks = store:blocks() })
  if not cid then error("registry: index: " .. tostring(err), 0) end
  local prev = d:query("SELECT cid FROM registry_index ORDER BY seq DESC LIMIT 1")[1]
  if prev and prev.cid == cid then return cid end
  local ok, perr = store:pin_add(cid, { recursive = true, name = "registry:index" })
  if not ok then error("registry: index: " .. tostring(perr), 0) end
  if prev then store:pin_rm(prev.cid) end
  d:query("INSERT INTO registry_index (cid, created_at) VALUES (?, ?)", cid, rdb.now())
  return cid
end

--- The registry in IPFS Kit's model_registry.json layout:
-- {models = {name = {version = {framework, cid, metadata, added_at}}}, aliases = {name = {alias = version}}}.
function M.export()
  return export_from(rdb.db())
end

--- The registry state CID (the CID of the canonical export), or nil when empty.
function M.index_cid()
  local r = rdb.db():query("SELECT cid FROM registry_index ORDER BY seq DESC LIMIT 1")[1]
  return r and r.cid or nil
end

--- Import an IPFS Kit model_registry.json table (or JSON text). Each
-- name/version becomes a row with its cid as model_cid; entries whose
-- blocks are in the store are pinned, the others listed in `missing`.
-- Existing versions with the same cid are skipped, with another cid fail
-- the whole import (nothing is written).
-- @return {imported = n, skipped = n, missing = {cid...}, index_cid} or nil, msg
-- A database column's JSON text; raises inside the import transaction
-- (which turns it into nil, msg) for a value JSON cannot hold.
local function column(v)
  local s, err = json.encode(v)
  if not s then error("registry: import: " .. err, 0) end
  return s
end

function M.import_registry(t)
  if type(t) == "string" then
    local v, err, name = json.decode(t)
    if not v then return nil, "registry: import: " .. err, name end
    t = v
  end
  if type(t) ~= "table" or type(t.models) ~= "table" then
    return nil, "registry: import: expected {\"models\": {name: {version: {...}}}}", "EFORMAT"
  end
  local d = rdb.db()
  local store = runtime.backend()
  local res = { imported = 0, skipped = 0, missing = json.array {} }
  local ok, err = d:tx(function()
    for name, versions in pairs(t.models) do
      if not rdb.valid_name(name) then error("registry: import: invalid model name '" .. tostring(name) .. "'", 0) end
      for version, v in pairs(versions) do
        if not semver.semver(version) then error("registry: import: " .. name .. "@" .. version .. ": not semver", 0) end
        if type(v) ~= "table" or type(v.cid) ~= "string" or not cidmod.parse(v.cid) then
          error("registry: import: " .. name .. "@" .. version .. ": missing or invalid cid", 0)
        end
        local md = type(v.metadata) == "table" and v.metadata or {}
        local cur = d:query("SELECT model_cid FROM models WHERE name = ? AND version = ?", name, version)[1]
        if cur then
          if cur.model_cid ~= v.cid then
            error(("registry: import: %s@%s is registered with model %s, the file says %s")
              :format(name, version, cur.model_cid, v.cid), 0)
          end
          res.skipped = res.skipped + 1
        else
          local entry = type(md.entry_cid) == "string" and md.entry_cid or nil
          local pin = entry or v.cid
          local pinned = store:has(pin) and store:pin_add(pin, { recursive = true, name = "model:" .. name .. "@" .. version })
          if not pinned then res.missing[#res.missing + 1] = pin end
          d:query("INSERT INTO models (name, version, model_cid, entry_cid, framework, format, metrics, params, lineage,"
            .. " tags, description, signature, file, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            name, version, v.cid, entry, v.framework or "", md.format or "", column(md.metrics or {}),
            column(md.params or {}), column(md.lineage or {}), column(json.array(md.tags or {})),
            md.description, md.signature and column(md.signature) or nil, md.file,
            v.added_at or md.created_at or rdb.now())
          res.imported = res.imported + 1
        end
      end
    end
    -- Aliases are checked like `model alias`: a valid name that points at a
    -- version registered here (in this file or before); a dangling one would
    -- make name@alias fail later, so the whole import is refused instead.
    for name, al in pairs(type(t.aliases) == "table" and t.aliases or {}) do
      if type(al) ~= "table" then error("registry: import: aliases of '" .. tostring(name) .. "' must be an object", 0) end
      for a, ver in pairs(al) do
        if not rdb.valid_name(a) or a == "latest" or semver.semver(a) then
          error("registry: import: invalid alias '" .. tostring(a) .. "' of " .. tostring(name)
            .. " (a name, not a version or 'latest')", 0)
        end
        if type(ver) ~= "string" or not d:query("SELECT 1 AS x FROM models WHERE name = ? AND version = ?", name, ver)[1] then
          error(("registry: import: alias %s@%s points at version %s, which is not registered"):format(
            tostring(name), a, tostring(ver)), 0)
        end
        if rdb.alias_target(d, name, a) ~= ver then
          d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,?,?)", name, a, ver, rdb.now())
        end
      end
    end
    res.index_cid = M.update_index(d)
  end)
  if not ok then return nil, err, "EINVAL" end
  return res
end

return M
