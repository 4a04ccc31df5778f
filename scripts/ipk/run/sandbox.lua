--- ipk.run.sandbox: loads recipe files and user scripts (strategies) in a
-- sandbox: the pure standard library, `require` of ipk modules (read-only
-- views) and a restricted ffi; no io, os (except time), load*, debug or
-- package. Errors: nil, msg (file:line of the recipe).
local ffi = require "ffi"
local recipe = require "ipk.run.recipe"
local ipk = require "ipk"
local sched = require "ipk.sched"

local M = {}


-- FFI for numeric buffers only (custom strategies): numeric scalar and
-- array types, bounds-checked copy/fill; no ffi.C, cdef, cast, load, and no
-- pointer or struct types (a union with a pointer member would let a recipe
-- write to any address). Note: cdata indexing itself is not bounds-checked
-- by LuaJIT, so the sandbox stops I/O and C calls, not a numeric
-- out-of-range index in user code from crashing the process.
local NUMERIC = { int8_t = true, uint8_t = true, int16_t = true, uint16_t = true, int32_t = true,
  uint32_t = true, int64_t = true, uint64_t = true, float = true, double = true, bool = true,
  char = true, int = true }
local function numeric_ct(ct)
  if type(ct) ~= "string" then return false end
  local base = ct:match("^%s*([%w_]+)%s*%[%s*[%?%d]*%s*%]%s*$") or ct:match("^%s*([%w_]+)%s*$")
  return base ~= nil and NUMERIC[base] == true
end

