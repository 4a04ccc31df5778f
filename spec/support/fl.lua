-- Spec helpers for fixtures/fl: the fixture's number encoding and its
-- tensor sets ({name: {dtype, shape, values}}), shared by the fl specs.
local T = require "ipk.fl.tensors"

local M = {}

--- A fixture number: "nan", "inf", "-inf" and "-0.0" are strings there.
function M.num(v)
  if v == "nan" then return 0 / 0 elseif v == "inf" then return math.huge
  elseif v == "-inf" then return -math.huge elseif v == "-0.0" then return -0.0 end
  return v
end

--- An ipk.fl.tensors set from the fixture's tensors, in `order` (model order).
function M.set(order, tensors)
  local s = T.new()
  for _, name in ipairs(order) do
    local t = tensors[name]
    local vals = {}
    for i, v in ipairs(t.values) do vals[i] = M.num(v) end
    s:add(assert(T.from_f64(name, t.dtype, t.shape, vals)))
  end
  return s
end

return M
