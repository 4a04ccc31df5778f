--- ipk.run.recipe: the recipe model (what `ipk.recipe`, `ipk.param`,
-- `ipk.step` and `ipk.kind` are).
-- A recipe file returns `ipk.recipe { name=, params=, steps=, result=,
-- schedule= }` (ARCHITECTURE.md section 7). Steps are built by step
-- constructors (ipk.dataset.add{...}, ipk.fl.train{...}, or ipk.step{run=fn})
-- and name their inputs by step name; `ipk.param "k"` refers to a recipe
-- parameter, `ipk.cid "bafy..."` is a literal CID and `ipk.path "dir"` a
-- literal path whose contents (names, sizes, mtimes) enter the step key.
-- Execution and memoization live in ipk.run.exec; this module runs nothing.
local cidmod = require "ipk.cid"
local dagjson = require "ipk.dagjson"

local M = {}

local pairs, ipairs, type, tostring, tonumber, error, setmetatable, getmetatable =
  pairs, ipairs, type, tostring, tonumber, error, setmetatable, getmetatable
local sort, concat = table.sort, table.concat
local json = require "ipk.json"

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

local CIDLIT, PATHLIT = {}, {}

--- A literal CID input (its link enters the step key as is).
function M.cid(s)
  if type(s) ~= "string" or not cidmod.parse(s) then
    error("bad argument #1 to 'cid' (a valid CID string expected, got " .. tostring(s) .. ")", 2)
  end
  return setmetatable({ cid = s }, CIDLIT)
end

--- A literal path input: the step gets the string; the key gets a
-- fingerprint of the file or directory (names, sizes, mtimes).
function M.path(s)
  if type(s) ~= "string" then error("bad argument #1 to 'path' (string expected)", 2) end
  return setmetatable({ path = s }, PATHLIT)
end

function M.is_cid(v) return getmetatable(v) == CIDLIT end

--- In a kind's encode: a link to an artifact CID (string) inside the output
-- record; link_cid reads it back in decode.
function M.link(cid) return dagjson.link(cid) end
function M.link_cid(v) return dagjson.is_link(v) end
function M.is_path(v) return getmetatable(v) == PATHLIT end

-- Step arguments that steer execution, not results: kept out of the key.
M.META_ARGS = { after = true, timeout = true, retries = true, retry_delay = true, cache = true }

-- Step constructors made by M.kind (weak keys): how is_constructor tells a
-- step constructor from a library call (both are plain functions).
local constructors = setmetatable({}, { __mode = "k" })

