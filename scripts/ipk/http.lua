--- ipk.http: HTTP requests on the core's curl-multi-on-libuv client.
-- Inside a task every call looks synchronous and yields while the transfer
-- runs (OpenResty cosockets); many tasks may have requests in flight at
-- once on the one loop thread. Outside a task the calls run one scheduler
-- turn themselves.
-- Errors: expected failures return nil, msg, name where name is
-- "ECONNREFUSED" (nothing listens), "ETIMEDOUT", "ETRUNC" (the body ended
-- early), "ECANCELED", "ERANGE" (body over max_body), "EIO" (other
-- transport failures). An HTTP error status is not a failure here: callers
-- look at res.status. Misuse raises.
local core = require "ipk.core"
local sched = require "ipk.sched"
local lib, ffi = core.lib, core.ffi

local type, tostring, tonumber, pairs, ipairs, error, setmetatable =
  type, tostring, tonumber, pairs, ipairs, error, setmetatable
local ffi_string, ffi_new, ffi_gc = ffi.string, ffi.new, ffi.gc
local concat, min = table.concat, math.min

local M = {}

local client
local function get_client()
  if client then return client end
  local out = ffi_new("ipk_http_t*[1]")
  local rc = lib.ipk_http_new(sched.loop, out)
  if rc ~= 0 then error("http: cannot create the client: " .. ffi_string(lib.ipk_strerror(rc)), 0) end
  client = out[0]   -- owned by the loop (freed with it)
  return client
end

local id_box = ffi_new("uint64_t[1]")
local info = ffi_new("ipk_http_info_t")
local CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE, CURLE_TIMEDOUT = 7, 6, 28
local TAKE = 1048576
local take_buf = ffi_new("uint8_t[?]", TAKE)

local function wait(req)
  local rc = lib.ipk_http_req_wait(req, id_box)
  if rc ~= 0 then return rc end
  return sched.await(id_box[0])
end

-- The luv triple for a finished request that failed.
local function failure(req, method, url)
  local rc = lib.ipk_http_req_result(req)
  lib.ipk_http_req_info(req, info)
  local name = ffi_string(lib.ipk_err_name(rc))
  if info.curl_code == CURLE_COULDNT_CONNECT then name = "ECONNREFUSED"
  elseif info.curl_code == CURLE_COULDNT_RESOLVE then name = "EHOST"
  elseif info.curl_code == CURLE_TIMEDOUT then name = "ETIMEDOUT" end
  local msg = ffi_string(lib.ipk_http_req_errmsg(req))
  if msg == "" then msg = ffi_string(lib.ipk_strerror(rc)) end
  return nil, method .. " " .. url .. ": " .. msg, name
end

--- Parse raw header lines into a table (lower-case names; repeated names
-- joined with ", ").
function M.parse_headers(raw)
  local h = {}
  for line in raw:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:%s]+):%s*(.-)%s*$")
    if k then
      k = k:lower()
      h[k] = h[k] and (h[k] .. ", " .. v) or v
    end
  end
  return h
end

local function ms(sec, default)
  if sec == nil then return default end
  if type(sec) ~= "number" or sec < 0 then error("http: timeouts are seconds >= 0", 4) end
  return math.floor(sec * 1000 + 0.5)
end

