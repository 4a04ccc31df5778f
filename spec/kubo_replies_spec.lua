-- Kubo RPC replies of an unexpected shape (regressions from fuzz/fuzz_kubo.c,
-- inputs in fuzz/regressions/kubo/): a node's JSON is input, so a reply
-- that is not an object, or a field of the wrong type, is nil, msg,
-- "EFORMAT", never a Lua error in the client and never nil without a
-- message. http.request/http.open are stubbed to answer a canned body.
local http = require "ipk.http"
local kubo = require "ipk.kubo"
local sched = require "ipk.sched"

local C0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"

describe("ipk.kubo reply shapes", function()
  local request, open, body
  setup(function()
    request, open = http.request, http.open
    http.request = function() return { status = 200, body = body, headers = {}, bytes_in = #body } end
    http.open = function()
      local lines = {}
      for l in body:gmatch("[^\n]+") do lines[#lines + 1] = l end
      local i = 0
      return {
        status = 200,
        line = function() i = i + 1; return lines[i] end,
        cancel = function() end, close = function() end, header = function() end,
      }
    end
  end)
  teardown(function() http.request, http.open = request, open end)

  local c = kubo.new { url = "http://127.0.0.1:1" }
  local function call(reply, fn)
    body = reply
    return sched.run_task(function() return fn(c) end)
  end
  local function eformat(reply, fn, pattern)
    local v, msg, name = call(reply, fn)
    assert.is_nil(v)
    assert.are.equal("EFORMAT", name)
    assert.matches(pattern, msg)
  end

  it("a reply that is not a JSON object", function()
    eformat("5", function(k) return k:pin_add(C0) end, "^kubo: pin/add: reply is not a JSON object: 5$")
    eformat("null", function(k) return k:id() end, "^kubo: id: reply is not a JSON object")
    eformat('"x"', function(k) return k:swarm_peers() end, "not a JSON object")
  end)

  it("fields of the wrong type", function()
    eformat('{"Pins":"x"}', function(k) return k:pin_add(C0) end,
      "^kubo: pin/add: reply field Pins is string, expected a table$")
    eformat('{"Pins":1}', function(k) return k:pin_rm(C0) end, "reply field Pins is number")
    eformat('{"Path":null}', function(k) return k:name_resolve("k") end, "reply field Path is missing")
    eformat('{"Keys":{"a":5}}', function(k) return k:pin_ls() end, "^kubo: pin/ls: entry a is not an object$")
    eformat('{"Keys":5}', function(k) return k:pin_ls() end, "Keys is not an object")
    eformat('{"Strings":5}', function(k) return k:pubsub_ls() end, "reply field Strings is number")
    eformat('{"Strings":"s"}', function(k) return k:pubsub_peers("t") end, "reply field Strings is string")
    eformat('{"Strings":true}', function(k) return k:swarm_connect("/ip4/1.2.3.4") end, "Strings is boolean")
    eformat('{"Peers":"p"}', function(k) return k:swarm_peers() end, "reply field Peers is string")
    eformat('{"Key":"x"}', function(k) return k:block_stat(C0) end, "^kubo: block/stat: reply has no Size")
    eformat('{"data":"uaGk","topicIDs":5}', function(k) return assert(k:pubsub_sub("t")):next() end,
      "^kubo: pubsub/sub: message topicIDs is not a list")
  end)

  it("a missing field is an error, not nil without a message", function()
    eformat("{}", function(k) return k:name_resolve("k51") end,
      "^kubo: name/resolve: reply field Path is missing, expected a string$")
  end)

  it("well-formed replies still read as before", function()
    assert.are.same({ C0 }, call('{"Pins":["' .. C0 .. '"]}', function(k) return k:pin_add(C0) end))
    assert.are.same({}, call("{}", function(k) return k:pin_rm(C0) end))
    assert.are.same({}, call('{"Pins":null}', function(k) return k:pin_rm(C0) end))
    assert.are.same({ [C0] = "recursive" },
      call('{"Keys":{"' .. C0 .. '":{"Type":"recursive"}}}', function(k) return k:pin_ls() end))
    assert.are.equal("/ipfs/" .. C0, call('{"Path":"/ipfs/' .. C0 .. '"}', function(k) return k:name_resolve("k") end))
    assert.are.same({ Key = C0, Size = 11 }, call('{"Size":11}', function(k) return k:block_stat(C0) end))
    assert.are.same({ "t" }, call('{"Strings":["udA"]}', function(k) return k:pubsub_ls() end))
    local m = call('{"from":"p","data":"uaGk","seqno":"uAAE","topicIDs":["udA"]}',
      function(k) return assert(k:pubsub_sub("t")):next() end)
    assert.are.same({ "t" }, m.topics)
    assert.are.equal("hi", m.data)
  end)
end)
