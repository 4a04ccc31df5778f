--- ipk.schedule: recipes with `schedule = "<cron>"`, and the server that
-- runs them when due (`ipkrun serve`). Each scheduled recipe gets one task
-- that sleeps on a libuv timer until its next due time, runs the recipe
-- (recorded like any run) and only then computes the next due time: a run
-- never overlaps itself (due times passed meanwhile are skipped and logged),
-- and a failing run is recorded and the schedule goes on.
local cron = require "ipk.cron"
local runner = require "ipk.run"
local runtime = require "ipk.runtime"
local sched = require "ipk.sched"
local fs = require "ipk.fs"

local M = {}

-- The *.lua regular files directly in a folder (sorted), or the path itself
-- when it is a file. @return list | nil, msg (missing or unreadable)
local function lua_files(path)
  if fs.is_dir(path) then
    local entries, err, name = fs.walk(path, { depth = 1 })
    if not entries then return nil, err, name end
    local out = {}
    for _, e in ipairs(entries) do
      if e.type == "file" and e.path:match("%.lua$") then out[#out + 1] = path .. "/" .. e.path end
    end
    return out
  end
  if fs.exists(path) then return { path } end
  return nil, "no such file or folder", "ENOENT"
end

--- Scheduled recipes under paths (files or folders of *.lua).
-- @return list of {path, name, schedule, spec}, list of problems {path, error}
function M.discover(paths)
  local found, problems = {}, {}
  for _, p in ipairs(paths) do
    local files, ferr = lua_files(p)
    if not files then problems[#problems + 1] = { path = p, error = ferr } end
    for _, f in ipairs(files or {}) do
      local r, err = runner.load(f)
      if not r then
        -- Not a recipe (e.g. a strategy script) is not a problem for a folder scan.
        if not tostring(err):match("does not return ipk.recipe") then problems[#problems + 1] = { path = f, error = err } end
      elseif r.schedule then
        local spec, cerr = cron.parse(r.schedule)
        if spec then found[#found + 1] = { path = f, name = r.name, schedule = r.schedule, spec = spec }
        else problems[#problems + 1] = { path = f, error = cerr } end
      end
    end
  end
  return found, problems
end

--- Serve: run the entries when due until `stop()` returns true (checked
-- between runs and every 0.1 s while idle). Must run inside a task.
-- opts {stop=function() -> bool, on_run=function(entry, summary, err)}
-- @return counts {runs=, failed=, skipped=}
function M.serve(entries, opts)
  local stop = opts.stop or function() return false end
  local counts = { runs = 0, failed = 0, skipped = 0 }
  local tasks = {}
  for _, e in ipairs(entries) do
    tasks[#tasks + 1] = sched.spawn(function()
      local due = cron.next(e.spec, runner.wallclock())
      while due and not stop() do
        local now = runner.wallclock()
        if now < due then
          sched.sleep(math.min(0.1, due - now))
        else
          runtime.log("serve: %s due (%s)", e.name, os.date("%Y-%m-%d %H:%M:%S", math.floor(due)))
          local ok, res, err, sum = pcall(runner.run_file, e.path, {}, { quiet = true })
          counts.runs = counts.runs + 1
          if not ok then err = res; res = nil end
          if not res then counts.failed = counts.failed + 1 end
          runtime.log("serve: %s run %s %s%s", e.name, sum and sum.id or "-", sum and sum.status or "failed",
            res and "" or (": " .. tostring(err)))
          if opts.on_run then opts.on_run(e, sum, err) end
          -- The next due time after the run ended: ticks that passed while
          -- it ran are skipped, never queued (no overlap, no burst).
          local after = runner.wallclock()
          local nxt = cron.next(e.spec, math.max(due, after - 1))
          while nxt and nxt < after do
            counts.skipped = counts.skipped + 1
            runtime.log("serve: %s: skipped %s (previous run still going)", e.name,
              os.date("%H:%M:%S", math.floor(nxt)))
            nxt = cron.next(e.spec, nxt)
          end
          due = nxt
        end
      end
    end)
  end
  sched.settle(tasks)
  for _, t in ipairs(tasks) do
    if t.err then runtime.log("serve: internal error: %s", tostring(t.err)) end
  end
  return counts
end

return M
