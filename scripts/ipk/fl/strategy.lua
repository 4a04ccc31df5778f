--- ipk.fl.strategy: aggregation strategies over named typed tensors
-- (ipk.fl.tensors sets), with Flower's names and parameters; the exact
-- rules (ties, integer buffers, bias correction) are those of
-- ../shared/fixtures/fl/README.md section 1, which win where they depart
-- from Flower.
--
-- Built in (M.list() gives each with its params and defaults): fedavg,
-- average, fedprox, fedavgm, fedadam, fedyogi, fedadagrad, fedmedian,
-- fedtrimmedavg, krum, multikrum, bulyan, best_model, ensemble. Families
-- live in ipk.fl.strategies.{fedavg,fedopt,robust,select}; the element-wise
-- math in ipk.fl.strategies.kern. Every strategy also takes the sampling
-- params fraction_fit (1.0), min_fit_clients (2), min_available_clients (2).
--
-- One-shot (offline) aggregation:
--   M.aggregate{strategy = name | strategy object | script path,
--     params = {k = v}, global = set | safetensors bytes | nil,
--     updates = {{tensors = set | bytes, num_examples = n, metrics = {k = number},
--                 client = id (default "client_<i-1>"), cid = optional}},
--     state = {scalars = {}, tensors = F64 set | its safetensors bytes} | nil,
--     round = r | nil}
--   -> {tensors = set (the new model), state = {scalars, tensors = set|nil},
--       info = table (Krum scores, selections, ...), final = true (ensemble),
--       round = r}
--   or nil, msg, name. Any bad update (layout, NaN/inf, num_examples) is an
--   error naming the client (and tensor); nothing is returned.
--   round defaults to state.scalars.round + 1, else 1.
--
-- Strategy objects (M.new(spec, params), M.strategy(v), ipk.fl.fedadam{...}):
--   fields: name, params (resolved, plain data: a recipe step keys them);
--   methods (closures, call with a dot):
--     aggregate(updates, global) -> set | nil, msg, name: one round with
--       the object's own state and round counter (the round loop's call);
--       updates {{tensors = set, num_examples, metrics, client, cid}};
--       m.last holds the whole result ({tensors, state, info, final, round}).
--     validate(global, updates) -> accepted, rejected: rejected =
--       {{index, client, reason, name}} (layout, NaN/inf, num_examples); the
--       round loop drops them and goes on if min_fit_clients still holds.
--     configure_fit(round, clients, prev_model_cid, o) -> {{client, config}}
--       or nil, msg, name (see below).
--     get_state() -> {scalars = {k = v}, tensors = F64 safetensors bytes|nil} | nil
--     set_state({scalars, tensors = bytes | set | DAG-JSON link}) -> true | nil, msg, name
--       (resume; a link is read from the backend)
--     final, needs_global, def (the definition, ipk.fl.strategies.common).
--
-- Client sampling (configure_fit, Flower's FedAvg.configure_fit):
--   n = #clients must be >= min_available_clients; the sample size is
--   max(floor(n * fraction_fit), min_fit_clients) and must be <= n. With
--   all of them, every client is taken; otherwise client c is ranked by the
--   CIDv1 (raw, sha2-256) string of "<prev_model_cid>/<seed>/<c>" and the
--   lowest ranks are taken: the sample depends only on the previous
--   round's model CID (and o.seed, default 0), so a resumed run samples the
--   same clients. The result is sorted by client id. config per client:
--   {round = r} + o.fit_config (lr, epochs, ...) + the strategy's hints
--   (fedprox: proximal_mu; fedopt: lr = eta_l unless fit_config has lr).
--   A custom strategy's configure_fit(round, clients, ctx) may replace it
--   (ctx.sample(k) ranks as above).
--
-- Custom strategies: a Lua script (recipe sandbox) returning {name=,
-- params = {{name, default, doc}} (optional), aggregate = function(updates,
-- global, ctx) -> set | {tensors, state, info} | nil, msg, configure_fit =
-- optional}; updates and global as in M.aggregate, views over named tensors
-- (t.ptr typed, t.shape, t.dtype; ipk.fl.tensors to build the result).
local T = require "ipk.fl.tensors"
local cidmod = require "ipk.cid"
local sandbox = require "ipk.run.sandbox"
local runtime = require "ipk.runtime"
local families = {
  fedavg = require "ipk.fl.strategies.fedavg",
  fedopt = require "ipk.fl.strategies.fedopt",
  robust = require "ipk.fl.strategies.robust",
  select = require "ipk.fl.strategies.select",
}

local M = {}

local floor = math.floor

-- Definitions in listing order.
local ORDER = { "fedavg", "average", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "fedmedian",
  "fedtrimmedavg", "krum", "multikrum", "bulyan", "best_model", "ensemble" }
local DEFS = {}
for _, fam in ipairs { "fedavg", "fedopt", "robust", "select" } do
  for name, def in pairs(families[fam]) do
    if type(def) == "table" and def.aggregate then DEFS[name] = def end
  end
end
for _, n in ipairs(ORDER) do assert(DEFS[n], "strategy " .. n .. " not defined") end

--- The sampling params every strategy takes (Flower's defaults).
M.SAMPLING = {
  { name = "fraction_fit", default = 1.0, doc = "fraction of available clients sampled per round" },
  { name = "min_fit_clients", default = 2, doc = "fewest clients trained per round (also after rejections)" },
  { name = "min_available_clients", default = 2, doc = "fewest clients that must be available to start a round" },
}

local function all_params(def)
  local out = {}
  for _, p in ipairs(def.params or {}) do out[#out + 1] = p end
  for _, p in ipairs(M.SAMPLING) do out[#out + 1] = p end
  return out
end

--- Every built-in strategy: {{name, summary, flower, final, needs_global,
-- params = {{name, default, doc}}}} in listing order.
function M.list()
  local out = {}
  for _, n in ipairs(ORDER) do
    local d = DEFS[n]
    out[#out + 1] = { name = n, summary = d.summary, flower = d.flower, final = d.final or false,
      needs_global = d.needs_global or false, params = all_params(d) }
  end
  return out
end

--- The built-in definition called name, or nil.
function M.definition(name) return DEFS[name] end

local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

-- Resolved params: defaults, then the given values (a number param given as
-- text, e.g. from the CLI, is parsed); unknown names and bad values refused.
local function resolve(def, given)
  local p, known = {}, {}
  local list = all_params(def)
  for _, d in ipairs(list) do p[d.name] = d.default; known[d.name] = d end
  for k, v in pairs(given or {}) do
    local d = known[k]
    if not d then
      local names = {}
      for _, x in ipairs(list) do names[#names + 1] = x.name end
      return nil, ("%s: unknown param '%s' (params: %s)"):format(def.name, tostring(k), table.concat(names, ", ")),
        "EINVAL"
    end
    if type(d.default) == "number" then
      local x = tonumber(v)
      if not finite(x) then
        return nil, ("%s: param %s must be a finite number, got '%s'"):format(def.name, k, tostring(v)), "EINVAL"
      end
      v = x
    elseif type(d.default) == "string" and type(v) ~= "string" then
      return nil, ("%s: param %s must be text, got %s"):format(def.name, k, type(v)), "EINVAL"
    end
    p[k] = v
  end
  if not (p.fraction_fit > 0 and p.fraction_fit <= 1) then
    return nil, def.name .. ": param fraction_fit must be in (0, 1], got " .. p.fraction_fit, "EINVAL"
  end
  for _, k in ipairs { "min_fit_clients", "min_available_clients" } do
    if p[k] < 1 or p[k] ~= floor(p[k]) then
      return nil, ("%s: param %s must be an integer >= 1, got %s"):format(def.name, k, tostring(p[k])), "EINVAL"
    end
  end
  if def.check then
    local ok, err = def.check(p)
    if not ok then return nil, def.name .. ": param " .. err, "EINVAL" end
  end
  return p
end

-------------------------------------------------------------------------------
-- Validation

local function raw_cid(bytes)
  return cidmod.format(assert(cidmod.of(1, 0x55, bytes)))
end

-- An update's tensors as a set (bytes are parsed; the CID of the bytes
-- becomes its cid unless given).
local function as_set(v, what)
  if T.is_set(v) then return v end
  -- read only here: views into the bytes, no copy
  if type(v) == "string" then return T.from_safetensors(v, what, { borrow = true }) end
  return nil, what .. ": tensors must be a tensor set (ipk.fl.tensors) or safetensors bytes, got " .. type(v), "EINVAL"
end

local function check_num_examples(n)
  -- above 2^53 a count is no longer exact as a double (the FedAvg weight)
  if type(n) ~= "number" or n ~= n or n < 0 or n > 2 ^ 53 or n ~= floor(n) then
    return nil, "num_examples must be an integer in [0, 2^53], got " .. tostring(n), "EINVAL"
  end
  return true
end

--- Split updates into accepted and rejected (see the module comment).
-- The reference layout is global's, else the first update's (which then
-- cannot be rejected for its layout). Accepted updates keep their order.
function M.validate(global, updates)
  local accepted, rejected = {}, {}
  local ref = global
  if ref ~= nil and not T.is_set(ref) then
    error("fl.strategy.validate: global must be a tensor set (ipk.fl.tensors) or nil", 2)
  end
  for i, u in ipairs(updates) do
    local who = "client " .. tostring(u.client)
    local ok, err, name = check_num_examples(u.num_examples)
    if ok then
      ok, err, name = T.is_set(u.tensors), "tensors: not a tensor set", "EINVAL"
    end
    if ok and ref then ok, err, name = T.same_layout(ref, u.tensors) end
    if ok then ok, err, name = u.tensors:check_finite() end
    if ok then
      accepted[#accepted + 1] = u
      ref = ref or u.tensors
    else
      rejected[#rejected + 1] = { index = i, client = u.client, reason = who .. ": " .. err, name = name or "EINVAL" }
    end
  end
  return accepted, rejected
end

-------------------------------------------------------------------------------
-- Sampling

local function client_id(c)
  if type(c) == "table" then return c.id end
  return c
end

local function rank_sample(clients, k, prev_model_cid, seed)
  local ranked = {}
  for i, c in ipairs(clients) do
    ranked[i] = { c = c, rank = raw_cid(tostring(prev_model_cid) .. "/" .. tostring(seed) .. "/" .. tostring(client_id(c))) }
  end
  table.sort(ranked, function(a, b) return a.rank < b.rank end)
  local out = {}
  for i = 1, k do out[i] = ranked[i].c end
  return out
end

local function by_id(a, b)
  local x, y = client_id(a), client_id(b)
  if type(x) == type(y) then return x < y end
  return tostring(x) < tostring(y)
end

local function default_configure_fit(def, p, round, clients, prev_model_cid, o)
  local n = #clients
  if n < p.min_available_clients then
    return nil, ("round %d: %d client(s) available, min_available_clients = %d"):format(round, n,
      p.min_available_clients), "EINVAL"
  end
  local k = math.max(floor(n * p.fraction_fit), p.min_fit_clients)
  if k > n then
    return nil, ("round %d: %d client(s) available, fewer than min_fit_clients = %d"):format(round, n,
      p.min_fit_clients), "EINVAL"
  end
  local sel
  if k == n then
    sel = { unpack(clients) }
  else
    sel = rank_sample(clients, k, prev_model_cid, o.seed or 0)
  end
  table.sort(sel, by_id)
  local out = {}
  for i, c in ipairs(sel) do
    local cfg = { round = round }
    for kk, v in pairs(o.fit_config or {}) do cfg[kk] = v end
    if def.fit_hints then
      for kk, v in pairs(def.fit_hints(p)) do
        if cfg[kk] == nil or kk ~= "lr" then cfg[kk] = v end
      end
    end
    out[i] = { client = c, config = cfg }
  end
  return out
end

-------------------------------------------------------------------------------
-- One round

-- Result of def.aggregate, checked: a set with finite values.
local function run_def(def, ctx)
  local r, err, name = def.aggregate(ctx)
  if not r then return nil, err, name or "EINVAL" end
  if T.is_set(r) then r = { tensors = r } end
  if type(r) ~= "table" or not T.is_set(r.tensors) then
    return nil, def.name .. ": aggregate returned no tensor set", "EINVAL"
  end
  local ok, ferr, fname = r.tensors:check_finite("result")
  if not ok then return nil, def.name .. ": " .. ferr, fname end
  return r
end

-- An integer in [lo, 2^53] (a round number: exact as a double).
local function is_count(v, lo)
  return type(v) == "number" and v >= lo and v <= 2 ^ 53 and v == floor(v)
end

local function aggregate_round(def, params, a)
  local updates = a.updates or {}
  if #updates == 0 then return nil, def.name .. ": no client updates", "EINVAL" end
  local global = a.global
  if global ~= nil then
    local err, name
    global, err, name = as_set(global, "global model")
    if not global then return nil, err, name end
    local ok
    ok, err, name = global:check_finite("global model")
    if not ok then return nil, err, name end
  elseif def.needs_global then
    return nil, def.name .. " needs the global model (the current x of its server update)", "EINVAL"
  end
  local list = {}
  for i, u in ipairs(updates) do
    local client = u.client ~= nil and u.client or ("client_" .. (i - 1))
    local set, err, name = as_set(u.tensors, "client " .. tostring(client))
    if not set then return nil, err, name end
    local cid = u.cid
    if cid == nil and def.final and type(u.tensors) == "string" then cid = raw_cid(u.tensors) end
    if cid == nil and def.final then cid = raw_cid(assert(set:to_safetensors())) end
    list[i] = { client = client, tensors = set, num_examples = u.num_examples, metrics = u.metrics or {}, cid = cid }
  end
  local accepted, rejected = M.validate(global, list)
  if #rejected > 0 then
    return nil, def.name .. ": " .. rejected[1].reason, rejected[1].name
  end
  local state = a.state or { scalars = {} }
  if state.tensors ~= nil then
    local st, serr, sname = as_set(state.tensors, "strategy state")
    if not st then return nil, serr, sname end
    state = { scalars = state.scalars, tensors = st }
  end
  -- the round enters the math (FedAdam's bias correction): a round that is
  -- not a positive integer is refused here, not seen later as NaN weights
  if state.scalars ~= nil and type(state.scalars) ~= "table" then
    return nil, def.name .. ": state scalars must be a table, got " .. type(state.scalars), "EINVAL"
  end
  local prev = state.scalars and state.scalars.round
  if prev ~= nil and not is_count(prev, 0) then
    return nil, def.name .. ": state round must be an integer >= 0, got " .. tostring(prev), "EINVAL"
  end
  local round = a.round or ((prev or 0) + 1)
  if not is_count(round, 1) then
    return nil, def.name .. ": round must be an integer >= 1, got " .. tostring(round), "EINVAL"
  end
  local ctx = { params = params, round = round, global = global, layout = global or accepted[1].tensors,
    updates = accepted, state = { scalars = state.scalars or {}, tensors = state.tensors } }
  local r, err, name = run_def(def, ctx)
  if not r then return nil, err, name end
  local st = r.state or { scalars = {} }
  st.scalars = st.scalars or {}
  st.scalars.round = round
  return { tensors = r.tensors, state = st, info = r.info or {}, final = def.final or false, round = round }
end

-------------------------------------------------------------------------------
-- Custom (script) strategies

local function custom_def(s, label)
  if type(s) == "function" then s = s() end
  if type(s) ~= "table" or type(s.aggregate) ~= "function" then
    return nil, "strategy " .. label .. ": the script must return {name=, aggregate=function(updates, global, ctx)}",
      "EINVAL"
  end
  local def = { name = s.name or label, summary = s.summary or "custom strategy (" .. label .. ")",
    params = s.params or {}, custom = true, final = s.final, needs_global = s.needs_global }
  def.aggregate = function(ctx)
    ctx.tensors = T
    local r, err = s.aggregate(ctx.updates, ctx.global, ctx)
    if r == nil then return nil, def.name .. ": " .. tostring(err or "aggregate returned nothing"), "EINVAL" end
    return r
  end
  if type(s.configure_fit) == "function" then def.configure_fit = s.configure_fit end
  return def
end

-------------------------------------------------------------------------------
-- Objects

local IS = setmetatable({}, { __mode = "k" })

--- A strategy object (see the module comment) for a definition and params.
function M.new(def, params)
  if type(def) == "string" then
    local d = DEFS[def]
    if not d then
      return nil, ("unknown strategy '%s' (built in: %s)"):format(def, table.concat(ORDER, ", ")), "EINVAL"
    end
    def = d
  end
  local p, err, name = resolve(def, params)
  if not p then return nil, err, name end
  local obj = { name = def.name, params = p }
  local st = { scalars = {}, tensors = nil }
  local m = { def = def, final = def.final or false, needs_global = def.needs_global or false }
  function m.validate(global, updates) return M.validate(global, updates) end
  function m.configure_fit(round, clients, prev_model_cid, o)
    o = o or {}
    if def.configure_fit then
      local ctx = { params = p, state = st, fit_config = o.fit_config,
        sample = function(k) return rank_sample(clients, k, prev_model_cid, o.seed or 0) end }
      local r, cerr = def.configure_fit(round, clients, ctx)
      if r == nil then return nil, def.name .. ": configure_fit: " .. tostring(cerr), "EINVAL" end
      return r
    end
    return default_configure_fit(def, p, round, clients, prev_model_cid, o)
  end
  function m.get_state()
    if not next(st.scalars) and not st.tensors then return nil end
    local out = { scalars = st.scalars }
    if st.tensors and st.tensors:count() > 0 then out.tensors = assert(st.tensors:to_safetensors()) end
    return out
  end
  function m.set_state(s)
    if s == nil then st = { scalars = {} } return true end
    local tensors = s.tensors
    if type(tensors) == "table" and not T.is_set(tensors) and type(tensors["/"]) == "string" then
      -- a DAG-JSON link (a round record's state): the F64 safetensors file it names
      local parts = {}
      local ok, e, en = runtime.backend():cat(tensors["/"], function(c) parts[#parts + 1] = c end)
      if not ok then return nil, "strategy state tensors " .. tensors["/"] .. ": " .. tostring(e), en end
      tensors = table.concat(parts)
    end
    if tensors ~= nil and type(tensors) ~= "string" and not T.is_set(tensors) then
      return nil, "strategy state: tensors must be F64 safetensors bytes, a tensor set or a link, got " .. type(tensors),
        "EINVAL"
    end
    if type(tensors) == "string" then
      local e, en
      tensors, e, en = T.from_safetensors(tensors, "strategy state")
      if not tensors then return nil, e, en end
    end
    st = { scalars = s.scalars or {}, tensors = tensors }
    return true
  end
  -- One round with the object's state (updates and global as in M.aggregate).
  function m.aggregate(updates, global)
    local list = {}
    for i, u in ipairs(updates) do
      list[i] = { tensors = u.tensors, num_examples = u.num_examples, metrics = u.metrics, client = u.client, cid = u.cid }
    end
    local res, aerr, aname = aggregate_round(def, p, { updates = list, global = global, state = st })
    if not res then return nil, aerr, aname end
    st = res.state
    m.last = res
    return res.tensors
  end
  IS[obj] = true
  return setmetatable(obj, { __index = m })
end

--- A fresh strategy object from a step argument: nil (fedavg), a built-in
-- name, the path of a Lua script (run in the recipe sandbox) returning a
-- custom strategy, a strategy object (a fresh copy: its own state), or a
-- table {name, aggregate = function} (a custom strategy inline).
function M.strategy(v, params)
  if v == nil then return M.new("fedavg", params) end
  if type(v) == "table" and IS[v] then return M.new(v.def, v.params) end
  if type(v) == "table" and v.strategy and not v.aggregate then return M.new(v.strategy, v.params or params) end
  -- a strategy object's data copied without its methods (e.g. by a step's
  -- argument resolution): {name = built-in name, params}
  if type(v) == "table" and not v.aggregate and DEFS[v.name] then return M.new(v.name, v.params or params) end
  if type(v) == "table" then
    local def, err, name = custom_def(v, v.name or "custom")
    if not def then return nil, err, name end
    return M.new(def, params)
  end
  if type(v) == "string" then
    if DEFS[v] then return M.new(v, params) end
    if not v:match("%.lua$") and not v:find("/", 1, true) then
      return nil, ("unknown strategy '%s' (built in: %s; or the path of a Lua script)"):format(v,
        table.concat(ORDER, ", ")), "EINVAL"
    end
    local s, err, sname = sandbox.load_script(v)
    if s == nil then return nil, "strategy " .. v .. ": " .. tostring(err), sname end
    local label = v:gsub(".*/", ""):gsub("%.lua$", "")
    local def; def, err, sname = custom_def(s, label)
    if not def then return nil, err, sname end
    return M.new(def, params)
  end
  return nil, "strategy: expected a name, a script path or a strategy table, got " .. type(v), "EINVAL"
end

--- Offline aggregation of one round (see the module comment).
function M.aggregate(a)
  if type(a) ~= "table" then error("fl.aggregate: expects a table {strategy=, updates=, ...}", 2) end
  local obj, err, name = M.strategy(a.strategy or "fedavg", a.params)
  if not obj then return nil, err, name end
  return aggregate_round(obj.def, obj.params, a)
end

-- Constructors for recipes and the REPL: ipk.fl.fedadam { eta = 0.1 } is a
-- strategy object (its params are plain data: a step keys them).
for _, n in ipairs(ORDER) do
  M[n] = function(params)
    local obj, err = M.new(n, params)
    if not obj then error(err, 2) end
    return obj
  end
end

M.ORDER = ORDER

return M
