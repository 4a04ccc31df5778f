-- Conformance: CID parse/format (fixtures/cid/cid_vectors.json), plus the
-- Lua wrapper contract of scripts/ipk/cid.lua.
local cid = require "ipk.cid"

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

-- multibase name in the fixture -> prefix we format with
local PREFIX = {
  base58btc = "z", base32 = "b", base32upper = "B", base16 = "f", base16upper = "F",
  base36 = "k", base36upper = "K", base64 = "m", base64url = "u", base64urlpad = "U",
  base32hex = "v", base32z = "h", base2 = "0",
}

describe("cid conformance", function()
  local fx = support.fixtures()
  if not fx then
    pending("fixtures folder absent (set IPK_FIXTURES); CID vectors skipped")
    return
  end
  local vec = support.json_file(fx .. "/cid/cid_vectors.json")

  it("parses all " .. #vec.valid .. " valid CIDs with the right fields and formats", function()
    for _, v in ipairs(vec.valid) do
      local c, msg = cid.parse(v.cid)
      assert.is_not_nil(c, v.cid .. ": " .. tostring(msg))
      local f = cid.inspect(c)
      assert.equal(v.version, f.version, v.cid)
      assert.equal(tonumber(v.codec_code), f.codec, v.cid)
      assert.equal(tonumber(v.multihash_code), f.hash, v.cid)
      assert.equal(v.digest_length, #f.digest, v.cid)
      assert.equal(v.digest_hex, hex(f.digest), v.cid)
      assert.equal(v.cid_binary_hex, hex(cid.to_bytes(c)), v.cid)
      assert.equal(v.canonical_base32_or_v0, cid.tostring(c), v.cid)
      assert.equal(v.as_cidv1_base32, cid.format(cid.to_v1(c), "b"), v.cid)
      -- formatting in the vector's own base gives the vector back
      local p = v.version == 0 and "z" or PREFIX[v.multibase]
      assert.is_not_nil(p, "no prefix for " .. v.multibase)
      assert.equal(v.cid, cid.format(c, p), v.multibase)
      -- and binary round trip
      assert.is_true(cid.equal(c, cid.from_bytes(cid.to_bytes(c))))
    end
  end)

  it("rejects all " .. #vec.invalid .. " invalid CIDs", function()
    for _, v in ipairs(vec.invalid) do
      local c, msg, name = cid.parse(v.cid)
      assert.is_nil(c, "accepted: " .. v.cid .. " (" .. v.reason .. ")")
      assert.equal("ECID", name, v.reason)
      assert.is_string(msg)
    end
  end)
end)

describe("ipk.cid", function()
  it("computes block CIDs", function()
    assert.equal("bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
      cid.tostring(cid.of(1, "raw", "hello\n")))
    assert.equal("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN",
      cid.tostring(cid.of(0, "dag-pb", "\10\12\8\2\18\6hello\n\24\6")))
    assert.is_true(cid.verify(cid.of(1, "raw", "x"), "x"))
    assert.is_false(cid.verify(cid.of(1, "raw", "x"), "y"))
  end)

  it("refuses v0 in other bases and non dag-pb v0", function()
    local c = cid.parse("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    local ok, _, name = cid.format(c, "b")
    assert.is_nil(ok)
    assert.equal("EBASE", name)
    ok, _, name = cid.of(0, "raw", "x")
    assert.is_nil(ok)
    assert.equal("ECID", name)
  end)

  it("raises on misuse", function()
    assert.has_error(function() cid.parse(42) end)
    assert.has_error(function() cid.format({}) end)
    assert.has_error(function() cid.of(1, "nope", "x") end)
  end)

  it("returns nil, msg, name for a bad string", function()
    local ok, msg, name = cid.parse("not-a-cid")
    assert.is_nil(ok)
    assert.matches("not%-a%-cid", msg)
    assert.equal("ECID", name)
  end)
end)
