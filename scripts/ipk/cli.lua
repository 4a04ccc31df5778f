--- ipk.cli: the ipkrun command line. Returns main(argv) -> exit code.
-- Every command: results on stdout (one JSON object with --json), progress
-- and logs on stderr, errors as one line "ipkrun: CMD: what: why" with a
-- nonzero exit (1 failure, 2 usage).
local runtime = require "ipk.runtime"

local M = {}

local USAGE = [==[
ipkrun - content-addressed ML recipes on IPFS

usage:
  ipkrun run RECIPE.lua [--param k=v ...] [--json]   run a recipe
  ipkrun RECIPE.lua [...]                            same as run
  ipkrun add [-r] [-Q] [-q] [-n] [--cid-version=0|1] [--raw-leaves[=true|false]]
             [--chunker=size-N] [--profile=unixfs-v0-2015|unixfs-v1-2025] [--pin=false] PATH
  ipkrun cat CID                                     file bytes to stdout (verified)
  ipkrun get CID -o PATH                             file or directory to PATH (verified)
  ipkrun pin ls|add|rm [CID]                         pins of the embedded store
  ipkrun gc                                          remove unpinned blocks
  ipkrun --help | --version
  ipkrun                                             REPL with ipk loaded

global options: --json (one JSON object on stdout), IPK_HOME (store directory,
default ${XDG_DATA_HOME:-~/.local/share}/ipk)
]==]

local function usage_error(cmd, msg)
  io.stderr:write("ipkrun: ", cmd and (cmd .. ": ") or "", msg, "\n")
  return 2
end

local function fail(cmd, msg)
  msg = tostring(msg):gsub("\n.*", "")
  io.stderr:write("ipkrun: ", cmd, ": ", msg, "\n")
  return 1
end

local function emit_json(obj)
  io.stdout:write(require("ipk.json").encode(obj), "\n")
end

