--- ipk.kubo.rpc: the Kubo RPC client's core: the client object, the raw
-- POST /api/v0/PATH call, JSON and NDJSON replies, RPC errors, CID
-- arguments and replies. The other ipk.kubo modules add methods to
-- Client; ipk.kubo gathers them (use `require "ipk.kubo"`).
local http = require "ipk.http"
local json = require "ipk.json"
local cid = require "ipk.cid"

local type, tostring, error, setmetatable = type, tostring, error, setmetatable

local M = {}

--- The client metatable (methods: this module's and the other ipk.kubo modules').
local Client = {}
Client.__index = Client
M.Client = Client

--- A client for the node at url ("http://127.0.0.1:5001"; a trailing
-- /api/v0 is accepted).
-- @param o {url=, auth="Bearer x" | "Basic …" (Authorization header value),
--   timeout=s for plain calls (default 120), block_timeout=s for finding a
--   block (default 30)}
function M.new(o)
  if type(o) == "string" then o = { url = o } end
  if type(o) ~= "table" or type(o.url) ~= "string" then error("kubo.new: {url=} expected", 2) end
  local url = o.url:gsub("/+$", ""):gsub("/api/v0$", "")
  if not url:match("^https?://[^/]+") then
    error("kubo.new: API URL must look like http://HOST:PORT, got '" .. o.url .. "'", 2)
  end
  return setmetatable({
    url = url, base = url .. "/api/v0/", auth = o.auth, timeout = o.timeout or 120,
    block_timeout = o.block_timeout or 30, kind = "kubo",
  }, Client)
end

--- The request headers of a client (its Authorization), or nil.
function M.headers(self)
  if self.auth then return { "Authorization: " .. self.auth } end
  return nil
end

-- The RPC error text from a failed response.
function M.rpc_error(path, res)
  local msg
  local obj = json.decode(res.body or "")
  if type(obj) == "table" and obj.Message then msg = tostring(obj.Message) end
  if not msg then
    msg = (res.body or ""):gsub("%s+$", "")
    if #msg > 200 then msg = msg:sub(1, 200) .. "…" end
    if msg == "" then msg = "no error body" end
  end
  local name = "EREMOTE"
  if res.status == 401 or res.status == 403 then
    name = "EACCES"
    msg = msg .. " (HTTP " .. res.status .. ": check the API authorization)"
  elseif res.status == 404 then
    name = "EUNSUPP"
    msg = msg .. " (HTTP 404: the node does not serve /api/v0/" .. path .. ")"
  else
    msg = msg .. " (HTTP " .. res.status .. ")"
  end
  return nil, "kubo: " .. path .. ": " .. msg, name
end

--- The x-stream-error trailer of a response, or nil.
function M.stream_error(res)
  local e = res.headers and res.headers["x-stream-error"]
  if e and e ~= "" then return e end
  return nil
end

--- Raw call: POST base..path with params (list of {k, v}); returns the
-- ipk.http response for a 200, else nil, msg, name.
-- @param o extra ipk.http options (body, multipart, sink_fd, timeout, idempotent…)
function Client:call(path, params, o)
  o = o or {}
  local req = {
    method = "POST", url = http.url(self.base .. path, params), headers = M.headers(self),
    body = o.body, multipart = o.multipart, sink_fd = o.sink_fd, max_body = o.max_body,
    timeout = o.timeout == nil and self.timeout or o.timeout, idle_timeout = o.idle_timeout,
    idempotent = o.idempotent, retries = o.retries, backoff = o.backoff,
  }
  local res, msg, name = http.request(req)
  if not res then return nil, msg, name end
  if res.status ~= 200 then return M.rpc_error(path, res) end
  local se = M.stream_error(res)
  if se then return nil, "kubo: " .. path .. ": " .. se, "EREMOTE" end
  return res
end

--- call() and decode the JSON body.
function Client:json(path, params, o)
  local res, msg, name = self:call(path, params, o)
  if not res then return nil, msg, name end
  -- ipk.json.decode returns nil, msg on bad input (it never raises)
  local obj = json.decode(res.body)
  if obj == nil then
    return nil, "kubo: " .. path .. ": response is not JSON: " .. res.body:sub(1, 120), "EFORMAT"
  end
  -- Every reply these calls read is an object; a node answering 5, "x" or
  -- null would otherwise make the caller index a non-table (a Lua error).
  if type(obj) ~= "table" or obj == json.null then
    return nil, "kubo: " .. path .. ": reply is not a JSON object: " .. res.body:sub(1, 120), "EFORMAT"
  end
  return obj
end

--- A field of a decoded reply with the Lua type the RPC promises ("table",
-- "string", "number"); an absent field gives default when one is given.
-- Any other shape is nil, msg, "EFORMAT": what a node answers is input,
-- and a surprise in it must never become a Lua error in the caller.
function M.field(path, obj, key, kind, default)
  local v = obj[key]
  if v == json.null then v = nil end   -- "Pins": null is no Pins
  if v == nil and default ~= nil then return default end
  if type(v) ~= kind then
    return nil, ("kubo: %s: reply field %s is %s, expected a %s"):format(path, key,
      v == nil and "missing" or type(v), kind), "EFORMAT"
  end
  return v
end

-- Newline-delimited JSON objects of a body.
function M.ndjson(path, body)
  local out = {}
  for line in body:gmatch("[^\n]+") do
    local obj = json.decode(line)
    if type(obj) ~= "table" or obj == json.null then
      return nil, "kubo: " .. path .. ": bad JSON line (an object expected): " .. line:sub(1, 120), "EFORMAT"
    end
    out[#out + 1] = obj
  end
  return out
end

--- Call options of a read-only request (safe to retry).
M.IDEM = { idempotent = true }
local IDEM = M.IDEM

--- Node identity: {ID=, PublicKey=, Addresses={...}, AgentVersion=, ...}.
function Client:id() return self:json("id", nil, IDEM) end

--- Node version: {Version=, Commit=, Repo=, ...}.
function Client:version() return self:json("version", nil, IDEM) end

--- A CID argument (string or cdata) -> parsed cdata, string; a bad
-- string gives nil, msg, name; anything else raises.
function M.want(c)
  if type(c) == "string" then
    local p, msg, name = cid.parse(c)
    if not p then return nil, "CID " .. c .. ": " .. tostring(msg), name end
    return p, c
  end
  if cid.is_cid(c) then return c, cid.format(c) end
  error("kubo: CID string or cdata expected", 3)
end

-- CID field of a reply: "Qm…", {"/": "…"} or a multibase string in any base.
function M.reply_cid(v)
  if type(v) == "table" then v = v["/"] end
  if type(v) ~= "string" then return nil end
  return cid.parse(v)
end

return M
