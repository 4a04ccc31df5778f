--- ipkrun fl aggregate: one federated round aggregated offline from
-- client update files (ipk.fl.aggregate).
--
-- Update arguments: PATH:N[:metric=value,...], N = num_examples (an
-- integer >= 0), metrics finite numbers (best_model compares them). The
-- client's name in messages is PATH.
--
-- --state S.json carries the strategy state from one call to the next:
--   {"format": "ipk.fl.state", "version": 1, "strategy": NAME,
--    "params": {resolved params}, "round": r (the last round aggregated),
--    "scalars": {non-tensor state},
--    "tensors": null | {"path": "S-<cid>.safetensors" (next to S.json),
--                       "cid": CIDv1 raw of that file (checked on load)}}
-- Tensors (momentum, FedAdam's m and v) live in that F64 safetensors file,
-- never as JSON numbers. A missing S.json starts from zero state; the
-- round defaults to its round + 1 (else 1).
--
-- Nothing is written unless the round succeeds: the output, the state's
-- tensor file and S.json are written to temporary names, then renamed
-- (output first, S.json last); a failed round leaves OUT and S.json as they
-- were. The previous state tensor file is removed once S.json no longer
-- names it.
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local cidmod = require "ipk.cid"
local unixfs = require "ipk.unixfs"
local T = require "ipk.fl.tensors"
local strategy = require "ipk.fl.strategy"

local M = {}

local CMD = "fl aggregate"

M.usage = "fl aggregate --strategy NAME|SCRIPT.lua [--param K=V]... [--global G.safetensors]\n"
  .. "        U1.safetensors:N1[:metric=value,...] U2.safetensors:N2 ... -o OUT.safetensors [--state S.json] [--round R] [--json]"
M.summary = "aggregate client updates offline with a strategy (see ipkrun fl strategies); --state carries momentum/moments"

function M.help()
  return "\nN is the client's num_examples; metrics (e.g. accuracy=0.9) are read by best_model.\n"
    .. "--state S.json holds the strategy state between calls (tensors in an F64 safetensors file next to it);\n"
    .. "a failed round writes nothing and leaves the state unchanged.\n"
end

local SPEC = {
  strategy = { kind = "value" }, param = { kind = "value", multi = true }, global = { kind = "value" },
  output = { kind = "value", short = "o" }, state = { kind = "value" }, round = { kind = "value" },
  json = { kind = "bool" },
}

local function raw_cid(bytes)
  return cidmod.format(assert(cidmod.of(1, 0x55, bytes)))
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, path .. ": " .. tostring(err):gsub("^[^:]*: ", ""), "ENOENT" end
  local s, rerr = f:read("*a")
  f:close()
  if not s then return nil, path .. ": " .. tostring(rerr), "EIO" end -- a directory reads as nil
  return s
end

-- Write bytes to a temporary name next to path; returns the temp name.
local function write_tmp(path, bytes)
  local tmp = ("%s.tmp-%d-%d"):format(path, os.time(), math.random(1, 1e9))
  local f, err = io.open(tmp, "wb")
  if not f then return nil, path .. ": " .. tostring(err):gsub("^[^:]*: ", ""), "EIO" end
  local ok, werr = f:write(bytes)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    return nil, path .. ": " .. tostring(werr or cerr), "EIO"
  end
  return tmp
end

-- "PATH:N[:k=v,...]" -> {path, num_examples, metrics} or nil, msg
local function parse_update(arg)
  local path, n, mtext = arg:match("^(.+):([^:]*):([^:]*=[^:]*)$")
  if not path then path, n = arg:match("^(.+):([^:=]*)$") end
  if not path or n == "" then
    return nil, ("update '%s': expected PATH:NUM_EXAMPLES[:metric=value,...]"):format(arg)
  end
  local num = util.number(n, { integer = true })
  -- from 2^53 on, the text may have been rounded to a double (2^53+1 reads as 2^53)
  if not num or num < 0 or num >= 2 ^ 53 then
    return nil, ("update '%s': num_examples '%s' is not an integer in [0, 2^53)"):format(arg, n)
  end
  local metrics = {}
  for kv in (mtext or ""):gmatch("[^,]+") do
    local k, v = kv:match("^([^=]+)=(.*)$")
    local x = k and util.number(v)
    if not x then
      return nil, ("update '%s': metric '%s' is not NAME=FINITE_NUMBER"):format(arg, kv)
    end
    metrics[k] = x
  end
  return { path = path, num_examples = num, metrics = metrics }
end

local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

-- The state file's contents: {strategy, params, round, scalars, tensors = set|nil, tensors_path}, or
-- nil when the file does not exist, or nil, msg, name.
local function load_state(path)
  local f = io.open(path, "rb")
  if not f then return false end
  f:close()
  local text, err, name = read(path)
  if not text then return nil, err, name end
  local st; st, err = json.decode(text)
  if type(st) ~= "table" or st.format ~= "ipk.fl.state" then
    return nil, path .. ": not an ipk.fl.state file (" .. tostring(err or "format is not ipk.fl.state") .. ")", "EFORMAT"
  end
  if st.version ~= 1 then return nil, path .. ": state version " .. tostring(st.version) .. " is not 1", "EFORMAT" end
  -- every field is checked here: a corrupt state fails with its path, never
  -- as a Lua error in the arithmetic or silently as zero state
  local function bad(field, why)
    return nil, ("%s: %s %s (got %s)"):format(path, field, why, json.encode(st[field]) or tostring(st[field])), "EFORMAT"
  end
  if type(st.strategy) ~= "string" then return bad("strategy", "must be a strategy name") end
  local r = st.round
  if r ~= nil and (type(r) ~= "number" or r < 0 or r ~= math.floor(r) or r > 2 ^ 53) then
    return bad("round", "must be an integer >= 0 (the last round aggregated)")
  end
  if st.scalars ~= nil and type(st.scalars) ~= "table" then return bad("scalars", "must be an object") end
  if st.params ~= nil and type(st.params) ~= "table" then return bad("params", "must be an object") end
  if st.tensors ~= nil and st.tensors ~= json.null and type(st.tensors) ~= "table" then
    return bad("tensors", "must be null or {path, cid}")
  end
  local out = { strategy = st.strategy, params = st.params, round = st.round, scalars = st.scalars or {} }
  if type(st.tensors) == "table" and st.tensors ~= json.null then
    if type(st.tensors.path) ~= "string" or st.tensors.path:find("/", 1, true) then
      return nil, path .. ": tensors.path must be a file name next to the state file", "EFORMAT"
    end
    local tpath = dirname(path) .. "/" .. st.tensors.path
    local bytes; bytes, err, name = read(tpath)
    if not bytes then return nil, path .. ": state tensors: " .. err, name end
    if raw_cid(bytes) ~= st.tensors.cid then
      return nil, ("%s: state tensors %s do not match their CID %s (changed since written)"):format(path, tpath,
        tostring(st.tensors.cid)), "EVERIFY"
    end
    out.tensors, err, name = T.from_safetensors(bytes, tpath)
    if not out.tensors then return nil, path .. ": " .. err, name end
    out.tensors_path = tpath
  end
  return out
end

function M.run(argv)
  local opts, pos = util.parse(argv, SPEC)
  if not opts then return util.usage_error(CMD, pos) end
  if not opts.strategy or opts.strategy == "" then
    return util.usage_error(CMD, "--strategy NAME is required (see ipkrun fl strategies)")
  end
  if not opts.output or opts.output == "" then return util.usage_error(CMD, "expected -o OUT.safetensors") end
  if #pos == 0 then return util.usage_error(CMD, "expected client updates PATH:NUM_EXAMPLES ...") end
  if opts.state and opts.state == opts.output then
    -- the state would replace the model just written, and the call exit 0
    return util.usage_error(CMD, "-o and --state name the same file '" .. opts.output .. "'")
  end
  local params = {}
  for _, kv in ipairs(opts.param or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then return util.usage_error(CMD, "--param expects K=V, got '" .. kv .. "'") end
    params[k] = v
  end
  local round
  if opts.round then
    round = util.number(opts.round, { integer = true })
    if not round or round < 1 then return util.usage_error(CMD, "--round must be an integer >= 1, got '" .. opts.round .. "'") end
  end
  local specs = {}
  for i, a in ipairs(pos) do
    local u, err = parse_update(a)
    if not u then return util.usage_error(CMD, err) end
    specs[i] = u
  end
  -- the strategy first: a bad name or param fails before any file is read
  local obj, serr = strategy.strategy(opts.strategy, params)
  if not obj then return util.fail(CMD, serr) end

  local updates = {}
  for i, u in ipairs(specs) do
    local bytes, err = read(u.path)
    if not bytes then return util.fail(CMD, err) end
    local set; set, err = T.from_safetensors(bytes, u.path, { borrow = true }) -- read only: no second copy
    if not set then return util.fail(CMD, err) end
    updates[i] = { client = u.path, tensors = set, num_examples = u.num_examples, metrics = u.metrics,
      cid = raw_cid(bytes) }
  end
  local global
  if opts.global then
    local bytes, err = read(opts.global)
    if not bytes then return util.fail(CMD, "--global " .. err) end
    global, err = T.from_safetensors(bytes, opts.global, { borrow = true })
    if not global then return util.fail(CMD, "--global " .. err) end
  end
  local state
  if opts.state then
    local st, err = load_state(opts.state)
    if st == nil then return util.fail(CMD, err) end
    if st then
      if st.strategy ~= obj.name then
        return util.fail(CMD, ("%s: the state is %s's, not %s's (use another --state file)"):format(opts.state,
          tostring(st.strategy), obj.name))
      end
      state = st
      round = round or (st.round or 0) + 1
    end
  end
  -- a script strategy's aggregate may raise (a bug in the script): that is
  -- this command's failure, reported as one line naming the strategy
  local pok, res, err = pcall(strategy.aggregate, { strategy = obj, global = global, updates = updates,
    state = state and { scalars = state.scalars, tensors = state.tensors }, round = round })
  if not pok then return util.fail(CMD, "strategy " .. opts.strategy .. ": " .. tostring(res)) end
  if not res then return util.fail(CMD, err) end

  -- Everything is computed: write to temporary names, then rename.
  local out_bytes; out_bytes, err = res.tensors:to_safetensors()
  if not out_bytes then return util.fail(CMD, err) end
  local temps = {}
  local function cleanup() for _, t in ipairs(temps) do os.remove(t) end end
  local out_tmp; out_tmp, err = write_tmp(opts.output, out_bytes)
  if not out_tmp then return util.fail(CMD, err) end
  temps[#temps + 1] = out_tmp
  local state_tmp, tensors_tmp, tensors_path, old_tensors
  if opts.state then
    local doc = { format = "ipk.fl.state", version = 1, strategy = obj.name, params = obj.params, round = res.round,
      scalars = res.state.scalars or {}, tensors = json.null }
    local st_set = res.state.tensors
    if st_set and st_set:count() > 0 then
      local tb; tb, err = st_set:to_safetensors()
      if not tb then cleanup(); return util.fail(CMD, err) end
      local tcid = raw_cid(tb)
      local base = opts.state:match("([^/]*)$"):gsub("%.json$", "")
      local tname = base .. "-" .. tcid .. ".safetensors"
      tensors_path = dirname(opts.state) .. "/" .. tname
      tensors_tmp, err = write_tmp(tensors_path, tb)
      if not tensors_tmp then cleanup(); return util.fail(CMD, err) end
      temps[#temps + 1] = tensors_tmp
      doc.tensors = { path = tname, cid = tcid }
    end
    local text; text, err = json.encode(doc)
    if not text then cleanup(); return util.fail(CMD, "state: " .. tostring(err)) end
    state_tmp, err = write_tmp(opts.state, text .. "\n")
    if not state_tmp then cleanup(); return util.fail(CMD, err) end
    temps[#temps + 1] = state_tmp
    old_tensors = state and state.tensors_path
  end
  local ok, rerr = os.rename(out_tmp, opts.output)
  if not ok then cleanup(); return util.fail(CMD, opts.output .. ": " .. tostring(rerr)) end
  if opts.state then
    if tensors_tmp then
      ok, rerr = os.rename(tensors_tmp, tensors_path)
      if not ok then cleanup(); return util.fail(CMD, tensors_path .. ": " .. tostring(rerr)) end
    end
    ok, rerr = os.rename(state_tmp, opts.state)
    if not ok then cleanup(); return util.fail(CMD, opts.state .. ": " .. tostring(rerr)) end
    if old_tensors and old_tensors ~= tensors_path then os.remove(old_tensors) end
  end

  -- The CID `ipfs add` (and `ipkrun add`) gives the output file, Kubo's
  -- default import: what a user pins or shares (a raw CIDv1 of the bytes
  -- differs from it for files over one 256 KiB chunk).
  local model_cid = assert(unixfs.add_bytes(out_bytes, { only_hash = true }))
  if opts.json then
    util.emit_json({ strategy = obj.name, round = res.round, output = opts.output, model_cid = model_cid,
      bytes = #out_bytes, clients = #updates, tensors = res.tensors:count(), final = res.final,
      state = opts.state, info = json.sanitize(res.info) })
  else
    io.stdout:write(("wrote %s (%d bytes, %d tensors, %s): %s round %d over %d clients%s\n"):format(opts.output,
      #out_bytes, res.tensors:count(), model_cid, obj.name, res.round, #updates,
      opts.state and (", state " .. opts.state) or ""))
    local sel = res.info.selected_clients or (res.info.selected_client and { res.info.selected_client })
    if sel then io.stdout:write("selected: ", table.concat(sel, " "), "\n") end
  end
  return 0
end

return M
