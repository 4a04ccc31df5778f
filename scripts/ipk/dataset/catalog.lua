--- ipk.dataset.catalog: dataset versions. A version is the UnixFS CID of a
-- file or directory (what `ipkrun add [-r] --cid-version=1 PATH` prints),
-- recorded in the `datasets` table of $IPK_HOME/ipk.db with its format,
-- statistics and import options, and pinned recursively.
local runtime = require "ipk.runtime"
local json = require "ipk.json"
local detect = require "ipk.detect"
local fs = require "ipk.fs"
local cidmod = require "ipk.cid"
local unixfs = require "ipk.unixfs"
local stats_mod = require "ipk.dataset.stats"
local dagjson = require "ipk.dagjson"

local M = {}

-- Import options of a dataset version (recorded with it: the same bytes under
-- other options are another CID).
M.import = { cid_version = 1, raw_leaves = true, chunker = "size-262144" }

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS datasets (
  name TEXT NOT NULL, version TEXT NOT NULL, cid TEXT NOT NULL,
  format TEXT, stats TEXT NOT NULL, import TEXT NOT NULL, source TEXT,
  created_at TEXT NOT NULL, PRIMARY KEY (name, version));
]]

local function db()
  local d = runtime.store():db()
  d:exec(SCHEMA)
  return d
end

local is_dir = fs.is_dir

local function now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- Insert a version row and pin it in one transaction (no-op when the same
-- CID is already registered under name@version; an error for another CID).
local function record(name, version, cid, format, stats, source, import)
  local d = db()
  return d:tx(function()
    local rows = d:query("SELECT cid FROM datasets WHERE name = ? AND version = ?", name, version)
    if rows[1] then
      if rows[1].cid ~= cid then
        error(("dataset %s@%s is already registered as %s; these files are %s (use another version)")
          :format(name, version, rows[1].cid, cid), 0)
      end
      return
    end
    local ok, err = runtime.backend():pin_add(cid, { recursive = true, name = "dataset:" .. name .. "@" .. version })
    if not ok then error("dataset " .. name .. ": pin " .. cid .. ": " .. tostring(err), 0) end
    d:query("INSERT INTO datasets (name, version, cid, format, stats, import, source, created_at) VALUES (?,?,?,?,?,?,?,?)",
      name, version, cid, format, json.encode(json.sanitize(stats)), json.encode(import or M.import), source, now())
  end)
end

local function valid_name(n) return type(n) == "string" and n:match("^[%w][%w._-]*$") ~= nil end

--- Add a file or directory as a dataset version and compute its statistics.
-- Everything is validated and measured before anything is written: a
-- corrupt file leaves no pin or row (and only unpinned blocks at worst).
-- @param args {path=file|dir, name=string, version=string|nil (default: the CID), package=hint|nil}
-- @return version table {name, version, cid, format, stats, splits, source} or nil, msg
function M.add_version(args)
  local path, name = args.path, args.name
  if type(path) ~= "string" or type(name) ~= "string" then
    error("dataset.add: 'path' and 'name' are required strings", 2)
  end
  if not valid_name(name) then return nil, "dataset: invalid name '" .. name .. "'", "EINVAL" end
  if args.version ~= nil and (type(args.version) ~= "string" or not args.version:match("^[%w][%w.+_-]*$")) then
    return nil, "dataset " .. name .. ": invalid version '" .. tostring(args.version) .. "'", "EINVAL"
  end
  path = path:gsub("(.)/+$", "%1")
  local dir = is_dir(path)
  if not dir and not fs.exists(path) then
    if args.package then
      return nil, "dataset " .. name .. ": " .. path .. ": directory not found (install the Debian package "
        .. args.package .. ")", "ENOENT"
    end
    return nil, "dataset " .. name .. ": " .. path .. ": no such file or directory", "ENOENT"
  end
  local stats, format, splits = stats_mod.measure(path, dir, name, args)
  if not stats then return nil, format, splits end -- nil, msg, name
  local added, err, aname = unixfs.add(path, {
    recursive = dir, cid_version = M.import.cid_version, raw_leaves = M.import.raw_leaves,
    chunker = M.import.chunker, blocks = runtime.backend():blocks() })
  if not added then return nil, "dataset " .. name .. ": " .. tostring(err), aname end
  local cid = added.root
  stats.dag_size = added.size
  local version = args.version or cid
  local ok, terr, tname = record(name, version, cid, format, stats, path)
  if not ok then return nil, terr, tname end
  return { name = name, version = version, cid = cid, format = format, stats = stats,
           import = M.import, source = path, splits = splits }
end

------------------------------------------------------------------------------
-- versions

-- The per-column statistics of a table (columns, column_stats, dtypes,
-- missing) can be large (a million columns: 165 MB of JSON): they are cut
-- out of the recorded text in C and stay json.raw texts (spliced as is when
-- printed); only the rest is decoded in Lua.
local COLS = "name, version, cid, format, stats, import, source, created_at"