-- Build and start a request from opts; returns the cdata (gc'd) or nil, msg, name.
local function start(o)
  if type(o) ~= "table" then error("http: options table expected", 3) end
  local method, url = o.method or "GET", o.url
  if type(url) ~= "string" then error("http: url string expected", 3) end
  local out = ffi_new("ipk_http_req_t*[1]")
  local rc = lib.ipk_http_req_new(get_client(), method, url, out)
  if rc ~= 0 then return nil, method .. " " .. url .. ": " .. ffi_string(lib.ipk_strerror(rc)), "EINVAL" end
  local req = ffi_gc(out[0], lib.ipk_http_req_free)
  local function chk(r, what)
    if r ~= 0 then
      local m = ffi_string(lib.ipk_http_req_errmsg(req))
      if m == "" then m = ffi_string(lib.ipk_strerror(r)) end
      return nil, method .. " " .. url .. ": " .. what .. ": " .. m, ffi_string(lib.ipk_err_name(r))
    end
    return true
  end
  if o.headers then
    for k, v in pairs(o.headers) do
      local line = type(k) == "number" and v or (k .. ": " .. v)
      local ok, msg, name = chk(lib.ipk_http_req_header(req, line), "header")
      if not ok then return nil, msg, name end
    end
  end
  for _, part in ipairs(o.body or {}) do
    local ok, msg, name
    if type(part) == "string" then
      ok, msg, name = chk(lib.ipk_http_req_body_mem(req, part, #part), "body")
    elseif type(part) == "table" and type(part.file) == "string" then
      local len = part.length and ffi.cast("uint64_t", part.length) or ffi.cast("uint64_t", -1)
      ok, msg, name = chk(lib.ipk_http_req_body_file(req, part.file, part.offset or 0, len), "body")
    else
      error("http: body parts are strings or {file=path[, offset=, length=]}", 3)
    end
    if not ok then return nil, msg, name end
  end
  if o.multipart then
    local ok, msg, name = chk(lib.ipk_http_req_multipart(req, o.multipart.field or "file",
      o.multipart.filename or "file"), "multipart")
    if not ok then return nil, msg, name end
  end
  if o.sink_fd then lib.ipk_http_req_sink_fd(req, o.sink_fd) end
  if o.stream then lib.ipk_http_req_stream(req, 1) end
  if o.max_body then lib.ipk_http_req_max_body(req, o.max_body) end
  lib.ipk_http_req_timeouts(req, ms(o.timeout, 0), ms(o.connect_timeout, 10000), ms(o.idle_timeout, 60000))
  local ok, msg, name = chk(lib.ipk_http_req_start(req), "start")
  if not ok then return nil, msg, name end
  return req
end

local function drain(req)
  local parts = {}
  while true do
    local n = tonumber(lib.ipk_http_req_take(req, take_buf, TAKE))
    if n == 0 then break end
    parts[#parts + 1] = ffi_string(take_buf, n)
  end
  return concat(parts)
end

local function once(o)
  local req, msg, name = start(o)
  if not req then return nil, msg, name end
  while lib.ipk_http_req_done(req) == 0 do
    local rc = wait(req)
    if rc ~= 0 and lib.ipk_http_req_done(req) == 0 then
      lib.ipk_http_req_cancel(req)
    end
  end
  if lib.ipk_http_req_result(req) ~= 0 then
    local _, m, n = failure(req, o.method or "GET", o.url)
    lib.ipk_http_req_info(req, info)
    return nil, m, n, tonumber(info.bytes_in)
  end
  lib.ipk_http_req_info(req, info)
  local raw = ffi_string(lib.ipk_http_req_headers(req))
  return {
    status = lib.ipk_http_req_status(req),
    body = drain(req),   -- with sink_fd: only a non-2xx (error) body lands here
    raw_headers = raw,
    headers = M.parse_headers(raw),
    bytes_in = tonumber(info.bytes_in),
    bytes_out = tonumber(info.bytes_out),
    seconds = info.seconds,
  }
end

local RETRY_STATUS = { [502] = true, [503] = true, [504] = true }
local RETRY_NAME = { ECONNREFUSED = true, ETIMEDOUT = true, EIO = true, ETRUNC = true }

--- One request, waiting for the whole response.
-- @param o {method="GET"|"POST"|"HEAD", url=, headers={"Name: v", Name="v"},
--   body={string | {file=path, offset=, length=}, ...} (streamed in order),
--   multipart={field=, filename=} (send the body as one form-data file part),
--   sink_fd=fd (response body written there as it arrives; res.body is ""),
--   max_body=bytes (memory sink; default 64 MiB), timeout=s (total),
--   connect_timeout=s (10), idle_timeout=s (60: no byte for that long),
--   idempotent=true to retry transport failures and 502/503/504 up to
--   retries (default 3) times with exponential backoff from backoff s
--   (default 0.1); a response already streamed into sink_fd is never retried.
-- @return {status=, body=, headers=, raw_headers=, bytes_in=, bytes_out=,
--   seconds=} | nil, msg, name, bytes received before the failure
function M.request(o)
  if not sched.in_task() then return sched.run_task(M.request, o) end
  local tries = o.idempotent and (o.retries or 3) or 0
  local delay = o.backoff or 0.1
  local attempt = 0
  while true do
    local res, msg, name, got = once(o)
    local retry = attempt < tries and (
      (res and RETRY_STATUS[res.status]) or (not res and RETRY_NAME[name]))
    if retry and o.sink_fd and ((res and res.bytes_in > 0) or (got and got > 0)) then retry = false end
    if not retry then return res, msg, name, got end
    attempt = attempt + 1
    sched.sleep(min(delay * 2 ^ (attempt - 1), 5))
  end
end

------------------------------------------------------------------------------
-- streamed responses

local Stream = {}
Stream.__index = Stream

--- Start a request whose response is read piece by piece (stream:read()).
-- Takes request()'s options (no retries). The status is known after the
-- first read returns (stream.status).
-- @return stream | nil, msg, name
function M.open(o)
  if not sched.in_task() then error("http.open: call inside a task (ipk.run or sched.spawn)", 2) end
  local copy = {}
  for k, v in pairs(o) do copy[k] = v end
  copy.stream = true
  copy.sink_fd = nil
  local req, msg, name = start(copy)
  if not req then return nil, msg, name end
  return setmetatable({ req = req, method = o.method or "GET", url = o.url, pending = "" }, Stream)
end

--- Next chunk of the body (a string), nil at the end, or nil, msg, name.
function Stream:read()
  local req = self.req
  if not req then return nil end
  while true do
    if lib.ipk_http_req_buffered(req) > 0 then
      local n = tonumber(lib.ipk_http_req_take(req, take_buf, TAKE))
      self.status = lib.ipk_http_req_status(req)
      return ffi_string(take_buf, n)
    end
    if lib.ipk_http_req_done(req) ~= 0 then
      self.status = lib.ipk_http_req_status(req)
      self.headers = M.parse_headers(ffi_string(lib.ipk_http_req_headers(req)))
      if lib.ipk_http_req_result(req) ~= 0 then return failure(req, self.method, self.url) end
      return nil
    end
    wait(req)
  end
end

--- Next line (without the newline), nil at the end, or nil, msg, name.
function Stream:line()
  while true do
    local i = self.pending:find("\n", 1, true)
    if i then
      local l = self.pending:sub(1, i - 1)
      self.pending = self.pending:sub(i + 1)
      return l
    end
    local chunk, msg, name = self:read()
    if not chunk then
      if msg then return nil, msg, name end
      if self.pending ~= "" then
        local l = self.pending
        self.pending = ""
        return l
      end
      return nil
    end
    self.pending = self.pending .. chunk
  end
end

--- Response headers (lower-case names) once bytes or the end arrived.
function Stream:header(name)
  if not self.req then return self.headers and self.headers[name:lower()] end
  return M.parse_headers(ffi_string(lib.ipk_http_req_headers(self.req)))[name:lower()]
end

--- Abort the transfer; a pending read returns nil, "…canceled", "ECANCELED".
function Stream:cancel()
  if self.req then lib.ipk_http_req_cancel(self.req) end
end

--- Cancel if needed and release the request.
function Stream:close()
  if self.req then
    lib.ipk_http_req_free(ffi_gc(self.req, nil))
    self.req = nil
  end
end

--- Requests in flight on this process's client.
function M.active()
  return tonumber(lib.ipk_http_active(get_client()))
end

--- Percent-encode a query-string value.
function M.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- Build "base?k=v&k=v" from a list of {k, v} pairs (order kept; repeated
-- keys allowed, as Kubo's arg=… wants).
function M.url(base, params)
  local q = {}
  for _, kv in ipairs(params or {}) do
    if kv[2] ~= nil then q[#q + 1] = M.escape(kv[1]) .. "=" .. M.escape(kv[2]) end
  end
  if #q == 0 then return base end
  return base .. (base:find("?", 1, true) and "&" or "?") .. concat(q, "&")
end

return M
