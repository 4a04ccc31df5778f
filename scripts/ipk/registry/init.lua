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
--
-- One module per job, gathered here (callers use `require "ipk.registry"`):
--   ipk.registry.semver   version parsing and precedence
--   ipk.registry.catalog  register, get, list, aliases, remove, fetch
--   ipk.registry.export   model_registry.json export/import, state CID
--   ipk.registry.db       the tables and row helpers
--   ipk.registry.steps    the step constructor (add) recipes use
local semver = require "ipk.registry.semver"
local catalog = require "ipk.registry.catalog"
local export = require "ipk.registry.export"
local steps = require "ipk.registry.steps"

local M = {}

M.import = export.import

-- Library calls (return a value now).
M.semver, M.compare = semver.semver, semver.compare
M.register, M.parse_ref, M.get, M.parse_where, M.list = catalog.register, catalog.parse_ref, catalog.get,
  catalog.parse_where, catalog.list
M.adopt_entry = catalog.adopt_entry
M.set_alias, M.alias_history, M.aliases, M.remove, M.fetch = catalog.set_alias, catalog.alias_history,
  catalog.aliases, catalog.remove, catalog.fetch
M.export, M.index_cid, M.import_registry = export.export, export.index_cid, export.import_registry

-- Step constructors (ipk.registry.add{...} in a recipe's steps).
M.add = steps.add

return M
