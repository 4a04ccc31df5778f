-- The Lua layer's layout rules (ARCHITECTURE.md section 2), checked on the
-- source of every module under scripts/ipk and bindings/lua:
--   * no require cycles (the graph of top-level literal requires);
--   * every literal require at the top level of its file, never inside a
--     function (a lazy require hides a dependency and a cycle); the only
--     run-time requires are the listed dynamic ones (a module name built at
--     run time: the lazy `ipk` facade, the recipe sandbox's require, the
--     command table), each with its reason;
--   * no shell-outs (io.popen, os.execute) and no os.remove of a directory
--     (ipk.fs does what the OS must do);
--   * libc declarations (ffi.cdef) only in bindings/lua/ipk/cdef/, and no
--     hard-coded O_* flag numbers (ipk.fs.create opens files for writing).
-- The analyzer is a small Lua lexer (strings, long strings, comments) plus a
-- block stack (function/if/do/while/for/repeat ... end/until).
local ROOTS = { { dir = "scripts", prefix = "" }, { dir = "bindings/lua", prefix = "" } }

-- Dynamic requires allowed, by file: the module name is data.
local DYNAMIC_OK = {
  ["scripts/ipk/init.lua"] = "the lazy facade: `require \"ipk\"` must not load the store or the engine",
  ["scripts/ipk/run/sandbox.lua"] = "a recipe's own require (checked against the hidden list)",
  ["scripts/ipk/repl.lua"] = "the REPL's extra ipk.X names, loaded when typed",
  ["scripts/ipk/cli.lua"] = "one command module per CLI command, loaded when run",
  ["scripts/ipk/cmd/fl.lua"] = "one module per `ipkrun fl SUB` subcommand, loaded when run",
  ["bindings/lua/ipk/core.lua"] = "the cdef parts, by name",
}

---------------------------------------------------------------------------
-- lexer

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat return then
  true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

