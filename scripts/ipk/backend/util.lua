--- ipk.backend.util: what every backend implementation and ipk.backend.transfer
-- share: CID arguments, the read-only answer, the one pin-list shape, and the
-- links of a block (read by the core's one DAG walker, core/include/ipk/dag.h).
local cid = require "ipk.cid"
local core = require "ipk.core"
local lib, ffi = core.lib, core.ffi

local type, tostring, error, tonumber = type, tostring, error, tonumber

local M = {}

--- The read-only answer of a backend that cannot write.
-- @return nil, "<kind>: <what>: read-only backend", "EUNSUPP"
function M.read_only(kind, what)
  return nil, kind .. ": " .. what .. ": read-only backend", "EUNSUPP"
end

--- A CID argument as {parsed cdata, canonical string}; a bad string is an
-- expected failure (nil, msg, "ECID"), a wrong type misuse.
function M.want(c, what)
  if type(c) == "string" then
    local p, msg = cid.parse(c)
    if not p then return nil, (what or "CID") .. " " .. c .. ": " .. tostring(msg), "ECID" end
    return p, cid.format(p)
  end
  if cid.is_cid(c) then return c, cid.format(c) end
  error((what or "backend") .. ": CID string or ipk_cid_t expected, got " .. type(c), 3)
end

--- Normalize a pin list to the one shape: sorted by cid.
function M.sort_pins(list)
  table.sort(list, function(a, b) return a.cid < b.cid end)
  return list
end

local DAG_PB, RAW, DAG_CBOR, DAG_JSON, IDENTITY = 0x70, 0x55, 0x71, 0x0129, 0x00
M.DAG_PB, M.RAW, M.DAG_CBOR, M.DAG_JSON = DAG_PB, RAW, DAG_CBOR, DAG_JSON

local links_pp, size_p = ffi.typeof("ipk_cid_t*[1]"), ffi.typeof("size_t[1]")

--- The CIDs a block links to, read by the core (dag-pb links, dag-json
-- {"/": …} values, dag-cbor tag 42; raw and the other plain codecs have
-- none).
-- @param c the block's CID (cdata or string), bytes the (verified) block
-- @return list of CID strings | nil, msg, "EUNSUPP" (a codec whose links
--   cannot be read: refusing beats silently dropping what it links to) or
--   "EFORMAT"
function M.links(c, bytes)
  local cc = type(c) == "string" and assert(cid.parse(c)) or c
  local out, n, eb = links_pp(), size_p(), core.errbuf()
  local rc = lib.ipk_dag_links(cc, bytes, #bytes, out, n, eb)
  if rc ~= 0 then
    local msg = ffi.string(eb.msg)
    if msg == "" then msg = ffi.string(lib.ipk_strerror(rc)) end
    return nil, "block " .. cid.format(cc) .. ": " .. msg, ffi.string(lib.ipk_err_name(rc))
  end
  local list = {}
  for i = 0, tonumber(n[0]) - 1 do list[#list + 1] = cid.format(out[0][i]) end
  lib.ipk_dag_links_free(out[0])
  return list
end

--- The named links of a dag-pb node (a UnixFS directory's entries); {} for
-- other codecs.
-- @return list of {name=, cid=} | nil, msg, name
function M.named_links(c, bytes)
  local cc = type(c) == "string" and assert(cid.parse(c)) or c
  if tonumber(cc.codec) ~= DAG_PB then return {} end
  local node, eb = ffi.new("ipk_dagpb_node_t"), core.errbuf()
  if lib.ipk_dagpb_decode(bytes, #bytes, node, eb) ~= 0 then
    return nil, "block " .. cid.format(cc) .. ": " .. ffi.string(eb.msg), "EFORMAT"
  end
  local out = {}
  for i = 0, tonumber(node.nlinks) - 1 do
    local l = node.links[i]
    out[#out + 1] = { name = l.has_name ~= 0 and ffi.string(l.name, l.name_len) or "", cid = cid.format(l.cid) }
  end
  lib.ipk_dagpb_node_free(node)
  return out
end

--- True when c's bytes are inline (identity multihash): there is no block
-- to store or fetch.
function M.is_inline(c)
  local cc = type(c) == "string" and cid.parse(c) or c
  return cc ~= nil and tonumber(cc.mh.code) == IDENTITY
end

return M
