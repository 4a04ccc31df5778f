--- ipk.dataset: dataset versions, statistics, shards, splits, diffs.
-- One module per job, gathered here (callers use `require "ipk.dataset"`):
--   ipk.dataset.catalog  versions: add, list, get, fetch (the datasets table)
--   ipk.dataset.stats    format detection and statistics of a file or folder
--   ipk.dataset.idx      IDX arrays in cdata, f32 features
--   ipk.dataset.partition  federated client splits, row shards, train/test
--   ipk.dataset.diff     diff and verify of versions
--   ipk.dataset.stage    scratch copies under $IPK_HOME/staging
--   ipk.dataset.steps    the step constructors (add, split) recipes use
local catalog = require "ipk.dataset.catalog"
local stats = require "ipk.dataset.stats"
local idx = require "ipk.dataset.idx"
local partition = require "ipk.dataset.partition"
local diff = require "ipk.dataset.diff"
local steps = require "ipk.dataset.steps"

local M = {}

M.import = catalog.import

-- Library calls (return a value now).
M.add_version, M.list, M.parse_ref, M.get, M.fetch =
  catalog.add_version, catalog.list, catalog.parse_ref, catalog.get, catalog.fetch
M.version_record, M.adopt_record, M.RECORD_TYPE = catalog.version_record, catalog.adopt_record, catalog.RECORD_TYPE
M.file_stats = stats.file_stats
M.load_idx, M.features = idx.load, idx.features
M.split_version, M.shard, M.split_rows = partition.split_version, partition.shard, partition.split_rows
M.diff, M.verify = diff.diff, diff.verify

-- Step constructors (ipk.dataset.add{...} in a recipe's steps).
M.add, M.split = steps.add, steps.split

return M
