--- ipk.run.plan: what a run would do, without running it: each step as
-- "cached" or "run", and why (which param, input, file or code changed
-- since the last run of the recipe).
local recipe = require "ipk.run.recipe"
local sandbox = require "ipk.run.sandbox"
local rundb = require "ipk.run.db"
local stepkey = require "ipk.run.key"
local runtime = require "ipk.runtime"
local dagjson = require "ipk.dagjson"
local unixfs = require "ipk.unixfs"

local M = {}

local function describe_changes(old, comp)
  local why = {}
  if not old then return { "never run before" } end
  if old.version ~= comp.version then why[#why + 1] = ("kind version %s -> %s"):format(tostring(old.version), comp.version) end
  local function canon_s(v) return dagjson.encode(v) or tostring(v) end
  local function show(v) return v == nil and "unset" or (type(v) == "table" and canon_s(v) or tostring(v)) end
  local keys = {}
  for k in pairs(comp.params) do keys[k] = true end
  for k in pairs(old.params or {}) do keys[k] = true end
  local sorted = {}
  for k in pairs(keys) do sorted[#sorted + 1] = k end
  table.sort(sorted)
  for _, k in ipairs(sorted) do
    local a, b = (old.params or {})[k], comp.params[k]
    if canon_s(a) ~= canon_s(b) then why[#why + 1] = ("param %s: %s -> %s"):format(k, show(a), show(b)) end
  end
  for f, l in pairs(comp.inputs) do
    if (old.inputs or {})[f] ~= dagjson.is_link(l) then why[#why + 1] = "input '" .. f .. "' changed" end
  end
  for f, h in pairs(comp.files or {}) do
    if (old.files or {})[f] ~= h then why[#why + 1] = "files under '" .. f .. "' changed" end
  end
  if old.code ~= comp.code then why[#why + 1] = "step code changed" end
  if canon_s(old.context or {}) ~= canon_s(comp.context or {}) then why[#why + 1] = "recipe changed" end
  if #why == 0 then why[1] = "not in cache (outputs were removed or never recorded)" end
  return why
end

--- Plan a recipe without running it: each step as "cached" or "run", and
-- why (which param or input changed since the last run of this recipe).
-- @return {recipe=, steps={{step, kind, status, why={...}, key=, output_cid=}}} or nil, msg
function M.plan(path, overrides, opts)
  opts = opts or {}
  local r, bytes, lname = sandbox.load(path)
  if not r then return nil, bytes, lname end
  local params, perr, pname = recipe.resolve_params(r, overrides)
  if not params then return nil, perr, pname end
  local order, deps, dname = recipe.deps(r)
  if not order then return nil, deps, dname end
  local recipe_cid = unixfs.add_bytes(bytes, { cid_version = 1, raw_leaves = true,
    chunker = "size-262144", only_hash = true })
  if type(recipe_cid) ~= "string" then recipe_cid = nil end
  -- The previous run's step details, for the "why".
  local prev = {}
  local last = rundb.db():query("SELECT id FROM runs WHERE recipe = ? ORDER BY seq DESC LIMIT 1", r.name)[1]
  if last then
    for _, row in ipairs(rundb.run_steps(last.id)) do prev[row.step] = row.detail end
  end
  local force = opts.force or {}
  local states, out = {}, {}
  for _, name in ipairs(order) do
    local s = r.steps[name]
    local args = recipe.resolve_args(s, params, {})
    local ins, blocked = {}, nil
    for field, dep in pairs(stepkey.input_steps(s)) do
      ins[field] = { step = dep, cid = states[dep].output_cid }
      if states[dep].status ~= "cached" then blocked = blocked or { field, dep } end
    end
    local e = { step = name, kind = s.kind.kind, deps = deps[name] }
    if blocked then
      e.status, e.why = "run", { ("input '%s' will be recomputed (step %s runs)"):format(blocked[1], blocked[2]) }
    elseif s.args.cache == false then
      e.status, e.why = "run", { "cache = false" }
    else
      local key, comp = stepkey.step_key(s, args, ins, { recipe_cid = recipe_cid })
      e.key = key
      if not key then
        e.status, e.why = "run", { "not memoized: " .. comp }
      elseif opts.no_cache then e.status, e.why = "run", { "--no-cache" }
      elseif force[name] then e.status, e.why = "run", { "forced" }
      else
        local oc = rundb.cache_get(key)
        if oc and runtime.backend():has(oc) then
          e.status, e.output_cid, e.why = "cached", oc, {}
        else
          e.status, e.why = "run", describe_changes(prev[name], comp)
        end
      end
    end
    states[name] = { status = e.status, output_cid = e.output_cid }
    out[#out + 1] = e
  end
  return { recipe = r.name, params = params, steps = out, previous_run = last and last.id or nil }
end

return M
