-- Conformance: the dag-pb codec (fixtures/dag-pb): decode -> encode gives
-- identical bytes and CID for every positive fixture; every negative decode
-- case is rejected.
local core = require "ipk.core"
local cid = require "ipk.cid"
local lib, ffi = core.lib, core.ffi

local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end

local function decode(bytes)
  local node, eb = ffi.new("ipk_dagpb_node_t"), core.errbuf()
  local rc = lib.ipk_dagpb_decode(bytes, #bytes, node, eb)
  if rc ~= 0 then return nil, ffi.string(eb.msg), ffi.string(lib.ipk_err_name(rc)) end
  return ffi.gc(node, lib.ipk_dagpb_node_free)
end

local function encode(node)
  local out, len = ffi.new("uint8_t*[1]"), ffi.new("size_t[1]")
  assert(lib.ipk_dagpb_encode(node, out, len) == 0)
  local s = ffi.string(out[0], len[0])
  ffi.C.free(out[0])
  return s
end

describe("dag-pb conformance", function()
  local fx = support.fixtures()
  if not fx then
    pending("fixtures folder absent (set IPK_FIXTURES); dag-pb fixtures skipped")
    return
  end
  local index = support.json_file(fx .. "/dag-pb/dagpb_fixtures_index.json").fixtures

  it("round-trips all " .. #index .. " codec fixtures byte for byte", function()
    for _, f in ipairs(index) do
      local bytes = support.read(fx .. "/" .. f.dag_pb_file)
      assert.equal(f.block_hex, (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end)))
      local node, msg = decode(bytes)
      assert.is_not_nil(node, f.name .. ": " .. tostring(msg))
      assert.equal(f.links, tonumber(node.nlinks), f.name)
      assert.equal(f.has_data, node.has_data == 1, f.name)
      for i = 0, tonumber(node.nlinks) - 1 do
        local l = node.links[i]
        local want_name = f.link_names[i + 1]
        if want_name == require("cjson").null then
          assert.equal(0, l.has_name, f.name)
        else
          assert.equal(want_name, ffi.string(l.name, l.name_len), f.name)
        end
        local want_t = f.link_tsizes[i + 1]
        if want_t == require("cjson").null then
          assert.equal(0, l.has_tsize, f.name)
        else
          assert.equal(want_t, tonumber(l.tsize), f.name)
        end
      end
      local again = encode(node)
      assert.is_true(again == bytes, f.name .. ": re-encoding differs")
      assert.equal(f.cid, cid.tostring(cid.of(1, "dag-pb", again)), f.name)
    end
  end)

  it("rejects every negative decode fixture", function()
    local neg = support.json_file(fx .. "/dag-pb/negative/decode_edges.json")
    for _, n in ipairs(neg) do
      local node, msg, name = decode(unhex(n.hex))
      assert.is_nil(node, "accepted: " .. n.name)
      assert.equal("EFORMAT", name, n.name)
      assert.is_string(msg)
    end
    assert.equal(9, #neg)
  end)

  pending("78 encode-negative fixtures skipped: they are IPLD data-model (DAG-JSON) forms; "
    .. "ipk encodes from a typed C struct that cannot express them (no data-model layer)")

  it("rejects other malformed blocks", function()
    for _, h in ipairs {
      "0a0200",          -- Data overruns
      "0a00" .. "0a00",  -- duplicate Data
      "1a00",            -- unknown field 3
      "0800",            -- Data with varint wire type
      "12060a04deadbeef",-- Hash not a CID
      "ff",              -- truncated key
    } do
      local node = decode(unhex(h))
      assert.is_nil(node, h)
    end
  end)
end)