local function decode(r)
  if not r then return nil end
  r.stats = detect.stats_from_json(r.stats) or {}
  r.import = r.import and json.decode(r.import) or nil
  return r
end

--- Rows of the datasets table (list of versions), newest first.
-- @param filter {name=, format=} optional
function M.list(filter)
  filter = filter or {}
  local rows = db():query("SELECT " .. COLS .. " FROM datasets WHERE (?1 IS NULL OR name = ?1)"
    .. " AND (?2 IS NULL OR format = ?2) ORDER BY created_at DESC, rowid DESC", filter.name, filter.format)
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = decode(r) end
  return out
end

--- Parse "name[@version]".
function M.parse_ref(s)
  local name, v = tostring(s):match("^([^@]+)@(.+)$")
  if name then return name, v end
  return s, nil
end

--- A version by name and version (nil = the most recently added), or by
-- "name@version" in one string.
-- @return version row {name, version, cid, format, stats, import, source, created_at} or nil, msg;
--   a table's stats.columns, column_stats, dtypes and missing are ipk.json.raw
--   texts (json.decode(json.raw_text(x)) gives the value)
function M.get(name, version)
  if version == nil and type(name) == "string" and name:find("@", 1, true) then name, version = M.parse_ref(name) end
  local d = db()
  local r
  if version and version ~= "latest" then
    r = d:query("SELECT " .. COLS .. " FROM datasets WHERE name = ? AND version = ?", name, version)[1]
    if not r then return nil, "dataset " .. tostring(name) .. "@" .. version .. " not found", "ENOENT" end
  else
    r = d:query("SELECT " .. COLS .. " FROM datasets WHERE name = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
      name)[1]
    if not r then return nil, "dataset " .. tostring(name) .. ": no versions", "ENOENT" end
  end
  return decode(r)
end

-- A ref that may also be a bare CID (for diff/verify of anything in the store).
function M.resolve(ref)
  local v = M.get(ref)
  if v then return v end
  if cidmod.parse(ref) then return { cid = ref, name = ref, version = ref } end
  return M.get(ref)
end

--- Materialize a version at outdir (every block verified; link names that
-- would escape outdir - "..", "/", NUL - are rejected before writing).
-- @return version or nil, msg
function M.fetch(ref, outdir)
  local v, err, name = M.resolve(ref)
  if not v then return nil, err, name end
  local ok, gerr, gname = runtime.backend():save(v.cid, outdir)
  if not ok then return nil, "dataset " .. tostring(ref) .. ": " .. tostring(gerr), gname end
  v.path = outdir
  return v
end

------------------------------------------------------------------------------
-- records (push / pull)

--- Type tag of a dataset version record.
M.RECORD_TYPE = "ipk.dataset-version"

--- The version as a DAG-JSON record in the backend, what `ipkrun push
-- dataset:N@V` ships and `pull` puts back in a catalog:
-- {type = "ipk.dataset-version", version = 1, name, dataset_version,
--  data = link to the UnixFS DAG, format, stats, import, source}.
-- No wall-clock time: the same version always gives the same record CID.
-- @return record CID | nil, msg, name
function M.version_record(name, version)
  local v, err, ename = M.get(name, version)
  if not v then return nil, err, ename end
  local rec = { type = M.RECORD_TYPE, version = 1, name = v.name, dataset_version = v.version,
                data = dagjson.link(v.cid), format = v.format, stats = v.stats, import = v.import, source = v.source }
  local bytes, eerr = dagjson.try_encode(rec)
  if not bytes then return nil, "dataset " .. v.name .. "@" .. v.version .. ": record: " .. tostring(eerr), "EFORMAT" end
  local c = cidmod.format(assert(cidmod.of(1, dagjson.codec, bytes)))
  local ok, perr, pname = runtime.backend():put(c, bytes)
  if not ok then return nil, perr, pname end
  return c
end

--- Put a pulled version record back in the catalog (row + recursive pin of
-- its data, which must already be in the backend). The same name@version
-- with another CID is refused (nothing written).
-- @return {name, version, cid, existing?} | nil, msg, name
function M.adopt_record(c, rec)
  local where = "dataset record " .. tostring(c)
  if type(rec) ~= "table" or rec.type ~= M.RECORD_TYPE then return nil, where .. ": not a dataset version record", "EFORMAT" end
  local data = dagjson.is_link(rec.data)
  if not valid_name(rec.name) or type(rec.dataset_version) ~= "string" or not data then
    return nil, where .. ": needs name, dataset_version and a data link", "EFORMAT"
  end
  local d = db()
  local cur = d:query("SELECT cid FROM datasets WHERE name = ? AND version = ?", rec.name, rec.dataset_version)[1]
  local ok, err = record(rec.name, rec.dataset_version, data, rec.format, type(rec.stats) == "table" and rec.stats or {},
    rec.source, type(rec.import) == "table" and rec.import or nil)
  if not ok then return nil, err, "ECONFLICT" end
  return { name = rec.name, version = rec.dataset_version, cid = data, existing = cur ~= nil }
end

return M