-- Tokens of Lua source: {t = "name"|"keyword"|"string"|"number"|"op", v =, line =}.
local function lex(src, where)
  local toks, i, line, n = {}, 1, 1, #src
  local function push(t, v) toks[#toks + 1] = { t = t, v = v, line = line } end
  local function count_lines(s) local _, k = s:gsub("\n", "") line = line + k end
  while i <= n do
    local c = src:sub(i, i)
    if c == "\n" then line = line + 1; i = i + 1
    elseif c:match("%s") then i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local eq = src:match("^%[(=*)%[", i + 2)
      if eq then
        local close = "]" .. eq .. "]"
        local e = src:find(close, i, true)
        if not e then error(where .. ":" .. line .. ": unfinished long comment") end
        count_lines(src:sub(i, e))
        i = e + #close
      else
        local e = src:find("\n", i, true) or n + 1
        i = e
      end
    elseif c == "[" and src:match("^%[=*%[", i) then
      local eq = src:match("^%[(=*)%[", i)
      local close = "]" .. eq .. "]"
      local e = src:find(close, i, true)
      if not e then error(where .. ":" .. line .. ": unfinished long string") end
      local body = src:sub(i + #eq + 2, e - 1)
      push("string", (body:gsub("^\n", "")))
      count_lines(src:sub(i, e))
      i = e + #close
    elseif c == '"' or c == "'" then
      local j, buf = i + 1, {}
      while true do
        local d = src:sub(j, j)
        if d == "" or d == "\n" then error(where .. ":" .. line .. ": unfinished string") end
        if d == "\\" then
          local e = src:sub(j + 1, j + 1)
          if e == "\n" then line = line + 1 end
          if e == "z" then
            local k = src:find("%S", j + 2) or n + 1
            count_lines(src:sub(j + 2, k - 1))
            j = k
          else
            buf[#buf + 1] = "\\" .. e
            j = j + 2
          end
        elseif d == c then break
        else buf[#buf + 1] = d; j = j + 1 end
      end
      push("string", table.concat(buf))
      i = j + 1
    elseif c:match("[%a_]") then
      local w = src:match("^[%w_]+", i)
      push(KEYWORDS[w] and "keyword" or "name", w)
      i = i + #w
    elseif c:match("%d") or (c == "." and src:match("^%.%d", i)) then
      local num = src:match("^0[xX][%x%.]+[pP][%+%-]?%d+", i) or src:match("^0[xX][%x%.]+", i)
        or src:match("^%d*%.?%d*[eE][%+%-]?%d+", i) or src:match("^%d*%.?%d*", i)
      local suffix = src:match("^[uUlLiI]+", i + #num) or ""
      push("number", num)
      i = i + #num + #suffix
    else
      local op = src:match("^%.%.%.", i) or src:match("^[=~<>]=", i) or src:match("^%.%.", i)
        or src:match("^::", i) or c
      push("op", op)
      i = i + #op
    end
  end
  return toks
end

---------------------------------------------------------------------------
-- analysis

-- Requires and forbidden calls of one file.
-- @return {requires = {{mod, line, in_function}}, dynamic = {{line, in_function}}, calls = {{name, line, args}}}
local function analyze(src, where)
  local toks = lex(src, where)
  local stack, fdepth, pending_do = {}, 0, 0
  local res = { requires = {}, dynamic = {}, calls = {} }
  for k, tk in ipairs(toks) do
    local v = tk.t == "keyword" and tk.v
    if v == "function" then stack[#stack + 1] = "function"; fdepth = fdepth + 1
    elseif v == "if" or v == "repeat" then stack[#stack + 1] = v
    elseif v == "while" or v == "for" then stack[#stack + 1] = v; pending_do = pending_do + 1
    elseif v == "do" then
      if pending_do > 0 then pending_do = pending_do - 1 else stack[#stack + 1] = "do" end
    elseif v == "end" or v == "until" then
      local top = table.remove(stack)
      if top == nil then error(where .. ":" .. tk.line .. ": unbalanced '" .. v .. "'") end
      if top == "function" then fdepth = fdepth - 1 end
    elseif tk.t == "name" and tk.v == "require" then
      local prev = toks[k - 1]
      local is_field = prev and prev.t == "op" and (prev.v == "." or prev.v == ":")
      local is_def = prev and prev.t == "keyword" and (prev.v == "function" or prev.v == "local")
      local nxt, nxt2 = toks[k + 1], toks[k + 2]
      if not is_field and not is_def and nxt and not (nxt.t == "op" and nxt.v == "=") then
        local mod
        if nxt.t == "string" then mod = nxt.v
        elseif nxt.t == "op" and nxt.v == "(" and nxt2 and nxt2.t == "string"
          and toks[k + 3] and toks[k + 3].t == "op" and toks[k + 3].v == ")" then mod = nxt2.v end
        if mod then
          res.requires[#res.requires + 1] = { mod = mod, line = tk.line, in_function = fdepth > 0 }
        elseif nxt.t == "op" and nxt.v == "(" then
          res.dynamic[#res.dynamic + 1] = { line = tk.line, in_function = fdepth > 0 }
        end
      end
    elseif tk.t == "name" and (tk.v == "io" or tk.v == "os" or tk.v == "ffi") then
      local dot, fn = toks[k + 1], toks[k + 2]
      if dot and dot.t == "op" and dot.v == "." and fn and fn.t == "name" then
        local args = {}
        for j = k + 3, math.min(k + 12, #toks) do args[#args + 1] = toks[j].v end
        res.calls[#res.calls + 1] = { name = tk.v .. "." .. fn.v, line = tk.line, args = table.concat(args, " ") }
      end
    end
  end
  if #stack > 0 then error(where .. ": unclosed '" .. stack[#stack] .. "' block") end
  return res
end

-- Every .lua file under the roots: {path, mod} (mod: the require name).
local function modules()
  local out = {}
  for _, r in ipairs(ROOTS) do
    local p = io.popen("cd " .. r.dir .. " && find . -name '*.lua' | LC_ALL=C sort") -- spec tooling, not product
    for f in p:lines() do
      f = f:gsub("^%./", "")
      local mod = f:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      out[#out + 1] = { path = r.dir .. "/" .. f, mod = mod }
    end
    p:close()
  end
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Cycles in graph {mod = {dep, ...}}: list of "a -> b -> a" strings.
local function cycles(graph)
  local out, state, path = {}, {}, {}
  local function visit(m)
    state[m] = "open"
    path[#path + 1] = m
    for _, d in ipairs(graph[m] or {}) do
      if state[d] == "open" then
        local from
        for i, x in ipairs(path) do if x == d then from = i end end
        local c = {}
        for i = from, #path do c[#c + 1] = path[i] end
        c[#c + 1] = d
        out[#out + 1] = table.concat(c, " -> ")
      elseif not state[d] then visit(d) end
    end
    path[#path] = nil
    state[m] = "done"
  end
  local names = {}
  for m in pairs(graph) do names[#names + 1] = m end
  table.sort(names)
  for _, m in ipairs(names) do if not state[m] then visit(m) end end
  return out
end

---------------------------------------------------------------------------

describe("layout", function()
  describe("the analyzer", function()
    it("tells top-level requires from requires inside functions, in any syntax", function()
      local r = analyze([==[
local a = require "a.b"
local b = require('c')
local s = [[ require "not.code" ]] -- require "comment"
--[[ require "long.comment" ]]
if x then local d = require "top.in.if" end
for i = 1, 2 do local e = require "top.in.for" end
local function f()
  while true do break end
  return require("lazy.one")
end
local t = { g = function() return require "lazy.two" end }
local h = require(name)
]==], "t")
      local got = {}
      for _, q in ipairs(r.requires) do got[#got + 1] = q.mod .. (q.in_function and "!" or "") .. "@" .. q.line end
      assert.same({ "a.b@1", "c@2", "top.in.if@5", "top.in.for@6", "lazy.one!@9", "lazy.two!@11" }, got)
      assert.same({ { line = 12, in_function = false } }, r.dynamic)
    end)

    it("finds cycles and names them", function()
      assert.same({ "a -> b -> c -> a" }, cycles { a = { "b" }, b = { "c" }, c = { "a" }, d = { "a" } })
      assert.same({}, cycles { a = { "b" }, b = {}, c = { "a", "b" } })
    end)

    it("sees shell-outs and cdefs", function()
      local r = analyze('local p = io.popen("ls")\nos.execute("rm -rf x")\nffi.cdef[[int kill(int, int);]]\n', "t")
      local names = {}
      for _, c in ipairs(r.calls) do names[#names + 1] = c.name .. "@" .. c.line end
      assert.same({ "io.popen@1", "os.execute@2", "ffi.cdef@3" }, names)
    end)
  end)

  local mods = modules()
  local known = {}
  for _, m in ipairs(mods) do known[m.mod] = m end
  local info = {}
  for _, m in ipairs(mods) do info[m.mod] = analyze(read(m.path), m.path) end

  it("covers the whole Lua layer", function()
    assert.truthy(known["ipk"] and known["ipk.run"] and known["ipk.run.exec"] and known["ipk.dataset"]
      and known["ipk.registry"] and known["ipk.kubo"] and known["ipk.core"] and known["ipk.sched"])
    assert.truthy(#mods > 60, "found only " .. #mods .. " Lua modules")
  end)

  it("has no require cycles", function()
    local graph = {}
    for _, m in ipairs(mods) do
      local deps = {}
      for _, q in ipairs(info[m.mod].requires) do if known[q.mod] then deps[#deps + 1] = q.mod end end
      graph[m.mod] = deps
    end
    assert.same({}, cycles(graph))
  end)

  it("requires every module at the top of its file", function()
    local bad = {}
    for _, m in ipairs(mods) do
      for _, q in ipairs(info[m.mod].requires) do
        if q.in_function then bad[#bad + 1] = ("%s:%d: require %q inside a function"):format(m.path, q.line, q.mod) end
      end
      if #info[m.mod].dynamic > 0 and not DYNAMIC_OK[m.path] then
        bad[#bad + 1] = ("%s:%d: require of a computed name"):format(m.path, info[m.mod].dynamic[1].line)
      elseif #info[m.mod].dynamic == 0 and DYNAMIC_OK[m.path] then
        bad[#bad + 1] = m.path .. ": listed in DYNAMIC_OK but has no computed require (drop it from the list)"
      end
    end
    assert.same({}, bad)
  end)

  it("does not shell out, remove directories with os.remove, or declare libc outside the cdefs", function()
    local bad = {}
    for _, m in ipairs(mods) do
      local in_cdef = m.path:match("^bindings/lua/ipk/cdef/") or m.path == "bindings/lua/ipk/core.lua"
      for _, c in ipairs(info[m.mod].calls) do
        if c.name == "io.popen" or c.name == "os.execute" then
          bad[#bad + 1] = ("%s:%d: %s (use ipk.fs)"):format(m.path, c.line, c.name)
        elseif c.name == "os.remove" and c.args:match("dir") then
          bad[#bad + 1] = ("%s:%d: os.remove of a directory (use ipk.fs.rm_rf)"):format(m.path, c.line)
        elseif c.name == "ffi.cdef" and not in_cdef then
          bad[#bad + 1] = ("%s:%d: ffi.cdef outside bindings/lua/ipk/cdef"):format(m.path, c.line)
        end
      end
      local src = read(m.path)
      local ln = 0
      for l in (src .. "\n"):gmatch("([^\n]*)\n") do
        ln = ln + 1
        if l:match("O_[A-Z]+[%s,]*=%s*%d") or l:match("O_[A-Z]+,[%w_, ]+=%s*%d")
            or l:match("C%.open%([^,]+,%s*%d") then
          bad[#bad + 1] = ("%s:%d: hard-coded O_* flag numbers (take them from C)"):format(m.path, ln)
        end
      end
    end
    assert.same({}, bad)
  end)

  it("tells step constructors from library calls: constructors only in X/steps.lua, no name shared", function()
    local recipe = require "ipk.run.recipe"
    local bad, seen = {}, 0
    for _, pkg in ipairs { "dataset", "registry", "fl" } do
      local facade, steps = require("ipk." .. pkg), require("ipk." .. pkg .. ".steps")
      local from_steps = {}
      for name, v in pairs(steps) do
        if not recipe.is_constructor(v) then bad[#bad + 1] = ("ipk.%s.steps.%s is not a step constructor"):format(pkg, name) end
        from_steps[v] = name
      end
      for name, v in pairs(facade) do
        if recipe.is_constructor(v) then
          seen = seen + 1
          if from_steps[v] ~= name then
            bad[#bad + 1] = ("ipk.%s.%s is a step constructor not listed in ipk.%s.steps"):format(pkg, name, pkg)
          end
          if known["ipk." .. pkg .. "." .. name] then
            bad[#bad + 1] = ("ipk.%s.%s is both a step constructor and a module"):format(pkg, name)
          end
        elseif type(v) ~= "function" and type(v) ~= "table" and not name:match("^[%u_]+$") then
          -- (UPPER_CASE names are constants: ipk.dataset.RECORD_TYPE)
          bad[#bad + 1] = ("ipk.%s.%s is neither a library call, a constant nor a step constructor"):format(pkg, name)
        end
      end
      for name, v in pairs(steps) do
        if facade[name] ~= v then bad[#bad + 1] = ("ipk.%s.steps.%s is not ipk.%s.%s"):format(pkg, name, pkg, name) end
      end
    end
    assert.is_true(recipe.is_constructor(require("ipk").step))
    assert.is_false(recipe.is_constructor(require("ipk.dataset").add_version))
    assert.equal(4, seen) -- dataset.add, dataset.split, registry.add, fl.train
    assert.same({}, bad)
  end)
end)
