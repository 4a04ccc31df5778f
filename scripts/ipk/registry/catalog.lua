--- ipk.registry.catalog: registering, finding, aliasing and removing model
-- versions (see ipk.registry for the model).
local runtime = require "ipk.runtime"
local json = require "ipk.json"
local detect = require "ipk.detect"
local fs = require "ipk.fs"
local staging = require "ipk.staging"
local cidmod = require "ipk.cid"
local unixfs = require "ipk.unixfs"
local rdb = require "ipk.registry.db"
local semver = require "ipk.registry.semver"
local export = require "ipk.registry.export"
local backend = require "ipk.backend"

local type, tostring, tonumber, ipairs, pairs, error = type, tostring, tonumber, ipairs, pairs, error

local M = {}

local function write_file(path, s)
  local f, err = io.open(path, "wb")
  if not f then return nil, err, "EIO" end
  f:write(s)
  f:close()
  return true
end

-- Fill e.signature from what detection tells (ONNX graph inputs/outputs,
-- safetensors tensors) when the caller gave none.
local function signature_from(det)
  local i = det.info or {}
  if i.inputs or i.outputs then
    return { inputs = i.inputs or json.array {}, outputs = i.outputs or json.array {} }
  end
  return nil
end

-- Everything about an entry that can be refused before any file is
-- staged: names, version, types, and numbers JSON cannot store (NaN,
-- infinities: from a trainer, or --metric acc=1e400).
local function check_entry(e)
  if not rdb.valid_name(e.name) then return nil, "registry: invalid model name '" .. tostring(e.name) .. "'", "EINVAL" end
  local ok, err = semver.semver(e.version)
  if not ok then return nil, "registry: " .. err, "EINVAL" end
  for _, k in ipairs { "metrics", "params", "lineage", "signature" } do
    if e[k] ~= nil and type(e[k]) ~= "table" then return nil, "registry: " .. k .. " must be a table", "EINVAL" end
  end
  for k, v in pairs(e.metrics or {}) do
    if type(v) ~= "number" then return nil, "registry: metric '" .. tostring(k) .. "' must be a number", "EINVAL" end
  end
  for _, k in ipairs { "metrics", "params", "signature" } do
    local nok, nerr, nname = json.check_numbers(e[k], k)
    if not nok then return nil, "registry: " .. e.name .. "@" .. e.version .. ": " .. nerr, nname end
  end
  return true
end

-- msg with the staged path replaced by the source the user named (a plain
-- replacement: a path is not a pattern, "ipk-spec" or "%" must not matter).
local function unstage(msg, staged, src)
  local i, j = msg:find(staged, 1, true)
  if not i then return msg end
  return msg:sub(1, i - 1) .. src .. msg:sub(j + 1)
end

-- Pin an entry and insert its row, inside the caller's transaction.
-- @return true | nil, msg, name (the pin failed)
local function insert_entry(d, store, meta, model_cid, entry_cid, info, created)
  local pok, perr, pname = store:pin_add(entry_cid, { recursive = true, name = "model:" .. meta.name .. "@" .. meta.version })
  if not pok then return nil, "registry: pin " .. entry_cid .. ": " .. tostring(perr), pname end
  d:query("INSERT INTO models (name, version, model_cid, entry_cid, framework, format, metrics, params, lineage,"
    .. " tags, description, signature, info, file, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    meta.name, meta.version, model_cid, entry_cid, meta.framework or "", meta.format or "",
    json.encode(meta.metrics or {}), json.encode(meta.params or {}), json.encode(meta.lineage or {}),
    json.encode(json.array(meta.tags or {})), meta.description,
    meta.signature and json.encode(meta.signature) or nil, json.encode(json.sanitize(info or {})), meta.file, created)
  return true
end

