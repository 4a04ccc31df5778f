--- ipk.cli: the ipkrun command line. Returns main(argv) -> exit code.
-- Each command is a module scripts/ipk/cmd/NAME.lua returning
-- {usage=, summary=, run=function(argv) -> exit code}; this file only
-- dispatches. Every command: results on stdout (one JSON object with
-- --json), progress and logs on stderr, errors as one line
-- "ipkrun: CMD: what: why" with a nonzero exit (1 failure, 2 usage).
local util = require "ipk.cmd.util"

local M = {}

-- Command modules present next to ipk/cmd/util.lua, sorted.
local function command_names()
  local p = package.searchpath("ipk.cmd.util", package.path)
  local dir = p and p:gsub("/util%.lua$", "")
  local names = {}
  if dir then
    local h = io.popen("ls '" .. dir:gsub("'", "'\\''") .. "'")
    for f in h:lines() do
      local n = f:match("^([%w_-]+)%.lua$")
      if n and n ~= "util" then names[#names + 1] = n end
    end
    h:close()
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
  return table.concat(out, "\n") .. "\n"
end

--- Entry point used by bindings/host/main.c.
function M.main(argv)
  local json_flag = false
  for _, a in ipairs(argv) do if a == "--json" then json_flag = true end end
  local cmd = argv[1]
  if cmd == nil then return require("ipk.repl").start() end
  if cmd == "--help" or cmd == "-h" or cmd == "help" then io.stdout:write(help()) return 0 end
  if cmd == "--version" or cmd == "version" then
    local v = require("ipk.core").version()
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
  local code
  local ok, err = pcall(function()
    code = require("ipk.sched").run_task(mod.run, rest)
  end)
  if not ok then return util.fail(cmd, err) end
  return code or 0
end

return M.main
