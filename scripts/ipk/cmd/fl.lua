--- ipkrun fl: federated learning commands. Each subcommand is its own
-- module scripts/ipk/cmd/fl/SUB.lua returning {usage=, summary=,
-- run=function(argv) -> exit code, help=optional}, like a top-level
-- command; this file only finds and dispatches them, so a new subcommand is
-- a new file (aggregate, strategies, rounds, ...).
local util = require "ipk.cmd.util"
local fs = require "ipk.fs"

local M = {}

-- Subcommand names present in ipk/cmd/fl/, sorted.
local function names()
  local p = package.searchpath("ipk.cmd.fl", package.path)
  local dir = p and p:gsub("%.lua$", "")
  local out = {}
  for _, e in ipairs(dir and fs.walk(dir, { depth = 1 }) or {}) do
    local n = e.path:match("^([%w_-]+)%.lua$")
    if n then out[#out + 1] = n end
  end
  table.sort(out)
  return out
end

local function names_text()
  local n = names()
  return #n > 0 and table.concat(n, ", ") or "none installed"
end

local function sub_module(sub)
  if type(sub) ~= "string" or not sub:match("^[%a][%w_-]*$")
      or not package.searchpath("ipk.cmd.fl." .. sub, package.path) then
    return nil
  end
  return require("ipk.cmd.fl." .. sub)
end

local function usage_lines()
  local lines = {}
  for _, n in ipairs(names()) do
    local ok, mod = pcall(require, "ipk.cmd.fl." .. n)
    if ok and type(mod) == "table" and mod.usage then lines[#lines + 1] = mod.usage end
  end
  return lines
end

M.usage = "fl SUBCOMMAND ... (" .. names_text() .. "; ipkrun fl SUBCOMMAND --help)"
M.summary = "federated learning: offline aggregation, strategies, round records"

-- `ipkrun fl SUB --help` prints the subcommand's usage; `ipkrun fl --help`
-- lists them all.
function M.help(argv)
  local mod = sub_module(argv[1])
  if mod then
    local out = "usage: ipkrun " .. mod.usage .. "\n  " .. (mod.summary or "") .. "\n"
    if mod.help then out = out .. (mod.help({ unpack(argv, 2) }) or "") end
    return "\n" .. out
  end
  local out = { "", "subcommands:" }
  for _, n in ipairs(names()) do
    local ok, m = pcall(require, "ipk.cmd.fl." .. n)
    if ok and type(m) == "table" and m.usage then
      out[#out + 1] = "  ipkrun " .. m.usage
      out[#out + 1] = "      " .. (m.summary or "")
    end
  end
  return table.concat(out, "\n") .. "\n"
end

function M.run(argv)
  local sub = argv[1]
  if sub == nil or sub:sub(1, 1) == "-" then
    return util.usage_error("fl", "expected a subcommand: " .. names_text())
  end
  local mod = sub_module(sub)
  if not mod then
    return util.usage_error("fl", "unknown subcommand '" .. sub .. "' (expected " .. names_text() .. ")")
  end
  return mod.run({ unpack(argv, 2) })
end

M.usage_lines = usage_lines

return M
