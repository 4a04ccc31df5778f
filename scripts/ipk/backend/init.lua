--- ipk.backend: the one storage protocol every command and library call
-- goes through (ARCHITECTURE.md section 5). `runtime.backend()` returns one;
-- nothing else in the Lua layer asks whether blocks are local or remote.
--
-- Implementations (each a module in this package, `M.open` picks one):
--   embedded  $IPK_HOME's store (ipk.store): the default, no daemon.
--   kubo      a node's Kubo RPC API (ipk.kubo), e.g. `--api URL`.
--   gateway   a trustless HTTP gateway (ipk.gateway), read-only.
--   cache     the tiered cache: memory LRU + the embedded store in front of
--             a kubo or gateway backend (what `--api` / `--gateway` give).
--
-- The protocol. CIDs are strings or ipk_cid_t cdata; every result CID is a
-- canonical string (cid.format). Expected failures return nil, msg, name
-- with name from IPK_ERRNO_MAP (ENOBLOCK absent block, EVERIFY bytes that do
-- not hash to their CID, EUNSUPP what a backend cannot do — every write on a
-- read-only backend: "read-only backend"), or the transport's names
-- (ECONNREFUSED, ETIMEDOUT, EREMOTE) for remote ones. Misuse raises.
-- Calls may yield (remote I/O, thread-pool jobs); outside a task they run
-- one themselves.
--
--   b.kind                 "embedded" | "kubo" | "gateway" | "cache"
--   b.writable             false on a gateway (and a cache in front of one)
--   b.url                  the remote's URL (nil for embedded)
--   b:describe()           one line for messages ("kubo http://127.0.0.1:5001")
-- blocks
--   b:put(c, bytes)        store one block, verified against c first -> true
--   b:get(c)               the block, verified against c -> bytes
--   b:has(c)               -> true | false (remote: "can serve it now")
--   b:delete(c)            drop one block (pins are not consulted) -> true
--   b:stat(c)              -> {cid=, size=bytes}
-- pins (ONE shape on every backend)
--   b:pin_add(c, {recursive=true, name=})  the DAG must be reachable -> true
--   b:pin_rm(c)            -> true (ENOENT when c is not pinned)
--   b:pin_ls({cid=, type=})  type nil: the pins made (recursive and direct);
--                          "recursive", "direct", "indirect", "all" (a node
--                          lists indirect ones; the embedded store does not)
--                          -> list of {cid=, type=, name=?}, sorted by cid
--   b:pin_has(c)           -> true | false
-- DAGs
--   b:import_car(path, {pin_roots=true, name=})  every block verified
--                          before anything is kept -> {roots=, blocks=, bytes=}
--   b:export_dag(c, path)  the DAG under c as a CARv1 file, verified
--                          -> {blocks=, bytes=}
--   b:add(path, o)         UnixFS import computed locally (ipk.unixfs options,
--                          same CIDs on every backend), pinned unless
--                          o.pin == false (o.name names the pin) -> unixfs.add's table
--   b:add_bytes(s, o)      the same for a string -> cid, size
--   b:cat(c, out, {offset=, length=})  file bytes to out (fd, function or
--                          :write object), every block verified -> true
--   b:save(c, path)        file or directory materialized at path -> true
--   b:blocks()             an ipk_blocks_t for the C importer/exporter over
--                          the local tier (embedded store); EUNSUPP on a bare
--                          remote (use the cache in front of it)
--   b:gc()                 -> {removed=, bytes=} (EUNSUPP where the backend
--                          has no gc: a node runs its own)
--   b:close()              release (idempotent)
--
-- Moving whole DAGs between two backends (push, pull, a cache filling
-- itself) is ipk.backend.transfer.
local util = require "ipk.backend.util"
local embedded = require "ipk.backend.embedded"
local kubo = require "ipk.backend.kubo"
local gateway = require "ipk.backend.gateway"
local cache = require "ipk.backend.cache"

local type, tostring, error = type, tostring, error

local M = {}

--- Every method a backend provides (the spec checks each implementation).
M.METHODS = { "describe", "put", "get", "has", "delete", "stat", "pin_add", "pin_rm", "pin_ls", "pin_has",
              "import_car", "export_dag", "add", "add_bytes", "cat", "save", "blocks", "gc", "close" }

-- The helpers every implementation shares (ipk.backend.util), for callers.
M.read_only, M.want, M.sort_pins, M.links, M.named_links, M.is_inline =
  util.read_only, util.want, util.sort_pins, util.links, util.named_links, util.is_inline
M.DAG_PB, M.RAW, M.DAG_CBOR, M.DAG_JSON = util.DAG_PB, util.RAW, util.DAG_CBOR, util.DAG_JSON

--- Open a backend.
-- @param o {kind = "embedded"|"kubo"|"gateway", home = dir (embedded; default
--   runtime.home()), store = an open ipk.store (embedded), url =, auth =
--   (kubo), cache = true to put the tiered cache (over `store`) in front of
--   a remote one}
-- @return backend | nil, msg, name
function M.open(o)
  if type(o) ~= "table" then error("backend.open: table expected", 2) end
  local kind = o.kind or "embedded"
  local b, msg, name
  if kind == "embedded" then
    b, msg, name = embedded.new(o)
  elseif kind == "kubo" then
    b, msg, name = kubo.new(o)
  elseif kind == "gateway" then
    b, msg, name = gateway.new(o)
  else
    error("backend.open: unknown kind '" .. tostring(kind) .. "' (embedded, kubo, gateway)", 2)
  end
  if not b then return nil, msg, name end
  if o.cache and kind ~= "embedded" then
    return cache.new { remote = b, store = o.store, capacity = o.capacity }
  end
  return b
end

--- A remote backend from a URL string as the CLI takes it: http(s)://… is
-- a Kubo RPC API, gateway+http(s)://… a trustless gateway.
-- @return backend (bare, no cache) | nil, msg, name
function M.remote(url, auth)
  if type(url) ~= "string" or url == "" then return nil, "no URL given", "EINVAL" end
  local gw = url:match("^gateway%+(https?://.*)$")
  if gw then return M.open { kind = "gateway", url = gw } end
  if not url:match("^https?://[^/]+") then
    return nil, "'" .. url .. "' is not a node URL (http://HOST:PORT, or gateway+http://HOST:PORT for a gateway)", "EINVAL"
  end
  return M.open { kind = "kubo", url = url, auth = auth }
end

return M
