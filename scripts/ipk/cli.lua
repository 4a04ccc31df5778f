--- ipk.cli: the ipkrun command line. Returns main(argv) -> exit code.
-- Each command is a module scripts/ipk/cmd/NAME.lua returning
-- {usage=, summary=, run=function(argv) -> exit code}; this file only
-- dispatches. Every command: results on stdout (one JSON object with
-- --json), progress and logs on stderr, errors as one line
-- "ipkrun: CMD: what: why" with a nonzero exit (1 failure, 2 usage).
local util = require "ipk.cmd.util"
local core = require "ipk.core"
local host = require "ipk.host"
local repl = require "ipk.repl"
local runtime = require "ipk.runtime"
local sched = require "ipk.sched"
local fs = require "ipk.fs"

local M = {}

-- Command modules present next to ipk/cmd/util.lua, sorted.
local function command_names()
  local p = package.searchpath("ipk.cmd.util", package.path)
  local dir = p and p:gsub("/util%.lua$", "")
  local names = {}
  if dir then
    for _, e in ipairs(fs.walk(dir, { depth = 1 }) or {}) do
      local n = e.path:match("^([%w_-]+)%.lua$")
      if n and n ~= "util" then names[#names + 1] = n end
    end
  end
  table.sort(names)
  return names
end

local function help()
  local out = { "ipkrun - content-addressed ML recipes on IPFS", "", "usage:" }
  for _, n in ipairs(command_names()) do
    local ok, mod = pcall(require, "ipk.cmd." .. n)
    if ok and mod.usage then
      out[#out + 1] = "  ipkrun " .. mod.usage
      out[#out + 1] = "      " .. (mod.summary or "")
    end
  end
  out[#out + 1] = "  ipkrun RECIPE.lua [...]"
  out[#out + 1] = "      same as ipkrun run RECIPE.lua"
  out[#out + 1] = "  ipkrun --help | --version"
  out[#out + 1] = "  ipkrun"
  out[#out + 1] = "      REPL with ipk loaded"
  out[#out + 1] = ""
  out[#out + 1] = "--json (any command): one JSON object on stdout; progress and logs on stderr."
  out[#out + 1] = "IPK_HOME: store directory (default ${XDG_DATA_HOME:-~/.local/share}/ipk)."
  out[#out + 1] = "--api URL | IPK_API: use that Kubo RPC node (--api-auth | IPK_API_AUTH: Authorization);"
  out[#out + 1] = "--gateway URL | IPK_GATEWAY: read from a trustless gateway (read-only)."
  out[#out + 1] = "--max-memory SIZE | IPK_MAX_MEMORY: memory cap (2G, 512M, 50%, off; default 75% of RAM)."
  return table.concat(out, "\n") .. "\n"
end

-- Global flags valid before or after the command: --api URL (a Kubo RPC
-- node instead of the embedded store), --api-auth VALUE (Authorization
-- header), --gateway URL (read-only trustless gateway), --max-memory SIZE
-- (the memory cap). Removed from argv.
local GLOBAL = { api = "api", ["api-auth"] = "api_auth", gateway = "gateway", ["max-memory"] = "max_memory" }

local function take_globals(argv)
  local out, i = {}, 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i, #argv do out[#out + 1] = argv[j] end
      break
    end
    local name, val = a:match("^%-%-([%w-]+)=(.*)$")
    name = name or a:match("^%-%-([%w-]+)$")
    if name and GLOBAL[name] then
      if val == nil then
        i = i + 1
        val = argv[i]
        if val == nil or val == "" then return nil, "flag --" .. name .. " needs a value" end
      end
      runtime[GLOBAL[name]] = val
    else
      out[#out + 1] = a
    end
    i = i + 1
  end
  return out
end

--- Entry point used by bindings/host/main.c.
function M.main(argv)
  local gerr
  argv, gerr = take_globals(argv)
  if not argv then return util.usage_error(nil, gerr) end
  if runtime.max_memory then
    -- The memory cap (bindings/host/memcap.h); IPK_MAX_MEMORY was applied
    -- by the host at startup, the flag overrides it.
    local bytes, perr = host.parse_size(runtime.max_memory)
    if not bytes then return util.usage_error(nil, "--max-memory: " .. perr) end
    local ok, serr = host.set_memory_cap(bytes)
    if not ok then return util.usage_error(nil, "--max-memory: " .. serr) end
  end
  local json_flag = false
  for _, a in ipairs(argv) do if a == "--json" then json_flag = true end end
  util.json_mode = json_flag
  -- Global flags may come before the command (ipkrun --json pin ls).
  if argv[1] == "--json" and argv[2] and argv[2]:sub(1, 1) ~= "-" then
    argv = { argv[2], unpack(argv, 3) }
    argv[#argv + 1] = "--json"
  end
  local cmd = argv[1]
  if cmd == nil then return repl.start() end
  if cmd == "--help" or cmd == "-h" or cmd == "help" then io.stdout:write(help()) return 0 end
  if cmd == "--version" or cmd == "version" then
    local v = core.version()
    if json_flag then util.emit_json({ version = v }) else io.stdout:write("ipkrun ", v, "\n") end
    return 0
  end
  local rest = { unpack(argv, 2) }
  if cmd:match("%.lua$") then cmd, rest = "run", argv end
  if not cmd:match("^[%a][%w_-]*$") or cmd == "util"
      or not package.searchpath("ipk.cmd." .. cmd, package.path) then
    return util.usage_error(nil, "unknown command '" .. cmd .. "' (see ipkrun --help)")
  end
  local mod = require("ipk.cmd." .. cmd)
  for _, a in ipairs(rest) do
    if a == "--help" or a == "-h" then
      io.stdout:write("usage: ipkrun ", mod.usage, "\n  ", mod.summary or "", "\n")
      if mod.help then io.stdout:write(mod.help(rest) or "") end
      return 0
    end
  end
  local code
  local ok, err = pcall(function()
    code = sched.run_task(mod.run, rest)
  end)
  runtime.flush_stats()
  if not ok then return util.fail(cmd, err) end
  return code or 0
end

return M.main
