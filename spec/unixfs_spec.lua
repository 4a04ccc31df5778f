-- Conformance: `ipfs add` CIDs (fixtures/unixfs): every kubo vector and
-- oracle vector that uses sha2-256 (or sha2-512) and needs no HAMT sharding
-- must give Kubo's root CID. Inputs are regenerated with the generators of
-- fixtures/unixfs/README.md into a temp dir, checked against the recorded
-- sha256, and deleted afterwards.
local unixfs = require "ipk.unixfs"
local core = require "ipk.core"
local lib, ffi = core.lib, core.ffi
local bit = require "bit"

local q = support.q

local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

local function sha256_hex(data)
  local out = ffi.new("uint8_t[32]")
  lib.ipk_sha256(data, #data, out)
  return hex(ffi.string(out, 32))
end

local function sha256_file(path)
  local code, out = support.sh("openssl dgst -sha256 -r " .. q(path))
  assert(code == 0, "openssl dgst failed on " .. path)
  return out:match("^(%x+)")
end

-- generators ---------------------------------------------------------------

local function affine(n)
  local buf = ffi.new("uint8_t[?]", math.max(n, 1))
  for i = 0, n - 1 do buf[i] = (i * 31 + 7) % 256 end
  return ffi.string(buf, n)
end

local function xorshift32(n)
  local words = math.ceil(n / 4)
  local buf = ffi.new("uint32_t[?]", math.max(words, 1))
  local x = bit.tobit(2463534242)
  for i = 0, words - 1 do
    x = bit.bxor(x, bit.lshift(x, 13))
    x = bit.bxor(x, bit.rshift(x, 17))
    x = bit.bxor(x, bit.lshift(x, 5))
    buf[i] = x
  end
  return ffi.string(buf, n) -- little-endian host (x86-64, aarch64)
end

local function chacha_to_file(path, n, seed)
  local key = sha256_hex(seed)
  local cmd = ("(head -c %d /dev/zero | openssl enc -chacha20 -K %s -iv %s > %s)"):format(
    n, key, string.rep("0", 32), q(path))
  local code, _, err = support.sh(cmd)
  assert(code == 0, "openssl chacha20 failed: " .. err)
end

local gobin -- built once per run
local function gomathrand_to_file(dir, path, n, seed)
  if gobin == nil then
    local code = support.sh("command -v go")
    if code ~= 0 then
      if os.getenv("CI") == "true" then error("go toolchain required in CI for go-mathrand-v1 inputs") end
      gobin = false
    else
      local bin = dir .. "/gomathrand"
      local env = os.getenv("HOME") and "" or "GOCACHE=" .. q(dir .. "/gocache") .. " "
      local c2, _, err = support.sh(env .. "go build -o " .. q(bin) .. " " .. q(support.root .. "/spec/support/gomathrand.go"))
      assert(c2 == 0, "go build gomathrand failed: " .. err)
      gobin = bin
    end
  end
  if not gobin then return false end
  local code, _, err = support.sh(("(%s -n %d -seed %d > %s)"):format(q(gobin), n, seed, q(path)))
  assert(code == 0, "gomathrand failed: " .. err)
  return true
end

-- options --------------------------------------------------------------------

local KUBO_OPTS = {
  default = {},
  ["raw-leaves"] = { raw_leaves = true },
  cidv1 = { cid_version = 1 },
  ["cidv1-noraw"] = { cid_version = 1, raw_leaves = false },
  sha512 = { cid_version = 1, hash = "sha2-512" },
  blake2b = { hash = "blake2b-256" },                         -- implies CIDv1, raw leaves
  ["blake2b-noraw"] = { hash = "blake2b-256", raw_leaves = false },
  ["v1-2025"] = { profile = "unixfs-v1-2025" },
  ["v0-maxlinks1024"] = { max_links = 1024 },
}

local function skip_reason(v)
  if v.id:match("^t0040head%-5MB") then
    return "input is Go math/rand/v2 ChaCha8 output, not regenerable"
  end
  if v.kubo_flags:match("%-t") or v.kubo_flags:match("trickle") then
    return "trickle layout (-t) not implemented"
  end
  if v.id:match("dir%-hamt$") then return "HAMT-sharded directory not built by ipk (rejected with EUNSUPP)" end
  return nil
end

local DIRS = {
  ["t0040-mfs-dir"] = { name = "test", tree = { ["mfs1.txt"] = "file1\n", ["mfs2.txt"] = "file2\n" } },
  ["t0040-current-dir"] = { name = "cur", tree = { hey = "Hey\n", hello = { world = "World\n" } } },
  ["t0040-moons"] = { name = "moons", tree = {
    jupiter = { ["europa.txt"] = "Hello Europa!\n" },
    saturn = { ["titan.txt"] = "Hello Titan!\n" },
    ["mercury.txt"] = "hey you are no moon!\n",
  } },
  ["t0040-moons-jupiter"] = { name = "jupiter", tree = { ["europa.txt"] = "Hello Europa!\n" } },
  ["t0040-moons-saturn"] = { name = "saturn", tree = { ["titan.txt"] = "Hello Titan!\n" } },
}
for _, id in ipairs { "t0040-planets-default", "t0040-planets-raw-leaves", "t0040-planets-cidv1",
  "t0040-planets-cidv1-noraw", "t0040-planets-blake2b" } do
  DIRS[id] = { name = "planets", tree = { ["mars.txt"] = "Hello Mars!\n", ["venus.txt"] = "Hello Venus!\n" } }
end

local function make_tree(dir, tree)
  assert(os.execute("mkdir -p " .. q(dir)) == 0 or true)
  for name, v in pairs(tree) do
    if type(v) == "table" then make_tree(dir .. "/" .. name, v)
    else support.write(dir .. "/" .. name, v) end
  end
end

local ALPHA = "abcdefghijklmnopqrstuvwxyz01234567890-_"

local function hamt_names(g)
  local stream = assert(io.popen(("head -c 1048576 /dev/zero | openssl enc -chacha20 -K %s -iv %s"):format(
    sha256_hex(g.seed), string.rep("0", 32)))):read("*a")
  local names, pos = {}, 1
  for i = 1, g.files do
    local len = i == g.files and g.last_name_len or g.name_len
    local t = {}
    for j = 0, len - 1 do
      local b = stream:byte(pos + j)
      t[#t + 1] = ALPHA:sub(b % 39 + 1, b % 39 + 1)
    end
    pos = pos + len
    names[i] = table.concat(t)
  end
  return names
end

local function add(path, opts, recursive)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.only_hash = true
  o.recursive = recursive
  return unixfs.add(path, o)
end

-- the spec -------------------------------------------------------------------

describe("unixfs conformance", function()
  local fx = support.fixtures()
  if not fx then
    pending("fixtures folder absent (set IPK_FIXTURES); UnixFS vectors skipped")
    return
  end
  local tmp = support.tmpdir()
  teardown(function() support.rm_rf(tmp) end)

  local kubo = support.json_file(fx .. "/unixfs/kubo_add_vectors.json")
  local byid = {}
  for _, v in ipairs(kubo) do byid[v.id] = v end

  describe("kubo_add_vectors.json", function()
    -- Group generated inputs by stream so one file serves every size cut
    -- from it (a shorter input is a prefix: truncate in place, largest first).
    local groups, order = {}, {}
    for _, v in ipairs(kubo) do
      local why = skip_reason(v)
      if why then
        pending(v.id .. ": " .. why)
      elseif v.generator == nil or v.generator == require("cjson").null then
        if v.kind == "file" then
          it(v.id, function()
            local path = tmp .. "/" .. v.id
            support.write(path, unhex(v.content_hex or ""))
            local r = assert(add(path, KUBO_OPTS[v.options]))
            local got = r.root
            if v.kubo_flags:match("%-%-cid%-base=base32") then
              -- Kubo shows a CIDv0 in a non-base58 base as its CIDv1 form.
              local cid = require "ipk.cid"
              got = cid.format(cid.to_v1(r.root_cid), "b")
            end
            assert.equal(v.expected_cid, got)
            os.remove(path)
          end)
        elseif DIRS[v.id] then
          it(v.id, function()
            local d = DIRS[v.id]
            local dir = tmp .. "/" .. v.id .. "/" .. d.name
            make_tree(dir, d.tree)
            local r = assert(add(dir, KUBO_OPTS[v.options], true))
            assert.equal(v.expected_cid, r.root)
            assert.equal(d.name, r.entries[#r.entries].path)
            assert.equal(r.root, r.entries[#r.entries].cid)
            if v.id == "t0040-moons" then
              -- Kubo's `ipfs add -r` output order: files in walk order, then
              -- directories bottom-up, root last (t0040-add-and-cat.sh).
              local got = {}
              for _, e in ipairs(r.entries) do got[#got + 1] = e.path .. " " .. e.cid end
              assert.same({
                "moons/jupiter/europa.txt " .. byid["t0040-europa"].expected_cid,
                "moons/mercury.txt " .. byid["t0040-mercury"].expected_cid,
                "moons/saturn/titan.txt " .. byid["t0040-titan"].expected_cid,
                "moons/jupiter " .. byid["t0040-moons-jupiter"].expected_cid,
                "moons/saturn " .. byid["t0040-moons-saturn"].expected_cid,
                "moons " .. v.expected_cid,
              }, got)
            end
            support.rm_rf(tmp .. "/" .. v.id)
          end)
        else
          it(v.id, function() error("no directory layout known for " .. v.id) end)
        end
      elseif v.generator.name == "kubo-hamt-names" then
        it(v.id .. " (" .. v.generator.files .. " files)", function()
          local g = v.generator
          local names = hamt_names(g)
          assert.equal(g.first_names[1], names[1])
          assert.equal(g.last_name, names[#names])
          assert.equal(g.names_in_generation_order_sha256, sha256_hex(table.concat(names, "\n")))
          local dir = tmp .. "/" .. v.id .. "/d"
          os.execute("mkdir -p " .. q(dir))
          for _, n in ipairs(names) do
            local f = assert(io.open(dir .. "/" .. n, "wb")); f:write("x"); f:close()
          end
          local r = assert(add(dir, KUBO_OPTS[v.options], true))
          assert.equal(v.expected_cid, r.root)
          assert.equal(#names + 1, #r.entries)
          support.rm_rf(tmp .. "/" .. v.id)
        end)
      else
        local g = v.generator
        local key = g.name .. "|" .. tostring(g.seed)
        if not groups[key] then groups[key] = { gen = g, list = {} }; order[#order + 1] = key end
        table.insert(groups[key].list, v)
      end
    end

    for _, key in ipairs(order) do
      local grp = groups[key]
      table.sort(grp.list, function(a, b)
        if a.generator.size ~= b.generator.size then return a.generator.size > b.generator.size end
        return a.id < b.id
      end)
      local path = tmp .. "/stream-" .. key:gsub("[^%w]", "_")
      local state = { size = nil, ok = true }
      for i, v in ipairs(grp.list) do
        it(v.id .. " (" .. v.generator.size .. " bytes, " .. v.generator.name .. ")", function()
          local g = v.generator
          if state.size == nil then
            state.size = g.size
            if g.name == "kubo-chacha20" then
              chacha_to_file(path, g.size, g.seed)
            elseif g.name == "go-mathrand-v1" then
              if not gomathrand_to_file(tmp, path, g.size, g.seed) then
                state.ok = false
              end
            else
              error("unknown generator " .. g.name)
            end
          end
          if not state.ok then
            pending("go toolchain absent: go-mathrand-v1 input not regenerated")
            return
          end
          if state.size ~= g.size then
            assert(os.execute(("truncate -s %d %s"):format(g.size, q(path))) == 0 or true)
            state.size = g.size
          end
          assert.equal(g.sha256, sha256_file(path), "regenerated input differs from the fixture")
          local r = assert(add(path, KUBO_OPTS[v.options]))
          assert.equal(v.expected_cid, r.root)
          if i == #grp.list then os.remove(path) end
        end)
      end
    end

    it("rejects the HAMT-sized directories with EUNSUPP instead of a wrong CID", function()
      for _, id in ipairs { "profile-v0-dir-hamt", "profile-v1-dir-hamt" } do
        local v = byid[id]
        local names = hamt_names(v.generator)
        assert.equal(v.generator.last_name, names[#names])
        local dir = tmp .. "/" .. id .. "/d"
        os.execute("mkdir -p " .. q(dir))
        for _, n in ipairs(names) do
          local f = assert(io.open(dir .. "/" .. n, "wb")); f:write("x"); f:close()
        end
        local r, msg, name = add(dir, KUBO_OPTS[v.options], true)
        assert.is_nil(r, id)
        assert.equal("EUNSUPP", name)
        assert.matches("HAMT", msg)
        support.rm_rf(tmp .. "/" .. id)
      end
    end)
  end)

  describe("oracle_vectors.json", function()
    local oracle = support.json_file(fx .. "/unixfs/oracle_vectors.json")
    local inputs = {}
    local function input_path(name)
      if inputs[name] then return inputs[name] end
      local p
      if name == "empty" or name == "one_byte_a" or name == "hello_nl" then
        p = fx .. "/unixfs/inputs/" .. name .. ".bin"
      elseif name == "affine_256KiB" then
        p = tmp .. "/affine_256KiB"; support.write(p, affine(262144))
      elseif name == "xorshift_1MiB" then
        p = tmp .. "/xorshift_1MiB"; support.write(p, xorshift32(1048576))
      elseif name == "xorshift_45MiB" then
        p = tmp .. "/xorshift_45MiB"; support.write(p, xorshift32(47185920))
      elseif name == "dir3" then
        p = tmp .. "/dir3"
        os.execute("mkdir -p " .. q(p))
        support.write(p .. "/hello.txt", support.read(fx .. "/unixfs/inputs/dir3/hello.txt"))
        support.write(p .. "/empty.txt", support.read(fx .. "/unixfs/inputs/dir3/empty.txt"))
        support.write(p .. "/Data.bin", affine(307200))
      end
      inputs[name] = p
      return p
    end
    local sha = {}
    for _, i in ipairs(oracle.inputs) do sha[i.name] = i.sha256 end

    for _, v in ipairs(oracle.vectors) do
      it(v.input .. " / " .. v.option_set, function()
        local p = input_path(v.input)
        if v.input_kind == "file" then
          assert.equal(sha[v.input], sha256_file(p), "input " .. v.input)
        end
        local opts = { cid_version = v.cid_version, raw_leaves = v.raw_leaves,
          chunker = "size-" .. v.chunk_size, max_links = v.max_links }
        local r = assert(add(p, opts, v.input_kind == "directory"))
        assert.equal(v.expected_root_cid, r.root)
        assert.equal(v.root_cumulative_size, r.size)
        if v.dir_children then
          for _, e in ipairs(r.entries) do
            local base = e.path:match("^dir3/(.+)$")
            if base then assert.equal(v.dir_children[base], e.cid, base) end
          end
        end
      end)
    end
  end)
end)

describe("ipk.unixfs", function()
  it("validates options with clear errors", function()
    local ok, msg, name = unixfs.options { chunker = "size-0" }
    assert.is_nil(ok); assert.equal("EINVAL", name); assert.matches("size%-0", msg)
    ok, msg, name = unixfs.options { chunker = "size-2000000" }
    assert.matches("1%.%.1048576", msg)
    assert.is_nil(ok); assert.equal("EINVAL", name)
    ok, msg, name = unixfs.options { chunker = "rabin-262144" }
    assert.is_nil(ok); assert.equal("EUNSUPP", name); assert.matches("rabin", msg)
    ok, msg, name = unixfs.options { profile = "nope" }
    assert.is_nil(ok); assert.equal("EINVAL", name); assert.matches("nope", msg)
    ok, msg, name = unixfs.options { cid_version = 2 }
    assert.is_nil(ok); assert.equal("EINVAL", name); assert.matches("cid_version", msg)
    ok, msg, name = unixfs.options { colour = "red" }
    assert.is_nil(ok); assert.equal("EINVAL", name); assert.matches("colour", msg)
  end)

  it("applies Kubo's flag semantics and records the profile", function()
    local o = assert(unixfs.options { cid_version = 1 })
    assert.equal(1, o.raw_leaves)
    assert.equal("", ffi.string(o.profile))
    o = assert(unixfs.options { cid_version = 1, raw_leaves = false })
    assert.equal(0, o.raw_leaves)
    o = assert(unixfs.options { profile = "unixfs-v1-2025" })
    assert.equal("unixfs-v1-2025", ffi.string(o.profile))
    assert.equal(1024, o.max_links)
    assert.equal(1048576, tonumber(o.chunk_size))
    o = assert(unixfs.options {})
    assert.equal("unixfs-v0-2015", ffi.string(o.profile))
  end)

  -- Kubo's --hash: blake2b-256 blocks are hashed on add, stored, and
  -- verified again when cat reads them (t0040-mars-blake2b's CID); an
  -- unknown name is refused with the list of known ones.
  it("ipkrun add --hash=blake2b-256 stores blocks that cat verifies", function()
    local d = support.tmpdir()
    support.write(d .. "/mars.txt", "Hello Mars!\n")
    local env = { IPK_HOME = d .. "/home" }
    local code, out, err = support.ipkrun({ "add", "-Q", "--hash=blake2b-256", d .. "/mars.txt" }, env)
    assert.equal(0, code, err)
    assert.equal("bafk2bzaceaqcxw46uzkyd2jmczoogof6pnkqt4dpiv3pwkunsv4g5rkkmecie\n", out)
    code, out, err = support.ipkrun({ "cat", "bafk2bzaceaqcxw46uzkyd2jmczoogof6pnkqt4dpiv3pwkunsv4g5rkkmecie" }, env)
    assert.equal(0, code, err)
    assert.equal("Hello Mars!\n", out)
    code, out, err = support.ipkrun({ "add", "-n", "--hash=md5", d .. "/mars.txt" }, env)
    assert.equal("", out)
    assert.equal(1, code)
    assert.matches("unsupported hash 'md5'", err, 1, true)
    support.rm_rf(d)
  end)

  it("adds bytes and reports missing paths", function()
    assert.equal("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN", (unixfs.add_bytes("hello\n")))
    local r, _, name = unixfs.add("/nonexistent/ipk/path", { only_hash = true })
    assert.is_nil(r); assert.equal("ENOENT", name)
  end)

  it("adds symlinks as UnixFS symlink nodes and rejects directories without recursive", function()
    local d = support.tmpdir()
    support.write(d .. "/f", "x")
    os.execute("ln -s f " .. q(d .. "/l"))
    local r, msg, name = unixfs.add(d, { only_hash = true })
    assert.is_nil(r); assert.equal("EINVAL", name); assert.matches("with %-r", msg)
    r = assert(unixfs.add(d, { only_hash = true, recursive = true }))
    -- entries: the file and the symlink (dag-pb {Data: UnixFS{Type: 4, Data: "f"}}), then the dir
    assert.equal(3, #r.entries)
    local cid = require "ipk.cid"
    assert.equal(cid.format(cid.of(0, 0x70, "\x0a\x05\x08\x04\x12\x01f")), r.entries[2].cid)
    support.rm_rf(d)
  end)

  it("runs inside a task through the thread pool", function()
    local sched = require "ipk.sched"
    local d = support.tmpdir()
    support.write(d .. "/a", "hello\n")
    -- Two concurrent tasks, each yielding on its own thread-pool job.
    local res = {}
    sched.spawn(function() res[1] = unixfs.add(d .. "/a", { only_hash = true }) end)
    sched.spawn(function() res[2] = unixfs.add(d .. "/a", { only_hash = true, cid_version = 1 }) end)
    sched.run()
    assert.equal("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN", res[1].root)
    assert.equal("bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", res[2].root)
    support.rm_rf(d)
  end)
end)
