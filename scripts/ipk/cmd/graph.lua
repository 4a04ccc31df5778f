--- ipkrun graph: a recipe's step DAG as Graphviz DOT or Mermaid.
local util = require "ipk.cmd.util"
local runner = require "ipk.run"
local recipe = require "ipk.run.recipe"

local M = {}

M.usage = "graph RECIPE.lua [--format dot|mermaid]"
M.summary = "print the recipe's step DAG (DOT by default, or Mermaid)"

-- A DOT double-quoted string: only '"' and '\\' need escaping; a newline
-- becomes DOT's \n.
local function dot_esc(v)
  return (tostring(v):gsub('[\\"]', '\\%0'):gsub("\n", "\\n"))
end
local function dot_str(v) return '"' .. dot_esc(v) .. '"' end

local function ident(s) return (s:gsub("[^%w_]", "_")) end

--- The DAG text of recipe r in format fmt ("dot" | "mermaid").
function M.render(r, fmt)
  local order, deps = recipe.deps(r)
  if not order then return nil, deps end
  local out = {}
  if fmt == "mermaid" then
    out[1] = "flowchart LR"
    for _, n in ipairs(order) do
      out[#out + 1] = ("  %s[\"%s<br/><i>%s</i>\"]"):format(ident(n), n, r.steps[n].kind.kind)
    end
    for _, n in ipairs(order) do
      for _, d in ipairs(deps[n]) do out[#out + 1] = ("  %s --> %s"):format(ident(d), ident(n)) end
    end
  else
    out[1] = ("digraph %s {"):format(dot_str(r.name))
    out[#out + 1] = "  rankdir=LR;"
    out[#out + 1] = "  node [shape=box, style=rounded];"
    for _, n in ipairs(order) do
      -- DOT's own escapes: \n is a line break in a label (Lua's %q would
      -- double the backslash, and Graphviz would show it)
      out[#out + 1] = ("  %s [label=\"%s\\n%s\"];"):format(dot_str(n), dot_esc(n), dot_esc(r.steps[n].kind.kind))
    end
    for _, n in ipairs(order) do
      for _, d in ipairs(deps[n]) do out[#out + 1] = ("  %s -> %s;"):format(dot_str(d), dot_str(n)) end
    end
    out[#out + 1] = "}"
  end
  return table.concat(out, "\n") .. "\n"
end

function M.run(argv)
  local opts, pos = util.parse(argv, { format = { kind = "value", short = "f" }, json = { kind = "bool" } })
  if not opts then return util.usage_error("graph", pos) end
  if not pos[1] then return util.usage_error("graph", "expected a RECIPE.lua file") end
  local fmt = opts.format or "dot"
  if fmt ~= "dot" and fmt ~= "mermaid" then return util.usage_error("graph", "--format is dot or mermaid, got '" .. fmt .. "'") end
  local r, err = runner.load(pos[1])
  if not r then return util.fail("graph", err) end
  local text, gerr = M.render(r, fmt)
  if not text then return util.fail("graph", gerr) end
  if opts.json then util.emit_json({ format = fmt, graph = text }) else io.stdout:write(text) end
  return 0
end

return M
