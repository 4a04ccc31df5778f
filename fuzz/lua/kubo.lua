-- fuzz/lua/kubo.lua: invariants of the Kubo RPC client (ipk.kubo) against
-- a server that answers with the fuzz input (fuzz/fuzz_kubo.c). Every call
-- returns its documented value or nil, msg, name (msg a non-empty string,
-- name an error name) and never raises; no call hangs (libFuzzer's -timeout
-- catches that). A block the client hands out matches its CID.
local sched = require "ipk.sched"
local http = require "ipk.http"
local kubo = require "ipk.kubo"
local cid = require "ipk.cid"
local fs = require "ipk.fs"

-- Retries with backoff sleep through 502/503/504: policy, not parsing.
local request = http.request
http.request = function(o)
  o.retries = 0
  return request(o)
end

local url = "http://127.0.0.1:" .. assert(os.getenv("IPK_FUZZ_KUBO_PORT"))
local c = kubo.new { url = url, timeout = 5, block_timeout = 2 }
local C0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
local C1 = "bafkreidon73zkcrwdb5iafqtijxildoonbwnpv7dyd6ef3qdgads2jc4su"
local tmp = os.tmpname()
local src = os.tmpname()
do
  local f = assert(io.open(src, "wb"))
  f:write("hello fuzz\n")
  f:close()
end
local fixtures = os.getenv("IPK_FIXTURES") or os.getenv("IPK_FUZZ_ROOT") .. "/../shared/fixtures"
local car_path = fixtures .. "/car/go-car/simple-unixfs.car"

local function show(s)
  s = tostring(s)
  if #s > 200 then s = s:sub(1, 200) .. "..." end
  return (s:gsub("[^\32-\126]", function(ch) return ("\\x%02x"):format(ch:byte()) end))
end

-- name -> function(client) returning the call's results.
local CALLS = {
  id = function() return c:id() end,
  version = function() return c:version() end,
  block_get = function()
    local b, m, n = c:block_get(C1)
    if b ~= nil then
      assert(type(b) == "string", "block_get: not bytes")
      local want = assert(cid.parse(C1))
      assert(cid.of(want.version, want.codec, b) and cid.format(cid.of(1, 0x55, b)) == C1,
        "block_get handed out bytes that do not match the CID")
    end
    return b, m, n
  end,
  block_stat = function() return c:block_stat(C0) end,
  block_put = function() return c:block_put("hello") end,
  pin_add = function() return c:pin_add(C0) end,
  pin_rm = function() return c:pin_rm(C0) end,
  pin_ls = function() return c:pin_ls() end,
  cat = function()
    local parts = {}
    return c:cat(C0, { write = function(s) parts[#parts + 1] = s end })
  end,
  cat_fd = function()
    local fd = assert(fs.create(tmp))
    local r, m, n = c:cat(C0, { fd = fd })
    fs.close(fd)
    return r, m, n
  end,
  dag_export = function()
    os.remove(tmp)
    return c:dag_export(C0, tmp)
  end,
  add = function() return c:add(src) end,
  dag_import = function()
    if not io.open(car_path, "rb") then return nil, "no fixture CAR at " .. car_path, "ENOENT" end
    return c:dag_import(car_path)
  end,
  pubsub_pub = function() return c:pubsub_pub("t", "data") end,
  pubsub_sub = function()
    local s, m, n = c:pubsub_sub("t")
    if not s then return s, m, n end
    local out = {}
    for i = 1, 4 do
      local msg, em, en = s:next()
      if not msg then
        s:cancel()
        return nil, em, en
      end
      out[i] = msg
    end
    s:cancel()
    return out
  end,
  pubsub_ls = function() return c:pubsub_ls() end,
  pubsub_peers = function() return c:pubsub_peers("t") end,
  name_publish = function() return c:name_publish(C0) end,
  name_resolve = function() return c:name_resolve("k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8") end,
  swarm_connect = function() return c:swarm_connect("/ip4/127.0.0.1/tcp/4001/p2p/" .. C0) end,
  swarm_peers = function() return c:swarm_peers() end,
}
local NAMES = {}
for k in pairs(CALLS) do NAMES[#NAMES + 1] = k end
table.sort(NAMES)

return function(input)
  local method = input:match("^M:([%w_]+)\n")
  local fn = method and CALLS[method]
  if not fn then
    method = NAMES[#input % #NAMES + 1]
    fn = CALLS[method]
  end
  local res = { pcall(sched.run_task, fn) }
  if not res[1] then error("kubo " .. method .. " raised: " .. show(res[2]), 0) end
  if res[2] == nil then
    if type(res[3]) ~= "string" or res[3] == "" then
      error("kubo " .. method .. ": nil without a message", 0)
    end
    if type(res[4]) ~= "string" or not res[4]:match("^E[A-Z]+$") then
      error("kubo " .. method .. ": error without a name: " .. show(res[3]) .. " / " .. show(res[4]), 0)
    end
  end
end
