--- ipk: what `require "ipk"` gives a recipe, the REPL and user code.
-- Modules load lazily (on first use of ipk.X, through the `lazy` table below,
-- the one place a require is deferred) so `ipkrun --help` does not open the
-- store.
--
-- Two kinds of functions, never sharing a name:
--   * a step constructor, `ipk.X.op { ... }` written as a value in a
--     recipe's `steps`: it does nothing yet and returns a step description
--     that the engine (ipk.run) runs, memoizes and records. ipk.dataset.add,
--     ipk.dataset.split, ipk.fl.train, ipk.registry.add, and ipk.step for
--     your own; ipk.kind defines new ones. Each package keeps them in
--     X/steps.lua; ipk.run.recipe.is_constructor(v) tells them apart.
--   * a library call: does the work now and returns its value, or nil, msg,
--     name (ipk.dataset.add_version, ipk.dataset.get, ipk.registry.register,
--     ipk.fl.run). One that does what a step does is named for what it
--     returns (add_version, split_version, register), not for the step.
-- Values built with the same brace syntax that are not steps
-- (ipk.fl.model.softmax { classes = 10 }, ipk.fl.fedavg()) are library calls.
-- `ipk.run(fn)` runs fn as a task; the engine itself is `require "ipk.run"`
-- (ipk.runner in the REPL), which recipes cannot reach.
local M = {}

local lazy = {
  core = "ipk.core", sched = "ipk.sched", cid = "ipk.cid", unixfs = "ipk.unixfs",
  store_mod = "ipk.store", dataset = "ipk.dataset", registry = "ipk.registry",
  fl = "ipk.fl", json = "ipk.json", runtime = "ipk.runtime",
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
