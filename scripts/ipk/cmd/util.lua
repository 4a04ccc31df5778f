--- ipk.cmd.util: what every ipkrun command shares: flag parsing, the
-- one-line error format, JSON output.
local cidmod = require "ipk.cid"
local json = require "ipk.json"

local M = {}

-- True when the command line has --json: errors then also go to stdout as
-- {"error": msg} so a caller parsing stdout always gets one JSON object.
M.json_mode = false

-- One printable line: control bytes escaped (a CID argument may contain a
-- newline or ESC), long text shortened.
local function one_line(msg)
  msg = tostring(msg):gsub("[%c]", function(c)
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t" end
    return string.format("\\x%02x", c:byte())
  end)
  if #msg > 1000 then msg = msg:sub(1, 1000) .. "..." end
  return msg
end
M.one_line = one_line

-- The message without the command's own prefix: store and core messages
-- begin with what they did ("pin rm CID: not pinned", "gc: cannot walk
-- ..."), which the line already says ("ipkrun: pin rm: ..."); and a prefix
-- repeated by two layers ("x: x: why") is said once.
local function strip_prefix(cmd, msg)
  if cmd then
    if msg:sub(1, #cmd + 2) == cmd .. ": " then msg = msg:sub(#cmd + 3)
    -- "pin rm CID: ..." (a two-word command only: "run 2026...: ..." from
    -- `run` keeps its first word)
    elseif cmd:find(" ", 1, true) and msg:sub(1, #cmd + 1) == cmd .. " " then msg = msg:sub(#cmd + 2) end
  end
  local out = {}
  for seg in (msg .. ": "):gmatch("(.-): ") do
    if not (seg == out[#out] and seg:match("^[%a][%w_. -]*$")) then out[#out + 1] = seg end
  end
  return table.concat(out, ": ")
end

local function report(cmd, msg, code)
  msg = strip_prefix(cmd, one_line(msg))
  io.stderr:write("ipkrun: ", cmd and (cmd .. ": ") or "", msg, "\n")
  if M.json_mode then M.emit_json({ error = msg, command = cmd, exit_code = code }) end
  return code
end

--- Usage error: one line on stderr, exit code 2.
function M.usage_error(cmd, msg)
  return report(cmd, msg, 2)
end

--- A flag's number: nil unless the text is a finite number (tonumber
-- accepts "nan" and "inf", which pass `x < 0` and `x <= 0` checks), and an
-- integer when o.integer.
function M.number(s, o)
  local x = tonumber(s)
  if not x or x ~= x or x == math.huge or x == -math.huge then return nil end
  if o and o.integer and x ~= math.floor(x) then return nil end
  return x
end

--- Failure: one line "ipkrun: CMD: what: why" on stderr, exit code 1.
function M.fail(cmd, msg)
  return report(cmd, msg, 1)
end

--- The JSON text of a command's result. A result that is not JSON (NaN,
-- a function: a bug in the command) raises its message, which main() turns
-- into "ipkrun: CMD: json: ... at $.path" with exit code 1.
function M.to_json(obj)
  local s, msg = json.encode(obj)
  if not s then error(msg, 0) end
  return s
end

--- The result object as one JSON line on stdout.
function M.emit_json(obj)
  io.stdout:write(M.to_json(obj), "\n")
end

-- Store one flag's value; the same rules for --long and -s forms (a
-- repeatable flag collects a list either way). A value flag refuses an
-- empty string unless its spec says `empty = true`: `get -o ''` used to
-- reach the C layer as a NULL path.
local function set_value(opts, s, name, shown, val)
  local key = s.key or name
  if s.kind == "value" and val == "" and not s.empty then
    return nil, "flag " .. shown .. " needs a non-empty value"
  end
  if s.kind == "bool" then val = (val ~= "false") end
  if s.multi then
    opts[key] = opts[key] or {}
    table.insert(opts[key], val)
  else
    opts[key] = val
  end
  return true
end

-- Parse flags for a command. spec: name -> {kind="bool"|"value", short=, aliases}.
-- Accepts --name=value, --name value (value flags), -x; "--" ends flags.
function M.parse(argv, spec)
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
      -- --json is global: every command accepts it (errors then come as JSON too).
      if not s and name == "json" then s = { kind = "bool" } end
      if not s then return nil, "unknown flag '" .. a .. "'" end
      if s.kind == "value" and val == nil then
        i = i + 1
        val = argv[i]
        if val == nil then return nil, "flag --" .. name .. " needs a value" end
      end
      if s.kind == "bool" and val ~= nil and val ~= "true" and val ~= "false" then
        return nil, "flag --" .. name .. " takes true or false, got '" .. val .. "'"
      end
      local ok, err = set_value(opts, s, name, "--" .. name, val)
      if not ok then return nil, err end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      for ch in a:sub(2):gmatch(".") do
        local found
        for name, s in pairs(spec) do
          if s.short == ch then found = name end
        end
        if not found then return nil, "unknown flag '-" .. ch .. "'" end
        local s = spec[found]
        local val
        if s.kind == "value" then
          i = i + 1
          val = argv[i]
          if val == nil then return nil, "flag -" .. ch .. " needs a value" end
        end
        local ok, err = set_value(opts, s, found, "-" .. ch, val)
        if not ok then return nil, err end
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end


--- Parse a CID string; returns the CID or nil, "S: why".
function M.parse_cid(s)
  local c, err = cidmod.parse(s)
  if not c then return nil, s .. ": " .. tostring(err) end
  return c
end

return M
