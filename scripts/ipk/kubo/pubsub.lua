--- ipk.kubo.pubsub: publish/subscribe on the node (topics multibase-
-- encoded, as Kubo 0.11+ wants). Methods of the ipk.kubo client.
local http = require "ipk.http"
local json = require "ipk.json"
local cid = require "ipk.cid"
local rpc = require "ipk.kubo.rpc"

local type, ipairs, error, setmetatable = type, ipairs, error, setmetatable

local M = {}

--- Client methods (ipk.kubo puts them on the client).
local Client = {}
M.methods = Client

--- Topic string -> the multibase (u + base64url) form Kubo expects.
function M.topic(t) return (cid.multibase.encode("u", t)) end

local function unbase(s)
  if type(s) ~= "string" or s == "" then return s end
  local d = cid.multibase.decode(s)
  return d or s
end

--- Publish data on topic.
function Client:pubsub_pub(topic, data)
  if type(topic) ~= "string" or type(data) ~= "string" then error("pubsub_pub: topic and data strings expected", 2) end
  local res, msg, name = self:call("pubsub/pub", { { "arg", M.topic(topic) } },
    { body = { data }, multipart = { field = "file", filename = "data" } })
  if not res then return nil, msg, name end
  return true
end

local Sub = {}
Sub.__index = Sub

--- Subscribe to topic; returns a subscription whose :next() yields until
-- a message arrives: {from=peer id, data=bytes, seqno=bytes, topics={...}}.
-- @return sub | nil, msg, name
function Client:pubsub_sub(topic)
  local st, msg, name = http.open {
    method = "POST", url = http.url(self.base .. "pubsub/sub", { { "arg", M.topic(topic) } }),
    headers = rpc.headers(self), idle_timeout = 0,
  }
  if not st then return nil, msg, name end
  return setmetatable({ st = st, topic = topic }, Sub)
end

--- Next message, or nil, msg, name when the stream ends or fails.
function Sub:next()
  while true do
    local line, msg, name = self.st:line()
    if not line then
      if self.st.status and self.st.status ~= 200 then
        return rpc.rpc_error("pubsub/sub", { status = self.st.status, body = "" })
      end
      return nil, msg or "kubo: pubsub/sub: the subscription ended", name or "EEOF"
    end
    if self.st.status and self.st.status ~= 200 then
      return rpc.rpc_error("pubsub/sub", { status = self.st.status, body = line })
    end
    local m = json.decode(line)
    if type(m) == "table" and m.data ~= nil then
      local topics, ids = {}, m.topicIDs or m.topics or {}
      if type(ids) ~= "table" then
        return nil, "kubo: pubsub/sub: message topicIDs is not a list: " .. line:sub(1, 120), "EFORMAT"
      end
      for _, t in ipairs(ids) do topics[#topics + 1] = unbase(t) end
      return { from = m.from, data = unbase(m.data), seqno = unbase(m.seqno), topics = topics }
    end
    -- js-ipfs opens the stream with "{}"; Kubo sends nothing until a message.
  end
end

--- Stop the subscription.
function Sub:cancel()
  if self.st then self.st:cancel(); self.st:close(); self.st = nil end
end

--- Topics this node subscribes to (decoded).
function Client:pubsub_ls()
  local res, msg, name = self:json("pubsub/ls", nil, rpc.IDEM)
  if not res then return nil, msg, name end
  local strings, smsg, sname = rpc.field("pubsub/ls", res, "Strings", "table", {})
  if not strings then return nil, smsg, sname end
  local out = {}
  for _, t in ipairs(strings) do out[#out + 1] = unbase(t) end
  return out
end

--- Peers we share topic with (all topics when nil).
function Client:pubsub_peers(topic)
  local res, msg, name = self:json("pubsub/peers", topic and { { "arg", M.topic(topic) } } or nil, rpc.IDEM)
  if not res then return nil, msg, name end
  return rpc.field("pubsub/peers", res, "Strings", "table", {})
end

return M
