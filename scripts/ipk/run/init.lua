--- ipk.run: the recipe engine, one module per job:
--   ipk.run.recipe   the recipe model (recipe, param, step, kind; DAG order)
--   ipk.run.sandbox  loading recipe files and user scripts in a sandbox
--   ipk.run.key      step keys (what a step's memoized output depends on)
--   ipk.run.exec     running a recipe: tasks, retries, timeouts, Ctrl-C
--   ipk.run.plan     what a run would do and why, without running it
--   ipk.run.db       the runs, run_steps, run_logs, step_cache, artifacts tables
--   ipk.run.record   output and run records (DAG-JSON blocks)
-- This module gathers their public functions; callers outside the engine
-- use it (`require "ipk.run"`), the engine's modules require each other.
local recipe = require "ipk.run.recipe"
local sandbox = require "ipk.run.sandbox"
local key = require "ipk.run.key"
local exec = require "ipk.run.exec"
local plan = require "ipk.run.plan"
local db = require "ipk.run.db"
local record = require "ipk.run.record"

local pairs = pairs

local M = {}

M.PROFILE = key.PROFILE

M.sandbox, M.load_sandboxed, M.load_script, M.load_bytes, M.load =
  sandbox.sandbox, sandbox.load_sandboxed, sandbox.load_script, sandbox.load_bytes, sandbox.load

M.execute, M.run_file, M.resume = exec.execute, exec.run_file, exec.resume
M.plan = plan.plan

M.db, M.wallclock, M.get_run, M.list_runs, M.run_steps, M.logs, M.adopt_record =
  db.db, db.wallclock, db.get_run, db.list_runs, db.run_steps, db.logs, db.adopt_record

M.read_record, M.put_record, M.links = record.read_record, record.put_record, record.links

--- Run a recipe inside the current task without memoization (nothing is
-- recorded or cached): ipk.run.exec.execute with memo = false unless opts
-- says otherwise.
-- @return result table (recipe.result(outputs, ctx) or the outputs), or nil, msg
function M.run_recipe(r, opts)
  if not recipe.is_recipe(r) then error("ipk.run.run_recipe: a recipe (ipk.recipe{...}) expected", 2) end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.memo == nil then o.memo = false end
  return exec.execute(r, o)
end

return M
