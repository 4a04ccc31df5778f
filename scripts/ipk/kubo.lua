--- ipk.kubo: a client of the Kubo RPC API (POST /api/v0/...), on ipk.http.
-- Calls look synchronous inside a task and yield while the request runs.
-- Content is imported locally (ipk's importer, same CIDs as `ipkrun add`
-- offline) and shipped as a CAR through dag/import, so the node's own
-- import defaults never change a CID. Blocks fetched with block/get are
-- verified against their CID before anyone sees them.
--
-- Works with Kubo and with the js-ipfs node the specs run; where js-ipfs
-- differs (shared/ipfs-node/README.md) the requests carry both spellings
-- (format= next to cid-codec= on block/put, a Content-Type on every
-- multipart part), CIDs in replies are parsed and re-formatted canonically
-- (js-ipfs answers base58btc CIDv1, Kubo base32; cid-base=base32 is not
-- sent because js-ipfs rejects it for CIDv0), and a pubsub/sub stream's
-- leading "{}" is skipped.
--
-- Errors: nil, msg, name. An RPC error (HTTP 500 {"Message":…}) gives
-- "kubo: PATH: MESSAGE" with name "EREMOTE"; transport failures keep
-- ipk.http's names (ECONNREFUSED, ETIMEDOUT, ETRUNC…); EVERIFY when the
-- node's bytes do not match the CID; ENOBLOCK when the node cannot find a
-- block in time.
local http = require "ipk.http"
local json = require "ipk.json"
local cid = require "ipk.cid"
local car = require "ipk.car"
local sched = require "ipk.sched"
local core = require "ipk.core"
local lib, ffi = core.lib, core.ffi

local type, tostring, tonumber, ipairs, pairs, error, setmetatable =
  type, tostring, tonumber, ipairs, pairs, error, setmetatable

local M = {}

local Client = {}
Client.__index = Client

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

local function headers(self)
  if self.auth then return { "Authorization: " .. self.auth } end
  return nil
end

-- The RPC error text from a failed response.
local function rpc_error(path, res)
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

local function stream_error(res)
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
    method = "POST", url = http.url(self.base .. path, params), headers = headers(self),
    body = o.body, multipart = o.multipart, sink_fd = o.sink_fd, max_body = o.max_body,
    timeout = o.timeout == nil and self.timeout or o.timeout, idle_timeout = o.idle_timeout,
    idempotent = o.idempotent, retries = o.retries, backoff = o.backoff,
  }
  local res, msg, name = http.request(req)
  if not res then return nil, msg, name end
  if res.status ~= 200 then return rpc_error(path, res) end
  local se = stream_error(res)
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
  return obj
end

