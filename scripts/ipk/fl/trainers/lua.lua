--- ipk.fl.trainers.lua: a user's Lua code as a trainer (ipk.fl.trainers).
--
-- Spec: {kind = "lua", script = "path/trainer.lua"}: the script runs in the
-- recipe sandbox (ipk.run.sandbox: no io/os, ipk modules and numeric ffi
-- only) and returns a table (or a function returning one)
--   { name = "...",
--     init = function(spec, features, classes, seed) -> set  (optional),
--     fit = function(global, shard, config) -> set, {num_examples, metrics},
--     evaluate = function(tensors, shard) -> {num_examples, loss, accuracy, ...} }
-- or the spec holds those functions itself ({kind = "lua", fit = fn, ...}).
-- Sets are ipk.fl.tensors sets (`local T = require("ipk").fl.tensors`):
-- t.ptr is a typed view of each tensor's elements, t.shape its shape.
-- fit receives a copy of the global model (it may train it in place and
-- return it); the shard's arrays (X, labels, idx) are views to read.
-- What the functions return is checked like any trainer's (names, shapes,
-- dtypes, finite values, num_examples); a raised error becomes
-- nil, "client <id>: ...", "EINVAL" (a cancellation still stops the task).
local sandbox = require "ipk.run.sandbox"
local sched = require "ipk.sched"
local base = require "ipk.fl.trainers.contract"
local T = require "ipk.fl.tensors"

local type, tostring, pcall = type, tostring, pcall

local M = {}

-- Call fn(...) catching its errors, except a cancellation (and the memory
-- cap), which must stop the task.
local function call(who, fn, ...)
  local r = { pcall(fn, ...) }
  if not r[1] then
    local e = r[2]
    local t = sched.current()
    if (t and t.cancel) or e == "not enough memory" then error(e, 0) end
    return nil, base.prefixed(who, tostring(e)), "EINVAL"
  end
  return true, r[2], r[3], r[4]
end

--- A Lua trainer for spec (see the module comment).
function M.new(spec)
  local impl = spec
  if spec.script ~= nil then
    if type(spec.script) ~= "string" then return nil, "lua trainer: script must be a path", "EINVAL" end
    local v, err, name = sandbox.load_script(spec.script)
    if v == nil then return nil, "lua trainer " .. spec.script .. ": " .. tostring(err), name end
    if type(v) == "function" then
      local ok, r = pcall(v)
      if not ok then return nil, "lua trainer " .. spec.script .. ": " .. tostring(r), "EINVAL" end
      v = r
    end
    impl = v
  end
  local src = spec.script or "spec"
  if type(impl) ~= "table" or type(impl.fit) ~= "function" or type(impl.evaluate) ~= "function" then
    return nil, "lua trainer " .. src .. ": must provide {fit = function(global, shard, config), "
      .. "evaluate = function(tensors, shard), init = optional}", "EINVAL"
  end
  if impl.init ~= nil and type(impl.init) ~= "function" then
    return nil, "lua trainer " .. src .. ": init must be a function", "EINVAL"
  end
  local tr = { kind = "lua", name = impl.name or (spec.script and spec.script:gsub(".*/", ""):gsub("%.lua$", "")) or "lua",
               spec = spec }

  function tr.init(sp, features, classes, seed)
    if not impl.init then
      return nil, "lua trainer " .. src .. ": no init function (give the recipe an initial model)", "EINVAL"
    end
    local who = "lua trainer init"
    local ok, set, err, name = call(who, impl.init, sp or spec, features, classes, seed or 0)
    if not ok then return nil, set, err end
    if set == nil then return nil, base.prefixed(who, tostring(err)), name or "EINVAL" end
    if not T.is_set(set) then return nil, who .. ": init must return a tensor set", "EFORMAT" end
    local fin, ferr, fname = set:check_finite(who)
    if not fin then return nil, ferr, fname end
    return set
  end

  function tr.fit(global, shard, config)
    local who = base.who(shard)
    local cfg = {}
    for k, v in pairs(config or {}) do cfg[k] = v end
    local ok, set, r, name = call(who, impl.fit, global:copy(), shard, cfg)
    if not ok then return nil, set, r end
    if set == nil then return nil, base.prefixed(who, tostring(r)), name or "EINVAL" end
    local good, err, ename = base.check_update(global, set, who)
    if not good then return nil, err, ename end
    local res
    res, err, ename = base.check_result(r, who)
    if not res then return nil, err, ename end
    return set, res
  end

  function tr.evaluate(tensors, shard)
    local who = base.who(shard)
    local ok, r, err, name = call(who, impl.evaluate, tensors, shard)
    if not ok then return nil, r, err end
    if r == nil then return nil, base.prefixed(who, tostring(err)), name or "EINVAL" end
    return base.check_eval(r, who)
  end

  function tr.close() end

  return tr
end

return M
