--- ipk.registry.semver: semantic versions (semver.org 2.0.0): parsing and
-- precedence. Pure functions.
local type, tonumber, ipairs = type, tonumber, ipairs

local M = {}

--- Parse a semver string "MAJOR.MINOR.PATCH[-pre][+build]".
-- @return {major, minor, patch, pre} or nil, msg
function M.semver(v)
  if type(v) ~= "string" then return nil, "version must be a string", "EINVAL" end
  local a, b, c, rest = v:match("^(%d+)%.(%d+)%.(%d+)(.*)$")
  if not a or (rest ~= "" and not rest:match("^[-+][0-9A-Za-z.+-]+$")) then
    return nil, "version '" .. v .. "' is not semver (MAJOR.MINOR.PATCH)", "EINVAL"
  end
  -- semver.org section 2: no leading zeros ("01.0.0" would sort as 1.0.0)
  for _, part in ipairs { a, b, c } do
    if #part > 1 and part:sub(1, 1) == "0" then
      return nil, "version '" .. v .. "' is not semver (numbers must not have leading zeros)", "EINVAL"
    end
  end
  return { major = tonumber(a), minor = tonumber(b), patch = tonumber(c), pre = rest:match("^%-([^+]*)") }
end

-- semver.org section 11: numbers numerically, a pre-release sorts before
-- its release, identifiers compared one by one (numeric < alphanumeric).
local function cmp_pre(a, b)
  if a == b then return 0 end
  if not a then return 1 end
  if not b then return -1 end
  local ia, ib = {}, {}
  for x in a:gmatch("[^.]+") do ia[#ia + 1] = x end
  for x in b:gmatch("[^.]+") do ib[#ib + 1] = x end
  for i = 1, math.max(#ia, #ib) do
    local x, y = ia[i], ib[i]
    if not x then return -1 end
    if not y then return 1 end
    local nx, ny = x:match("^%d+$") and tonumber(x), y:match("^%d+$") and tonumber(y)
    if nx and ny then
      if nx ~= ny then return nx < ny and -1 or 1 end
    elseif nx then return -1
    elseif ny then return 1
    elseif x ~= y then return x < y and -1 or 1 end
  end
  return 0
end

--- Compare two semver strings: -1, 0, 1 (nil, msg when one is not semver).
function M.compare(a, b)
  local x, err = M.semver(a)
  if not x then return nil, err, "EINVAL" end
  local y; y, err = M.semver(b)
  if not y then return nil, err, "EINVAL" end
  for _, k in ipairs { "major", "minor", "patch" } do
    if x[k] ~= y[k] then return x[k] < y[k] and -1 or 1 end
  end
  return cmp_pre(x.pre, y.pre)
end

return M
