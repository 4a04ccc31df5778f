--- ipk.recipe: the recipe model and its first runner.
-- A recipe file returns `ipk.recipe { name=, params=, steps=, result= }`
-- (ARCHITECTURE.md section 7). Steps are built by step constructors
-- (ipk.dataset.add{...}, ipk.fl.train{...}, or ipk.step{run=fn}) and name their
-- inputs by step name; `ipk.param "k"` refers to a recipe parameter.
-- This runner resolves params, orders the DAG, and runs steps one after the
-- other inside a scheduler task (no memoization yet: issue 5 grows it).
local M = {}

local pairs, ipairs, type, tostring, tonumber, error, setmetatable, getmetatable =
  pairs, ipairs, type, tostring, tonumber, error, setmetatable, getmetatable
local sort, concat = table.sort, table.concat

local PARAM = {}   -- metatable tag of param references
local STEP = {}    -- metatable tag of step specs
local RECIPE = {}  -- metatable tag of recipes

--- Reference a recipe parameter inside a step's arguments.
-- @param name parameter name (must be declared in the recipe's params)
function M.param(name)
  if type(name) ~= "string" then error("bad argument #1 to 'param' (string expected)", 2) end
  return setmetatable({ name = name }, PARAM)
end

function M.is_param(v) return getmetatable(v) == PARAM end
function M.is_step(v) return getmetatable(v) == STEP end

--- Define a step kind. Returns a constructor taking the step's argument table.
-- @param def {kind=string, version=int, inputs={field=true,...}, run=function(ctx, args)}
--   `inputs` lists the argument fields that name other steps; their values are
--   replaced by those steps' outputs before run is called.
function M.kind(def)
  assert(type(def.kind) == "string" and type(def.run) == "function", "kind needs kind and run")
  def.version = def.version or 1
  def.inputs = def.inputs or {}
  return function(args)
    if args ~= nil and type(args) ~= "table" then
      error("bad argument to step '" .. def.kind .. "' (table expected)", 2)
    end
    local info = debug.getinfo(2, "Sl")
    return setmetatable({ kind = def, args = args or {},
      where = info and (info.short_src .. ":" .. (info.currentline or 0)) or "?" }, STEP)
  end
end

--- A custom step: ipk.step { after = {"a","b"}, run = function(ctx, inputs, args) ... end }
M.step = M.kind { kind = "custom", inputs = {}, run = function(ctx, args)
  return args.run(ctx, args.inputs or {}, args)
end }

local PARAM_TYPES = { integer = true, number = true, string = true, boolean = true }

local function norm_params(decl)
  local out = {}
  for k, v in pairs(decl or {}) do
    if type(v) ~= "table" then v = { default = v } end
    local t = v.type
    if not t then
      local d = v.default
      if type(d) == "number" then t = (d == math.floor(d)) and "integer" or "number"
      elseif type(d) == "boolean" then t = "boolean" else t = "string" end
    end
    if not PARAM_TYPES[t] then error("param '" .. k .. "': unknown type '" .. tostring(t) .. "'", 3) end
    out[k] = { default = v.default, type = t, doc = v.doc, min = v.min, max = v.max }
  end
  return out
end

--- Declare a recipe. Validates its shape and returns it (tagged).
function M.recipe(def)
  if type(def) ~= "table" then error("bad argument #1 to 'recipe' (table expected)", 2) end
  if type(def.name) ~= "string" then error("recipe: 'name' (string) is required", 2) end
  if type(def.steps) ~= "table" then error("recipe: 'steps' (table) is required", 2) end
  for name, s in pairs(def.steps) do
    if not M.is_step(s) then
      error("recipe '" .. def.name .. "': step '" .. tostring(name) .. "' is not a step (use ipk.step{...} or a built-in)", 2)
    end
  end
  def.params = norm_params(def.params)
  return setmetatable(def, RECIPE)
end

function M.is_recipe(v) return getmetatable(v) == RECIPE end

--- Convert a command-line value to the declared type.
local function coerce(name, p, v)
  if p.type == "string" then return v end
  if p.type == "boolean" then
    if v == "true" or v == "1" then return true elseif v == "false" or v == "0" then return false end
    return nil, "param '" .. name .. "': expected boolean, got '" .. v .. "'"
  end
  local n = tonumber(v)
  if not n then return nil, "param '" .. name .. "': expected " .. p.type .. ", got '" .. v .. "'" end
  if p.type == "integer" and n ~= math.floor(n) then
    return nil, "param '" .. name .. "': expected integer, got '" .. v .. "'"
  end
  if p.min and n < p.min then return nil, "param '" .. name .. "': " .. v .. " is below the minimum " .. p.min end
  if p.max and n > p.max then return nil, "param '" .. name .. "': " .. v .. " is above the maximum " .. p.max end
  return n
end

--- Resolve param values: defaults overridden by overrides (strings from the CLI
-- or typed values). Returns the table or nil, msg.
function M.resolve_params(recipe, overrides)
  local out = {}
  for k, p in pairs(recipe.params) do out[k] = p.default end
  for k, v in pairs(overrides or {}) do
    local p = recipe.params[k]
    if not p then
      local names = {}
      for n in pairs(recipe.params) do names[#names + 1] = n end
      sort(names)
      return nil, "unknown param '" .. k .. "' (recipe '" .. recipe.name .. "' has: " .. concat(names, ", ") .. ")"
    end
    if type(v) == "string" then
      local c, err = coerce(k, p, v)
      if c == nil then return nil, err end
      v = c
    end
    out[k] = v
  end
  return out
end

--- Topological order of step names (ties broken by name for determinism).
-- Errors name the step and the recipe line that declared it.
function M.order(recipe)
  local deps = {}
  for name, s in pairs(recipe.steps) do
    local d = {}
    for field in pairs(s.kind.inputs) do
      local ref = s.args[field]
      if ref ~= nil then
        if type(ref) ~= "string" or not recipe.steps[ref] then
          return nil, s.where .. ": step '" .. name .. "': input '" .. field .. "' names unknown step '" .. tostring(ref) .. "'"
        end
        d[#d + 1] = ref
      end
    end
    for _, ref in ipairs(s.args.after or {}) do
      if not recipe.steps[ref] then
        return nil, s.where .. ": step '" .. name .. "': 'after' names unknown step '" .. tostring(ref) .. "'"
      end
      d[#d + 1] = ref
    end
    deps[name] = d
  end
  local order, state = {}, {}
  local names = {}
  for n in pairs(recipe.steps) do names[#names + 1] = n end
  sort(names)
  local function visit(n, path)
    if state[n] == "done" then return true end
    if state[n] == "active" then
      return nil, recipe.steps[n].where .. ": cycle: " .. concat(path, " -> ") .. " -> " .. n
    end
    state[n] = "active"
    path[#path + 1] = n
    local d = deps[n]
    sort(d)
    for _, m in ipairs(d) do
      local ok, err = visit(m, path)
      if not ok then return nil, err end
    end
    path[#path] = nil
    state[n] = "done"
    order[#order + 1] = n
    return true
  end
  for _, n in ipairs(names) do
    local ok, err = visit(n, {})
    if not ok then return nil, err end
  end
  return order
end

local function resolve_args(args, params, outputs, inputs)
  local out = {}
  for k, v in pairs(args) do
    if getmetatable(v) == PARAM then
      if params[v.name] == nil then error("unknown param '" .. v.name .. "'", 0) end
      out[k] = params[v.name]
    elseif inputs[k] and type(v) == "string" then
      out[k] = outputs[v]
    elseif type(v) == "table" and not getmetatable(v) then
      out[k] = resolve_args(v, params, outputs, {})
    else
      out[k] = v
    end
  end
  return out
end

--- Run a recipe inside the current task.
-- @param recipe a recipe from M.recipe
-- @param opts {params=table (resolved), log=function(fmt,...), recipe_cid=, recipe_path=}
-- @return result table (recipe.result(outputs, ctx) or the outputs), or nil, msg
function M.run(recipe, opts)
  opts = opts or {}
  local order, err = M.order(recipe)
  if not order then return nil, err end
  local params = opts.params or assert(M.resolve_params(recipe, {}))
  local log = opts.log or function() end
  local outputs = {}
  local ctx = { params = params, log = log, recipe = recipe, recipe_cid = opts.recipe_cid,
                recipe_path = opts.recipe_path, outputs = outputs, timings = {} }
  local now = require("ipk.core").now
  for i, name in ipairs(order) do
    local s = recipe.steps[name]
    ctx.step = name
    log("step %d/%d %s (%s)", i, #order, name, s.kind.kind)
    local t0 = now()
    local ok, res, msg = pcall(function()
      return s.kind.run(ctx, resolve_args(s.args, params, outputs, s.kind.inputs))
    end)
    if not ok then return nil, "step '" .. name .. "': " .. tostring(res) end
    if res == nil and msg then return nil, "step '" .. name .. "': " .. tostring(msg) end
    outputs[name] = res
    ctx.timings[name] = now() - t0
    log("step %s done in %.2fs", name, ctx.timings[name])
  end
  if recipe.result then return recipe.result(outputs, ctx) end
  -- No result function: every step's output, reduced to what JSON can carry.
  return require("ipk.json").sanitize(outputs)
end

return M
