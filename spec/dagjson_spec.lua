-- ipk.dagjson: canonical DAG-JSON bytes and CIDs.
local dagjson = require "ipk.dagjson"

describe("ipk.dagjson", function()
  it("encodes canonically: sorted keys, no spaces, links, integers and floats", function()
    local v = { b = 1, a = { 1, 2.5, "x\n\"" }, c = dagjson.link("bafkqaaa"), e = dagjson.array {}, f = {}, g = -3 }
    assert.equal('{"a":[1,2.5,"x\\n\\""],"b":1,"c":{"/":"bafkqaaa"},"e":[],"f":{},"g":-3}', dagjson.encode(v))
    assert.equal("0.1", dagjson.encode(0.1))
    assert.equal("1e+300", dagjson.encode(1e300))
    assert.equal('"\\u0001"', dagjson.encode("\1"))
  end)

  it("round-trips links and gives the same CID for the same value", function()
    local v = { z = dagjson.link("bafkqaaa"), list = { 3, 2, 1 } }
    local back = assert(dagjson.decode(dagjson.encode(v)))
    assert.equal("bafkqaaa", dagjson.is_link(back.z))
    assert.same({ 3, 2, 1 }, back.list)
    local c1 = dagjson.cid(v)
    local c2 = dagjson.cid({ list = { 3, 2, 1 }, z = dagjson.link("bafkqaaa") })
    assert.equal(c1, c2)
    assert.matches("^baguqeera", c1)
    assert.are_not.equal(c1, dagjson.cid({ list = { 3, 2, 1 } }))
  end)

  it("refuses what IPLD cannot hold", function()
    assert.has_error(function() dagjson.encode({ f = print }) end, "dagjson: cannot encode a function at $.f")
    assert.has_error(function() dagjson.encode(0 / 0) end, "dagjson: NaN and infinities are not allowed")
    local t = {}
    t.self = t
    assert.has_error(function() dagjson.encode(t) end, "dagjson: cycle at $.self")
    assert.is_nil((dagjson.try_encode({ [true] = 1 })))
  end)
end)
