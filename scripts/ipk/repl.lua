--- ipk.repl: the interactive prompt of `ipkrun` with no arguments.
-- Each line runs as a task, so async ipk calls work directly. Line editing
-- and history come from libedit (readline interface) when stdin is a TTY.
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
    parts[#parts + 1] = indent .. "  " .. tostring(k) .. " = " .. pretty(v[k], indent .. "  ", seen)
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end
M.pretty = pretty

local function line_reader()
  local ffi = require "ffi"
  local isatty = pcall(ffi.cdef, "int isatty(int fd);") and ffi.C.isatty(0) == 1
  if isatty then
    local ok, edit = pcall(function()
      pcall(ffi.cdef, [[char *readline(const char *prompt); int add_history(const char *line);]])
      return ffi.load("edit")
    end)
    if ok then
      return function(prompt)
        local p = edit.readline(prompt)
        if p == nil then return nil end
        local s = ffi.string(p)
        ffi.C.free(p)
        if s:match("%S") then edit.add_history(s) end
        return s
      end
    end
  end
  return function(prompt)
    if isatty then io.stdout:write(prompt); io.stdout:flush() end
    return io.read("*l")
  end
end

--- Run the REPL until EOF. Returns the exit code.
function M.start()
  local ipk = require "ipk"
  local sched = require "ipk.sched"
  local env = setmetatable({ ipk = ipk }, { __index = _G })
  local read = line_reader()
  io.stdout:write("ipk ", ipk.version(), " - Lua REPL with ipk loaded (:help, Ctrl-D to quit)\n")
  while true do
    local line = read("ipk> ")
    if not line then break end
    if line == ":help" then
      io.stdout:write("Type Lua; `=expr` or a bare expression prints its value.\n",
        "ipk.store(), ipk.dataset, ipk.registry.list(), ipk.cid.parse(s), ipk.unixfs.add(path, {...})\n")
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
