-- Conformance: multibase (fixtures/multibase/multibase_vectors.json).
local cid = require "ipk.cid"

local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end

-- base256emoji is not implemented: its prefix is a multi-byte UTF-8 char and
-- nothing in IPFS/Kubo's CID paths needs it.
local UNSUPPORTED = { base256emoji = true }

describe("multibase conformance", function()
  local fx = support.fixtures()
  if not fx then
    pending("fixtures folder absent (set IPK_FIXTURES); multibase vectors skipped")
    return
  end
  local vec = support.json_file(fx .. "/multibase/multibase_vectors.json").vectors
  local skipped = {}
  for _, v in ipairs(vec) do
    if UNSUPPORTED[v.encoding] then skipped[#skipped + 1] = v end
  end
  pending(#skipped .. " base256emoji vectors skipped: base256emoji not supported")

  it("round-trips every canonical vector of the supported bases", function()
    local n = 0
    for _, v in ipairs(vec) do
      if v.canonical and not UNSUPPORTED[v.encoding] then
        local data = unhex(v.input_hex)
        assert.equal(v.multibase, cid.multibase.encode(v.prefix, data), v.encoding)
        local got, prefix = cid.multibase.decode(v.multibase)
        assert.equal(data, got, v.encoding)
        assert.equal(v.prefix, prefix)
        n = n + 1
      end
    end
    assert.equal(66, n)
  end)

  it("decodes every case-insensitive (non-canonical) vector", function()
    local n = 0
    for _, v in ipairs(vec) do
      if not v.canonical and not UNSUPPORTED[v.encoding] then
        assert.equal(unhex(v.input_hex), cid.multibase.decode(v.multibase), v.multibase)
        n = n + 1
      end
    end
    assert.equal(12, n)
  end)

  it("rejects unknown prefixes, bad characters and bad lengths", function()
    for _, s in ipairs { "", "?abc", "b1", "zO0l", "f0", "fzz", "ma", "b" .. "a", "c=aaaaaaa" } do
      local ok, _, name = cid.multibase.decode(s)
      assert.is_nil(ok, s)
      assert.equal("EBASE", name, s)
    end
  end)

  it("keeps leading zero bytes in radix bases", function()
    for _, p in ipairs { "z", "Z", "k", "9" } do
      local data = "\0\0\1\2"
      assert.equal(data, cid.multibase.decode(cid.multibase.encode(p, data)), p)
      assert.equal("\0\0", cid.multibase.decode(cid.multibase.encode(p, "\0\0")), p)
    end
  end)
end)
