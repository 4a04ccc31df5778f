--- ipk.sched: the task scheduler on the core's libuv loop.
-- The only place that resumes coroutines (ARCHITECTURE.md section 3).
-- A task is a coroutine; an async call inside it starts a C operation, gets
-- an operation id and yields it; `run` drives the loop, drains completions
-- (ipk_loop_next_done, pull-style: C never calls Lua) and resumes the task
-- that waits for each id.
-- Calling a yielding function outside a task raises an error.
--
-- Cancellation (M.cancel) ends any wait at once by cancelling the operation
-- underneath (ipk_loop_cancel: a timer stops, a queued job is dropped, a
-- running job sees its cancel flag between chunks, an HTTP transfer --
-- request, stream read, pubsub subscription -- is aborted). The waiting call
-- does not return: it raises the string "cancelled: REASON" (error level 0)
-- once the operation's one completion has arrived, so no C job is still
-- using the task's buffers when the task unwinds. Joins and yields end at
-- once. The runner recognises the "cancelled: " prefix.
--
-- Preemption: pure-Lua code that never waits cannot be woken that way. A
-- task with a `preempt` function (and optionally a `deadline`, core.now()
-- seconds), both set on the record before it first runs, is preemptible:
-- recipe code polls M.poll() in every loop body, goto and function entry
-- (ipk.run.sandbox instruments it), and when the host raised its flag (the
-- watchdog thread at the running task's deadline, or SIGINT: see
-- bindings/host/preempt.h) the poll asks t.preempt(t) for a reason and
-- raises "cancelled: REASON" there. This works inside JIT-compiled loops
-- (the FFI call stays in the trace), unlike a debug hook, which LuaJIT
-- never runs inside a trace. Library code is never interrupted mid-way: it
-- is cancelled at its next wait. Such a task also runs under the memory
-- cap's step limit (bindings/host/memcap.h): when an allocation was refused
-- while it ran, t.mem_refused is set (its error is LuaJIT's "not enough
-- memory").
local core = require "ipk.core"
local host = require "ipk.host"
local ffi, lib = core.ffi, core.lib

local co_create, co_resume, co_status, co_running, co_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.running, coroutine.yield

local M = {}

local loop_ptr = ffi.new("ipk_loop_t*[1]")
assert(lib.ipk_loop_new(loop_ptr) == 0, "ipk_loop_new failed")
local loop = ffi.gc(loop_ptr[0], lib.ipk_loop_free)
M.loop = loop

local waiting = {}     -- op id (number) -> {co, token}
local ready = {}       -- list of {co, token, n, values...} to resume
local tasks = {}       -- coroutine -> task record
local orphans, norphans = {}, 0  -- ops whose waiter left without cancelling them
local id_box = ffi.new("uint64_t[1]")
local rc_box = ffi.new("int[1]")

---------------------------------------------------------------------------
-- Preemption (see the module comment)

local pflag = host.preempt_flag()
local pending = host.preempt_pending
local running_preempt -- the preemptible task being resumed now

--- The poll that instrumented recipe code runs at every loop body, goto
-- and function entry (ipk.run.sandbox): one FFI call reading the host's
-- flag while nothing is asked (a few ns); when the host raised the flag (a
-- deadline, Ctrl-C), the running task's preempt(t) says why and the poll
-- raises "cancelled: REASON" here, in the recipe's code. A flag with no
-- reason (a deadline of a task that has since yielded) is lowered.
--
-- The flag is lowered BEFORE asking why, never after: the watchdog may
-- raise it (this task's deadline) while preempt(t) is still deciding "not
-- yet"; lowering it afterwards would drop that raise, and with the
-- watchdog's deadline spent the task would spin forever (seen when a step
-- starts a moment before its deadline). Lowered first, such a raise stays
-- for the next poll. When there is a reason the flag is raised again, so
-- every later poll of this task raises too and a pcall in recipe code
-- cannot swallow the cancellation.
function M.poll()
  if pending() == 0 then return end
  pflag[0] = 0
  local t = running_preempt
  local why = t and co_running() == t.co and (t.cancel or t.preempt(t))
  if not why then return end
  pflag[0] = 1
  t.cancel = t.cancel or why
  error("cancelled: " .. tostring(why), 0)
end

local CANCEL = {} -- the wake-up of a cancelled wait: resumed() raises


local function finish(t)
  tasks[t.co] = nil
  for _, w in ipairs(t.waiters or {}) do ready[#ready + 1] = { w[1], w[2], 0 } end
  t.waiters = nil
end

local function step(co, ...)
  local t = tasks[co]
  local ok, res
  if t.preempt then
    -- Arm the host's watchdog with this task's deadline while it runs
    -- (t.deadline: core.now() seconds). Step code also runs under the
    -- memory cap's step limit: an allocation refused while it runs is the
    -- task's (t.mem_refused).
    local refused = host.refused()
    running_preempt = t
    if t.deadline then host.preempt_deadline(t.deadline) end
    host.in_step(true)
    ok, res = co_resume(co, ...)
    host.in_step(false)
    if t.deadline then host.preempt_deadline(nil) end
    running_preempt = nil
    if host.refused() ~= refused then t.mem_refused = true end
  else
    ok, res = co_resume(co, ...)
  end
  if not ok then
    -- error(nil) / error(false) is still a failure: t.err must be truthy,
    -- or join and the step runner took the task for a success
    t.done, t.err = true, res or ("error(" .. tostring(res) .. ") raised with no message")
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
  ready[#ready + 1] = { co, false, select("#", ...), ... }
  return t
end

local function in_task()
  local co = co_running()
  return co and tasks[co] ~= nil
end
M.in_task = in_task

--- The current task's record (nil outside a task).
function M.current()
  local co = co_running()
  return co and tasks[co]
end

local function cancelled_error(t)
  error("cancelled: " .. tostring(t.cancel), 0)
end

-- Suspend the current task until a wake-up carrying `kind`'s token.
local function wait(kind)
  local co = co_running()
  local t = tasks[co]
  if t.cancel then cancelled_error(t) end
  local token = {}
  t.wait, t.wait_kind = token, kind
  return co, token
end

-- After a wake-up: any wake of a cancelled task raises (a job's wake comes
-- when the job is complete, so nothing still points into its buffers).
local function resumed(t, v)
  t.wait, t.wait_kind, t.wait_id = nil, nil, nil
  if v == CANCEL or t.cancel then cancelled_error(t) end
  return v
end

local function await_kind(id, kind)
  if not in_task() then error("ipk: async call outside a task (use ipk.run or sched.spawn)", 3) end
  local co, token = wait(kind)
  local t = tasks[co]
  t.wait_id = tonumber(id)
  waiting[tonumber(id)] = { co, token }
  return resumed(t, co_yield())
end

--- Wait for a core operation id started by the caller; returns its rc.
function M.await(id)
  return await_kind(id, "job")
end

--- Run a C job (ipk_job_fn) with arg on the thread pool; yields; returns rc.
-- The caller keeps arg alive until this returns.
function M.job(fn, arg)
  if not in_task() then error("ipk: async call outside a task (use ipk.run or sched.spawn)", 2) end
  local t = tasks[co_running()]
  if t.cancel then cancelled_error(t) end
  local rc = lib.ipk_loop_submit(loop, fn, arg, id_box)
  if rc ~= 0 then return rc end
  return await_kind(id_box[0], "job")
end

--- Sleep for seconds inside a task (cancellable at once: the timer stops).
function M.sleep(sec)
  if not in_task() then error("ipk: async call outside a task (use ipk.run or sched.spawn)", 2) end
  local rc = lib.ipk_loop_timer(loop, math.floor(math.max(0, sec) * 1000 + 0.5), id_box)
  if rc ~= 0 then return core.check(rc, nil, "sleep") end
  await_kind(id_box[0], "timer")
  return true
end

--- Let other tasks run.
function M.yield()
  local co, token = wait("yield")
  ready[#ready + 1] = { co, token, 0 }
  resumed(tasks[co], co_yield())
end

--- Raise "cancelled: ..." when the current task was cancelled (for long
-- pure-Lua loops between async calls).
function M.check()
  local t = M.current()
  if t and t.cancel then cancelled_error(t) end
end

--- Cancel task t (see the module comment). Idempotent; no-op when done.
function M.cancel(t, reason)
  if t.done or t.cancel then return end
  t.cancel = reason or "cancelled"
  if not t.wait then return end   -- running or runnable: raises at its next wait
  local id = t.wait_id
  if id and waiting[id] then
    -- End the operation: its one completion (IPK_ECANCELED, or its own rc
    -- if it had just finished) wakes the task, which then raises.
    local rc = lib.ipk_loop_cancel(loop, id)
    -- ENOENT: it completed meanwhile; the completion is queued.
    if rc == 0 or ffi.string(lib.ipk_err_name(rc)) == "ENOENT" then return end
    -- An operation that cannot be cancelled: wake the task now and ignore
    -- the late completion (counted so run() does not wait for it).
    waiting[id] = nil
    orphans[id] = true
    norphans = norphans + 1
  elseif id then
    -- Completion already drained, wake-up queued: it raises.
    return
  end
  ready[#ready + 1] = { t.co, t.wait, 1, CANCEL }
end

--- Wait until every task in list is done; returns results in order, or
-- raises the first error.
function M.join(list)
  if not in_task() then error("ipk: join outside a task", 2) end
  local out = {}
  for i, t in ipairs(list) do
    if not t.done then
      local co, token = wait("join")
      t.waiters = t.waiters or {}
      t.waiters[#t.waiters + 1] = { co, token }
      resumed(tasks[co], co_yield())
    end
    if t.err then error(t.err, 0) end
    out[i] = t.result
  end
  return out
end

--- Wait until every task in list is done, without raising; returns the list.
function M.settle(list)
  for _, t in ipairs(list) do
    if not t.done then
      local co, token = wait("join")
      t.waiters = t.waiters or {}
      t.waiters[#t.waiters + 1] = { co, token }
      resumed(tasks[co], co_yield())
    end
  end
  return list
end

local function wake(r)
  local co, token = r[1], r[2]
  local t = tasks[co]
  if not t then return end
  -- A stale wake-up (the task was cancelled out of that wait and now waits
  -- for something else) is dropped.
  if token and t.wait ~= token then return end
  step(co, unpack(r, 4, 3 + r[3]))
end

--- Drive the loop until no task is runnable and nothing is pending.
function M.run()
  while true do
    if #ready > 0 then
      local batch = ready
      ready = {}
      for _, r in ipairs(batch) do wake(r) end
      -- Poll without blocking so tasks that only yield cannot starve I/O.
      lib.ipk_loop_run(loop, 1)
    end
    while lib.ipk_loop_next_done(loop, id_box, rc_box) == 1 do
      local id = tonumber(id_box[0])
      local w = waiting[id]
      waiting[id] = nil
      if w then ready[#ready + 1] = { w[1], w[2], 1, rc_box[0] } end
      if orphans[id] then orphans[id] = nil; norphans = norphans - 1 end
    end
    if #ready == 0 then
      -- Done when only orphaned operations are left: nobody waits.
      if tonumber(lib.ipk_loop_pending(loop)) <= norphans then return end
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
