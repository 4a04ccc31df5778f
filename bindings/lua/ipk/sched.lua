--- ipk.sched: the task scheduler on the core's libuv loop.
-- The only place that resumes coroutines (ARCHITECTURE.md section 3).
-- A task is a coroutine; an async call inside it starts a C operation, gets
-- an operation id and yields it; `run` drives the loop, drains completions
-- (ipk_loop_next_done, pull-style: C never calls Lua) and resumes the task
-- that waits for each id.
-- Calling a yielding function outside a task raises an error.
local core = require "ipk.core"
local ffi, lib = core.ffi, core.lib

local co_create, co_resume, co_status, co_running, co_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.running, coroutine.yield

local M = {}

local loop_ptr = ffi.new("ipk_loop_t*[1]")
assert(lib.ipk_loop_new(loop_ptr) == 0, "ipk_loop_new failed")
local loop = ffi.gc(loop_ptr[0], lib.ipk_loop_free)
M.loop = loop

local waiting = {}     -- op id (number) -> coroutine
local ready = {}       -- list of {co, value} to resume
local tasks = {}       -- coroutine -> task record
local id_box = ffi.new("uint64_t[1]")
local rc_box = ffi.new("int[1]")

local function finish(t)
  tasks[t.co] = nil
  for _, w in ipairs(t.waiters or {}) do ready[#ready + 1] = { w, 0 } end
  t.waiters = nil
end

local function step(co, ...)
  local t = tasks[co]
  local ok, res = co_resume(co, ...)
  if not ok then
    t.done, t.err = true, res
    finish(t)
  elseif co_status(co) == "dead" then
    t.done, t.result = true, res
    finish(t)
  end
end

--- Start fn(...) as a task. Returns the task record {done, result, err}.
-- The task starts on the next scheduler turn.
function M.spawn(fn, ...)
  local co = co_create(fn)
  local t = { co = co, done = false }
  tasks[co] = t
  ready[#ready + 1] = { co, select("#", ...), ... }
  return t
end

local function in_task()
  local co = co_running()
  return co and tasks[co] ~= nil
end
M.in_task = in_task

--- Wait for a core operation id started by the caller; returns its rc.
function M.await(id)
  if not in_task() then error("ipk: async call outside a task (use ipk.run or sched.spawn)", 2) end
  waiting[tonumber(id)] = co_running()
  return co_yield()
end

--- Run a C job (ipk_job_fn) with arg on the thread pool; yields; returns rc.
-- The caller keeps arg alive until this returns.
function M.job(fn, arg)
  if not in_task() then error("ipk: async call outside a task (use ipk.run or sched.spawn)", 2) end
  local rc = lib.ipk_loop_submit(loop, fn, arg, id_box)
  if rc ~= 0 then return rc end
  return M.await(id_box[0])
end

--- Sleep for seconds inside a task.
function M.sleep(sec)
  local rc = lib.ipk_loop_timer(loop, math.floor(sec * 1000 + 0.5), id_box)
  if rc ~= 0 then return nil, "timer failed" end
  M.await(id_box[0])
  return true
end

--- Let other tasks run.
function M.yield()
  ready[#ready + 1] = { co_running(), 0 }
  return co_yield()
end

--- Wait until every task in list is done; returns results in order, or
-- raises the first error.
function M.join(list)
  if not in_task() then error("ipk: join outside a task", 2) end
  local out = {}
  for i, t in ipairs(list) do
    if not t.done then
      t.waiters = t.waiters or {}
      t.waiters[#t.waiters + 1] = co_running()
      co_yield()
    end
    if t.err then error(t.err, 0) end
    out[i] = t.result
  end
  return out
end

--- Drive the loop until no task is runnable and nothing is pending.
function M.run()
  while true do
    if #ready > 0 then
      local batch = ready
      ready = {}
      for _, r in ipairs(batch) do
        local co = r[1]
        if tasks[co] then step(co, unpack(r, 3, 2 + r[2])) end
      end
      -- Poll without blocking so tasks that only yield cannot starve I/O.
      lib.ipk_loop_run(loop, 1)
    end
    while lib.ipk_loop_next_done(loop, id_box, rc_box) == 1 do
      local co = waiting[tonumber(id_box[0])]
      waiting[tonumber(id_box[0])] = nil
      if co then ready[#ready + 1] = { co, 1, rc_box[0] } end
    end
    if #ready == 0 then
      if lib.ipk_loop_pending(loop) == 0 then return end
      lib.ipk_loop_run(loop, 0)
    end
  end
end

--- Run fn(...) as a task to completion on a fresh scheduler turn and return
-- its results; errors propagate. Usable from plain code (CLI, REPL).
function M.run_task(fn, ...)
  if in_task() then return fn(...) end
  local t = M.spawn(function(...) return { fn(...) } end, ...)
  M.run()
  if t.err then error(t.err, 0) end
  if not t.done then error("ipk: task did not finish (deadlock)", 0) end
  return unpack(t.result, 1, table.maxn(t.result))
end

return M
