-- The FFI declarations in bindings/lua/ipk/cdef/*.lua restate the public C
-- headers by hand (LuaJIT's ffi.cdef takes no preprocessor input). This spec
-- keeps the two from drifting: every ipk_* function and every typedef'd
-- struct declared for Lua must match its header, after comments, macros and
-- white space are normalized. (A struct that drifts is memory corruption,
-- not an error: ipk_unixfs_opts_t once gained a field in C only.)
local u = support

local function strip(s)
  s = s:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " "):gsub("\n#[^\n]*", "\n")
  return s
end

local function norm(s)
  s = s:gsub("%s+", " "):gsub(" ?([%(%)%*,;{}%[%]]) ?", "%1")
  s = s:gsub("^ ", ""):gsub(" $", "")
  return s
end

-- name -> normalized declaration, for functions and typedef'd structs.
local function decls(text)
  local out = {}
  text = strip(text)
  for body, name in text:gmatch("typedef%s+struct%s*[%w_]*%s*(%b{})%s*([%w_]+)%s*;") do
    out[name] = norm(body)
  end
  local flat = text:gsub("typedef%s+struct%s*[%w_]*%s*%b{}%s*[%w_]+%s*;", ";")
  for stmt in flat:gmatch("[^;{}]+") do
    local name = stmt:match("(ipk_[%w_]+)%s*%b()%s*$")
    if name and not stmt:match("typedef") then out[name] = norm(stmt) end
  end
  return out
end

-- Files in dir whose names match pattern, sorted.
local function ls(dir, pattern)
  local out = {}
  local p = io.popen("ls " .. u.q(dir))
  for f in p:lines() do if f:match(pattern) then out[#out + 1] = dir .. "/" .. f end end
  p:close()
  table.sort(out)
  return out
end

describe("FFI declarations", function()
  it("match the public headers", function()
    local headers, texts, defines = {}, {}, {}
    -- the core's public headers and the host's (bindings/host: functions
    -- of the ipkrun executable, declared in cdef/host.lua)
    local p = io.popen("ls " .. u.q(u.root .. "/core/include/ipk") .. "/*.h " .. u.q(u.root .. "/bindings/host") .. "/*.h")
    for f in p:lines() do
      local t = u.read(f)
      texts[#texts + 1] = t
      -- integer constants (array sizes), which the cdefs spell as numbers
      for name, val in t:gmatch("\n#define%s+([%w_]+)%s+(%d+)%s*\n") do defines[name] = val end
    end
    p:close()
    for _, t in ipairs(texts) do
      t = t:gsub("%[([%w_]+)%]", function(n) return "[" .. (defines[n] or n) .. "]" end)
      for k, v in pairs(decls(t)) do headers[k] = v end
    end
    local checked, mismatched = 0, {}
    p = io.popen("ls " .. u.q(u.root .. "/bindings/lua/ipk/cdef") .. "/*.lua")
    for f in p:lines() do
      local text = dofile(f)
      for k, v in pairs(decls(text)) do
        if headers[k] then
          checked = checked + 1
          if headers[k] ~= v then
            mismatched[#mismatched + 1] = ("%s (%s)\n  header: %s\n  cdef:   %s"):format(k, f:match("[^/]+$"), headers[k], v)
          end
        end
      end
    end
    p:close()
    assert.is_true(checked > 100, "only " .. checked .. " declarations compared")
    assert.equal("", table.concat(mismatched, "\n"))
  end)

  it("restate the headers' integer constants with their values", function()
    -- Constants a cdef spells in an enum (IPK_FS_FOLLOW = 1) must equal the
    -- header's #define, so Lua never hard-codes a number C may change.
    local defs = {}
    for _, f in ipairs(ls(u.root .. "/core/include/ipk", "%.h$")) do
      local text = u.read(f):gsub("/%*.-%*/", " "):gsub("//[^\n]*", " ")
      for name, val in (text .. "\n"):gmatch("#define%s+(IPK_[%w_]+)%s+(%-?%d+)%s*\n") do defs[name] = val end
    end
    local checked, bad = 0, {}
    for _, f in ipairs(ls(u.root .. "/bindings/lua/ipk/cdef", "%.lua$")) do
      for body in strip(dofile(f)):gmatch("enum%s*(%b{})") do
        for name, val in body:gmatch("(IPK_[%w_]+)%s*=%s*(%-?%d+)") do
          checked = checked + 1
          if defs[name] ~= val then
            bad[#bad + 1] = ("%s (%s): cdef %s, header %s"):format(name, f:match("[^/]+$"), val, tostring(defs[name]))
          end
        end
      end
    end
    assert.is_true(checked >= 8, "only " .. checked .. " constants compared")
    assert.equal("", table.concat(bad, "\n"))
  end)
end)
