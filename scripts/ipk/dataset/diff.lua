--- ipk.dataset.diff: comparing two versions block by block, and verifying
-- a version (every block re-read and its bytes re-imported to the same CID).
local core = require "ipk.core"
local runtime = require "ipk.runtime"
local json = require "ipk.json"
local fs = require "ipk.fs"
local cidmod = require "ipk.cid"
local unixfs = require "ipk.unixfs"
local catalog = require "ipk.dataset.catalog"
local stage = require "ipk.dataset.stage"
local ffi, lib = core.ffi, core.lib

local M = {}

local is_dir = fs.is_dir

-- UnixFS node type from a dag-pb Data field (field 1, varint): 1 dir, 2 file.
local function unixfs_type(data, n)
  if n >= 2 and data[0] == 0x08 then return data[1] end
  return nil
end

-- Files of a DAG: path -> {cid, leaves = {cid -> size}, size}; every block is
-- read through the store (so verified against its CID).
local function tree(root)
  local store = runtime.backend()
  local files = {}
  local function blk(c)
    local b, err = store:get(c)
    if not b then error("block " .. c .. ": " .. tostring(err), 0) end
    return b
  end
  local function leaves_of(c, acc)
    local b = blk(c)
    local parsed = assert(cidmod.parse(c))
    if parsed.codec == 0x55 then acc[c] = #b; return #b end
    local node, eb = ffi.new("ipk_dagpb_node_t"), core.errbuf()
    local rc = lib.ipk_dagpb_decode(b, #b, node, eb)
    if rc ~= 0 then error("block " .. c .. ": " .. ffi.string(eb.msg), 0) end
    local n, size = tonumber(node.nlinks), 0
    if n == 0 then acc[c] = #b; size = #b end
    local kids = {}
    for i = 0, n - 1 do kids[#kids + 1] = cidmod.format(node.links[i].cid) end
    lib.ipk_dagpb_node_free(node)
    for _, k in ipairs(kids) do size = size + leaves_of(k, acc) end
    return size
  end
  local function walk(c, prefix)
    local parsed = assert(cidmod.parse(c))
    if parsed.codec == 0x55 then
      local acc = {}
      files[prefix] = { cid = c, size = leaves_of(c, acc), leaves = acc }
      return
    end
    local b = blk(c)
    local node, eb = ffi.new("ipk_dagpb_node_t"), core.errbuf()
    local rc = lib.ipk_dagpb_decode(b, #b, node, eb)
    if rc ~= 0 then error("block " .. c .. ": " .. ffi.string(eb.msg), 0) end
    local t = node.has_data ~= 0 and unixfs_type(node.data, tonumber(node.data_len)) or nil
    if t == 1 then
      local kids = {}
      for i = 0, tonumber(node.nlinks) - 1 do
        local l = node.links[i]
        kids[#kids + 1] = { ffi.string(l.name, l.name_len), cidmod.format(l.cid) }
      end
      lib.ipk_dagpb_node_free(node)
      for _, k in ipairs(kids) do walk(k[2], prefix == "" and k[1] or (prefix .. "/" .. k[1])) end
    else
      lib.ipk_dagpb_node_free(node)
      local acc = {}
      files[prefix] = { cid = c, size = leaves_of(c, acc), leaves = acc }
    end
  end
  walk(root, "")
  return files
end

--- Compare two versions (refs "name@version" or CIDs): files added,
-- removed, changed (with chunks changed) and unchanged; bytes shared
-- counts the distinct leaf blocks both contain.
-- @return {a, b, added, removed, changed, unchanged, chunks_shared, bytes_shared, bytes_a, bytes_b} or nil, msg
function M.diff(ref_a, ref_b)
  local va, err, name = catalog.resolve(ref_a)
  if not va then return nil, err, name end
  local vb; vb, err, name = catalog.resolve(ref_b)
  if not vb then return nil, err, name end
  local ok, ta = pcall(tree, va.cid)
  if not ok then return nil, "diff: " .. tostring(ta), "EIO" end
  local tb
  ok, tb = pcall(tree, vb.cid)
  if not ok then return nil, "diff: " .. tostring(tb), "EIO" end
  local res = { a = va.cid, b = vb.cid, added = {}, removed = {}, changed = {}, unchanged = 0,
                chunks_shared = 0, bytes_shared = 0, bytes_a = 0, bytes_b = 0 }
  local la, lb = {}, {}
  for p, f in pairs(ta) do
    for c, s in pairs(f.leaves) do la[c] = s end
    local g = tb[p]
    if not g then res.removed[#res.removed + 1] = p
    elseif g.cid == f.cid then res.unchanged = res.unchanged + 1
    else
      local total, same = 0, 0
      for c in pairs(g.leaves) do total = total + 1; if f.leaves[c] then same = same + 1 end end
      res.changed[#res.changed + 1] = { path = p, chunks = total, chunks_changed = total - same,
                                        size_a = f.size, size_b = g.size }
    end
  end
  for p, g in pairs(tb) do
    for c, s in pairs(g.leaves) do lb[c] = s end
    if not ta[p] then res.added[#res.added + 1] = p end
  end
  for c, s in pairs(la) do
    res.bytes_a = res.bytes_a + s
    if lb[c] then res.chunks_shared = res.chunks_shared + 1; res.bytes_shared = res.bytes_shared + s end
  end
  for _, s in pairs(lb) do res.bytes_b = res.bytes_b + s end
  table.sort(res.added)
  table.sort(res.removed)
  table.sort(res.changed, function(x, y) return x.path < y.path end)
  res.added, res.removed, res.changed = json.array(res.added), json.array(res.removed), json.array(res.changed)
  return res
end

--- Verify a version: read every block back from the store (each checked
-- against its CID), re-import the bytes with the recorded options and
-- compare the root CID; also report whether the recorded source still
-- gives the same CID.
-- @return {cid, ok, recomputed, source, source_matches} or nil, msg
function M.verify(ref)
  local v, err, name = catalog.resolve(ref)
  if not v then return nil, err, name end
  local data, tmp, sname = stage.local_copy(v)
  if not data then return nil, "verify " .. v.cid .. ": " .. tostring(tmp), sname end
  local o = { recursive = is_dir(data), only_hash = true }
  for k, x in pairs(v.import or catalog.import) do o[k] = x end
  local again, aerr, aname = unixfs.add(data, o)
  stage.rm_rf(tmp)
  if not again then return nil, "verify " .. v.cid .. ": " .. tostring(aerr), aname end
  local res = { cid = v.cid, recomputed = again.root, ok = again.root == v.cid, name = v.name, version = v.version }
  if v.source and fs.exists(v.source) then
    o.recursive = is_dir(v.source)
    local src = unixfs.add(v.source, o)
    res.source = v.source
    res.source_matches = src ~= nil and src.root == v.cid
  end
  return res
end

return M
