-- Conformance: multiformats unsigned varint (fixtures/varint/varint_vectors.json).
local cid = require "ipk.cid"
local ffi = require "ffi"

local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end

-- value_hex may exceed 2^53: build it as uint64 from hex digits.
local function value_of(vh)
  local v = ffi.new("uint64_t", 0)
  for d in vh:gsub("^0x", ""):gmatch(".") do v = v * 16 + tonumber(d, 16) end
  return v
end

local ERR = { overflow = "EVARINT", not_minimal = "EVARINT", underflow = "ETRUNC", eof = "ETRUNC" }

describe("varint conformance", function()
  local fx = support.fixtures()
  if not fx then
    pending("fixtures folder absent (set IPK_FIXTURES); varint vectors skipped")
    return
  end
  local vec = support.json_file(fx .. "/varint/varint_vectors.json")

  it("encodes and decodes all " .. #vec.valid .. " valid vectors", function()
    for _, v in ipairs(vec.valid) do
      local want = value_of(v.value_hex)
      local enc = assert(cid.varint.encode(want))
      assert.equal(v.encoded_hex, hex(enc), v.value_hex)
      local got, used = cid.varint.decode(unhex(v.encoded_hex))
      assert.is_true(got == want, v.value_hex)
      assert.equal(v.length, used)
    end
  end)

  it("rejects all " .. #vec.invalid .. " invalid vectors with the right error", function()
    for _, v in ipairs(vec.invalid) do
      local ok, msg, name = cid.varint.decode(unhex(v.encoded_hex))
      assert.is_nil(ok, v.encoded_hex .. " accepted")
      assert.is_string(msg)
      assert.equal(ERR[v.expected_error], name, v.encoded_hex .. " (" .. v.expected_error .. ")")
    end
  end)

  it("reports bytes consumed with trailing data (" .. #vec.decode_with_trailing_bytes .. " vectors)", function()
    for _, v in ipairs(vec.decode_with_trailing_bytes) do
      local got, used = cid.varint.decode(unhex(v.input_hex))
      assert.is_true(got == ffi.new("uint64_t", v.value), v.input_hex)
      assert.equal(v.bytes_consumed, used)
    end
  end)

  it("refuses to encode 2^63", function()
    local ok, _, name = cid.varint.encode(ffi.new("uint64_t", 2) ^ 63)
    assert.is_nil(ok)
    assert.equal("ERANGE", name)
  end)
end)
