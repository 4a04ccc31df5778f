--- ipk.registry: the model registry.
-- A version is name@semver. Each version is stored as a UnixFS directory
-- (the model file or folder plus metadata.json: name, version, framework,
-- format, created_at, metrics, tags, params, description, signature,
-- lineage): its CID is the version's `entry_cid`, while `model_cid` is the
-- CID of the weights themselves (import options: M.import). Rows live in the
-- `models` table of $IPK_HOME/ipk.db; aliases (e.g. champion) keep their
-- history in `model_aliases`; after every change the whole registry is
-- exported in IPFS Kit's model_registry.json layout and that JSON's CID is
-- the registry's state CID (`registry_index`, pinned).
-- Registering an existing name@version with the same weights is a no-op;
-- other weights are an error naming both CIDs, and nothing is written.
-- Crash safety: files are imported first (unpinned blocks), then one
-- transaction inserts the row, pins the entry and updates the index; a
-- crash before the commit leaves only unpinned blocks that gc removes.
local recipe = require "ipk.recipe"
local runtime = require "ipk.runtime"
local json = require "ipk.json"
local detect = require "ipk.detect"

local type, tostring, tonumber, ipairs, pairs, error = type, tostring, tonumber, ipairs, pairs, error

local M = {}

--- Import options of model files and entries (a model's CID is what
-- `ipkrun add --cid-version=1` prints for its file).
M.import = { cid_version = 1, raw_leaves = true, chunker = "size-262144" }

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

local function db()
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

local function now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

------------------------------------------------------------------------------
-- semver

--- Parse a semver string "MAJOR.MINOR.PATCH[-pre][+build]".
-- @return {major, minor, patch, pre} or nil, msg
function M.semver(v)
  if type(v) ~= "string" then return nil, "version must be a string" end
  local a, b, c, rest = v:match("^(%d+)%.(%d+)%.(%d+)(.*)$")
  if not a or (rest ~= "" and not rest:match("^[-+][0-9A-Za-z.+-]+$")) then
    return nil, "version '" .. v .. "' is not semver (MAJOR.MINOR.PATCH)"
  end
  -- semver.org section 2: no leading zeros ("01.0.0" would sort as 1.0.0)
  for _, part in ipairs { a, b, c } do
    if #part > 1 and part:sub(1, 1) == "0" then
      return nil, "version '" .. v .. "' is not semver (numbers must not have leading zeros)"
    end
  end
  return { major = tonumber(a), minor = tonumber(b), patch = tonumber(c), pre = rest:match("^%-([^+]*)") }
end

