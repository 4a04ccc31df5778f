--- ipk.run.key: step keys. A step key is the CID of the DAG-JSON of
-- {kind, version, params (resolved args), inputs (links to the upstream
-- steps' output records), profile (import options), code (custom steps:
-- bytecode hash), files (fingerprints of path args), context (e.g.
-- recipe_cid)}. A step whose key is in `step_cache` is restored from its
-- output record by the kind's decode and not run.
local recipe = require "ipk.run.recipe"
local dagjson = require "ipk.dagjson"
local cidmod = require "ipk.cid"
local fs = require "ipk.fs"

local M = {}

-- Import profile of artifacts written by the built-in kinds (ARCHITECTURE.md
-- section 4): part of every key, so another profile never hits the cache.
M.PROFILE = { cid_version = 1, raw_leaves = true, chunker = "size-262144" }

local function hash_hex(s)
  return cidmod.format(assert(cidmod.of(1, 0x55, s)))
end

-- Canonical key value of an argument: functions by stripped bytecode (so
-- moving a line does not change it), tables recursively; cdata cannot be
-- keyed (nil, why).
local function canon(v, path)
  local t = type(v)
  if t == "function" then
    local ok, code = pcall(string.dump, v, true)
    if not ok then return nil, path .. ": a C function cannot be keyed", "EINVAL" end
    return { fn = hash_hex(code) }
  elseif t == "table" then
    if dagjson.is_link(v) then return v end
    local out = {}
    for k, x in pairs(v) do
      local c, err, name = canon(x, path .. "." .. tostring(k))
      if c == nil and err then return nil, err, name end
      out[tostring(k)] = c
    end
    if getmetatable(v) and not next(v) then return dagjson.array({}) end
    return out
  elseif t == "cdata" or t == "userdata" or t == "thread" then
    return nil, path .. ": a " .. t .. " value cannot be keyed", "EINVAL"
  end
  return v
end

--- Fingerprint of a file or directory: relative names, types, sizes,
-- mtimes and inodes (ipk.fs.fingerprint; contents are not read), or
-- "missing" when the path does not exist.
-- @return string | nil, msg (unreadable: the step is then not memoized)
function M.fingerprint(path)
  if path == "" then return "missing" end
  local h, err, name = fs.fingerprint(path)
  if h then return h end
  if name == "ENOENT" then return "missing" end
  return nil, err, name
end

--- The key of step s: CID string, components (or nil, why).
function M.step_key(s, args, input_cids, ctx)
  local k = s.kind
  local comp = { kind = k.kind, version = k.version, profile = k.profile or M.PROFILE, params = {}, inputs = {} }
  for a, v in pairs(args) do
    if not (recipe.META_ARGS[a] or k.inputs[a] or (k.custom and (a == "inputs" or a == "run"))) then
      local c, err, name = canon(v, a)
      if c == nil and err then return nil, err, name end
      comp.params[a] = c
    end
  end
  for field, dep in pairs(input_cids) do
    if not dep.cid then return nil, "input '" .. field .. "' (step " .. dep.step .. ") has no recorded output", "ENOENT" end
    comp.inputs[field] = dagjson.link(dep.cid)
  end
  if k.custom then
    local ok, code = pcall(string.dump, s.args.run, true)
    if not ok then return nil, "custom step: run cannot be keyed", "EINVAL" end
    comp.code = hash_hex(code)
  end
  local files
  for a, v in pairs(s.args) do
    if recipe.is_path(v) or (k.paths and k.paths[a] and type(args[a]) == "string") then
      files = files or {}
      local h, ferr, fname = M.fingerprint(args[a])
      if not h then return nil, "files of '" .. a .. "': " .. tostring(ferr), fname end
      files[a] = h
    end
  end
  comp.files = files
  if k.context then
    comp.context = {}
    for _, f in ipairs(k.context) do comp.context[f] = ctx[f] end
  end
  local key, kerr, kname = dagjson.cid(comp)
  if not key then return nil, kerr, kname end
  return key, comp
end

--- Input fields of step s -> upstream step names.
function M.input_steps(s)
  local m = {}
  for field in pairs(s.kind.inputs) do
    if type(s.args[field]) == "string" then m[field] = s.args[field] end
  end
  if s.kind.custom and type(s.args.inputs) == "table" then
    for field, ref in pairs(s.args.inputs) do m["inputs." .. field] = ref end
  end
  return m
end

return M