-- Newline-delimited JSON objects of a body.
local function ndjson(path, body)
  local out = {}
  for line in body:gmatch("[^\n]+") do
    local obj = json.decode(line)
    if obj == nil then
      return nil, "kubo: " .. path .. ": bad JSON line: " .. line:sub(1, 120), "EFORMAT"
    end
    out[#out + 1] = obj
  end
  return out
end

local IDEM = { idempotent = true }

--- Node identity: {ID=, PublicKey=, Addresses={...}, AgentVersion=, ...}.
function Client:id() return self:json("id", nil, IDEM) end

--- Node version: {Version=, Commit=, Repo=, ...}.
function Client:version() return self:json("version", nil, IDEM) end

local function want(c)
  if type(c) == "string" then
    local p, msg, name = cid.parse(c)
    if not p then return nil, "CID " .. c .. ": " .. tostring(msg), name end
    return p, c
  end
  if cid.is_cid(c) then return c, cid.format(c) end
  error("kubo: CID string or cdata expected", 3)
end

-- CID field of a reply: "Qm…", {"/": "…"} or a multibase string in any base.
local function reply_cid(v)
  if type(v) == "table" then v = v["/"] end
  if type(v) ~= "string" then return nil end
  return cid.parse(v)
end

------------------------------------------------------------------------------
-- add

--- Import path locally (ipk's importer: `ipkrun add`'s CIDs) and ship it as
-- a CAR through dag/import; the node pins the root unless pin=false.
-- @param path file or directory (recursive=true)
-- @param o unixfs options (profile, cid_version, raw_leaves, chunker,
--   max_links, recursive) plus pin (default true), only_hash
-- @return unixfs.add's result table | nil, msg, name
function Client:add(path, o)
  if not sched.in_task() then return sched.run_task(self.add, self, path, o) end
  o = o or {}
  local unixfs = require "ipk.unixfs"
  local uo = {}
  for k, v in pairs(o) do if k ~= "pin" then uo[k] = v end end
  if o.only_hash then return unixfs.add(path, uo) end
  local tmp = os.tmpname()
  local w, werr, wname = car.writer(tmp)
  if not w then os.remove(tmp); return nil, werr, wname end
  uo.blocks = w:blocks()
  local res, msg, name = unixfs.add(path, uo)
  w:close()
  if not res then os.remove(tmp); return nil, msg, name end
  local hdr = car.header({ res.root })
  local up
  up, msg, name = self:call("dag/import", { { "pin-roots", o.pin == false and "false" or "true" } }, {
    body = { hdr, { file = tmp } }, multipart = { field = "file", filename = "ipk-add.car" },
    timeout = 0, idle_timeout = 300,
  })
  os.remove(tmp)
  if not up then return nil, msg, name end
  local lines, lmsg, lname = ndjson("dag/import", up.body)
  if not lines then return nil, lmsg, lname end
  for _, l in ipairs(lines) do
    local r = l.Root
    if r and r.PinErrorMsg and r.PinErrorMsg ~= "" then
      return nil, "kubo: dag/import: pinning " .. res.root .. " failed: " .. r.PinErrorMsg, "EREMOTE"
    end
  end
  if o.pin ~= false then
    local seen = false
    for _, l in ipairs(lines) do
      local c = l.Root and reply_cid(l.Root.Cid)
      if c and cid.equal(c, res.root_cid) then seen = true end
    end
    if not seen then
      return nil, "kubo: dag/import: the node did not report root " .. res.root .. " (got: " .. up.body:sub(1, 200) .. ")", "EREMOTE"
    end
  end
  return res
end

--- The node's own importer: stream path (a file) to /api/v0/add as
-- multipart; the CID is whatever the node computes with these options.
-- @param o {cid_version=, raw_leaves=, chunker=, pin=}
-- @return {Name=, Hash=, Size=} | nil, msg, name
function Client:add_remote(path, o)
  o = o or {}
  local params = { { "cid-base", "base32" }, { "quieter", "true" } }
  if o.cid_version then params[#params + 1] = { "cid-version", o.cid_version } end
  if o.raw_leaves ~= nil then params[#params + 1] = { "raw-leaves", tostring(o.raw_leaves) } end
  if o.chunker then params[#params + 1] = { "chunker", o.chunker } end
  if o.pin == false then params[#params + 1] = { "pin", "false" } end
  local res, msg, name = self:call("add", params, {
    body = { { file = path } }, multipart = { field = "file", filename = path:gsub(".*/", "") },
    timeout = 0, idle_timeout = 300,
  })
  if not res then return nil, msg, name end
  local lines, lmsg, lname = ndjson("add", res.body)
  if not lines then return nil, lmsg, lname end
  return lines[#lines]
end

------------------------------------------------------------------------------
-- cat

local RESUME = { EIO = true, ETRUNC = true, ECONNREFUSED = true, ETIMEDOUT = true }

--- Stream a file's bytes from the node (/api/v0/cat).
-- @param c CID
-- @param o {offset=, length=, fd = int (written as it arrives) | write =
--   function(chunk), retries = n (default 0): after a dropped connection,
--   resume from the byte reached, with backoff}
-- @return bytes written | nil, msg, name
function Client:cat(c, o)
  if not sched.in_task() then return sched.run_task(self.cat, self, c, o) end
  o = o or {}
  local _, s = want(c)
  if not s then return nil, select(2, want(c)) end
  local done, attempt, tries = 0, 0, o.retries or 0
  while true do
    local params = { { "arg", s } }
    local off = (o.offset or 0) + done
    if off > 0 then params[#params + 1] = { "offset", off } end
    if o.length then params[#params + 1] = { "length", o.length - done } end
    local got, msg, name
    if o.fd then
      local res, got_bytes
      res, msg, name, got_bytes = http.request {
        method = "POST", url = http.url(self.base .. "cat", params), headers = headers(self),
        sink_fd = o.fd, timeout = 0, idle_timeout = o.idle_timeout or 60,
      }
      if res then
        got = res.bytes_in
        if res.status ~= 200 then return rpc_error("cat", res) end
        local se = stream_error(res)
        if se then msg, name = "kubo: cat: " .. se, "EREMOTE" end
      else
        got = got_bytes
      end
    else
      local st
      st, msg, name = http.open {
        method = "POST", url = http.url(self.base .. "cat", params), headers = headers(self),
        idle_timeout = o.idle_timeout or 60,
      }
      if st then
        got = 0
        while true do
          local chunk, m, n = st:read()
          if not chunk then msg, name = m, n; break end
          if st.status ~= 200 then
            local body = { chunk }
            while true do local more = st:read(); if not more then break end body[#body + 1] = more end
            st:close()
            return rpc_error("cat", { status = st.status, body = table.concat(body) })
          end
          got = got + #chunk
          o.write(chunk)
        end
        if not msg then
          local se = st:header("x-stream-error")
          if se and se ~= "" then msg, name = "kubo: cat: " .. se, "EREMOTE" end
        end
        st:close()
        if not msg and got == 0 and st.status and st.status ~= 200 then
          return rpc_error("cat", { status = st.status, body = "" })
        end
      end
    end
    if got then done = done + got end
    if not msg then return done end
    if attempt >= tries or not RESUME[name] then
      if done > 0 then msg = msg .. " (after " .. done .. " bytes)" end
      return nil, msg, name
    end
    attempt = attempt + 1
    sched.sleep(math.min(0.2 * 2 ^ (attempt - 1), 5))
  end
end

------------------------------------------------------------------------------
-- blocks

local function verify(c, data)
  local rc = lib.ipk_car_verify(c, data, #data)
  if rc == 1 then return true end
  if rc < 0 then return nil, "block " .. cid.format(c) .. ": unsupported multihash", "EHASH" end
  return nil, "block " .. cid.format(c) .. ": the node's bytes do not match the CID", "EVERIFY"
end
M.verify = verify

--- Store a block on the node; the CID is computed locally and must be the
-- one the node reports.
-- @param data bytes
-- @param o {codec = "raw" (default) | "dag-pb" | "dag-cbor", version = 1 (0 for dag-pb v0)}
-- @return cid string | nil, msg, name
function Client:block_put(data, o)
  o = o or {}
  local codec = o.codec or "raw"
  local code = cid.codec[codec]
  if not code then return nil, "block put: unknown codec '" .. tostring(codec) .. "'", "EINVAL" end
  local version = o.version or 1
  local c, msg, name = cid.of(version, code, data)
  if not c then return nil, msg, name end
  local res
  res, msg, name = self:json("block/put", {
    { "format", version == 0 and "v0" or codec }, { "cid-codec", codec }, { "mhtype", "sha2-256" },
    { "pin", o.pin and "true" or nil },
  }, { body = { data }, multipart = { field = "file", filename = "block" } })
  if not res then return nil, msg, name end
  local got = reply_cid(res.Key)
  if not got or not cid.equal(got, c) then
    return nil, "kubo: block/put: the node stored " .. tostring(res.Key) .. ", expected " .. cid.format(c), "EVERIFY"
  end
  return cid.format(c)
end

local function not_found(path, s, msg, name, timeout)
  if name == "ETIMEDOUT" or (name == "EREMOTE" and (msg:find("deadline", 1, true)
      or msg:find("[Tt]imeout") or msg:find("timed out", 1, true) or msg:find("not found", 1, true) or msg:find("aborted", 1, true))) then
    return nil, "kubo: " .. path .. ": block " .. s .. " not found on the node within " .. timeout .. " s", "ENOBLOCK"
  end
  return nil, msg, name
end

--- Fetch a block and verify it against its CID.
-- @param o {timeout = s to find it (default block_timeout)}
-- @return bytes | nil, msg, name ("ENOBLOCK", "EVERIFY", ...)
function Client:block_get(c, o)
  local cc, s = want(c)
  if not cc then return nil, s end
  local t = (o and o.timeout) or self.block_timeout
  local res, msg, name = self:call("block/get", { { "arg", s }, { "timeout", t .. "s" } },
    { timeout = t + 5, idempotent = true, max_body = 8 * 1048576 })
  if not res then return not_found("block/get", s, msg, name, t) end
  local ok, vmsg, vname = verify(cc, res.body)
  if not ok then return nil, "kubo: " .. vmsg, vname end
  return res.body
end

--- Block size: {Key=cid string, Size=n}.
function Client:block_stat(c, o)
  local cc, s = want(c)
  if not cc then return nil, s end
  local t = (o and o.timeout) or self.block_timeout
  local res, msg, name = self:json("block/stat", { { "arg", s }, { "timeout", t .. "s" } },
    { timeout = t + 5, idempotent = true })
  if not res then return not_found("block/stat", s, msg, name, t) end
  return { Key = s, Size = tonumber(res.Size) }
end

------------------------------------------------------------------------------
-- dag import/export

--- Verify a CAR locally, then import it into the node (pins its roots
-- unless pin_roots=false). A file that does not verify is never sent.
-- @return {roots={...}, blocks=n} | nil, msg, name
function Client:dag_import(path, o)
  o = o or {}
  local info, msg, name = car.import(path, { zero_len_eof = o.zero_len_eof })
  if not info then return nil, msg, name end
  local res
  res, msg, name = self:call("dag/import", { { "pin-roots", o.pin_roots == false and "false" or "true" } }, {
    body = { { file = path } }, multipart = { field = "file", filename = "import.car" },
    timeout = 0, idle_timeout = 300,
  })
  if not res then return nil, msg, name end
  local lines, lmsg, lname = ndjson("dag/import", res.body)
  if not lines then return nil, lmsg, lname end
  local confirmed = 0
  for _, l in ipairs(lines) do
    if type(l) == "table" and type(l.Root) == "table" then confirmed = confirmed + 1 end
    if type(l) == "table" and type(l.Root) == "table" and l.Root.PinErrorMsg and l.Root.PinErrorMsg ~= "" then
      return nil, "kubo: dag/import: pinning " .. tostring(reply_cid(l.Root.Cid) and cid.format(reply_cid(l.Root.Cid)))
        .. " failed: " .. l.Root.PinErrorMsg, "EREMOTE"
    end
  end
  -- A 200 with a body that confirms no root (garbage, an empty stream) is
  -- not a successful import.
  if o.pin_roots ~= false and #info.roots > 0 and confirmed == 0 then
    return nil, "kubo: dag/import: the node's reply confirms no root (" .. #res.body .. " bytes); nothing is known to be imported",
      "EREMOTE"
  end
  return info
end

--- Export the DAG under c as a CAR into path, verified: the stream goes
-- to a temp file, every block is checked (and the root must be the one
-- asked for) before it is renamed into place.
-- @return {roots=, blocks=, bytes=} | nil, msg, name
function Client:dag_export(c, path, o)
  local cc, s = want(c)
  if not cc then return nil, s end
  o = o or {}
  local tmp = path .. ".ipk-part"
  local fd = ffi.C.open(tmp, 1 + 64 + 512 + 524288, 420)
  if fd < 0 then return nil, "dag export: cannot create " .. tmp, "EIO" end
  local t = o.timeout or self.block_timeout
  local res, msg, name = self:call("dag/export", { { "arg", s }, { "timeout", t .. "s" } },
    { sink_fd = fd, timeout = 0, idle_timeout = t + 5 })
  ffi.C.close(fd)
  if not res then os.remove(tmp); return not_found("dag/export", s, msg, name, t) end
  local info
  info, msg, name = car.import(tmp, {})
  if not info then os.remove(tmp); return nil, "kubo: dag/export: " .. msg, name end
  if #info.roots ~= 1 or not cid.equal(cid.parse(info.roots[1]), cc) then
    os.remove(tmp)
    return nil, "kubo: dag/export: the node's CAR has roots " .. table.concat(info.roots, ",") .. ", expected " .. s, "EVERIFY"
  end
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp); return nil, "dag export: " .. tostring(rerr), "EIO" end
  return info
end

------------------------------------------------------------------------------
-- pins

--- Pin c (recursive unless o.recursive == false); the node fetches what it lacks.
-- @return list of pinned CID strings | nil, msg, name
function Client:pin_add(c, o)
  local cc, s = want(c)
  if not cc then return nil, s end
  local res, msg, name = self:json("pin/add", { { "arg", s },
    { "recursive", (o and o.recursive == false) and "false" or "true" } }, { timeout = (o and o.timeout) or 0 })
  if not res then return nil, msg, name end
  local out = {}
  for _, p in ipairs(res.Pins or {}) do local pc = reply_cid(p); out[#out + 1] = pc and cid.format(pc) or p end
  return out
end

--- Unpin c. @return list of unpinned CIDs | nil, msg, name
function Client:pin_rm(c)
  local cc, s = want(c)
  if not cc then return nil, s end
  local res, msg, name = self:json("pin/rm", { { "arg", s } })
  if not res then return nil, msg, name end
  return res.Pins or {}
end

--- Pins: map canonical CID string -> type ("recursive", "direct", "indirect").
-- @param o {type = "all"|"recursive"|"direct"|"indirect", cid = only this one}
function Client:pin_ls(o)
  o = o or {}
  local params = { { "type", o.type or "recursive" } }
  if o.cid then params[#params + 1] = { "arg", o.cid } end
  local res, msg, name = self:call("pin/ls", params, { idempotent = true })
  if not res then return nil, msg, name end
  local out = {}
  -- Kubo answers {"Keys":{cid:{Type}}}; with stream=true one {"Cid","Type"} per line.
  local objs, jmsg, jname = ndjson("pin/ls", res.body)
  if not objs then return nil, jmsg, jname end
  for _, obj in ipairs(objs) do
    if type(obj) ~= "table" then return nil, "kubo: pin/ls: unexpected reply " .. tostring(obj), "EFORMAT" end
    if obj.Keys then
      for k, v in pairs(obj.Keys) do
        local pc = cid.parse(k)
        out[pc and cid.format(pc) or k] = v.Type
      end
    elseif obj.Cid then
      local pc = reply_cid(obj.Cid)
      out[pc and cid.format(pc) or tostring(obj.Cid)] = obj.Type
    end
  end
  return out
end

------------------------------------------------------------------------------
-- pubsub (topics multibase-encoded, as Kubo 0.11+ wants)

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
    headers = headers(self), idle_timeout = 0,
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
        return rpc_error("pubsub/sub", { status = self.st.status, body = "" })
      end
      return nil, msg or "kubo: pubsub/sub: the subscription ended", name or "EEOF"
    end
    if self.st.status and self.st.status ~= 200 then
      return rpc_error("pubsub/sub", { status = self.st.status, body = line })
    end
    local m = json.decode(line)
    if type(m) == "table" and m.data ~= nil then
      local topics = {}
      for _, t in ipairs(m.topicIDs or m.topics or {}) do topics[#topics + 1] = unbase(t) end
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
  local res, msg, name = self:json("pubsub/ls", nil, IDEM)
  if not res then return nil, msg, name end
  local out = {}
  for _, t in ipairs(res.Strings or {}) do out[#out + 1] = unbase(t) end
  return out
end

--- Peers we share topic with (all topics when nil).
function Client:pubsub_peers(topic)
  local res, msg, name = self:json("pubsub/peers", topic and { { "arg", M.topic(topic) } } or nil, IDEM)
  if not res then return nil, msg, name end
  return res.Strings or {}
end

------------------------------------------------------------------------------
-- IPNS, swarm

--- Publish /ipfs/c under the node's key (o.key, default "self").
-- @return {Name=, Value=} | nil, msg, name
function Client:name_publish(c, o)
  o = o or {}
  local cc, s = want(c)
  if not cc then return nil, s end
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
  return res.Path
end

--- Connect to a peer by multiaddr (/ip4/…/tcp/…/p2p/ID).
function Client:swarm_connect(addr)
  local res, msg, name = self:json("swarm/connect", { { "arg", addr } })
  if not res then return nil, msg, name end
  return res.Strings or {}
end

--- Connected peers: list of {Addr=, Peer=}.
function Client:swarm_peers()
  local res, msg, name = self:json("swarm/peers", nil, IDEM)
  if not res then return nil, msg, name end
  return res.Peers or {}
end

return M
