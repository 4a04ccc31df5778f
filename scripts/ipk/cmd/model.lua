--- ipkrun model: the model registry (add, get, list, show, alias, rm,
-- export, import, index).
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local cidmod = require "ipk.cid"
local reg = require "ipk.registry"

local M = {}

M.usage = "model add PATH --name N --version V [--tag T]... [--metric K=NUMBER]... [--param K=V|K=\"TEXT\"]...\n"
  .. "        [--description S] [--dataset CID] [--parent CID] [--run CID] [--alias A]... [--json]\n"
  .. "      model get N[@V|@ALIAS] -o DIR | list [--name N] [--framework F] [--tag T] [--where \"accuracy>0.9\"]\n"
  .. "      model show N[@V|@ALIAS] | alias N ALIAS [VERSION|--rm] | rm N@V | export [FILE] | import FILE | index"
M.summary = "model registry: versions, aliases, metrics, lineage (formats detected from content)"

-- KEY=VALUE flags. Metrics are numbers; a param is a number, true/false,
-- or text ("..." keeps digits as text). Numbers that cannot be stored
-- exactly (1e400, nan, 9007199254740993) are refused here, before any work.
local function kv_list(list, what, numeric)
  local out = {}
  for _, s in ipairs(list or {}) do
    local k, v = s:match("^([^=]+)=(.*)$")
    if not k then return nil, "--" .. what .. " expects KEY=VALUE, got '" .. s .. "'" end
    local quoted = not numeric and v:match('^"(.*)"$')
    if quoted then out[k] = quoted
    elseif numeric or tonumber(v) then
      local x, why = json.parse_number(v)
      if not x then
        return nil, "--" .. what .. " " .. k .. ": " .. why .. (numeric and "" or " (or quote it: " .. k .. '=\"' .. v .. '\")')
      end
      out[k] = x
    else
      out[k] = (v == "true" and true) or (v == "false" and false) or v
    end
  end
  return out
end

