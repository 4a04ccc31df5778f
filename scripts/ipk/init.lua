--- ipk: what `require "ipk"` gives a recipe, the REPL and user code.
-- Modules load lazily so `ipkrun --help` does not open the store.
local M = {}

local lazy = {
  core = "ipk.core", sched = "ipk.sched", cid = "ipk.cid", unixfs = "ipk.unixfs",
  store_mod = "ipk.store", dataset = "ipk.dataset", registry = "ipk.registry",
  train = "ipk.train", fl = "ipk.fl", json = "ipk.json", runtime = "ipk.runtime",
}

setmetatable(M, { __index = function(t, k)
  local mod = lazy[k]
  if not mod then return nil end
  local v = require(mod)
  rawset(t, k, v)
  return v
end })

local recipe = require "ipk.run.recipe"
M.recipe = recipe.recipe
M.param = recipe.param
M.step = recipe.step
M.kind = recipe.kind

--- The library version.
function M.version() return M.core.version() end

--- The open embedded store of $IPK_HOME (opened on first use): the
-- catalog database and the local tier.
function M.store() return M.runtime.store() end

--- Where blocks and pins go (ipk.backend protocol): the embedded store, or
-- the node given with --api / IPK_API behind the tiered cache.
function M.backend() return M.runtime.backend() end

--- Run fn(...) as a task and return its results (async calls work inside).
function M.run(fn, ...) return M.sched.run_task(fn, ...) end

return M
