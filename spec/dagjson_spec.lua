-- ipk.dagjson: canonical DAG-JSON bytes and CIDs (ipk.json's rule plus links).
local dagjson = require "ipk.dagjson"
local json = require "ipk.json"

describe("ipk.dagjson", function()
  it("encodes canonically: sorted keys, no spaces, links, integers and floats", function()
    local v = { b = 1, a = { 1, 2.5, "x\n\"" }, c = dagjson.link("bafkqaaa"), e = dagjson.array {}, f = {}, g = -3 }
    assert.equal('{"a":[1,2.5,"x\\n\\""],"b":1,"c":{"/":"bafkqaaa"},"e":[],"f":{},"g":-3}', dagjson.encode(v))
    assert.equal("0.1", dagjson.encode(0.1))
    assert.equal("1e+300", dagjson.encode(1e300))
    assert.equal("0.3333333333333333", dagjson.encode(1 / 3)) -- shortest digits, not %.17g
    assert.equal("9007199254740992", dagjson.encode(2 ^ 53))
    assert.equal("9007199254740994.0", dagjson.encode(2 ^ 53 + 2)) -- beyond 2^53: a float, never an integer
    assert.equal("1e-7", dagjson.encode(1e-7))
    assert.equal("0", dagjson.encode(-0.0))
    assert.equal('"\\u0001\127"', dagjson.encode("\1\127")) -- DEL is not escaped (JSON.stringify does not)
  end)

  it("sorts keys by their bytes (shorter prefix first, upper case before lower)", function()
    assert.equal('{"A":1,"a":2,"aa":3,"b":4,"é":5}', dagjson.encode({ b = 4, aa = 3, a = 2, A = 1, ["é"] = 5 }))
  end)

  it("round-trips links, empty lists and nested values; same value, same CID", function()
    local v = { z = dagjson.link("bafkqaaa"), list = { 3, 2, 1 }, empty = dagjson.array(), m = {} }
    local bytes = dagjson.encode(v)
    local back = assert(dagjson.decode(bytes))
    assert.equal("bafkqaaa", dagjson.is_link(back.z))
    assert.same({ 3, 2, 1 }, back.list)
    assert.equal(bytes, dagjson.encode(back)) -- [] stays [], {} stays {}
    local c1 = dagjson.cid(v)
    local c2 = dagjson.cid({ m = {}, empty = dagjson.array(), list = { 3, 2, 1 }, z = dagjson.link("bafkqaaa") })
    assert.equal(c1, c2)
    assert.matches("^baguqeera", c1)
    assert.are_not.equal(c1, dagjson.cid({ list = { 3, 2, 1 } }))
    -- the CID of the canonical bytes of {"a":1}, computed by sha256sum + multibase by hand:
    -- ipk.cid is checked against the fixtures in cid_spec; here only that cid() hashes encode()'s bytes.
    local c, b = dagjson.cid({ a = 1 })
    assert.equal('{"a":1}', b)
    assert.equal(require("ipk.cid").format(require("ipk.cid").of(1, 0x0129, '{"a":1}')), c)
  end)

  it("returns an error value (never raises) for what IPLD cannot hold", function()
    local function err(v)
      local ok, s, msg, name = pcall(dagjson.encode, v)
      assert.is_true(ok, "raised: " .. tostring(s))
      assert.is_nil(s)
      return msg, name
    end
    assert.same({ "dagjson: cannot encode a function at $.f", "EINVAL" }, { err({ f = print }) })
    assert.same({ "dagjson: cannot encode nan (NaN and infinities are not JSON) at $", "EINVAL" }, { err(0 / 0) })
    assert.same({ "dagjson: cannot encode inf (NaN and infinities are not JSON) at $.a[2]", "EINVAL" },
      { err({ a = { 1, math.huge } }) })
    assert.same({ "dagjson: cannot encode -inf (NaN and infinities are not JSON) at $.m.x", "EINVAL" },
      { err({ m = { x = -math.huge } }) })
    local t = {}
    t.self = t
    assert.same({ "dagjson: cycle (a table contains itself) at $.self", "EINVAL" }, { err(t) })
    assert.equal("EINVAL", select(2, err({ [true] = 1 })))
    assert.equal("dagjson: cannot encode a number key (DAG-JSON keys are strings) 3 at $", (err({ [1] = 1, [3] = 3 })))
    assert.equal("dagjson: string is not valid UTF-8 (byte 2) at $.s", (err({ s = "a\255" })))
    -- the reserved namespace: "/" first with a string value must be a lone link
    assert.matches("reserved for links", (err({ ["/"] = "bafkqaaa", x = 1 })))
    assert.equal('{".":1,"/":"x"}', dagjson.encode({ ["/"] = "x", ["."] = 1 })) -- "." sorts before "/": allowed
    local cid, msg, name = dagjson.cid(0 / 0)
    assert.is_nil(cid)
    assert.equal("EINVAL", name)
    assert.matches("nan", msg)
  end)

  it("decodes with nil, msg, name on bad input", function()
    local v, msg, name = dagjson.decode('{"a":')
    assert.is_nil(v)
    assert.equal("dagjson: unexpected end of input at byte 6", msg)
    assert.equal("EFORMAT", name)
    v, msg, name = dagjson.decode('{"/":"not a cid"}')
    assert.is_nil(v)
    assert.equal("dagjson: invalid CID 'not a cid' in a link", msg)
    assert.equal("EFORMAT", name)
    v, msg = dagjson.decode('{"/":"bafkqaaa","x":1}')
    assert.is_nil(v)
    assert.matches("must hold only a link", msg)
    v = assert(dagjson.decode('{"!":1,"/":"bafkqaaa"}')) -- "!" sorts first: a plain map
    assert.is_nil(dagjson.is_link(v))
    assert.equal("bafkqaaa", v["/"])
    v, msg, name = dagjson.decode("12345678901234567890")
    assert.is_nil(v)
    assert.equal("ERANGE", name)
    assert.matches("beyond 2%^53", msg)
  end)

  it("shares ipk.json's array mark and null", function()
    assert.equal(json.array, dagjson.array)
    assert.equal(json.null, dagjson.null)
    assert.is_true(json.is_array(assert(dagjson.decode("[]"))))
    assert.equal("[null]", dagjson.encode(assert(dagjson.decode("[null]"))))
  end)
end)