-- What detection tells about a staged model file (the `info` column).
local function info_of(det)
  if det.files then return { formats = det.formats, num_files = #det.files, info = det.info } end
  return det.info
end

-- Assemble the entry in stage (the model's files and metadata.json), add
-- it to the store and record it. The caller removes stage however this ends.
local function assemble(stage, e, store, d)
  local fname, src
  if e.path then
    local p = e.path:gsub("/+$", "")
    if not fs.exists(p) then return nil, ("registry: " .. p .. ": no such file or directory"), "ENOENT" end
    fname = p:match("[^/]+$")
    if fname == "metadata.json" then fname = "model.json" end
    -- hard links when on one file system, else a copy
    local linked, cerr = fs.copy_tree(p, stage .. "/" .. fname)
    if not linked then return nil, ("registry: " .. p .. ": cannot stage a copy: " .. tostring(cerr)), "EIO" end
    src = p
  else
    if type(e.model_cid) ~= "string" or not cidmod.parse(e.model_cid) then
      return nil, ("registry: invalid model CID '" .. tostring(e.model_cid) .. "'"), "EINVAL"
    end
    fname = (e.format == "safetensors" and "model.safetensors") or "model.bin"
    local okw, werr, wname
    if e.bytes then okw, werr, wname = write_file(stage .. "/" .. fname, e.bytes)
    else okw, werr, wname = store:save(e.model_cid, stage .. "/" .. fname) end
    if not okw then return nil, ("registry: model " .. e.model_cid .. ": " .. tostring(werr)), wname end
    src = e.model_cid
  end
  local det, derr, dname = detect.path(stage .. "/" .. fname)
  if not det then return nil, "registry: " .. unstage(tostring(derr), stage .. "/" .. fname, src), dname end
  if e.path and det.kind ~= "model" and det.kind ~= "array" then
    return nil, (("registry: %s: not a recognized model format (content looks like %s)"):format(src, det.format)), "EINVAL"
  end
  -- metadata.json is part of the content-addressed entry: no wall-clock
  -- time in it (the same bytes, name, version and metadata give the same
  -- entry_cid whenever they are added); created_at lives in the row.
  local created = rdb.now()
  local meta = {
    name = e.name, version = e.version, framework = e.framework or det.framework,
    format = e.format or det.format, metrics = e.metrics or {},
    tags = json.array(e.tags or {}), params = e.params or {}, description = e.description or "",
    signature = e.signature or signature_from(det), lineage = e.lineage or {}, file = fname,
  }
  -- Once meta encodes, each column below (parts of meta) encodes too.
  local meta_json, jerr, jname = json.encode(meta)
  if not meta_json then return nil, ("registry: " .. e.name .. "@" .. e.version .. ": metadata: " .. jerr), jname end
  local okm, merr = write_file(stage .. "/metadata.json", meta_json)
  if not okm then return nil, ("registry: metadata.json: " .. tostring(merr)), "EIO" end
  local opts = { recursive = true, blocks = store:blocks() }
  for k, v in pairs(export.import) do opts[k] = v end
  local added, aerr, aname = unixfs.add(stage, opts)
  if not added then return nil, ("registry: " .. tostring(aerr)), aname end
  local model_cid
  local want = stage:match("[^/]+$") .. "/" .. fname
  for _, x in ipairs(added.entries) do if x.path == want then model_cid = x.cid end end
  if e.model_cid and model_cid ~= e.model_cid then
    return nil, (("registry: model bytes hash to %s, not the given %s"):format(tostring(model_cid), e.model_cid)), "EVERIFY"
  end
  local entry_cid = added.root
  local info = info_of(det)
  local result, ename -- ename: the name of an error raised inside the transaction
  local ok, err = d:tx(function()
    local cur = d:query("SELECT * FROM models WHERE name = ? AND version = ?", e.name, e.version)[1]
    if cur then
      if cur.model_cid ~= model_cid then ename = "ECONFLICT"
        error(("registry: %s@%s is already registered with model %s; refusing to re-register it with %s"
        .. " (give it a new version, e.g. --param version=X.Y.Z in a recipe)")
          :format(e.name, e.version, cur.model_cid, model_cid), 0)
      end
      result = rdb.decode_row(cur)
      result.existing = true
      return
    end
    local iok, ierr, iname = insert_entry(d, store, meta, model_cid, entry_cid, info, created)
    if not iok then ename = iname; error(ierr, 0) end
    for _, a in ipairs(e.aliases or {}) do
      -- an alias that looks like a version (or "latest") would shadow it
      if not rdb.valid_name(a) or a == "latest" or semver.semver(a) then ename = "EINVAL"
        error("registry: invalid alias '" .. tostring(a) .. "' (a name, not a version or 'latest')", 0)
      end
      d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,?,?)", e.name, a, e.version, created)
    end
    export.update_index(d)
    result = rdb.decode_row(d:query("SELECT * FROM models WHERE name = ? AND version = ?", e.name, e.version)[1])
  end)
  if not ok then return nil, err, ename or "EIO" end
  return result
end

--- Register a model version from a file or directory (or, for an
-- fl.train output, from model_cid / bytes already in the store).
-- @param e {name, version, path | model_cid [, bytes], framework?, format?, metrics,
--   params, tags = {..}, description, signature = {inputs, outputs}, lineage =
--   {dataset_cid, parent_cid, run_cid, recipe_cid}, aliases = {..}}
-- @return the entry (with existing=true when it was already registered) or nil, msg
-- An existing version added again with --alias: the aliases are pointed at
-- it (they are not part of the immutable entry); they were dropped while
-- the add reported success.
local function point_aliases(r, e)
  if not (r and r.existing) then return r end
  local cur = M.aliases(e.name)
  for _, a in ipairs(e.aliases or {}) do
    if cur[a] ~= e.version then
      local ok, err, name = M.set_alias(e.name, a, e.version)
      if not ok then return nil, err, name end
    end
  end
  return r
end

function M.register(e)
  if type(e) ~= "table" then error("registry.register: table expected", 2) end
  local ok, err, ename = check_entry(e)
  if not ok then return nil, err, ename end
  local store = runtime.backend()
  local d = rdb.db()
  -- Fast path: an existing version (no file work at all).
  local rows = d:query("SELECT * FROM models WHERE name = ? AND version = ?", e.name, e.version)
  if rows[1] and e.model_cid then
    if rows[1].model_cid ~= e.model_cid then
      return nil, ("registry: %s@%s is already registered with model %s; refusing to re-register it with %s"
        .. " (give it a new version, e.g. --param version=X.Y.Z in a recipe)")
        :format(e.name, e.version, rows[1].model_cid, e.model_cid), "ECONFLICT"
    end
    local r = rdb.decode_row(rows[1])
    r.existing = true
    return point_aliases(r, e)
  end
  if e.path ~= nil and type(e.path) ~= "string" then error("registry.register: path must be a string", 2) end
  local r, rerr, rname = staging.with("reg", assemble, e, store, d)
  if r == nil and rerr and not rerr:match("^registry: ") then rerr = "registry: " .. rerr end
  if r == nil then return r, rerr, rname end
  return point_aliases(r, e)
end

-- The adopt half that needs a staging directory: detect the entry's model
-- file as registration did (the info column), then record the entry.
local function adopt_staged(stage, store, entry_cid, meta, model_cid)
  local ok, msg, name = store:save(model_cid, stage .. "/" .. meta.file)
  if not ok then return nil, "registry: model " .. model_cid .. ": " .. tostring(msg), name end
  local det, derr, dname = detect.path(stage .. "/" .. meta.file)
  if not det then return nil, "registry: model " .. model_cid .. ": " .. tostring(derr), dname end
  local d = rdb.db()
  local result, ename
  ok, msg = d:tx(function()
    local cur = d:query("SELECT * FROM models WHERE name = ? AND version = ?", meta.name, meta.version)[1]
    if cur then
      if cur.model_cid ~= model_cid then ename = "ECONFLICT"
        error(("registry: %s@%s is already registered with model %s; the pulled entry %s has model %s")
          :format(meta.name, meta.version, cur.model_cid, entry_cid, model_cid), 0)
      end
      result = rdb.decode_row(cur)
      result.existing = true
      return
    end
    -- when it was registered here (entries from before issue 8 still carry
    -- their created_at)
    local iok, ierr, iname = insert_entry(d, store, meta, model_cid, entry_cid, info_of(det),
      type(meta.created_at) == "string" and meta.created_at or rdb.now())
    if not iok then ename = iname; error(ierr, 0) end
    export.update_index(d)
    result = rdb.decode_row(d:query("SELECT * FROM models WHERE name = ? AND version = ?", meta.name, meta.version)[1])
  end)
  if not ok then return nil, msg, ename or "EIO" end
  return result
end

--- Put a model version entry that arrived from elsewhere (`ipkrun pull`)
-- back into the registry: the entry directory's metadata.json names the
-- version, its `file` the model (re-detected here for the info column, as
-- at registration); the entry is pinned and the registry index updated.
-- The entry must already be in the backend (pulled, every block verified).
-- @return the entry (existing=true when it was registered already); false
--   when entry_cid is not an entry (no metadata.json); or nil, msg, name
function M.adopt_entry(entry_cid)
  local store = runtime.backend()
  local root, msg, name = store:get(entry_cid)
  if not root then return nil, msg, name end
  local links
  links, msg, name = backend.named_links(entry_cid, root)
  if not links then return nil, msg, name end
  local by = {}
  for _, l in ipairs(links) do by[l.name] = l.cid end
  if not by["metadata.json"] then return false end
  local parts = {}
  local ok
  ok, msg, name = store:cat(by["metadata.json"], function(s) parts[#parts + 1] = s end)
  if not ok then return nil, msg, name end
  local where = "registry: " .. entry_cid .. "/metadata.json"
  local meta = json.decode(table.concat(parts))
  if type(meta) ~= "table" then return nil, where .. ": not a JSON object", "EFORMAT" end
  ok, msg = check_entry(meta)
  if not ok then return nil, where .. ": " .. tostring(msg):gsub("^registry: ", ""), "EFORMAT" end
  local model_cid = type(meta.file) == "string" and by[meta.file]
  if not model_cid then
    return nil, where .. ": names the model file '" .. tostring(meta.file) .. "', which the entry lacks", "EFORMAT"
  end
  return staging.with("reg", adopt_staged, store, entry_cid, meta, model_cid)
end

local function resolve(d, name, ref)
  local rows = d:query("SELECT * FROM models WHERE name = ?", name)
  if #rows == 0 then return nil, "registry: no versions of " .. tostring(name), "ENOENT" end
  if ref and ref ~= "latest" then
    for _, r in ipairs(rows) do if r.version == ref then return r end end
    local v = rdb.alias_target(d, name, ref)
    if v then
      for _, r in ipairs(rows) do if r.version == v then return r end end
    end
    return nil, "registry: " .. name .. "@" .. ref .. " not found", "ENOENT"
  end
  local best
  for _, r in ipairs(rows) do
    if semver.semver(r.version) and (not best or semver.compare(r.version, best.version) > 0) then best = r end
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
  local d = rdb.db()
  local r, err, ename = resolve(d, name, version)
  if not r then return nil, err, ename end
  r = rdb.decode_row(r)
  r.aliases = json.array {}
  for a, v in pairs(rdb.all_aliases(d)[name] or {}) do
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
      return nil, "bad condition '" .. part .. "' (expected METRIC OP NUMBER, OP one of > >= < <= = !=)", "EINVAL"
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
    local cs, err, name = M.parse_where(w)
    if not cs then return nil, "registry: " .. err, name end
    for _, c in ipairs(cs) do conds[#conds + 1] = c end
  end
  local tags = filter.tag
  if type(tags) == "string" then tags = { tags } end
  local out = {}
  for _, r in ipairs(rdb.db():query("SELECT * FROM models ORDER BY name")) do
    rdb.decode_row(r)
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
    local c = semver.compare(a.version, b.version)
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
  if not rdb.valid_name(alias) or alias == "latest" or semver.semver(alias) then
    return nil, "registry: invalid alias '" .. tostring(alias) .. "'", "EINVAL"
  end
  local d = rdb.db()
  local res, ename
  local ok, err = d:tx(function()
    if version then
      local r = d:query("SELECT version FROM models WHERE name = ? AND version = ?", name, version)[1]
      if not r then ename = "ENOENT"; error("registry: " .. name .. "@" .. version .. " not found", 0) end
    end
    local prev = rdb.alias_target(d, name, alias)
    d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,?,?)", name, alias, version, rdb.now())
    export.update_index(d)
    res = { name = name, alias = alias, version = version, previous = prev }
  end)
  if not ok then return nil, err, ename or "EIO" end
  return res
end

--- History of an alias, oldest first: {{version, set_at}} (version nil = removed).
function M.alias_history(name, alias)
  local out = {}
  for _, r in ipairs(rdb.db():query("SELECT version, set_at FROM model_aliases WHERE name = ? AND alias = ? ORDER BY seq",
      name, alias)) do
    out[#out + 1] = { version = r.version or json.null, set_at = r.set_at }
  end
  return json.array(out)
end

--- Current aliases of a model: {alias = version}.
function M.aliases(name)
  return rdb.all_aliases(rdb.db())[name] or {}
end

--- Remove name@version from the registry and unpin its entry (blocks stay
-- until `ipkrun gc`). Aliases pointing at it are removed (history kept).
-- @return the removed entry or nil, msg
function M.remove(name, version)
  local d = rdb.db()
  local removed, ename
  local ok, err = d:tx(function()
    local r = d:query("SELECT * FROM models WHERE name = ? AND version = ?", name, version)[1]
    if not r then ename = "ENOENT"; error("registry: " .. name .. "@" .. tostring(version) .. " not found", 0) end
    d:query("DELETE FROM models WHERE name = ? AND version = ?", name, version)
    local store = runtime.backend()
    local pin = r.entry_cid or r.model_cid
    local others = d:query("SELECT 1 AS x FROM models WHERE entry_cid = ? OR model_cid = ?", pin, pin)
    if #others == 0 and store:pin_has(pin) then store:pin_rm(pin) end
    for a, v in pairs(rdb.all_aliases(d)[name] or {}) do
      if v == version then
        d:query("INSERT INTO model_aliases (name, alias, version, set_at) VALUES (?,?,NULL,?)", name, a, rdb.now())
      end
    end
    export.update_index(d)
    removed = rdb.decode_row(r)
  end)
  if not ok then return nil, err, ename or "EIO" end
  return removed
end

--- Materialize name@ref's entry directory (model files + metadata.json) at outdir.
-- @return entry or nil, msg
function M.fetch(name, ref, outdir)
  local e, err, name_ = M.get(name, ref)
  if not e then return nil, err, name_ end
  local cid = e.entry_cid or e.model_cid
  local ok, gerr, gname = runtime.backend():save(cid, outdir)
  if not ok then return nil, "registry: get " .. cid .. ": " .. tostring(gerr), gname end
  e.path = outdir
  return e
end

return M