local function safe_ffi()
  local t = {}
  for _, k in ipairs { "sizeof", "alignof", "istype", "string", "abi", "os", "arch" } do t[k] = ffi[k] end
  t.new = function(ct, ...)
    if not numeric_ct(ct) then error("ffi.new: only numeric scalar and array types in a recipe, not '" .. tostring(ct) .. "'", 2) end
    return ffi.new(ct, ...)
  end
  t.typeof = function(ct)
    if not numeric_ct(ct) then error("ffi.typeof: only numeric types in a recipe", 2) end
    return ffi.typeof(ct)
  end
  local function room(x)
    local ok, n = pcall(ffi.sizeof, x)
    return ok and n or nil
  end
  t.copy = function(dst, src, n)
    local cap = room(dst)
    local have = type(src) == "string" and #src or room(src)
    n = n or (type(src) == "string" and #src + 1)
    if not (cap and have and type(n) == "number" and n >= 0 and n <= cap and n <= have) then
      error("ffi.copy: size out of bounds", 2)
    end
    return ffi.copy(dst, src, n)
  end
  t.fill = function(dst, n, c)
    local cap = room(dst)
    if not (cap and type(n) == "number" and n >= 0 and n <= cap) then error("ffi.fill: size out of bounds", 2) end
    return ffi.fill(dst, n, c)
  end
  return setmetatable(t, { __index = function(_, k)
    error("ffi." .. tostring(k) .. " is not available in a recipe (file and network access only through ipk)", 2)
  end, __newindex = function() error("ffi is read-only in a recipe", 2) end, __metatable = false })
end

-- ipk modules a recipe may not reach: they hold the raw FFI binding, the
-- process state, or the command line.
local HIDDEN = { core = true, runtime = true, cli = true, repl = true, store_mod = true,
  cdef = true, cmd = true, lineedit = true, sig = true }
-- Modules a recipe may not `require` either: raw file-system calls (fs:
-- rm -rf of any path), the host's memory cap, signals and preemption
-- deadline (a recipe could lift its own limits), processes, scratch
-- directories, and the store module (open any IPK_HOME). Files reach a
-- recipe through ipk.dataset/ipk.registry, the store through ipk.store().
local NOT_REQUIRED = { fs = true, host = true, proc = true, staging = true, store = true }

-- A read-only view of a module table: recipes cannot replace ipk's
-- functions (which would change what later steps, or the host, do), and
-- fields holding the FFI binding are hidden.
local proxies = setmetatable({}, { __mode = "k" })
local function readonly(mod, name)
  if type(mod) ~= "table" then return mod end
  if proxies[mod] then return proxies[mod] end
  local p = setmetatable({}, {
    __index = function(_, k)
      if k == "ffi" or k == "lib" or (name == "ipk" and HIDDEN[k]) then
        error((name or "module") .. "." .. tostring(k) .. " is not available in a recipe", 2)
      end
      local v = mod[k]
      if name == "ipk" and type(v) == "table" and k ~= "param" then return readonly(v, "ipk." .. k) end
      return v
    end,
    __newindex = function(_, k)
      error((name or "module") .. " is read-only in a recipe (assignment to '" .. tostring(k) .. "')", 2)
    end,
    __call = function(_, ...) return mod(...) end,
    __metatable = false,
  })
  proxies[mod] = p
  return p
end

-- No rawset/rawget (they bypass the global-write guard) and no raw access
-- to metatables (the sandbox wraps getmetatable/setmetatable below).
local SAFE_GLOBALS = { "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select", "tonumber",
  "tostring", "type", "unpack", "rawequal", "_VERSION" }
local SAFE_LIBS = { "string", "table", "math", "bit" }

--- A fresh sandbox environment for recipe code: the pure standard library,
-- `require` of ipk modules (and a restricted ffi), print to stderr; no io,
-- os (except time/clock/date), load*, debug or package; global writes raise.
function M.sandbox(name)
  local g = {}
  for _, k in ipairs(SAFE_GLOBALS) do g[k] = _G[k] end
  for _, k in ipairs(SAFE_LIBS) do
    local src, copy = _G[k], {}
    for kk, vv in pairs(src) do copy[kk] = vv end
    g[k] = copy
  end
  -- A cancellation (timeout, Ctrl-C: "cancelled: ...") or the memory cap
  -- ("not enough memory") stops the step: recipe code cannot catch it.
  local function rethrow(ok, ...)
    if not ok then
      local e = ...
      local t = sched.current()
      if (t and t.cancel) or e == "not enough memory" then error(e, 0) end
    end
    return ok, ...
  end
  g.pcall = function(f, ...) return rethrow(pcall(f, ...)) end
  g.xpcall = function(f, h, ...) return rethrow(xpcall(f, h, ...)) end
  g.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
  g.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    io.stderr:write(table.concat(parts, "\t"), "\n")
  end
  local ffi_proxy
  -- Metatables: strings' shared metatable and protected tables are not
  -- reachable; user tables work as usual.
  g.getmetatable = function(v)
    if type(v) ~= "table" then return nil end
    return getmetatable(v)
  end
  g.setmetatable = function(t, mt)
    if type(t) ~= "table" then error("setmetatable: table expected", 2) end
    return setmetatable(t, mt)
  end
  g.require = function(mod)
    if mod == "ipk" then return readonly(ipk, "ipk") end
    local sub = type(mod) == "string" and mod:match("^ipk%.([%w_]+)$")
    -- `require "ipk.run"` is the engine (hidden); the `ipk.run` field of the
    -- facade is the task runner, which a recipe may call.
    if sub and not HIDDEN[sub] and not NOT_REQUIRED[sub] and sub ~= "run" then return readonly(require(mod), mod) end
    if mod == "ffi" then ffi_proxy = ffi_proxy or safe_ffi(); return ffi_proxy end
    error("require '" .. tostring(mod) .. "' is not allowed in a recipe (only ipk modules and ffi)", 2)
  end
  g._G = g
  return setmetatable(g, {
    -- the poll called by instrumented code (M.instrument) is served by
    -- __index, not a key of g: an assignment `__ipk_poll = os.time` then
    -- raises like any global write instead of switching preemption off
    __index = { __ipk_poll = sched.poll },
    __newindex = function(_, k)
      error((name or "recipe") .. ": assignment to global '" .. tostring(k)
        .. "' (recipes are sandboxed: use local)", 2)
    end,
    __metatable = false,
  })
end

--- Load Lua source in the sandbox and run it; returns what the chunk returns.
-- @return value or nil, msg
-- Recipe code is instrumented before it is compiled so that a step's
-- timeout and Ctrl-C stop it even when it never yields and its loop is a
-- compiled trace (where LuaJIT runs no hook): POLL is inserted after every
-- `do` (loop bodies) and `repeat`, before every `goto`, and at every
-- function entry, on the same line (error lines do not move). Strings and
-- comments are skipped; the text is otherwise unchanged. The poll is a
-- C call reading the host flag while nothing is asked (ipk.sched.poll).
local POLL = " __ipk_poll();"

--- Instrumented copy of Lua source text (see above), or nil, "line N: msg",
-- "EINVAL" when the source uses the reserved name __ipk_poll.
function M.instrument(src)
  local out, n, i, from = {}, #src, 1, 1
  local in_params = false   -- after `function`: the next `)` ends the parameters
  local function emit(upto, text)
    out[#out + 1] = src:sub(from, upto)
    out[#out + 1] = text
    from = upto + 1
  end
  while i <= n do
    local c = src:byte(i)
    if c == 45 and src:byte(i + 1) == 45 then                 -- comment
      local lvl = src:match("^%[(=*)%[", i + 2)
      local e
      if lvl then e = select(2, src:find("]" .. lvl .. "]", i + 2, true))
      else e = src:find("\n", i + 2, true) end
      i = (e or n) + 1
    elseif c == 91 and src:find("^%[=*%[", i) then            -- long string
      local lvl = src:match("^%[(=*)%[", i)
      i = (select(2, src:find("]" .. lvl .. "]", i + 2, true)) or n) + 1
    elseif c == 34 or c == 39 then                            -- quoted string
      local j = i + 1
      while j <= n do
        local d = src:byte(j)
        if d == 92 then j = j + 2
        elseif d == c or d == 10 then break
        else j = j + 1 end
      end
      i = j + 1
    elseif (c >= 65 and c <= 90) or (c >= 97 and c <= 122) or c == 95 then
      local s, e = src:find("^[%w_]+", i)
      local w = src:sub(s, e)
      -- a local of that name would shadow the poll (no timeout, no Ctrl-C)
      if w == "__ipk_poll" then return nil, "line " .. select(2, src:sub(1, s):gsub("\n", "")) + 1
        .. ": the name __ipk_poll is reserved (ipk's preemption poll)", "EINVAL" end
      if w == "do" or w == "repeat" then emit(e, POLL)
      elseif w == "goto" then emit(s - 1, POLL .. " ")
      elseif w == "function" then in_params = true end
      i = e + 1
    elseif c >= 48 and c <= 57 then                           -- number
      i = select(2, src:find("^[%w_%.]+", i)) + 1
    elseif c == 41 and in_params then                         -- `)` of parameters
      in_params = false
      emit(i, POLL)
      i = i + 1
    else
      i = i + 1
    end
  end
  out[#out + 1] = src:sub(from)
  return table.concat(out)
end

function M.load_sandboxed(bytes, chunkname)
  local code, ierr = M.instrument(bytes)
  if not code then return nil, chunkname .. ":" .. ierr:gsub("^line ", ""), "EINVAL" end
  local chunk, err = loadstring(code, "@" .. chunkname)
  if not chunk then return nil, err, "EFORMAT" end
  setfenv(chunk, M.sandbox(chunkname))
  local ok, r = pcall(chunk)
  if not ok then return nil, tostring(r), "EINVAL" end
  return r
end

--- Load a Lua script file in the sandbox (e.g. a user strategy).
-- @return value, bytes or nil, msg
function M.load_script(path)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, path .. ": " .. (oerr or "cannot open"):gsub("^[^:]*: ", ""), "ENOENT" end
  local bytes, rerr = f:read("*a")
  f:close()
  -- a directory opens, then reads as nil ("Is a directory")
  if not bytes then return nil, path .. ": " .. tostring(rerr), "EINVAL" end
  local v, err, name = M.load_sandboxed(bytes, path)
  if v == nil then return nil, err, name end
  return v, bytes
end

--- Load a recipe from its bytes (chunkname: its path, for file:line errors).
function M.load_bytes(bytes, path)
  local r, err, name = M.load_sandboxed(bytes, path)
  if r == nil then return nil, err, name end
  if not recipe.is_recipe(r) then return nil, path .. ": does not return ipk.recipe { ... }", "EINVAL" end
  return r, bytes
end

--- Load a recipe file without running it.
-- @return recipe, bytes or nil, msg
function M.load(path)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, path .. ": " .. (oerr or "cannot open"):gsub("^[^:]*: ", ""), "ENOENT" end
  local bytes, rerr = f:read("*a")
  f:close()
  -- a directory opens, then reads as nil ("Is a directory")
  if not bytes then return nil, path .. ": " .. tostring(rerr), "EINVAL" end
  return M.load_bytes(bytes, path)
end

return M
