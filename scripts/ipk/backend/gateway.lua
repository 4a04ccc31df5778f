--- ipk.backend.gateway: the protocol (ipk.backend) over a trustless HTTP
-- gateway (the ipk.gateway client): read-only. get fetches ?format=raw and
-- export_dag ?format=car, both verified against the CID; every write
-- answers nil, "gateway: WHAT: read-only backend", "EUNSUPP". A gateway has
-- no pins to list. cat/save/blocks need the tiered cache in front
-- (runtime.backend() puts it there).
local backend = require "ipk.backend.util"
local gateway = require "ipk.gateway"

local setmetatable, pcall, tostring = setmetatable, pcall, tostring

local M = {}

local G = {}
G.__index = G

--- A gateway backend. o: {url=, timeout=, client = an ipk.gateway client}.
function M.new(o)
  local client = o.client
  if not client then
    local ok, c = pcall(gateway.new, { url = o.url, timeout = o.timeout })
    if not ok then return nil, tostring(c):gsub("^gateway%.new: ", "gateway: "), "EINVAL" end
    client = c
  end
  return setmetatable({ kind = "gateway", writable = false, client = client, url = client.url }, G)
end

function G:describe() return "trustless gateway " .. self.url end

function G:get(c) return self.client:block_get(c) end

function G:has(c)
  local b, msg, name = self.client:block_get(c)
  if b then return true end
  if name == "ENOBLOCK" then return false end
  return nil, msg, name
end

function G:stat(c)
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  local b, msg, name = self.client:block_get(p)
  if not b then return nil, msg, name end
  return { cid = s, size = #b }
end

function G:export_dag(c, path) return self.client:dag_export(c, path) end

local function ro(what) return function() return backend.read_only("gateway", what) end end
G.put = ro("put")
G.delete = ro("delete")
G.pin_add = ro("pin add")
G.pin_rm = ro("pin rm")
G.import_car = ro("import CAR")
G.add = ro("add")
G.add_bytes = ro("add")
G.gc = ro("gc")

function G.pin_ls() return nil, "gateway: pin ls: a gateway has no pins", "EUNSUPP" end
function G.pin_has() return false end
function G.cat() return nil, "gateway: cat needs a local tier: use the tiered cache in front", "EUNSUPP" end
function G.save() return nil, "gateway: save needs a local tier: use the tiered cache in front", "EUNSUPP" end
function G.blocks() return nil, "gateway: no local block view: use the tiered cache in front", "EUNSUPP" end
function G.close() end

return M
