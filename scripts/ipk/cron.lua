--- ipk.cron: cron expressions for recipe schedules (`schedule = "..."`).
-- Five fields "minute hour day-of-month month day-of-week" (Vixie cron), or
-- six with a leading seconds field; each field is *, N, A-B, lists and /step
-- (e.g. "*/15 9-17 * * 1-5"); day-of-week 0 or 7 is Sunday; when both day
-- fields are restricted, either may match (cron's rule). Macros: @yearly,
-- @monthly, @weekly, @daily, @hourly. Times are local time.
local M = {}

local MACROS = { ["@yearly"] = "0 0 1 1 *", ["@annually"] = "0 0 1 1 *", ["@monthly"] = "0 0 1 * *",
  ["@weekly"] = "0 0 * * 0", ["@daily"] = "0 0 * * *", ["@midnight"] = "0 0 * * *", ["@hourly"] = "0 * * * *" }

local FIELDS = { { "second", 0, 59 }, { "minute", 0, 59 }, { "hour", 0, 23 }, { "day of month", 1, 31 },
  { "month", 1, 12 }, { "day of week", 0, 7 } }

local function parse_field(s, f)
  local name, lo, hi = f[1], f[2], f[3]
  local set, any = {}, s == "*" or s:match("^%*/") ~= nil
  for part in s:gmatch("[^,]+") do
    local range, step = part:match("^([^/]+)/(%d+)$")
    if not range then range = part end
    step = tonumber(step) or 1
    if step < 1 then return nil, name .. ": step must be >= 1", "EINVAL" end
    local a, b
    if range == "*" then a, b = lo, hi
    elseif range:match("^%d+$") then a = tonumber(range); b = part:find("/") and hi or a
    else
      local x, y = range:match("^(%d+)%-(%d+)$")
      if not x then return nil, name .. ": bad field '" .. part .. "'", "EINVAL" end
      a, b = tonumber(x), tonumber(y)
    end
    if a < lo or b > hi or a > b then return nil, ("%s: '%s' is outside %d-%d"):format(name, part, lo, hi), "EINVAL" end
    for v = a, b, step do set[v] = true end
  end
  if next(set) == nil then return nil, name .. ": empty field", "EINVAL" end
  return set, nil, any
end

--- Parse an expression. @return spec or nil, msg
function M.parse(expr)
  if type(expr) ~= "string" then return nil, "cron: expression string expected", "EINVAL" end
  local e = MACROS[expr:lower()] or expr
  local parts = {}
  for p in e:gmatch("%S+") do parts[#parts + 1] = p end
  if #parts == 5 then table.insert(parts, 1, "0") end
  if #parts ~= 6 then return nil, "cron: '" .. expr .. "': expected 5 or 6 fields (got " .. #parts .. ")", "EINVAL" end
  local spec = { expr = expr }
  local keys = { "sec", "min", "hour", "dom", "mon", "dow" }
  for i, p in ipairs(parts) do
    local set, err, any = parse_field(p, FIELDS[i])
    if not set then return nil, "cron: '" .. expr .. "': " .. err, "EINVAL" end
    spec[keys[i]] = set
    spec[keys[i] .. "_any"] = any
  end
  if spec.dow[7] then spec.dow[0] = true end
  return spec
end

local function day_ok(spec, t)
  local dom, dow = spec.dom[t.day], spec.dow[t.wday - 1]
  if spec.dom_any and spec.dow_any then return true end
  if spec.dom_any then return dow end
  if spec.dow_any then return dom end
  return dom or dow
end

--- The first time strictly after `after` (seconds since the epoch) that
-- matches spec, or nil when none within 5 years.
function M.next(spec, after)
  local t = os.date("*t", math.floor(after) + 1)
  local limit = after + 5 * 366 * 86400
  while true do
    local ts = os.time(t)
    if ts > limit then return nil end
    t = os.date("*t", ts) -- normalised
    if not spec.mon[t.month] then
      t.month, t.day, t.hour, t.min, t.sec = t.month + 1, 1, 0, 0, 0
    elseif not day_ok(spec, t) then
      t.day, t.hour, t.min, t.sec = t.day + 1, 0, 0, 0
    elseif not spec.hour[t.hour] then
      t.hour, t.min, t.sec = t.hour + 1, 0, 0
    elseif not spec.min[t.min] then
      t.min, t.sec = t.min + 1, 0
    elseif not spec.sec[t.sec] then
      t.sec = t.sec + 1
    else
      return ts
    end
    t.isdst = nil
  end
end

return M