-- semver.org section 11: numbers numerically, a pre-release sorts before
-- its release, identifiers compared one by one (numeric < alphanumeric).
local function cmp_pre(a, b)
  if a == b then return 0 end
  if not a then return 1 end
  if not b then return -1 end
  local ia, ib = {}, {}
  for x in a:gmatch("[^.]+") do ia[#ia + 1] = x end
  for x in b:gmatch("[^.]+") do ib[#ib + 1] = x end
  for i = 1, math.max(#ia, #ib) do
    local x, y = ia[i], ib[i]
    if not x then return -1 end
    if not y then return 1 end
    local nx, ny = x:match("^%d+$") and tonumber(x), y:match("^%d+$") and tonumber(y)
    if nx and ny then
      if nx ~= ny then return nx < ny and -1 or 1 end
    elseif nx then return -1
    elseif ny then return 1
    elseif x ~= y then return x < y and -1 or 1 end
  end
  return 0
end

--- Compare two semver strings: -1, 0, 1 (nil, msg when one is not semver).
function M.compare(a, b)
  local x, err = M.semver(a)
  if not x then return nil, err end
  local y; y, err = M.semver(b)
  if not y then return nil, err end
  for _, k in ipairs { "major", "minor", "patch" } do
    if x[k] ~= y[k] then return x[k] < y[k] and -1 or 1 end
  end
  return cmp_pre(x.pre, y.pre)
end

------------------------------------------------------------------------------
-- rows

local function decode_row(r)
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

local function valid_name(n) return type(n) == "string" and n:match("^[%w][%w._-]*$") ~= nil end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function mktemp()
  local base = runtime.home() .. "/staging"
  os.execute("mkdir -p " .. q(base))
  local p = io.popen("mktemp -d " .. q(base .. "/reg.XXXXXX") .. " 2>/dev/null")
  local d = p:read("*l")
  p:close()
  return d
end

local function rm_rf(d)
  if d and d:match("/staging/[%w.]+$") then os.execute("rm -rf " .. q(d)) end
end

-- Copy src (file or dir) to dst: hard links when on one filesystem, else a copy.
local function stage_copy(src, dst)
  local ok = os.execute("cp -rl " .. q(src) .. " " .. q(dst) .. " 2>/dev/null")
  if ok == true or ok == 0 then return true end
  ok = os.execute("cp -r " .. q(src) .. " " .. q(dst))
  return ok == true or ok == 0
end

local function write_file(path, s)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(s)
  f:close()
  return true
end

--- Current version an alias points to, or nil.
local function alias_target(d, name, alias)
  local rows = d:query("SELECT version FROM model_aliases WHERE name = ? AND alias = ? ORDER BY seq DESC LIMIT 1",
    name, alias)
  return rows[1] and rows[1].version or nil
end

local function all_aliases(d)
  local out = {}
  for _, r in ipairs(d:query("SELECT name, alias, version FROM model_aliases ORDER BY seq")) do
    out[r.name] = out[r.name] or {}
    out[r.name][r.alias] = r.version or nil
  end
  return out
end

------------------------------------------------------------------------------
-- export / index

local function export_from(d)
  local models = {}
  for _, r in ipairs(d:query("SELECT * FROM models ORDER BY name, version")) do
    decode_row(r)
    models[r.name] = models[r.name] or {}
    models[r.name][r.version] = {
      framework = r.framework or "", cid = r.model_cid, added_at = r.created_at,
      metadata = { entry_cid = r.entry_cid, format = r.format, metrics = r.metrics, params = r.params,
                   tags = r.tags, description = r.description, signature = r.signature, lineage = r.lineage,
                   file = r.file },
    }
  end
  local aliases = {}
  for name, al in pairs(all_aliases(d)) do
    for a, v in pairs(al) do aliases[name] = aliases[name] or {}; aliases[name][a] = v end
  end
  return { models = models, aliases = aliases }
end

-- Recompute the registry's state CID inside the caller's transaction: the
-- export as canonical JSON (sorted keys) stored as a UnixFS file, pinned;
-- the previous state's pin is dropped.
local function update_index(d)
  local store = runtime.store()
  local bytes = json.encode(export_from(d))
  local cid, err = require("ipk.unixfs").add_bytes(bytes, {
    cid_version = 1, raw_leaves = true, chunker = M.import.chunker, blocks = store:blocks() })
  if not cid then error("registry: index: " .. tostring(err), 0) end
  local prev = d:query("SELECT cid FROM registry_index ORDER BY seq DESC LIMIT 1")[1]
  if prev and prev.cid == cid then return cid end
  local ok, perr = store:pin_add(cid, { recursive = true, name = "registry:index" })
  if not ok then error("registry: index: " .. tostring(perr), 0) end
  if prev then store:pin_rm(prev.cid) end
  d:query("INSERT INTO registry_index (cid, created_at) VALUES (?, ?)", cid, now())
  return cid
end

--- The registry in IPFS Kit's model_registry.json layout:
-- {models = {name = {version = {framework, cid, metadata, added_at}}}, aliases = {name = {alias = version}}}.
function M.export()
  return export_from(db())
end

--- The registry state CID (the CID of the canonical export), or nil when empty.
function M.index_cid()
  local r = db():query("SELECT cid FROM registry_index ORDER BY seq DESC LIMIT 1")[1]
  return r and r.cid or nil
end

------------------------------------------------------------------------------
-- add

-- Fill e.signature from what detection tells (ONNX graph inputs/outputs,
-- safetensors tensors) when the caller gave none.
local function signature_from(det)
  local i = det.info or {}
  if i.inputs or i.outputs then
    return { inputs = i.inputs or json.array {}, outputs = i.outputs or json.array {} }
  end
  return nil
end

local function check_entry(e)
  if not valid_name(e.name) then return nil, "registry: invalid model name '" .. tostring(e.name) .. "'" end
  local ok, err = M.semver(e.version)
  if not ok then return nil, "registry: " .. err end
  for _, k in ipairs { "metrics", "params", "lineage", "signature" } do
    if e[k] ~= nil and type(e[k]) ~= "table" then return nil, "registry: " .. k .. " must be a table" end
  end
  for k, v in pairs(e.metrics or {}) do
    if type(v) ~= "number" then return nil, "registry: metric '" .. tostring(k) .. "' must be a number" end
  end
  return true
end

--- Register a model version from a file or directory (or, for an
-- fl.train output, from model_cid / bytes already in the store).
-- @param e {name, version, path | model_cid [, bytes], framework?, format?, metrics,
--   params, tags = {..}, description, signature = {inputs, outputs}, lineage =
--   {dataset_cid, parent_cid, run_cid, recipe_cid}, aliases = {..}}
-- @return the entry (with existing=true when it was already registered) or nil, msg
function M.register(e)
  if type(e) ~= "table" then error("registry.register: table expected", 2) end
  local ok, err = check_entry(e)
  if not ok then return nil, err end
  local store = runtime.store()
  local d = db()
  -- Fast path: an existing version (no file work at all).
  local rows = d:query("SELECT * FROM models WHERE name = ? AND version = ?", e.name, e.version)
  if rows[1] and e.model_cid then
    if rows[1].model_cid ~= e.model_cid then
      return nil, ("registry: %s@%s is already registered with model %s; refusing to re-register it with %s"
        .. " (give it a new version, e.g. --param version=X.Y.Z in a recipe)")
        :format(e.name, e.version, rows[1].model_cid, e.model_cid)
    end
    local r = decode_row(rows[1])
    r.existing = true
    return r
  end
  local stage = mktemp()
  if not stage then return nil, "registry: cannot create a staging directory under " .. runtime.home() end
  local function fail(msg) rm_rf(stage); return nil, msg end
  local fname, src
  if e.path then
    if type(e.path) ~= "string" then error("registry.register: path must be a string", 2) end
    local p = e.path:gsub("/+$", "")
    if not detect.exists(p) then return fail("registry: " .. p .. ": no such file or directory") end
    fname = p:match("[^/]+$")
    if fname == "metadata.json" then fname = "model.json" end
    if not stage_copy(p, stage .. "/" .. fname) then return fail("registry: " .. p .. ": cannot stage a copy") end
    src = p
  else
    if type(e.model_cid) ~= "string" or not require("ipk.cid").parse(e.model_cid) then
      return fail("registry: invalid model CID '" .. tostring(e.model_cid) .. "'")
    end
    fname = (e.format == "safetensors" and "model.safetensors") or "model.bin"
    local okw, werr
    if e.bytes then okw, werr = write_file(stage .. "/" .. fname, e.bytes)
    else okw, werr = require("ipk.unixfs").get(e.model_cid, store:blocks(), stage .. "/" .. fname) end
    if not okw then return fail("registry: model " .. e.model_cid .. ": " .. tostring(werr)) end
    src = e.model_cid
  end
  local det, derr = detect.path(stage .. "/" .. fname)
  if not det then return fail("registry: " .. tostring(derr):gsub(stage .. "/" .. fname, src, 1)) end
  if e.path and det.kind ~= "model" and det.kind ~= "array" then
    return fail(("registry: %s: not a recognized model format (content looks like %s)"):format(src, det.format))
  end
  local created = now()
  local meta = {
    name = e.name, version = e.version, framework = e.framework or det.framework,
    format = e.format or det.format, created_at = created, metrics = e.metrics or {},
    tags = json.array(e.tags or {}), params = e.params or {}, description = e.description or "",
    signature = e.signature or signature_from(det), lineage = e.lineage or {}, file = fname,
  }
  local okm, merr = write_file(stage .. "/metadata.json", json.encode(meta))
  if not okm then return fail("registry: metadata.json: " .. tostring(merr)) end
  local opts = { recursive = true, blocks = store:blocks() }
  for k, v in pairs(M.import) do opts[k] = v end
  local added, aerr = require("ipk.unixfs").add(stage, opts)
  if not added then return fail("registry: " .. tostring(aerr)) end
  local model_cid
  local want = stage:match("[^/]+$") .. "/" .. fname
  for _, x in ipairs(added.entries) do if x.path == want then model_cid = x.cid end end
  if e.model_cid and model_cid ~= e.model_cid then
    return fail(("registry: model bytes hash to %s, not the given %s"):format(tostring(model_cid), e.model_cid))
  end
  local entry_cid = added.root
  local info = det.info
  if det.files then info = { formats = det.formats, num_files = #det.files, info = det.info } end
  local result
  ok, err = d:tx(function()
    local cur = d:query("SELECT * FROM models WHERE name = ? AND version = ?", e.name, e.version)[1]
    if cur then
      if cur.model_cid ~= model_cid then
        error(("registry: %s@%s is already registered with model %s; refusing to re-register it with %s"
        .. " (give it a new version, e.g. --param version=X.Y.Z in a recipe)")
          :format(e.name, e.version, cur.model_cid, model_cid), 0)
      end
      result = decode_row(cur)
      result.existing = true
      return
    end
    local pok, perr = store:pin_add(entry_cid, { recursive = true, name = "model:" .. e.name .. "@" .. e.version })
    if not pok then error("registry: pin " .. entry_cid .. ": " .. tostring(perr), 0) end
    d:query("INSERT INTO models (name, version, model_cid, entry_cid, framework, format, metrics, params, lineage,"
      .. " tags, description, signature, info, file, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      e.name, e.version, model_cid, entry_cid, meta.framework or "", meta.format or "",
      json.encode(meta.metrics), json.encode(meta.params), json.encode(meta.lineage), json.encode(meta.tags),
      meta.description, meta.signature and json.encode(meta.signature) or nil,
      json.encode(json.sanitize(info or {})), fname, created)
    for _, a in ipairs(e.aliases or {}) do
      -- an alias that looks like a version (or "latest") would shadow it
      if not valid_name(a) or a == "latest" or M.semver(a) then
        error("registry: invalid alias '" .. tostring(a) .. "' (a name, not a version or 'latest')", 0)
      end
      d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,?,?)", e.name, a, e.version, created)
    end
    update_index(d)
    result = decode_row(d:query("SELECT * FROM models WHERE name = ? AND version = ?", e.name, e.version)[1])
  end)
  rm_rf(stage)
  if not ok then return nil, err end
  return result
end

------------------------------------------------------------------------------
-- queries

local function resolve(d, name, ref)
  local rows = d:query("SELECT * FROM models WHERE name = ?", name)
  if #rows == 0 then return nil, "registry: no versions of " .. tostring(name), "ENOENT" end
  if ref and ref ~= "latest" then
    for _, r in ipairs(rows) do if r.version == ref then return r end end
    local v = alias_target(d, name, ref)
    if v then
      for _, r in ipairs(rows) do if r.version == v then return r end end
    end
    return nil, "registry: " .. name .. "@" .. ref .. " not found", "ENOENT"
  end
  local best
  for _, r in ipairs(rows) do
    if M.semver(r.version) and (not best or M.compare(r.version, best.version) > 0) then best = r end
  end
  if not best then return nil, "registry: no semver versions of " .. name, "ENOENT" end
  return best
end

--- Parse "name[@version|@alias]".
function M.parse_ref(s)
  if type(s) ~= "string" then return nil end
  local name, ref = s:match("^([^@]+)@(.+)$")
  if name then return name, ref end
  return s, nil
end

--- Look up name@version, name@alias, or (version nil / "latest") the highest semver.
-- @return entry or nil, msg, name
function M.get(name, version)
  local d = db()
  local r, err, ename = resolve(d, name, version)
  if not r then return nil, err, ename end
  r = decode_row(r)
  r.aliases = json.array {}
  for a, v in pairs(all_aliases(d)[name] or {}) do
    if v == r.version then r.aliases[#r.aliases + 1] = a end
  end
  table.sort(r.aliases)
  return r
end

--- Parse a metric condition list: "accuracy>0.9", "loss<=0.3,f1>=0.5".
-- @return list of {metric, op, value} or nil, msg
function M.parse_where(s)
  local out = {}
  for part in tostring(s):gmatch("[^,]+") do
    local k, op, v = part:match("^%s*([%w_.%-]+)%s*([<>=!]=?)%s*([^%s]+)%s*$")
    local x = tonumber(v)
    if not k or not x or (op ~= ">" and op ~= "<" and op ~= ">=" and op ~= "<=" and op ~= "=" and op ~= "=="
        and op ~= "!=") then
      return nil, "bad condition '" .. part .. "' (expected METRIC OP NUMBER, OP one of > >= < <= = !=)"
    end
    out[#out + 1] = { metric = k, op = op, value = x }
  end
  return out
end

local function holds(m, c)
  local x = m[c.metric]
  if type(x) ~= "number" then return false end
  local op, v = c.op, c.value
  if op == ">" then return x > v elseif op == ">=" then return x >= v
  elseif op == "<" then return x < v elseif op == "<=" then return x <= v
  elseif op == "!=" then return x ~= v end
  return x == v
end

--- Entries, by name then semver. filter: {name, framework, format, tag, where = string|list}.
-- @return list or nil, msg (bad where)
function M.list(filter)
  filter = filter or {}
  local conds = {}
  local wh = filter.where
  if type(wh) == "string" then wh = { wh } end
  for _, w in ipairs(wh or {}) do
    local cs, err = M.parse_where(w)
    if not cs then return nil, "registry: " .. err end
    for _, c in ipairs(cs) do conds[#conds + 1] = c end
  end
  local tags = filter.tag
  if type(tags) == "string" then tags = { tags } end
  local out = {}
  for _, r in ipairs(db():query("SELECT * FROM models ORDER BY name")) do
    decode_row(r)
    local ok = (not filter.name or r.name == filter.name) and (not filter.framework or r.framework == filter.framework)
      and (not filter.format or r.format == filter.format)
    for _, t in ipairs(tags or {}) do
      local has = false
      for _, x in ipairs(r.tags) do if x == t then has = true end end
      ok = ok and has
    end
    for _, c in ipairs(conds) do ok = ok and holds(r.metrics, c) end
    if ok then out[#out + 1] = r end
  end
  table.sort(out, function(a, b)
    if a.name ~= b.name then return a.name < b.name end
    local c = M.compare(a.version, b.version)
    if c then return c < 0 end
    return a.version < b.version
  end)
  return out
end

------------------------------------------------------------------------------
-- aliases, rm, get, import

--- Point alias at name@version (version nil removes the alias); history is kept.
-- @return {name, alias, version, previous} or nil, msg
function M.set_alias(name, alias, version)
  if not valid_name(alias) or alias == "latest" or M.semver(alias) then
    return nil, "registry: invalid alias '" .. tostring(alias) .. "'"
  end
  local d = db()
  local res
  local ok, err = d:tx(function()
    if version then
      local r = d:query("SELECT version FROM models WHERE name = ? AND version = ?", name, version)[1]
      if not r then error("registry: " .. name .. "@" .. version .. " not found", 0) end
    end
    local prev = alias_target(d, name, alias)
    d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,?,?)", name, alias, version, now())
    update_index(d)
    res = { name = name, alias = alias, version = version, previous = prev }
  end)
  if not ok then return nil, err end
  return res
end

--- History of an alias, oldest first: {{version, set_at}} (version nil = removed).
function M.alias_history(name, alias)
  local out = {}
  for _, r in ipairs(db():query("SELECT version, set_at FROM model_aliases WHERE name = ? AND alias = ? ORDER BY seq",
      name, alias)) do
    out[#out + 1] = { version = r.version or json.null, set_at = r.set_at }
  end
  return json.array(out)
end

--- Current aliases of a model: {alias = version}.
function M.aliases(name)
  return all_aliases(db())[name] or {}
end

--- Remove name@version from the registry and unpin its entry (blocks stay
-- until `ipkrun gc`). Aliases pointing at it are removed (history kept).
-- @return the removed entry or nil, msg
function M.remove(name, version)
  local d = db()
  local removed
  local ok, err = d:tx(function()
    local r = d:query("SELECT * FROM models WHERE name = ? AND version = ?", name, version)[1]
    if not r then error("registry: " .. name .. "@" .. tostring(version) .. " not found", 0) end
    d:query("DELETE FROM models WHERE name = ? AND version = ?", name, version)
    local store = runtime.store()
    local pin = r.entry_cid or r.model_cid
    local others = d:query("SELECT 1 AS x FROM models WHERE entry_cid = ? OR model_cid = ?", pin, pin)
    if #others == 0 and store:pin_has(pin) then store:pin_rm(pin) end
    for a, v in pairs(all_aliases(d)[name] or {}) do
      if v == version then
        d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,NULL,?)", name, a, now())
      end
    end
    update_index(d)
    removed = decode_row(r)
  end)
  if not ok then return nil, err end
  return removed
end

--- Materialize name@ref's entry directory (model files + metadata.json) at outdir.
-- @return entry or nil, msg
function M.fetch(name, ref, outdir)
  local e, err = M.get(name, ref)
  if not e then return nil, err end
  local cid = e.entry_cid or e.model_cid
  local ok, gerr = require("ipk.unixfs").get(cid, runtime.store():blocks(), outdir)
  if not ok then return nil, "registry: get " .. cid .. ": " .. tostring(gerr) end
  e.path = outdir
  return e
end

--- Import an IPFS Kit model_registry.json table (or JSON text). Each
-- name/version becomes a row with its cid as model_cid; entries whose
-- blocks are in the store are pinned, the others listed in `missing`.
-- Existing versions with the same cid are skipped, with another cid fail
-- the whole import (nothing is written).
-- @return {imported = n, skipped = n, missing = {cid...}, index_cid} or nil, msg
function M.import_registry(t)
  if type(t) == "string" then
    local v, err = json.decode(t)
    if not v then return nil, "registry: import: not JSON: " .. tostring(err) end
    t = v
  end
  if type(t) ~= "table" or type(t.models) ~= "table" then
    return nil, "registry: import: expected {\"models\": {name: {version: {...}}}}"
  end
  local d = db()
  local store = runtime.store()
  local res = { imported = 0, skipped = 0, missing = json.array {} }
  local ok, err = d:tx(function()
    for name, versions in pairs(t.models) do
      if not valid_name(name) then error("registry: import: invalid model name '" .. tostring(name) .. "'", 0) end
      for version, v in pairs(versions) do
        if not M.semver(version) then error("registry: import: " .. name .. "@" .. version .. ": not semver", 0) end
        if type(v) ~= "table" or type(v.cid) ~= "string" or not require("ipk.cid").parse(v.cid) then
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
            name, version, v.cid, entry, v.framework or "", md.format or "", json.encode(md.metrics or {}),
            json.encode(md.params or {}), json.encode(md.lineage or {}), json.encode(json.array(md.tags or {})),
            md.description, md.signature and json.encode(md.signature) or nil, md.file,
            v.added_at or md.created_at or now())
          res.imported = res.imported + 1
        end
      end
    end
    for name, al in pairs(type(t.aliases) == "table" and t.aliases or {}) do
      for a, ver in pairs(al) do
        if alias_target(d, name, a) ~= ver then
          d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,?,?)", name, a, ver, now())
        end
      end
    end
    res.index_cid = update_index(d)
  end)
  if not ok then return nil, err end
  return res
end

--- Step: register a trained model. Inputs: model (an fl.train output).
-- Memoized (ipk.runner): the key includes the recipe CID (it enters the
-- lineage); the output record is the entry with the model as a link.
M.add = recipe.kind { kind = "registry.add", version = 1, inputs = { model = true }, context = { "recipe_cid" },
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
  end,
  encode = function(e)
    local r = {}
    for k, v in pairs(e) do r[k] = v end
    r.model_cid = recipe.link(e.model_cid)
    return r
  end,
  decode = function(r)
    local e = {}
    for k, v in pairs(r) do e[k] = v end
    e.model_cid = recipe.link_cid(r.model_cid)
    -- Restored only while the entry is still registered as recorded (it is
    -- then, by definition, an existing entry); otherwise the step re-runs.
    local cur = M.get(e.name, e.version)
    if not cur or cur.model_cid ~= e.model_cid then return nil, "registry entry " .. e.name .. "@" .. e.version .. " changed" end
    e.existing = true
    return e
  end }

return M
