-- ipk.http (curl multi on the libuv loop) against a loopback fault server
-- (spec/support/ipfs-node/fake.mjs): concurrency, timeouts, cancellation,
-- retries, truncation, error bodies, Authorization.
local nodes = require "support.ipfs_node"
local sched = require "ipk.sched"

local function run(fn) return sched.run_task(fn) end

describe("ipk.http", function()
  if not nodes.available() then
    pending("node not installed: http specs skipped")
    return
  end
  local http = require "ipk.http"
  local kubo = require "ipk.kubo"
  local dir, fake, authed

  setup(function()
    dir = support.tmpdir()
    os.execute("mkdir -p " .. dir .. "/blocks " .. dir .. "/cars")
    fake = nodes.start_fake(dir)
    authed = nodes.start_fake(dir, "s3cret")
  end)
  teardown(function()
    nodes.stop(fake)
    nodes.stop(authed)
    support.rm_rf(dir)
  end)

  it("makes a request and reads the JSON answer", function()
    local res = run(function() return http.request { method = "POST", url = fake.url .. "/api/v0/version" } end)
    assert.are.equal(200, res.status)
    assert.are.equal('{"Version":"fake"}', res.body)
    assert.are.equal("application/json", res.headers["content-type"])
  end)

  it("runs 100 requests at once and keeps 80 streams in flight together", function()
    local statuses, peak = run(function()
      local tasks = {}
      for i = 1, 100 do
        tasks[i] = sched.spawn(function()
          local r = http.request { method = "POST", url = fake.url .. "/api/v0/version" }
          return r and r.status
        end)
      end
      local out = sched.join(tasks)
      local streams = {}
      for i = 1, 80 do streams[i] = assert(http.open { method = "POST", url = fake.url .. "/api/v0/slow", idle_timeout = 0 }) end
      sched.sleep(0.2)
      local p = http.active()
      for _, s in ipairs(streams) do s:close() end
      return out, p
    end)
    assert.are.equal(100, #statuses)
    for i = 1, 100 do assert.are.equal(200, statuses[i]) end
    assert.are.equal(80, peak)
    assert.are.equal(0, run(function() return http.active() end))
  end)

  it("names a refused connection", function()
    local res, msg, name = run(function() return http.request { method = "POST", url = "http://127.0.0.1:1/api/v0/id" } end)
    assert.is_nil(res)
    assert.are.equal("ECONNREFUSED", name)
    assert.matches("127.0.0.1", msg)
  end)

  it("times out per request", function()
    local t0 = require("ipk.core").now()
    local res, msg, name = run(function()
      return http.request { method = "POST", url = fake.url .. "/api/v0/slow", timeout = 0.3 }
    end)
    assert.is_nil(res)
    assert.are.equal("ETIMEDOUT", name)
    assert.matches("timed out", msg)
    assert.is_true(require("ipk.core").now() - t0 < 3)
  end)

  it("cancels a request from another task", function()
    local chunk, msg, name = run(function()
      local st = assert(http.open { method = "POST", url = fake.url .. "/api/v0/slow", idle_timeout = 0 })
      sched.spawn(function() sched.sleep(0.1); st:cancel() end)
      local a, b, c = st:read()
      st:close()
      return a, b, c
    end)
    assert.is_nil(chunk)
    assert.are.equal("ECANCELED", name)
    assert.matches("canceled", msg)
  end)

  it("retries idempotent calls with backoff, and only those", function()
    local ok = run(function()
      return http.request { method = "POST", url = fake.url .. "/api/v0/flaky?key=a&fail=2", idempotent = true, backoff = 0.01 }
    end)
    assert.are.equal(200, ok.status)
    assert.are.equal("ok", ok.body)
    local once = run(function()
      return http.request { method = "POST", url = fake.url .. "/api/v0/flaky?key=b&fail=2" }
    end)
    assert.are.equal(503, once.status)
    local gave_up = run(function()
      return http.request { method = "POST", url = fake.url .. "/api/v0/flaky?key=c&fail=9", idempotent = true,
        retries = 2, backoff = 0.01 }
    end)
    assert.are.equal(503, gave_up.status)
  end)

  it("reports a truncated body (Content-Length not reached)", function()
    local res, msg, name = run(function() return http.request { method = "POST", url = fake.url .. "/api/v0/cat" } end)
    assert.is_nil(res)
    assert.are.equal("ETRUNC", name)
    assert.matches("truncated", msg)
  end)

  it("turns an HTTP 500 error body into a clear kubo error", function()
    local c = kubo.new(fake.url)
    local res, msg, name = run(function() return c:call("error") end)
    assert.is_nil(res)
    assert.are.equal("EREMOTE", name)
    assert.are.equal("kubo: error: fake failure (HTTP 500)", msg)
  end)

  it("sends the Authorization header when configured", function()
    local without = kubo.new(authed.url)
    local res, msg, name = run(function() return without:version() end)
    assert.is_nil(res)
    assert.are.equal("EACCES", name)
    assert.matches("HTTP 401", msg)
    local with = kubo.new { url = authed.url, auth = "Bearer s3cret" }
    local v = run(function() return with:version() end)
    assert.are.equal("fake", v.Version)
    local wrong = kubo.new { url = authed.url, auth = "Bearer nope" }
    assert.is_nil((run(function() return wrong:version() end)))
  end)

  it("passes the Authorization header from ipkrun --api-auth and IPK_API_AUTH", function()
    local home = support.tmpdir()
    support.write(home .. "/f.txt", "hello\n")
    -- The fake node has no dag/import: what matters is that the header got
    -- through (404, not 401).
    local code, _, err = support.ipkrun({ "--api", authed.url, "add", home .. "/f.txt" }, { IPK_HOME = home })
    assert.are.equal(1, code)
    assert.matches("HTTP 401", err)
    code, _, err = support.ipkrun({ "--api", authed.url, "--api-auth", "Bearer s3cret", "add", home .. "/f.txt" },
      { IPK_HOME = home })
    assert.are.equal(1, code)
    assert.matches("HTTP 404", err)
    code, _, err = support.ipkrun({ "add", home .. "/f.txt" },
      { IPK_HOME = home, IPK_API = authed.url, IPK_API_AUTH = "Bearer s3cret" })
    assert.are.equal(1, code)
    assert.matches("HTTP 404", err)
    support.rm_rf(home)
  end)

  it("streams a kubo cat into a file and reports where a cut stream stopped", function()
    local c = kubo.new(fake.url)
    local path = dir .. "/out.bin"
    local n, msg, name = run(function()
      local f = io.open(path, "wb")
      local ffi = require "ffi"
      pcall(ffi.cdef, "int fileno(void *stream);")
      local fd = ffi.C.fileno(f)
      local a, b, cc = c:cat("bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", { fd = fd })
      f:close()
      return a, b, cc
    end)
    assert.is_nil(n)
    assert.are.equal("ETRUNC", name)
    assert.matches("after 4096 bytes", msg)
    assert.are.equal(4096, #support.read(path))
  end)
end)
