--- ipk.fl.trainers.contract: what every trainer kind shares: the checks of
-- what a trainer returns (update sets, fit and evaluate results), messages
-- naming the client, and shards built from a split. The contract itself is
-- documented in ipk.fl.trainers (init.lua) and docs/fl-trainers.md.
local T = require "ipk.fl.tensors"
local json = require "ipk.json"
local core = require "ipk.core"

local M = {}

local type, tostring, pairs, floor, huge = type, tostring, pairs, math.floor, math.huge

--- "client <id>", the prefix of every message about a shard.
function M.who(shard)
  return "client " .. tostring(shard and shard.client or "?")
end

--- who .. ": " .. msg, unless msg already starts so.
local function prefixed(who, msg)
  msg = tostring(msg)
  if msg:sub(1, #who + 2) == who .. ": " then return msg end
  return who .. ": " .. msg
end
M.prefixed = prefixed

--- Checks an update set against the global one: same names, shapes and
-- dtypes, every float finite. who names the client in messages.
-- @return true | nil, msg, name (ESHAPE, ERANGE)
function M.check_update(global, set, who)
  if not T.is_set(set) then return nil, who .. ": the update is not a tensor set (" .. type(set) .. ")", "EFORMAT" end
  local ok, err, name = T.same_layout(global, set)
  if not ok then return nil, who .. ": " .. err, name end
  ok, err, name = set:check_finite(who)
  if not ok then return nil, err, name end
  return true
end

local function scalar_ok(v)
  local t = type(v)
  if t == "number" then return v == v and v ~= huge and v ~= -huge end
  return t == "string" or t == "boolean"
end

--- Checks a fit result {num_examples, metrics}; returns a clean copy
-- (metrics as a plain table of scalars).
-- @return result | nil, msg, name (EFORMAT, ERANGE)
function M.check_result(r, who)
  if type(r) ~= "table" then return nil, who .. ": result must be a table {num_examples =, metrics =}, got " .. type(r), "EFORMAT" end
  local n = r.num_examples
  if type(n) ~= "number" or n ~= n or n < 0 or n ~= floor(n) or n > 2 ^ 53 then
    return nil, who .. ": num_examples must be an integer >= 0, got " .. tostring(n), "EFORMAT"
  end
  local metrics = {}
  if r.metrics ~= nil and r.metrics ~= json.null then
    if type(r.metrics) ~= "table" then return nil, who .. ": metrics must be an object, got " .. type(r.metrics), "EFORMAT" end
    for k, v in pairs(r.metrics) do
      if type(k) ~= "string" then return nil, who .. ": metric names must be strings", "EFORMAT" end
      if not scalar_ok(v) then
        return nil, who .. ": metric " .. k .. " = " .. tostring(v) .. " (a finite number, string or boolean expected)",
          type(v) == "number" and "ERANGE" or "EFORMAT"
      end
      metrics[k] = v
    end
  end
  return { num_examples = n, metrics = metrics }
end

--- Checks an evaluate result: num_examples, loss (finite), accuracy
-- (fraction in [0, 1]) when present; other numeric fields are kept.
function M.check_eval(r, who)
  if type(r) ~= "table" then return nil, who .. ": evaluate must return a table {num_examples, loss, ...}", "EFORMAT" end
  local n = r.num_examples
  if type(n) ~= "number" or n ~= n or n < 0 or n ~= floor(n) or n > 2 ^ 53 then
    return nil, who .. ": evaluate: num_examples must be an integer >= 0, got " .. tostring(n), "EFORMAT"
  end
  local out = {}
  for k, v in pairs(r) do
    if type(k) == "string" and k ~= "metrics" then
      if not scalar_ok(v) then return nil, who .. ": evaluate: " .. k .. " = " .. tostring(v) .. " is not finite", "ERANGE" end
      out[k] = v
    end
  end
  if type(r.metrics) == "table" then
    for k, v in pairs(r.metrics) do
      if type(k) == "string" and scalar_ok(v) and out[k] == nil then out[k] = v end
    end
  end
  if type(out.loss) ~= "number" then return nil, who .. ": evaluate: loss must be a number, got " .. tostring(r.loss), "EFORMAT" end
  if out.accuracy ~= nil and (type(out.accuracy) ~= "number" or out.accuracy < 0 or out.accuracy > 1) then
    return nil, who .. ": evaluate: accuracy must be a fraction in [0, 1], got " .. tostring(out.accuracy), "ERANGE"
  end
  return out
end

--- The per-client shard of a split (ipk.dataset.split's result sp and one
-- of sp.clients). opts.test_fraction (0 <= f < 1, default 0) holds out the
-- last floor(n * f) rows of the client's rows, in a shuffle seeded by
-- opts.seed (default 0) and the client id, as the client's own test split
-- (federated evaluation); the rest is its train part.
-- @return shard | nil, msg, name
function M.shard(sp, c, opts)
  local f = opts and opts.test_fraction or 0
  if type(f) ~= "number" or f ~= f or f < 0 or f >= 1 then
    return nil, "shard: test_fraction must be in [0, 1), got " .. tostring(f), "EINVAL"
  end
  local sh = { client = c.id, features = sp.features, classes = sp.classes }
  local train = { X = sp.train.X, labels = sp.train.labels or sp.train.y, targets = sp.train.targets,
                  idx = c.idx, n = c.n, cid = c.cid }
  local nt = floor(c.n * f)
  if nt == 0 then
    sh.train = train
    return sh
  end
  local ffi, lib = core.ffi, core.lib
  local order = ffi.new("uint32_t[?]", c.n)
  ffi.copy(order, c.idx, c.n * 4)
  local r = ffi.new("ipk_rng_t")
  lib.ipk_rng_seed(r, (opts.seed or 0) * 1000003 + (tonumber(c.id) or 0), 0x7e57)
  lib.ipk_rng_shuffle_u32(r, order, c.n)
  local ntr = c.n - nt
  local tr, te = ffi.new("uint32_t[?]", math.max(ntr, 1)), ffi.new("uint32_t[?]", nt)
  ffi.copy(tr, order, ntr * 4)
  ffi.copy(te, order + ntr, nt * 4)
  local tag = "/" .. f .. "/" .. tostring(opts.seed or 0)
  train.idx, train.n, train.cid = tr, ntr, c.cid and (c.cid .. "/train" .. tag) or nil
  sh.train = train
  sh.test = { X = train.X, labels = train.labels, targets = train.targets, idx = te, n = nt,
              cid = c.cid and (c.cid .. "/test" .. tag) or nil }
  return sh
end

--- The central-evaluation shard of a split: its test set (sp.test).
-- @return shard | nil, msg, "ENOENT" when the split has no test set
function M.central(sp)
  if not sp.test then return nil, "central evaluation: the split has no test set", "ENOENT" end
  return { client = "central", features = sp.features, classes = sp.classes,
           test = { X = sp.test.X, labels = sp.test.labels or sp.test.y, targets = sp.test.targets,
                    n = sp.test.rows or sp.test.n, cid = sp.test.cid } }
end

return M