-- Parse flags for a command. spec: name -> {kind="bool"|"value", short=, aliases}.
-- Accepts --name=value, --name value (value flags), -x; "--" ends flags.
local function parse(argv, spec)
  local opts, pos = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do pos[#pos + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, val = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local s = spec[name]
      if not s then return nil, "unknown flag '" .. a .. "'" end
      if s.kind == "value" and val == nil then
        i = i + 1
        val = argv[i]
        if val == nil then return nil, "flag --" .. name .. " needs a value" end
      end
      if s.kind == "bool" and val ~= nil and val ~= "true" and val ~= "false" then
        return nil, "flag --" .. name .. " takes true or false, got '" .. val .. "'"
      end
      if s.multi then
        opts[s.key or name] = opts[s.key or name] or {}
        table.insert(opts[s.key or name], val)
      else
        if s.kind == "bool" then opts[s.key or name] = (val ~= "false") else opts[s.key or name] = val end
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      for ch in a:sub(2):gmatch(".") do
        local found
        for name, s in pairs(spec) do
          if s.short == ch then found = name end
        end
        if not found then return nil, "unknown flag '-" .. ch .. "'" end
        local s = spec[found]
        if s.kind == "value" then
          i = i + 1
          if argv[i] == nil then return nil, "flag -" .. ch .. " needs a value" end
          opts[s.key or found] = argv[i]
        else
          opts[s.key or found] = true
        end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

local commands = {}

-- ipkrun add ------------------------------------------------------------
commands.add = function(argv)
  local opts, pos = parse(argv, {
    recursive = { kind = "bool", short = "r" }, quieter = { kind = "bool", short = "Q" },
    quiet = { kind = "bool", short = "q" }, ["only-hash"] = { kind = "bool", short = "n" },
    ["cid-version"] = { kind = "value" }, ["raw-leaves"] = { kind = "bool" },
    chunker = { kind = "value" }, profile = { kind = "value" }, pin = { kind = "bool" },
    json = { kind = "bool" }, ["max-file-links"] = { kind = "value" },
  })
  if not opts then return usage_error("add", pos) end
  if #pos ~= 1 then return usage_error("add", "expected exactly one PATH (see ipkrun --help)") end
  local o = { recursive = opts.recursive, profile = opts.profile, chunker = opts.chunker,
              raw_leaves = opts["raw-leaves"], max_links = tonumber(opts["max-file-links"]) }
  if opts["cid-version"] then
    local v = tonumber(opts["cid-version"])
    if v ~= 0 and v ~= 1 then return usage_error("add", "--cid-version must be 0 or 1, got '" .. opts["cid-version"] .. "'") end
    o.cid_version = v
  end
  if opts["max-file-links"] and not o.max_links then
    return usage_error("add", "--max-file-links must be a number")
  end
  local store
  if not opts["only-hash"] then
    store = runtime.store()
    o.blocks = store:blocks()
  end
  local res, err = require("ipk.unixfs").add(pos[1], o)
  if not res then return fail("add", err) end
  if store and opts.pin ~= false then
    local ok, perr = store:pin_add(res.root, { recursive = true, name = "add:" .. pos[1]:gsub(".*/", "") })
    if not ok then return fail("add", perr) end
  end
  if opts.json then
    emit_json({ root = res.root, size = res.size, entries = res.entries })
  elseif opts.quieter then
    io.stdout:write(res.root, "\n")
  else
    for _, e in ipairs(res.entries) do
      if opts.quiet then io.stdout:write(e.cid, "\n")
      else io.stdout:write("added ", e.cid, " ", e.path, "\n") end
    end
  end
  return 0
end

local function parse_cid(s)
  local c, err = require("ipk.cid").parse(s)
  if not c then return nil, s .. ": " .. tostring(err) end
  return c
end

-- ipkrun cat ------------------------------------------------------------
commands.cat = function(argv)
  local opts, pos = parse(argv, {})
  if not opts then return usage_error("cat", pos) end
  if #pos ~= 1 then return usage_error("cat", "expected one CID") end
  local _, err = parse_cid(pos[1])
  if err then return fail("cat", err) end
  io.stdout:flush()
  local ok, cerr = require("ipk.unixfs").cat(pos[1], runtime.store():blocks(), 1)
  if not ok then return fail("cat", cerr) end
  return 0
end

-- ipkrun get ------------------------------------------------------------
commands.get = function(argv)
  local opts, pos = parse(argv, { output = { kind = "value", short = "o" }, json = { kind = "bool" } })
  if not opts then return usage_error("get", pos) end
  if #pos ~= 1 then return usage_error("get", "expected one CID") end
  local _, err = parse_cid(pos[1])
  if err then return fail("get", err) end
  local out = opts.output or pos[1]
  local ok, gerr = require("ipk.unixfs").get(pos[1], runtime.store():blocks(), out)
  if not ok then return fail("get", gerr) end
  if opts.json then emit_json({ cid = pos[1], path = out })
  else io.stderr:write("saved ", pos[1], " to ", out, "\n") end
  return 0
end

-- ipkrun pin ------------------------------------------------------------
commands.pin = function(argv)
  local sub = argv[1]
  local rest = { unpack(argv, 2) }
  local opts, pos = parse(rest, { json = { kind = "bool" }, recursive = { kind = "bool", short = "r" } })
  if not opts then return usage_error("pin", pos) end
  local store = runtime.store()
  if sub == "ls" then
    local pins = store:pin_ls()
    if opts.json then
      local keys = {}
      for _, p in ipairs(pins) do keys[p.cid] = { Type = p.type, Name = p.name } end
      emit_json({ Keys = keys })
    else
      for _, p in ipairs(pins) do io.stdout:write(p.cid, " ", p.type, (p.name and p.name ~= "") and (" " .. p.name) or "", "\n") end
    end
    return 0
  elseif sub == "add" or sub == "rm" then
    if #pos ~= 1 then return usage_error("pin " .. sub, "expected one CID") end
    local _, err = parse_cid(pos[1])
    if err then return fail("pin " .. sub, err) end
    local ok, perr
    if sub == "add" then ok, perr = store:pin_add(pos[1], { recursive = opts.recursive ~= false })
    else ok, perr = store:pin_rm(pos[1]) end
    if not ok then return fail("pin " .. sub, perr) end
    if opts.json then emit_json({ Pins = { pos[1] } })
    else io.stdout:write((sub == "add") and "pinned " or "unpinned ", pos[1], "\n") end
    return 0
  end
  return usage_error("pin", "expected ls, add or rm")
end

-- ipkrun gc -------------------------------------------------------------
commands.gc = function(argv)
  local opts, pos = parse(argv, { json = { kind = "bool" } })
  if not opts then return usage_error("gc", pos) end
  local r, err = runtime.store():gc()
  if not r then return fail("gc", err) end
  if opts.json then emit_json(r)
  else io.stdout:write(("removed %d blocks (%d bytes)\n"):format(r.removed, r.bytes)) end
  return 0
end

-- ipkrun run ------------------------------------------------------------
local function print_human(res)
  local w = io.stdout
  if type(res) ~= "table" then w:write(tostring(res), "\n") return end
  if res.dataset_cid then w:write("dataset_cid    ", res.dataset_cid, "\n") end
  if res.history then
    w:write("round  test_accuracy  test_loss\n")
    for _, h in ipairs(res.history) do
      w:write(("%5d  %13.4f  %9.4f\n"):format(h.round, h.test_accuracy or 0, h.test_loss or 0))
    end
  end
  if res.model_cid then w:write("model_cid      ", res.model_cid, "\n") end
  if res.test_accuracy then w:write(("test_accuracy  %.4f\n"):format(res.test_accuracy)) end
  if res.registry then
    local r = res.registry
    w:write("registry       ", r.name, "@", r.version, " -> ", r.model_cid,
      r.existing and " (already registered)" or "", "\n")
  end
  if not (res.dataset_cid or res.model_cid) then w:write(require("ipk.json").encode(res), "\n") end
end

commands.run = function(argv)
  local opts, pos = parse(argv, { param = { kind = "value", multi = true }, json = { kind = "bool" } })
  if not opts then return usage_error("run", pos) end
  -- --param takes k=v; extra bare k=v words after a --param are accepted too.
  local path = table.remove(pos, 1)
  if not path then return usage_error("run", "expected a RECIPE.lua file") end
  local overrides = {}
  local kvs = opts.param or {}
  for _, p in ipairs(pos) do kvs[#kvs + 1] = p end
  for _, kv in ipairs(kvs) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then return usage_error("run", "--param expects k=v, got '" .. kv .. "'") end
    overrides[k] = v
  end
  local res, err = require("ipk.runner").run_file(path, overrides)
  if not res then return fail("run", err) end
  if opts.json then emit_json(res) else print_human(res) end
  return 0
end

-- REPL ------------------------------------------------------------------
local function repl()
  return require("ipk.repl").start()
end

--- Entry point used by bindings/host/main.c.
function M.main(argv)
  local json_flag = false
  for _, a in ipairs(argv) do if a == "--json" then json_flag = true end end
  local cmd = argv[1]
  if cmd == nil then return repl() end
  if cmd == "--help" or cmd == "-h" or cmd == "help" then io.stdout:write(USAGE) return 0 end
  if cmd == "--version" or cmd == "version" then
    local v = require("ipk.core").version()
    if json_flag then emit_json({ version = v }) else io.stdout:write("ipkrun ", v, "\n") end
    return 0
  end
  local rest = { unpack(argv, 2) }
  if cmd:match("%.lua$") then cmd, rest = "run", argv end
  local f = commands[cmd]
  if not f then return usage_error(nil, "unknown command '" .. cmd .. "' (see ipkrun --help)") end
  local code
  local ok, err = pcall(function()
    code = require("ipk.sched").run_task(f, rest)
  end)
  if not ok then return fail(cmd, err) end
  return code or 0
end

return M.main
