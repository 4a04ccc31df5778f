--- ipk.kubo.name: IPNS names and swarm peers. Methods of the ipk.kubo client.
local rpc = require "ipk.kubo.rpc"

local M = {}

--- Client methods (ipk.kubo puts them on the client).
local Client = {}
M.methods = Client

--- Publish /ipfs/c under the node's key (o.key, default "self").
-- @return {Name=, Value=} | nil, msg, name
function Client:name_publish(c, o)
  o = o or {}
  local cc, s, wname = rpc.want(c)
  if not cc then return nil, s, wname end
  return self:json("name/publish", {
    { "arg", "/ipfs/" .. s }, { "key", o.key or "self" }, { "allow-offline", "true" },
    { "lifetime", o.lifetime }, { "ttl", o.ttl }, { "resolve", "false" },
  }, { timeout = o.timeout or 120 })
end

--- Resolve an IPNS name (peer id, /ipns/…) to its path ("/ipfs/…").
function Client:name_resolve(n, o)
  o = o or {}
  local res, msg, name = self:json("name/resolve", { { "arg", n }, { "nocache", o.nocache and "true" or nil },
    { "recursive", "true" } }, { idempotent = true, timeout = o.timeout or 60 })
  if not res then return nil, msg, name end
  return rpc.field("name/resolve", res, "Path", "string")
end

--- Connect to a peer by multiaddr (/ip4/…/tcp/…/p2p/ID).
function Client:swarm_connect(addr)
  local res, msg, name = self:json("swarm/connect", { { "arg", addr } })
  if not res then return nil, msg, name end
  return rpc.field("swarm/connect", res, "Strings", "table", {})
end

--- Connected peers: list of {Addr=, Peer=}.
function Client:swarm_peers()
  local res, msg, name = self:json("swarm/peers", nil, rpc.IDEM)
  if not res then return nil, msg, name end
  return rpc.field("swarm/peers", res, "Peers", "table", {})
end

return M
