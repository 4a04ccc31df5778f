--- ipk.store: the embedded block store of $IPK_HOME and its database.
-- A thin layer over core/include/ipk/store.h and db.h: blocks are verified
-- on every read and write by the core; pins and gc live there too. The db
-- object gives the rest of the Lua layer (registry, datasets, runs) SQL on
-- the same ipk.db.
-- Errors: expected failures return nil, msg, name (name like "ENOBLOCK");
-- misuse (wrong argument types, a closed store) raises.
local core = require "ipk.core"
local cidmod = require "ipk.cid"
local lib, ffi = core.lib, core.ffi

local type, select, tonumber, tostring, error, pcall, setmetatable =
  type, select, tonumber, tostring, error, pcall, setmetatable
local floor, unpack = math.floor, unpack

local M = {}

local cid_ptr_t = ffi.typeof("const ipk_cid_t *")
local cid_t = ffi.typeof("ipk_cid_t")
local store_pp = ffi.typeof("ipk_store_t *[1]")
local db_pp = ffi.typeof("ipk_db_t *[1]")
local stmt_pp = ffi.typeof("ipk_stmt_t *[1]")
local u8_pp = ffi.typeof("uint8_t *[1]")
local size_p = ffi.typeof("size_t[1]")
local u64_p = ffi.typeof("uint64_t[1]")
local int64_t = ffi.typeof("int64_t")
local uint64_t = ffi.typeof("uint64_t")

local function err_name(rc) return ffi.string(lib.ipk_err_name(rc)) end

-- Integers that a double holds exactly cross as Lua numbers; larger ones
-- stay int64 cdata so nothing is silently rounded.
local EXACT = 2 ^ 53

------------------------------------------------------------------------------
-- db

local Db = {}
Db.__index = Db

--- Tag a string so query() binds it as a BLOB instead of TEXT.
function M.blob(s)
  if type(s) ~= "string" then error("store.blob: string expected, got " .. type(s), 2) end
  return { blob = s }
end

local function db_handle(self)
  if self.store and not self.store.h then error("db: the store is closed", 3) end
  if not self.h then error("db: closed", 3) end
  return self.h
end

