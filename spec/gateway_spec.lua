-- ipk.gateway (trustless gateway, read-only) and the tiered cache, against
-- the loopback fake server serving ?format=raw / ?format=car from files;
-- tampered answers must be rejected with nothing stored.
local nodes = require "support.ipfs_node"
local sched = require "ipk.sched"
local cjson = require "cjson"

local function run(fn) return sched.run_task(fn) end

local count_blocks = support.store_blocks

describe("trustless gateway backend", function()
  if not nodes.available() then
    pending("node not installed: gateway specs skipped")
    return
  end
  local gateway = require "ipk.gateway"
  local cid = require "ipk.cid"
  local dir, fake, src, root, data

  setup(function()
    dir = support.tmpdir()
    os.execute("mkdir -p " .. dir .. "/blocks " .. dir .. "/cars " .. dir .. "/src")
    fake = nodes.start_fake(dir)
    -- content: a 300 kB file added offline, exported as a CAR the gateway serves
    src = dir .. "/src"
    data = src .. "/f.bin"
    os.execute("head -c 300000 /dev/urandom > " .. support.q(data))
    local _, out = support.ipkrun({ "add", "-Q", "--cid-version=1", "--chunker=size-65536", data }, { IPK_HOME = src })
    root = out:gsub("%s+$", "")
    assert(support.ipkrun({ "car", "export", root, "-o", dir .. "/cars/" .. root .. ".car" }, { IPK_HOME = src }) == 0)
    support.write(dir .. "/blocks/" .. cid.format(cid.of(1, 0x55, "raw block")), "raw block")
    local tampered = cid.format(cid.of(1, 0x55, "tampered block"))
    support.write(dir .. "/blocks/" .. tampered, "tampered block")
    support.write(dir .. "/tamper", tampered .. "\n")
  end)
  teardown(function()
    nodes.stop(fake)
    support.rm_rf(dir)
  end)

  it("fetches one block with ?format=raw and verifies it", function()
    local g = gateway.new(fake.url)
    local c = cid.format(cid.of(1, 0x55, "raw block"))
    assert.are.equal("raw block", run(function() return g:block_get(c) end))
    local t = cid.format(cid.of(1, 0x55, "tampered block"))
    local res, msg, name = run(function() return g:block_get(t) end)
    assert.is_nil(res)
    assert.are.equal("EVERIFY", name)
    assert.matches("do not match", msg)
    local missing = cid.format(cid.of(1, 0x55, "absent"))
    res, msg, name = run(function() return g:block_get(missing) end)
    assert.is_nil(res)
    assert.are.equal("ENOBLOCK", name)
    assert.matches("HTTP 404", msg)
  end)

  it("cats and gets through ?format=car into the cache; the second read is a hit", function()
    local home = support.tmpdir()
    local code, out, err = support.ipkrun({ "--gateway", fake.url, "cat", root }, { IPK_HOME = home })
    assert.are.equal(0, code, err)
    assert.is_true(out == support.read(data))
    local _, sj = support.ipkrun({ "stats", "--json" }, { IPK_HOME = home })
    local s = cjson.decode(sj).cache
    assert.are.equal(1, s.misses)
    assert.are.equal(6, s.fetched_blocks)
    assert.are.equal(0, (support.ipkrun({ "get", root, "-o", home .. "/copy" }, { IPK_HOME = home, IPK_GATEWAY = fake.url })))
    assert.is_true(support.read(home .. "/copy") == support.read(data))
    _, sj = support.ipkrun({ "stats", "--json" }, { IPK_HOME = home })
    s = cjson.decode(sj).cache
    assert.are.equal(1, s.misses)
    assert.are.equal(6, s.store_hits)
    local _, txt = support.ipkrun({ "stats" }, { IPK_HOME = home })
    assert.matches("misses%s+1", txt)
    support.rm_rf(home)
  end)

  it("memory LRU answers repeated block reads, counted", function()
    local store = require("ipk.store").open(support.tmpdir())
    local remote = require("ipk.backend.gateway").new { url = fake.url }
    local cache = require("ipk.backend.cache").new { remote = remote, store = store, capacity = 2 }
    local c = cid.format(cid.of(1, 0x55, "raw block"))
    run(function()
      for _ = 1, 3 do assert.are.equal("raw block", cache:get(c)) end
    end)
    assert.are.same({ misses = 1, fetched_blocks = 1, fetched_bytes = 9, mem_hits = 2 }, cache.counts)
    cache:flush()
    local s = require("ipk.backend.cache").stats(store)
    assert.are.equal(2, s.mem_hits)
    assert.are.equal(true, store:has(c))
  end)

  it("rejects a tampered CAR and a CAR for the wrong root, storing nothing", function()
    local carfile = dir .. "/cars/" .. root .. ".car"
    local good = support.read(carfile)
    local bad = good:sub(1, #good - 10) .. string.char((good:byte(#good - 9) + 1) % 256) .. good:sub(#good - 8)
    support.write(carfile, bad)
    local home = support.tmpdir()
    local code, out, err = support.ipkrun({ "--gateway", fake.url, "cat", root }, { IPK_HOME = home })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^ipkrun: cat: gateway: .*bytes do not match the CID", err)
    assert.are.equal(0, count_blocks(home))
    -- a valid CAR whose root is another CID
    local other = cid.format(cid.of(1, 0x55, "raw block"))
    support.write(dir .. "/cars/" .. other .. ".car", good)
    local code2, _, err2 = support.ipkrun({ "--gateway", fake.url, "get", other, "-o", home .. "/x" }, { IPK_HOME = home })
    assert.are.equal(1, code2)
    assert.matches("has roots " .. root, err2, 1, true)
    assert.are.equal(0, count_blocks(home))
    support.write(carfile, good)
    support.rm_rf(home)
  end)

  it("is read-only", function()
    local home = support.tmpdir()
    local code, _, err = support.ipkrun({ "--gateway", fake.url, "add", data }, { IPK_HOME = home })
    assert.are.equal(1, code)
    assert.matches("read%-only", err)
    support.rm_rf(home)
  end)
end)