--- Define a step kind. Returns a constructor taking the step's argument table.
-- @param def {kind=string, version=int, inputs={field=true,...}, run=function(ctx, args),
--   encode=function(out, ctx) -> record, decode=function(record, ctx, args) -> out,
--   paths={field=true} (args that are filesystem paths: fingerprinted into the key),
--   context={"recipe_cid"} (ctx fields the output depends on: part of the key),
--   profile=table (import options the output depends on: part of the key),
--   args={"name",...} (the other arguments it reads: anything else is an
--   error at the constructor's call, file:line)}
--   `inputs` lists the argument fields that name other steps; their values are
--   replaced by those steps' outputs before run is called. A kind with encode
--   and decode is memoized: its output is recorded as a DAG-JSON block
--   (links {"/": cid} to the artifacts) and restored by decode without
--   recomputation. Bump `version` when the kind's results change.
function M.kind(def)
  assert(type(def.kind) == "string" and type(def.run) == "function", "kind needs kind and run")
  def.version = def.version or 1
  def.inputs = def.inputs or {}
  -- def.args (optional): the argument names the kind reads; any other
  -- (besides META_ARGS and `after`) is refused where the step is written,
  -- so a misspelt `roundz = 2` or a misplaced `trainer = {...}` is not
  -- silently dropped while the step runs with its defaults.
  local accepted
  if def.args then
    accepted = {}
    for _, a in ipairs(def.args) do accepted[a] = true end
    for a in pairs(def.inputs) do accepted[a] = true end
  end
  local function construct(args)
    if args ~= nil and type(args) ~= "table" then
      error("bad argument to step '" .. def.kind .. "' (table expected)", 2)
    end
    if accepted then
      local bad = {}
      for k in pairs(args or {}) do
        if not (accepted[k] or M.META_ARGS[k]) then bad[#bad + 1] = tostring(k) end
      end
      if #bad > 0 then
        table.sort(bad)
        local ok = {}
        for a in pairs(accepted) do ok[#ok + 1] = a end
        for a in pairs(M.META_ARGS) do ok[#ok + 1] = a end
        table.sort(ok)
        error(("step '%s': unknown argument%s %s (it takes: %s)"):format(def.kind, #bad > 1 and "s" or "",
          "'" .. table.concat(bad, "', '") .. "'", table.concat(ok, ", ")), 2)
      end
    end
    local info = debug.getinfo(2, "Sl")
    return setmetatable({ kind = def, args = args or {},
      where = info and (info.short_src .. ":" .. (info.currentline or 0)) or "?" }, STEP)
  end
  constructors[construct] = def.kind
  return construct
end

--- Whether v is a step constructor (made by ipk.kind: ipk.dataset.add,
-- ipk.fl.train, ipk.step ...) rather than a library call.
function M.is_constructor(v) return constructors[v] ~= nil end

--- A custom step: ipk.step { inputs = {x = "a"}, after = {"b"}, version = 1,
-- cache = true, run = function(ctx, inputs, args) ... end }.
-- `inputs` maps names to steps (run gets their outputs); other args may use
-- ipk.param. The key covers the function's bytecode (string.dump, debug info
-- stripped) and `version`; its output is memoized when it is plain data
-- (strings, numbers, booleans, tables of them); set cache = false for steps
-- with side effects.
M.step = M.kind { kind = "custom", inputs = {}, custom = true, run = function(ctx, args)
  if type(args.run) ~= "function" then error("ipk.step: 'run' (function) is required", 0) end
  return args.run(ctx, args.inputs or {}, args)
end,
  encode = function(out) return { value = out } end,
  decode = function(rec) return rec.value end }

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
  -- Every ipk.param a step uses must be declared (named with the step's line).
  local function check(name, s, args, seen)
    if seen[args] then return end
    seen[args] = true
    for _, v in pairs(args) do
      if getmetatable(v) == PARAM and not def.params[v.name] then
        error(s.where .. ": step '" .. name .. "': unknown param '" .. v.name .. "'", 0)
      elseif type(v) == "table" and not getmetatable(v) then
        check(name, s, v, seen)
      end
    end
  end
  for name, s in pairs(def.steps) do check(name, s, s.args, {}) end
  if def.schedule ~= nil and type(def.schedule) ~= "string" then
    error("recipe '" .. def.name .. "': 'schedule' must be a cron expression string", 2)
  end
  return setmetatable(def, RECIPE)
end

function M.is_recipe(v) return getmetatable(v) == RECIPE end

--- Convert a command-line value to the declared type.
local function coerce(name, p, v)
  if p.type == "string" then return v end
  if p.type == "boolean" then
    if v == "true" or v == "1" then return true elseif v == "false" or v == "0" then return false end
    return nil, "param '" .. name .. "': expected boolean, got '" .. v .. "'", "EINVAL"
  end
  local n, why, wname = json.parse_number(v)
  if not n then
    if tonumber(v) then return nil, "param '" .. name .. "': " .. why, wname end -- inf, nan, an integer beyond 2^53
    return nil, "param '" .. name .. "': expected " .. p.type .. ", got '" .. v .. "'", "EINVAL"
  end
  if p.type == "integer" and n ~= math.floor(n) then
    return nil, "param '" .. name .. "': expected integer, got '" .. v .. "'", "EINVAL"
  end
  if p.min and n < p.min then return nil, "param '" .. name .. "': " .. v .. " is below the minimum " .. p.min, "EINVAL" end
  if p.max and n > p.max then return nil, "param '" .. name .. "': " .. v .. " is above the maximum " .. p.max, "EINVAL" end
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
      return nil, "unknown param '" .. k .. "' (recipe '" .. recipe.name .. "' has: " .. concat(names, ", ") .. ")", "EINVAL"
    end
    if type(v) == "string" then
      local c, err = coerce(k, p, v)
      if c == nil then return nil, err, "EINVAL" end
      v = c
    end
    out[k] = v
  end
  -- Params go into run records and step keys (DAG-JSON): refuse NaN and
  -- infinities here, before any step runs, not when the record is written.
  for k, v in pairs(out) do
    local ok, err = json.check_numbers(v, "param '" .. k .. "'")
    if not ok then return nil, err .. " (recipe '" .. recipe.name .. "')", "EINVAL" end
  end
  return out
end

--- Topological order of step names (ties broken by name for determinism).
-- Errors name the step and the recipe line that declared it.
-- An input reference for a message: a step name is quoted; anything else
-- (an ipk.param, a table) is said as what it is, not as 'table: 0x...'.
local function ref_text(ref)
  if type(ref) == "string" then return "names unknown step '" .. ref .. "'" end
  if getmetatable(ref) == PARAM then
    return "is ipk.param '" .. tostring(ref.name) .. "', not a step name (inputs name other steps)"
  end
  return "is a " .. type(ref) .. ", not a step name (inputs name other steps)"
end

function M.order(recipe)
  local deps = {}
  for name, s in pairs(recipe.steps) do
    local d = {}
    for field in pairs(s.kind.inputs) do
      local ref = s.args[field]
      if ref ~= nil then
        if type(ref) ~= "string" or not recipe.steps[ref] then
          return nil, s.where .. ": step '" .. name .. "': input '" .. field .. "' " .. ref_text(ref), "EINVAL"
        end
        d[#d + 1] = ref
      end
    end
    if s.kind.custom and type(s.args.inputs) == "table" then
      for field, ref in pairs(s.args.inputs) do
        if type(ref) ~= "string" or not recipe.steps[ref] then
          return nil, s.where .. ": step '" .. name .. "': input '" .. tostring(field) .. "' "
            .. ref_text(ref), "EINVAL"
        end
        d[#d + 1] = ref
      end
    end
    for _, ref in ipairs(s.args.after or {}) do
      if not recipe.steps[ref] then
        return nil, s.where .. ": step '" .. name .. "': 'after' " .. ref_text(ref), "EINVAL"
      end
      d[#d + 1] = ref
    end
    deps[name] = d
  end
  M.last_deps = deps
  local order, state = {}, {}
  local names = {}
  for n in pairs(recipe.steps) do names[#names + 1] = n end
  sort(names)
  local function visit(n, path)
    if state[n] == "done" then return true end
    if state[n] == "active" then
      return nil, recipe.steps[n].where .. ": cycle: " .. concat(path, " -> ") .. " -> " .. n, "EINVAL"
    end
    state[n] = "active"
    path[#path + 1] = n
    local d = deps[n]
    sort(d)
    for _, m in ipairs(d) do
      local ok, err = visit(m, path)
      if not ok then return nil, err, "EINVAL" end
    end
    path[#path] = nil
    state[n] = "done"
    order[#order + 1] = n
    return true
  end
  for _, n in ipairs(names) do
    local ok, err = visit(n, {})
    if not ok then return nil, err, "EINVAL" end
  end
  return order
end

--- The step names each step depends on (after M.order succeeded).
function M.deps(recipe)
  local order, err = M.order(recipe)
  if not order then return nil, err, "EINVAL" end
  local d = M.last_deps
  M.last_deps = nil
  for _, l in pairs(d) do
    local seen, u = {}, {}
    for _, x in ipairs(l) do if not seen[x] then seen[x] = true; u[#u + 1] = x end end
    sort(u)
    for i = #l, 1, -1 do l[i] = nil end
    for i, x in ipairs(u) do l[i] = x end
  end
  return order, d
end

--- Resolve a step's arguments: params to values, input fields to the
-- named steps' outputs, literal CIDs/paths to strings.
function M.resolve_args(step, params, outputs)
  local function walk(args, inputs)
    local out = {}
    for k, v in pairs(args) do
      local mt = getmetatable(v)
      if mt == PARAM then
        if params[v.name] == nil then error("unknown param '" .. v.name .. "'", 0) end
        out[k] = params[v.name]
      elseif mt == CIDLIT then out[k] = v.cid
      elseif mt == PATHLIT then out[k] = v.path
      elseif inputs[k] and type(v) == "string" then
        out[k] = outputs[v]
      elseif type(v) == "table" and not mt then
        out[k] = walk(v, {})
      else
        out[k] = v
      end
    end
    return out
  end
  local out = walk(step.args, step.kind.inputs)
  if step.kind.custom and type(step.args.inputs) == "table" then
    local ins = {}
    for field, ref in pairs(step.args.inputs) do ins[field] = outputs[ref] end
    out.inputs = ins
  end
  return out
end

return M