local function bind(st, i, v)
  local tv = type(v)
  if tv == "string" then
    return lib.ipk_stmt_bind_text(st, i, v, #v)
  elseif tv == "number" then
    if v == floor(v) and v > -EXACT and v < EXACT then return lib.ipk_stmt_bind_int64(st, i, v) end
    return lib.ipk_stmt_bind_double(st, i, v)
  elseif tv == "nil" then
    return lib.ipk_stmt_bind_null(st, i)
  elseif tv == "boolean" then
    return lib.ipk_stmt_bind_int64(st, i, v and 1 or 0)
  elseif tv == "table" and type(v.blob) == "string" then
    return lib.ipk_stmt_bind_blob(st, i, v.blob, #v.blob)
  elseif tv == "cdata" and (ffi.istype(int64_t, v) or ffi.istype(uint64_t, v)) then
    return lib.ipk_stmt_bind_int64(st, i, v)
  end
  return nil, "cannot bind a " .. tv .. " (parameter " .. i .. ")"
end

local function column(st, i)
  local t = lib.ipk_stmt_column_type(st, i)
  if t == 1 then
    local v = lib.ipk_stmt_column_int64(st, i)
    if v > -EXACT and v < EXACT then return tonumber(v) end
    return v
  elseif t == 2 then
    return lib.ipk_stmt_column_double(st, i)
  elseif t == 3 then
    local n = size_p()
    local p = lib.ipk_stmt_column_text(st, i, n)
    return p ~= nil and ffi.string(p, n[0]) or ""
  elseif t == 4 then
    local n = size_p()
    local p = lib.ipk_stmt_column_blob(st, i, n)
    return p ~= nil and ffi.string(p, n[0]) or ""
  end
  return nil
end

--- Run one SQL statement with positional parameters (`?`) and collect rows.
-- Parameters: string (TEXT), number (INTEGER when integral, else REAL),
-- boolean (0/1), nil (NULL), store.blob(s) (BLOB), int64 cdata.
-- SQL failures (syntax, constraint, busy after the 10 s timeout) raise an
-- error "db: <sql>: <why>" so callers can index the result directly; run
-- it inside db:tx (or pcall) to get nil, msg instead.
-- @param sql one statement
-- @return list of rows, each a table column name -> value (NULL columns absent)
function Db:query(sql, ...)
  local h = db_handle(self)
  if type(sql) ~= "string" then error("db:query: SQL string expected", 2) end
  local pst = stmt_pp()
  local rc = lib.ipk_db_prepare(h, sql, pst)
  if rc < 0 then error("db: " .. ffi.string(lib.ipk_db_errmsg(h)), 2) end
  local st = pst[0]
  local nargs = select("#", ...)
  local want = lib.ipk_stmt_bind_count(st)
  if nargs ~= want then
    lib.ipk_stmt_finalize(st)
    error(("db:query: %d parameters given, the SQL takes %d: %s"):format(nargs, want, sql), 2)
  end
  for i = 1, nargs do
    local brc, berr = bind(st, i, (select(i, ...)))
    if not brc or brc < 0 then
      local msg = berr or ffi.string(lib.ipk_db_errmsg(h))
      lib.ipk_stmt_finalize(st)
      error("db:query: " .. msg .. ": " .. sql, 2)
    end
  end
  local rows, names = {}, nil
  while true do
    rc = lib.ipk_stmt_step(st)
    if rc ~= 1 then break end
    if not names then
      names = {}
      for c = 0, lib.ipk_stmt_column_count(st) - 1 do names[c] = ffi.string(lib.ipk_stmt_column_name(st, c)) end
    end
    local row = {}
    for c = 0, #names do row[names[c]] = column(st, c) end
    rows[#rows + 1] = row
  end
  if rc < 0 then
    local msg = ffi.string(lib.ipk_db_errmsg(h))
    lib.ipk_stmt_finalize(st)
    error("db: " .. msg, 2)
  end
  lib.ipk_stmt_finalize(st)
  return rows
end

--- Run SQL without results (one or more statements: schema, PRAGMAs).
-- Raises on failure like query().
-- @return true
function Db:exec(sql)
  local h = db_handle(self)
  if type(sql) ~= "string" then error("db:exec: SQL string expected", 2) end
  local rc = lib.ipk_db_exec(h, sql)
  if rc < 0 then error("db: " .. ffi.string(lib.ipk_db_errmsg(h)), 2) end
  return true
end

--- Rows changed by the last INSERT/UPDATE/DELETE.
function Db:changes() return tonumber(lib.ipk_db_changes(db_handle(self))) end

--- Rowid of the last INSERT.
function Db:last_insert_rowid() return tonumber(lib.ipk_db_last_insert_rowid(db_handle(self))) end

local function pack(...) return { n = select("#", ...), ... } end

local function exec_rc(h, sql)
  local rc = lib.ipk_db_exec(h, sql)
  if rc < 0 then return nil, ffi.string(lib.ipk_db_errmsg(h)), err_name(rc) end
  return true
end

--- Run fn(db) in a transaction. The outermost one is BEGIN IMMEDIATE (takes
-- the write lock up front, so two processes never deadlock upgrading read
-- locks); nested calls use savepoints. Commits when fn returns normally;
-- rolls back when fn raises or returns nil, msg[, name].
-- @return true, fn's results...; or nil, msg[, name] (after rollback)
function Db:tx(fn)
  local h = db_handle(self)
  if type(fn) ~= "function" then error("db:tx: function expected", 2) end
  local depth = self.depth
  local sp = "ipk_tx_" .. depth
  local ok, msg, name = exec_rc(h, depth == 0 and "BEGIN IMMEDIATE" or ("SAVEPOINT " .. sp))
  if not ok then return nil, "db: begin: " .. msg, name end
  self.depth = depth + 1
  local res = pack(pcall(fn, self))
  self.depth = depth
  local failed = not res[1] or (res[2] == nil and res[3] ~= nil)
  if not failed then
    ok, msg, name = exec_rc(h, depth == 0 and "COMMIT" or ("RELEASE " .. sp))
    if ok then return true, unpack(res, 2, res.n) end
    res = { true, nil, "db: commit: " .. msg, name }
  end
  if depth == 0 then exec_rc(h, "ROLLBACK")
  else exec_rc(h, "ROLLBACK TO " .. sp); exec_rc(h, "RELEASE " .. sp) end
  if not res[1] then return nil, tostring(res[2]) end
  return nil, tostring(res[3]), res[4]
end

--- Close a database opened with store.db_open (a store's db closes with it).
function Db:close()
  if self.store then error("db:close: this db belongs to its store; close the store", 2) end
  if self.h then
    local h = self.h
    self.h = nil
    lib.ipk_db_close(ffi.gc(h, nil))
  end
end

--- Open a standalone database file (WAL, busy timeout) with the same
-- query/exec/tx methods as store:db().
-- @return db object or nil, msg, name
function M.db_open(path)
  if type(path) ~= "string" then error("store.db_open: path string expected", 2) end
  local out, eb = db_pp(), core.errbuf()
  local rc = lib.ipk_db_open(path, out, eb)
  if rc < 0 then return core.check(rc, eb) end
  return setmetatable({ h = ffi.gc(out[0], lib.ipk_db_close), depth = 0 }, Db)
end

------------------------------------------------------------------------------
-- store

local Store = {}
Store.__index = Store

-- blocks() views keep their store alive (the view's ud is the raw handle);
-- weak keys so a dropped view stops anchoring it.
local anchors = setmetatable({}, { __mode = "k" })

local function handle(self)
  local h = self.h
  if not h then error("store: closed", 3) end
  return h
end

local function fail(h, rc)
  local msg = ffi.string(lib.ipk_store_errmsg(h))
  if msg == "" then msg = ffi.string(lib.ipk_strerror(rc)) end
  return nil, msg, err_name(rc)
end

-- A CID argument: ipk_cid_t cdata (or pointer) passes through, a string is
-- parsed; a bad string is an expected failure, anything else misuse.
local function to_cid(c, what)
  if type(c) == "string" then
    local v, msg, name = cidmod.parse(c)
    if not v then return nil, what .. " " .. c .. ": " .. tostring(msg), name or "ECID" end
    return v
  end
  if type(c) == "cdata" and (ffi.istype(cid_t, c) or ffi.istype(cid_ptr_t, c)) then return c end
  error(what .. ": CID string or ipk_cid_t expected, got " .. type(c), 3)
end

--- The default home: $IPK_HOME, else ${XDG_DATA_HOME:-$HOME/.local/share}/ipk.
-- @return path or nil, msg, name
function M.default_home()
  local buf = ffi.new("char[4096]")
  local rc = lib.ipk_store_default_home(buf, 4096)
  if rc < 0 then return nil, "no store home: set IPK_HOME (or HOME)", err_name(rc) end
  return ffi.string(buf)
end

--- Open (creating if needed) the embedded store.
-- @param home directory; default M.default_home()
-- @return store object or nil, msg, name
function M.open(home)
  if home ~= nil and type(home) ~= "string" then error("store.open: home must be a string", 2) end
  if not home then
    local msg, name
    home, msg, name = M.default_home()
    if not home then return nil, msg, name end
  end
  local out, eb = store_pp(), core.errbuf()
  local rc = lib.ipk_store_open(home, out, eb)
  if rc < 0 then return core.check(rc, eb) end
  local h = ffi.gc(out[0], lib.ipk_store_close)
  return setmetatable({ h = h, home = ffi.string(lib.ipk_store_home(h)) }, Store)
end

--- Store a block (verified against cid first; a present block is a no-op).
-- @param c CID (ipk_cid_t or string)
-- @param bytes the block (Lua string)
-- @return true or nil, msg, name ("EVERIFY" when bytes do not match)
function Store:put(c, bytes)
  local h = handle(self)
  if type(bytes) ~= "string" then error("store:put: bytes must be a string", 2) end
  local cid, msg, name = to_cid(c, "put")
  if not cid then return nil, msg, name end
  local rc = lib.ipk_store_put(h, cid, bytes, #bytes)
  if rc < 0 then return fail(h, rc) end
  return true
end

--- Read a block, verified against its CID.
-- @return bytes (string) or nil, msg, name ("ENOBLOCK", "EVERIFY")
function Store:get(c)
  local h = handle(self)
  local cid, msg, name = to_cid(c, "get")
  if not cid then return nil, msg, name end
  local p, n = u8_pp(), size_p()
  local rc = lib.ipk_store_get(h, cid, p, n)
  if rc < 0 then return fail(h, rc) end
  local s = ffi.string(p[0], n[0])
  ffi.C.free(p[0])
  return s
end

-- The shape every one-CID call shares: parse the CID, call fn(handle, cid),
-- turn a negative rc into the luv triple. Returns rc (>= 0) or nil, msg, name.
local function cid_call(self, c, what, fn)
  local h = handle(self)
  local cid, msg, name = to_cid(c, what)
  if not cid then return nil, msg, name end
  local rc = fn(h, cid)
  if rc < 0 then return fail(h, rc) end
  return rc
end

--- Whether the block is present.
-- @return true/false or nil, msg, name
function Store:has(c)
  local rc, msg, name = cid_call(self, c, "has", lib.ipk_store_has)
  if not rc then return nil, msg, name end
  return rc == 1
end

--- Delete one block (pins are not consulted; gc is the safe way).
-- @return true or nil, msg, name ("ENOBLOCK" when absent)
function Store:del(c)
  local rc, msg, name = cid_call(self, c, "del", lib.ipk_store_del)
  if not rc then return nil, msg, name end
  return true
end

--- A block sink/source view (ipk_blocks_t cdata) for the importer/exporter.
-- It keeps this store object alive; it is invalid after store:close().
function Store:blocks()
  local b = ffi.new("ipk_blocks_t", lib.ipk_store_blocks(handle(self)))
  anchors[b] = self
  return b
end

--- Pin a CID.
-- @param c CID string or ipk_cid_t
-- @param opts {recursive = true (default), name = string|nil}
-- @return true or nil, msg, name ("ENOBLOCK" when the DAG is incomplete:
-- nothing is pinned; "ECONFLICT" for a direct pin of a recursive pin)
function Store:pin_add(c, opts)
  local h = handle(self)
  opts = opts or {}
  if type(opts) ~= "table" then error("store:pin_add: opts must be a table", 2) end
  if opts.name ~= nil and type(opts.name) ~= "string" then error("store:pin_add: opts.name must be a string", 2) end
  local cid, msg, name = to_cid(c, "pin add")
  if not cid then return nil, msg, name end
  local rc = lib.ipk_store_pin_add(h, cid, opts.recursive == false and 0 or 1, opts.name)
  if rc < 0 then return fail(h, rc) end
  return true
end

--- Remove a pin.
-- @return true or nil, msg, "ENOENT" when the CID is not pinned
function Store:pin_rm(c)
  local rc, msg, name = cid_call(self, c, "pin rm", lib.ipk_store_pin_rm)
  if not rc then return nil, msg, name end
  return true
end

--- Whether a CID is pinned (by its canonical string; v0 and v1 differ).
-- @return true/false or nil, msg, name
function Store:pin_has(c)
  local rc, msg, name = cid_call(self, c, "pin has", lib.ipk_store_pin_has)
  if not rc then return nil, msg, name end
  return rc == 1
end

--- All pins in CID order.
-- Read straight from the pins table (documented in store.h) rather than
-- through ipk_store_pin_ls, whose C->Lua callback would defeat the JIT.
-- @return list of {cid =, type = "recursive"|"direct", name = string|nil, created_at = unix s}
function Store:pin_ls()
  return self:db():query("SELECT cid, type, name, created_at FROM pins ORDER BY cid")
end

--- Remove every block not reachable from a pin (and crashed writers' temps).
-- @return {removed = blocks, bytes = bytes} or nil, msg, name
function Store:gc()
  local h = handle(self)
  local n, b = u64_p(), u64_p()
  local rc = lib.ipk_store_gc(h, n, b)
  if rc < 0 then return fail(h, rc) end
  return { removed = tonumber(n[0]), bytes = tonumber(b[0]) }
end

--- Make this handle's blocks durable and visible to other processes (the
-- fdatasync + index publish pin_add does first).
-- @return true or nil, msg, name
function Store:sync()
  local h = handle(self)
  local rc = lib.ipk_store_sync(h)
  if rc < 0 then return fail(h, rc) end
  return true
end

--- Where a block's stored bytes are (tests, repair tools).
-- @return {path =, offset = payload offset, length = stored bytes,
-- layout = "pack"|"file"}, false when not stored, or nil, msg, name
function Store:locate(c)
  local h = handle(self)
  local cid, msg, name = to_cid(c, "locate")
  if not cid then return nil, msg, name end
  local buf, off, len = ffi.new("char[4096]"), u64_p(), u64_p()
  local rc = lib.ipk_store_locate(h, cid, buf, 4096, off, len)
  if rc < 0 then return fail(h, rc) end
  if rc == 0 then return false end
  return { path = ffi.string(buf), offset = tonumber(off[0]), length = tonumber(len[0]),
           layout = rc == 1 and "pack" or "file" }
end

--- Counts (see ipk_store_stat_t): blocks, bytes, stored_bytes, packs,
-- pack_bytes, legacy_blocks, legacy_bytes; all numbers.
-- @return table or nil, msg, name
function Store:stat()
  local h = handle(self)
  local st = ffi.new("ipk_store_stat_t")
  local rc = lib.ipk_store_stat(h, st)
  if rc < 0 then return fail(h, rc) end
  local r = {}
  for _, k in ipairs({ "blocks", "bytes", "stored_bytes", "packs", "pack_bytes", "legacy_blocks", "legacy_bytes" }) do
    r[k] = tonumber(st[k])
  end
  return r
end

--- The compression of new blocks: "none", "zstd" or "zstd:N".
function Store:compression()
  local buf = ffi.new("char[32]")
  local rc = lib.ipk_store_compression(handle(self), buf, 32)
  if rc < 0 then return nil, "compression setting too long", err_name(rc) end
  return ffi.string(buf)
end

--- Set the compression of blocks written from now on (persisted for every
-- process). spec: "none", "zstd" or "zstd:N" (N 1..19).
-- @return true or nil, msg, "EINVAL"
function Store:set_compression(spec)
  local h = handle(self)
  if type(spec) ~= "string" then error("store:set_compression: string expected", 2) end
  local rc = lib.ipk_store_set_compression(h, spec)
  if rc < 0 then return fail(h, rc) end
  return true
end

--- Kubo's repo verify: re-hash every block, check every pin.
-- @return {blocks, bad_blocks, pins, bad_pins, bad = {{kind = "block"|"pin",
-- cid =, why =}...}} (bad blocks are named by the CIDv1 raw of their
-- multihash), or nil, msg, name when the check could not run
function Store:verify()
  local h = handle(self)
  local v = ffi.new("ipk_store_verify_t")
  local rc = lib.ipk_store_verify(h, v)
  if rc < 0 then lib.ipk_store_verify_clear(v); return fail(h, rc) end
  local r = { blocks = tonumber(v.blocks), bad_blocks = tonumber(v.bad_blocks),
              pins = tonumber(v.pins), bad_pins = tonumber(v.bad_pins), bad = {} }
  for i = 0, tonumber(v.nbad) - 1 do
    local b = v.bad[i]
    r.bad[#r.bad + 1] = { kind = b.is_pin ~= 0 and "pin" or "block", cid = ffi.string(b.cid), why = ffi.string(b.why) }
  end
  lib.ipk_store_verify_clear(v)
  return r
end

--- The store's database (same object on every call; lives with the store).
function Store:db()
  local h = handle(self)
  local d = self._db
  if not d then
    d = setmetatable({ h = lib.ipk_store_db(h), store = self, depth = 0 }, Db)
    self._db = d
  end
  return d
end

--- Close the store (its db and blocks() views become invalid). Idempotent.
function Store:close()
  local h = self.h
  if not h then return end
  self.h = nil
  if self._db then self._db.h = nil end
  lib.ipk_store_close(ffi.gc(h, nil))
end

return M
