--- ipk.run.record: step output records and run records, DAG-JSON blocks in
-- the backend (runtime.backend(): the embedded store, or a node through the
-- tiered cache), ARCHITECTURE.md section 7, and the links inside them.
local runtime = require "ipk.runtime"
local dagjson = require "ipk.dagjson"

local M = {}

--- Read a DAG-JSON record block. @return value or nil, msg
function M.read_record(cid)
  local bytes, err, name = runtime.backend():get(cid)
  if not bytes then return nil, err, name end
  return dagjson.decode(bytes)
end

--- Store a value as a DAG-JSON block.
-- @return its CID, or nil, msg, name (a value DAG-JSON cannot hold, such as
--   a NaN loss: "dagjson: cannot encode nan ... at $.out.loss", EINVAL)
local function put_record(v)
  local cid, bytes, name = dagjson.cid(v)
  if not cid then return nil, bytes, name end
  local ok, err, ename = runtime.backend():put(cid, bytes)
  if not ok then return nil, err, ename end
  return cid
end
M.put_record = put_record

-- Every link inside a record value (the artifacts it points to).
local function links(v, out)
  out = out or {}
  local l = dagjson.is_link(v)
  if l then out[#out + 1] = l
  elseif type(v) == "table" then for _, x in pairs(v) do links(x, out) end end
  return out
end
M.links = links

return M
