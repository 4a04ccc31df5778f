--- ipk.registry: the model registry (name@version -> model CID, metrics,
-- params, lineage) in $IPK_HOME/ipk.db. Versions are semver strings.
-- Registering an existing name@version with the same CID is a no-op; with
-- another CID it is an error naming both, and nothing is written.
local recipe = require "ipk.recipe"
local runtime = require "ipk.runtime"
local json = require "ipk.json"

local M = {}

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS models (
  name TEXT NOT NULL, version TEXT NOT NULL, model_cid TEXT NOT NULL,
  framework TEXT, format TEXT, metrics TEXT NOT NULL, params TEXT NOT NULL,
  lineage TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (name, version));
]]

local function db()
  local d = runtime.store():db()
  d:exec(SCHEMA)
  return d
end

--- Parse a semver string "MAJOR.MINOR.PATCH[-pre][+build]".
-- @return {major, minor, patch, pre} or nil, msg
function M.semver(v)
  if type(v) ~= "string" then return nil, "version must be a string" end
  local a, b, c, rest = v:match("^(%d+)%.(%d+)%.(%d+)(.*)$")
  if not a or (rest ~= "" and not rest:match("^[-+][0-9A-Za-z.+-]+$")) then
    return nil, "version '" .. v .. "' is not semver (MAJOR.MINOR.PATCH)"
  end
  return { major = tonumber(a), minor = tonumber(b), patch = tonumber(c), pre = rest:match("^%-([^+]*)") }
end

local function decode_row(r)
  if not r then return nil end
  r.metrics = json.decode(r.metrics)
  r.params = json.decode(r.params)
  r.lineage = json.decode(r.lineage)
  return r
end

--- Register a model version.
-- @param e {name, version, model_cid, framework, format, metrics, params, lineage}
-- @return the entry (existing one when it was already registered) or nil, msg
function M.register(e)
  if type(e.name) ~= "string" or not e.name:match("^[%w][%w._-]*$") then
    return nil, "registry: invalid model name '" .. tostring(e.name) .. "'"
  end
  local ok, err = M.semver(e.version)
  if not ok then return nil, "registry: " .. err end
  if type(e.model_cid) ~= "string" or not require("ipk.cid").parse(e.model_cid) then
    return nil, "registry: invalid model CID '" .. tostring(e.model_cid) .. "'"
  end
  local d = db()
  local store = runtime.store()
  local result
  ok, err = d:tx(function()
    local rows = d:query("SELECT * FROM models WHERE name = ? AND version = ?", e.name, e.version)
    if rows[1] then
      if rows[1].model_cid ~= e.model_cid then
        error(("registry: %s@%s is already registered with model %s; refusing to re-register it with %s (use a new version)")
          :format(e.name, e.version, rows[1].model_cid, e.model_cid), 0)
      end
      result = decode_row(rows[1])
      result.existing = true
      return
    end
    store:pin_add(e.model_cid, { recursive = true, name = "model:" .. e.name .. "@" .. e.version })
    local created = os.date("!%Y-%m-%dT%H:%M:%SZ")
    d:query("INSERT INTO models (name, version, model_cid, framework, format, metrics, params, lineage, created_at)"
      .. " VALUES (?,?,?,?,?,?,?,?,?)",
      e.name, e.version, e.model_cid, e.framework or "", e.format or "",
      json.encode(e.metrics or {}), json.encode(e.params or {}), json.encode(e.lineage or {}), created)
    result = { name = e.name, version = e.version, model_cid = e.model_cid, framework = e.framework,
               format = e.format, metrics = e.metrics or {}, params = e.params or {},
               lineage = e.lineage or {}, created_at = created }
  end)
  if not ok then return nil, err end
  return result
end

--- Look up name@version (version nil = latest by semver).
function M.get(name, version)
  local rows = db():query("SELECT * FROM models WHERE name = ?", name)
  if version then
    for _, r in ipairs(rows) do if r.version == version then return decode_row(r) end end
    return nil, "registry: " .. name .. "@" .. version .. " not found"
  end
  local best, bv
  for _, r in ipairs(rows) do
    local v = M.semver(r.version)
    if v and (not bv or v.major > bv.major or (v.major == bv.major and (v.minor > bv.minor or
        (v.minor == bv.minor and v.patch > bv.patch)))) then best, bv = r, v end
  end
  if not best then return nil, "registry: no versions of " .. name end
  return decode_row(best)
end

--- All entries, by name then version.
function M.list()
  local rows = db():query("SELECT * FROM models ORDER BY name, version")
  for i, r in ipairs(rows) do rows[i] = decode_row(r) end
  return rows
end

--- Step: register a trained model. Inputs: model (an fl.train output).
M.add = recipe.kind { kind = "registry.add", version = 1, inputs = { model = true },
  run = function(ctx, args)
    local m = args.model
    local lineage = {}
    for k, v in pairs(m.lineage or {}) do lineage[k] = v end
    lineage.recipe_cid = ctx.recipe_cid
    local e, err = M.register { name = args.name, version = args.version, model_cid = m.model_cid,
      framework = m.framework, format = m.format, metrics = m.metrics, params = m.params, lineage = lineage }
    if not e then error(err, 0) end
    ctx.log("registry %s@%s -> %s%s", e.name, e.version, e.model_cid, e.existing and " (already registered)" or "")
    return e
  end }

return M
