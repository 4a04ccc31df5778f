--- ipk.kubo: a client of the Kubo RPC API (POST /api/v0/...), on ipk.http.
-- Calls look synchronous inside a task and yield while the request runs.
-- Content is imported locally (ipk's importer, same CIDs as `ipkrun add`
-- offline) and shipped as a CAR through dag/import, so the node's own
-- import defaults never change a CID. Blocks fetched with block/get are
-- verified against their CID before anyone sees them.
--
-- Works with Kubo and with the js-ipfs node the specs run; where js-ipfs
-- differs (shared/ipfs-node/README.md) the requests carry both spellings
-- (format= next to cid-codec= on block/put, a Content-Type on every
-- multipart part), CIDs in replies are parsed and re-formatted canonically
-- (js-ipfs answers base58btc CIDv1, Kubo base32; cid-base=base32 is not
-- sent because js-ipfs rejects it for CIDv0), and a pubsub/sub stream's
-- leading "{}" is skipped.
--
-- Errors: nil, msg, name. An RPC error (HTTP 500 {"Message":…}) gives
-- "kubo: PATH: MESSAGE" with name "EREMOTE"; transport failures keep
-- ipk.http's names (ECONNREFUSED, ETIMEDOUT, ETRUNC…); EVERIFY when the
-- node's bytes do not match the CID; ENOBLOCK when the node cannot find a
-- block in time.
--
-- One module per job, gathered here (callers use `require "ipk.kubo"`):
--   ipk.kubo.rpc     the client, raw calls, errors
--   ipk.kubo.files   add, add_remote, cat
--   ipk.kubo.blocks  block put/get/stat, dag import/export, pins
--   ipk.kubo.pubsub  pub, sub, ls, peers
--   ipk.kubo.name    IPNS and swarm
local rpc = require "ipk.kubo.rpc"
local files = require "ipk.kubo.files"
local blocks = require "ipk.kubo.blocks"
local pubsub = require "ipk.kubo.pubsub"
local name = require "ipk.kubo.name"

local pairs, ipairs = pairs, ipairs

local M = {}

-- One client type: every module's methods on rpc's metatable.
for _, part in ipairs { files, blocks, pubsub, name } do
  for k, f in pairs(part.methods) do rpc.Client[k] = f end
end

M.new = rpc.new
M.verify = blocks.verify
M.topic = pubsub.topic

return M
