--- ipk.repl: the interactive prompt of `ipkrun` with no arguments.
-- Each line runs as a task, so async ipk calls work directly. Line editing
-- and history come from libedit (readline interface) when stdin is a TTY.
local ipk_facade = require "ipk"
local core = require "ipk.core"
local sched = require "ipk.sched"

local M = {}

local function pretty(v, indent, seen)
  indent, seen = indent or "", seen or {}
  if type(v) ~= "table" then
    return type(v) == "string" and string.format("%q", v) or tostring(v)
  end
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  if #keys == 0 then return "{}" end
  local parts = {}
  for _, k in ipairs(keys) do
    local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or ("[" .. pretty(k) .. "]")
    parts[#parts + 1] = indent .. "  " .. ks .. " = " .. pretty(v[k], indent .. "  ", seen)
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end
M.pretty = pretty

-- Engine modules reachable as ipk.X in the REPL besides require "ipk"'s
-- (the engine, ipk.run, is ipk.runner here: ipk.run is the task runner).
local EXTRA = { runner = "ipk.run", recipe_mod = "ipk.run.recipe", lineage = "ipk.lineage", report = "ipk.report",
                cron = "ipk.cron", dagjson = "ipk.dagjson", schedule = "ipk.schedule" }

--- The `ipk` table the REPL gives: require "ipk" plus the engine modules.
function M.ipk()
  return setmetatable({}, { __index = function(t, k)
    local v = ipk_facade[k]
    if v == nil and EXTRA[k] then v = require(EXTRA[k]) end
    if v ~= nil then rawset(t, k, v) end
    return v
  end })
end

--- Completion words: every ipk.* name (modules loaded eagerly) and the
-- REPL's commands, sorted.
function M.words()
  local ipk = M.ipk()
  local out = { ":help", ":quit" }
  local mods = { "core", "sched", "cid", "unixfs", "dataset", "registry", "fl", "json", "runtime",
                 "runner", "lineage", "report", "cron", "dagjson", "schedule" }
  local seen = {}
  local function add(w) if not seen[w] then seen[w] = true; out[#out + 1] = w end end
  for k, v in pairs(ipk_facade) do add("ipk." .. k .. (type(v) == "function" and "(" or "")) end
  for _, m in ipairs(mods) do
    local ok, mod = pcall(function() return ipk[m] end)
    if ok and type(mod) == "table" then
      add("ipk." .. m)
      for k, v in pairs(mod) do
        if type(k) == "string" and not k:match("^_") then add("ipk." .. m .. "." .. k .. (type(v) == "function" and "(" or "")) end
      end
    end
  end
  table.sort(out)
  return out
end

local function line_reader()
  local ffi, lib = core.ffi, core.host
  local isatty = ffi.C.isatty(0) == 1
  if isatty and lib and lib.ipk_lineedit_available() == 1 then
    local words = M.words()
    local arr = ffi.new("const char*[?]", #words)
    for i, w in ipairs(words) do arr[i - 1] = w end
    lib.ipk_lineedit_set_words(arr, #words) -- copied by C
    return function(prompt)
      local p = lib.ipk_lineedit_read(prompt)
      if p == nil then return nil end
      local s = ffi.string(p)
      ffi.C.free(p)
      if s:match("%S") then lib.ipk_lineedit_add_history(s) end
      return s
    end
  end
  return function(prompt)
    if isatty then io.stdout:write(prompt); io.stdout:flush() end
    return io.read("*l")
  end
end

M.HELP = [[
Type Lua; a bare expression (or `=expr`) prints its value, pretty-printed.
Every line runs as a task, so async calls work directly:
  ipk.backend():add("file", {cid_version = 1})    ipk.backend():pin_ls()
  ipk.registry.list()          ipk.dataset.list()
  ipk.runner.list_runs()       ipk.runner.plan("recipes/fashion_mnist_fedavg.lua", {rounds = "5"})
  ipk.runner.run_file("recipes/fashion_mnist_fedavg.lua", {rounds = "5"})
  ipk.lineage.verify("bafk...")
Locals do not survive between lines: assign globals (x = ...) to keep values.
TAB completes ipk.* names; Up/Down walk the history; :quit or Ctrl-D quits.
]]

--- Run the REPL until EOF. Returns the exit code.
function M.start()
  local env = setmetatable({ ipk = M.ipk() }, { __index = _G })
  local read = line_reader()
  io.stdout:write("ipk ", env.ipk.version(), " - Lua REPL with ipk loaded (:help, Ctrl-D to quit)\n")
  while true do
    local line = read("ipk> ")
    if not line then break end
    if line == ":quit" or line == ":q" then break
    elseif line == ":help" then
      io.stdout:write(M.HELP)
    elseif line:match("%S") then
      local src = line:gsub("^=", "")
      local chunk = loadstring("return " .. src, "=repl") or loadstring(line, "=repl")
      if not chunk then
        local _, err = loadstring(line, "=repl")
        io.stdout:write(tostring(err), "\n")
      else
        setfenv(chunk, env)
        local res = { pcall(sched.run_task, chunk) }
        if not res[1] then io.stdout:write("error: ", tostring(res[2]), "\n")
        else
          for i = 2, table.maxn(res) do io.stdout:write(pretty(res[i]), "\n") end
        end
      end
    end
  end
  return 0
end

return M
