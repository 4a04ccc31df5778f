--- ipk.kubo.files: files on the node: add (imported locally with ipk's
-- importer and shipped as a CAR, so the node's defaults never change a
-- CID), add_remote (the node's importer) and cat (streamed, resumable).
-- Methods of the ipk.kubo client.
local http = require "ipk.http"
local cid = require "ipk.cid"
local car = require "ipk.car"
local sched = require "ipk.sched"
local unixfs = require "ipk.unixfs"
local rpc = require "ipk.kubo.rpc"

local tostring, ipairs, pairs = tostring, ipairs, pairs

local M = {}

--- Client methods (ipk.kubo puts them on the client).
local Client = {}
M.methods = Client

--- Import path locally (ipk's importer: `ipkrun add`'s CIDs) and ship it as
-- a CAR through dag/import; the node pins the root unless pin=false.
-- @param path file or directory (recursive=true)
-- @param o unixfs options (profile, cid_version, raw_leaves, chunker,
--   max_links, recursive) plus pin (default true), only_hash
-- @return unixfs.add's result table | nil, msg, name
function Client:add(path, o)
  if not sched.in_task() then return sched.run_task(self.add, self, path, o) end
  o = o or {}
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
  local lines, lmsg, lname = rpc.ndjson("dag/import", up.body)
  if not lines then return nil, lmsg, lname end
  for _, l in ipairs(lines) do
    local r = l.Root
    if type(r) == "table" and r.PinErrorMsg and r.PinErrorMsg ~= "" then
      return nil, "kubo: dag/import: pinning " .. res.root .. " failed: " .. tostring(r.PinErrorMsg), "EREMOTE"
    end
  end
  if o.pin ~= false then
    local seen = false
    for _, l in ipairs(lines) do
      local c = type(l.Root) == "table" and rpc.reply_cid(l.Root.Cid)
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
  local lines, lmsg, lname = rpc.ndjson("add", res.body)
  if not lines then return nil, lmsg, lname end
  return lines[#lines]
end

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
  local cc, s, wname = rpc.want(c)
  if not cc then return nil, s, wname end
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
        method = "POST", url = http.url(self.base .. "cat", params), headers = rpc.headers(self),
        sink_fd = o.fd, timeout = 0, idle_timeout = o.idle_timeout or 60,
      }
      if res then
        got = res.bytes_in
        if res.status ~= 200 then return rpc.rpc_error("cat", res) end
        local se = rpc.stream_error(res)
        if se then msg, name = "kubo: cat: " .. se, "EREMOTE" end
      else
        got = got_bytes
      end
    else
      local st
      st, msg, name = http.open {
        method = "POST", url = http.url(self.base .. "cat", params), headers = rpc.headers(self),
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
            return rpc.rpc_error("cat", { status = st.status, body = table.concat(body) })
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
          return rpc.rpc_error("cat", { status = st.status, body = "" })
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

return M
