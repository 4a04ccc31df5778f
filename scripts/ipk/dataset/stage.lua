--- ipk.dataset.stage: scratch copies of versions under $IPK_HOME/staging
-- (materialized from the store, so every block is verified) and adding a
-- derived directory (shards, splits) back as a pinned UnixFS directory.
local runtime = require "ipk.runtime"
local unixfs = require "ipk.unixfs"
local catalog = require "ipk.dataset.catalog"
local staging = require "ipk.staging"

local M = {}

--- A new directory under $IPK_HOME/staging (ipk.staging: named after this
-- process, so one left by a killed command is removed by the next).
-- @return path | nil, msg
function M.mktemp()
  return staging.new("ds")
end

--- Remove a staging directory made by mktemp (nothing else).
function M.rm_rf(d)
  staging.remove(d)
end

-- The version's bytes as a local path: its recorded source when it still
-- hashes to the CID would be faster, but the store is the truth: materialize.
function M.local_copy(v)
  local tmp, terr, tname = M.mktemp()
  if not tmp then return nil, terr, tname end
  local out = tmp .. "/data"
  local ok, err, name = runtime.backend():save(v.cid, out)
  if not ok then M.rm_rf(tmp); return nil, tostring(err), name end
  return out, tmp
end

-- Add dir (recursive) with the dataset import options and pin it.
function M.add_and_pin(dir, pin_name)
  local store = runtime.backend()
  local opts = { recursive = true, blocks = store:blocks() }
  for k, x in pairs(catalog.import) do opts[k] = x end
  local added, err, name = unixfs.add(dir, opts)
  if not added then return nil, err, name end
  local ok, perr, pname = store:pin_add(added.root, { recursive = true, name = pin_name })
  if not ok then return nil, perr, pname end
  local by = {}
  local top = dir:match("[^/]+$")
  for _, e in ipairs(added.entries) do by[e.path:sub(#top + 2)] = e end
  return added.root, by
end

return M