local function brief(e)
  local m = {}
  for k, v in pairs(e.metrics or {}) do m[#m + 1] = k .. "=" .. tostring(v) end
  table.sort(m)
  return ("%s@%s\t%s\t%s\t%s\t%s"):format(e.name, e.version, e.framework or "-", e.format or "-", e.model_cid,
    table.concat(m, ","))
end

local SPEC = {
  name = { kind = "value" }, version = { kind = "value" }, tag = { kind = "value", multi = true },
  metric = { kind = "value", multi = true }, param = { kind = "value", multi = true },
  description = { kind = "value", empty = true }, dataset = { kind = "value" }, parent = { kind = "value" },
  run = { kind = "value" }, recipe = { kind = "value" }, alias = { kind = "value", multi = true },
  output = { kind = "value", short = "o" }, framework = { kind = "value" }, format = { kind = "value" },
  where = { kind = "value", multi = true }, json = { kind = "bool" }, rm = { kind = "bool" },
}

function M.run(argv)
  local sub = argv[1]
  local opts, pos = util.parse({ unpack(argv, 2) }, SPEC)
  if not opts then return util.usage_error("model", pos) end
  local cmd = "model " .. tostring(sub)
  if sub == "add" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected one PATH") end
    if not opts.name or not opts.version then return util.usage_error(cmd, "--name and --version are required") end
    local metrics, err = kv_list(opts.metric, "metric", true)
    if not metrics then return util.usage_error(cmd, err) end
    local params; params, err = kv_list(opts.param, "param")
    if not params then return util.usage_error(cmd, err) end
    local lineage = { dataset_cid = opts.dataset, parent_cid = opts.parent, run_cid = opts.run, recipe_cid = opts.recipe }
    for k, v in pairs(lineage) do
      if not cidmod.parse(v) then return util.fail(cmd, "--" .. k:gsub("_cid", "") .. ": invalid CID '" .. v .. "'") end
    end
    local e; e, err = reg.register { path = pos[1], name = opts.name, version = opts.version, tags = opts.tag,
      metrics = metrics, params = params, description = opts.description, lineage = lineage, aliases = opts.alias }
    if not e then return util.fail(cmd, err) end
    if opts.json then util.emit_json(e)
    else io.stdout:write(("added %s@%s %s (entry %s)%s\n"):format(e.name, e.version, e.model_cid, e.entry_cid or "-",
      e.existing and " (already registered)" or "")) end
    return 0
  elseif sub == "get" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N[@V]") end
    local name, ref = reg.parse_ref(pos[1])
    local out = opts.output or (name .. "-" .. (ref or "latest"))
    local e, err = reg.fetch(name, ref, out)
    if not e then return util.fail(cmd, err) end
    if opts.json then util.emit_json(e) else io.stderr:write("saved ", e.name, "@", e.version, " to ", out, "\n") end
    return 0
  elseif sub == "list" then
    local rows, err = reg.list { name = opts.name, framework = opts.framework, format = opts.format, tag = opts.tag,
                                 where = opts.where }
    if not rows then return util.fail(cmd, err) end
    if opts.json then util.emit_json({ models = json.array(rows), count = #rows, index_cid = reg.index_cid() })
    else for _, e in ipairs(rows) do io.stdout:write(brief(e), "\n") end end
    return 0
  elseif sub == "show" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N[@V|@ALIAS]") end
    local e, err = reg.get(reg.parse_ref(pos[1]))
    if not e then return util.fail(cmd, err) end
    local hist = {}
    for a in pairs(reg.aliases(e.name)) do hist[a] = reg.alias_history(e.name, a) end
    e.alias_history = hist
    if opts.json then util.emit_json(e)
    else io.stdout:write(util.to_json(e), "\n") end
    return 0
  elseif sub == "alias" then
    if #pos < 2 or #pos > 3 then return util.usage_error(cmd, "expected N ALIAS [VERSION] (or --rm)") end
    local version = pos[3]
    if not version and not opts.rm then
      local h = reg.alias_history(pos[1], pos[2])
      if opts.json then util.emit_json({ name = pos[1], alias = pos[2], history = h })
      else for _, x in ipairs(h) do io.stdout:write(x.set_at, "\t", x.version == json.null and "-" or x.version, "\n") end end
      return 0
    end
    local r, err = reg.set_alias(pos[1], pos[2], version)
    if not r then return util.fail(cmd, err) end
    if opts.json then util.emit_json(r)
    else io.stdout:write(pos[1], "@", pos[2], " -> ", tostring(version or "(removed)"), "\n") end
    return 0
  elseif sub == "rm" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N@V") end
    local name, ver = reg.parse_ref(pos[1])
    if not ver then return util.usage_error(cmd, "expected N@V (a version is required)") end
    local e, err = reg.remove(name, ver)
    if not e then return util.fail(cmd, err) end
    if opts.json then util.emit_json({ removed = e, index_cid = reg.index_cid() })
    else io.stdout:write("removed ", name, "@", ver, " (unpinned ", e.entry_cid or e.model_cid, ")\n") end
    return 0
  elseif sub == "export" then
    local t = reg.export()
    local s, jerr = json.encode(t)
    if not s then return util.fail(cmd, jerr) end
    if pos[1] then
      local f, err = io.open(pos[1], "wb")
      -- io.open's message already names the path
      if not f then return util.fail(cmd, tostring(err)) end
      local ok, werr = f:write(s, "\n")
      local cok, cerr = f:close()   -- a full disk shows at the flush
      if not ok or not cok then werr = werr or cerr end
      if werr then return util.fail(cmd, pos[1] .. ": " .. tostring(werr):gsub("^[^:]*: ", "")) end
      if opts.json then util.emit_json({ path = pos[1], index_cid = reg.index_cid() }) end
    else
      io.stdout:write(s, "\n")
    end
    return 0
  elseif sub == "import" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected FILE") end
    local f, err = io.open(pos[1], "rb")
    if not f then return util.fail(cmd, tostring(err)) end
    local s, rerr = f:read("*a")
    f:close()
    -- a directory opens, then reads as nil ("Is a directory")
    if not s then return util.fail(cmd, pos[1] .. ": " .. tostring(rerr)) end
    local r; r, err = reg.import_registry(s)
    if not r then return util.fail(cmd, err) end
    if opts.json then util.emit_json(r)
    else io.stdout:write(("imported %d, skipped %d, unpinned %d; registry %s\n")
      :format(r.imported, r.skipped, #r.missing, r.index_cid)) end
    return 0
  elseif sub == "index" then
    local c = reg.index_cid()
    if opts.json then util.emit_json({ index_cid = c or json.null }) else io.stdout:write(tostring(c or ""), "\n") end
    return 0
  end
  return util.usage_error("model", "expected add|get|list|show|alias|rm|export|import|index (see ipkrun --help)")
end

return M
