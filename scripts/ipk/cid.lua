--- ipk.cid: CIDs, multibase and varints from Lua.
-- Thin wrappers over core/include/ipk/{cid,multibase,varint}.h. A CID is a
-- cdata `ipk_cid_t` (a plain value; copy freely). Expected failures return
-- nil, message, name; misuse (wrong argument types) raises.
local core = require "ipk.core"
local lib, ffi = core.lib, core.ffi

local type, tonumber, error = type, tonumber, error
local ffi_new, ffi_string, ffi_istype, ffi_cast = ffi.new, ffi.string, ffi.istype, ffi.cast

local M = {}

local CID_STR_MAX = 512
local CID_BIN_MAX = 160

--- Multicodec constants used by ipk.
M.codec = { raw = 0x55, ["dag-pb"] = 0x70, ["dag-cbor"] = 0x71, ["libp2p-key"] = 0x72 }
--- Multihash codes supported for hashing, by multicodec name: the functions
-- Kubo accepts for blocks (see core/include/ipk/multihash.h).
M.hash = { identity = 0x00, sha1 = 0x11, ["sha2-256"] = 0x12, ["sha2-512"] = 0x13,
  ["sha3-512"] = 0x14, ["sha3-384"] = 0x15, ["sha3-256"] = 0x16, ["sha3-224"] = 0x17, ["shake-256"] = 0x19,
  ["keccak-224"] = 0x1a, ["keccak-256"] = 0x1b, ["keccak-384"] = 0x1c, ["keccak-512"] = 0x1d,
  ["dbl-sha2-256"] = 0x56 }
for bits = 128, 512, 8 do M.hash["blake2b-" .. bits] = 0xb200 + bits / 8 end
for bits = 8, 256, 8 do M.hash["blake2s-" .. bits] = 0xb240 + bits / 8 end

local cid_ct = ffi.typeof("ipk_cid_t")

local function fail(rc, eb, what)
  return core.check(rc, eb, what)
end

--- Is v an ipk_cid_t cdata (value or pointer)?
function M.is_cid(v)
  return type(v) == "cdata" and (ffi_istype(cid_ct, v) or ffi_istype("ipk_cid_t*", v)
    or ffi_istype("const ipk_cid_t*", v))
end

--- Parse a CID string (CIDv0 "Qm…" or a multibase CIDv1).
-- @param s string
-- @return ipk_cid_t cdata | nil, msg, name
function M.parse(s)
  if type(s) ~= "string" then error("cid.parse: string expected, got " .. type(s), 2) end
  local c, eb = cid_ct(), core.errbuf()
  local rc = lib.ipk_cid_parse(s, c, eb)
  if rc ~= 0 then return fail(rc, eb) end
  return c
end

--- Parse binary CID bytes (must be consumed entirely).
-- @return ipk_cid_t | nil, msg, name
function M.from_bytes(b)
  if type(b) ~= "string" then error("cid.from_bytes: string expected", 2) end
  local c, used = cid_ct(), ffi_new("size_t[1]")
  local rc = lib.ipk_cid_from_bytes(b, #b, c, used)
  if rc ~= 0 then return fail(rc, nil, "cid bytes") end
  if tonumber(used[0]) ~= #b then
    return nil, "cid bytes: " .. (#b - tonumber(used[0])) .. " trailing bytes", "ECID"
  end
  return c
end

local function want_cid(c, fn)
  if type(c) == "string" then
    local p, msg, name = M.parse(c)
    if not p then return nil, msg, name end
    return p
  end
  if not M.is_cid(c) then error(fn .. ": CID (cdata or string) expected", 3) end
  return c
end

--- Binary form of a CID as a Lua string.
function M.to_bytes(c)
  local cc, msg, name = want_cid(c, "cid.to_bytes")
  if not cc then return nil, msg, name end
  local buf = ffi_new("uint8_t[?]", CID_BIN_MAX)
  local n = lib.ipk_cid_to_bytes(cc, buf, CID_BIN_MAX)
  if n < 0 then return fail(n) end
  return ffi_string(buf, n)
end

--- Format a CID. base: a multibase prefix char ("b", "z", "k", …) or nil
-- for the canonical form (v0 base58btc, v1 base32).
-- @return string | nil, msg, name
function M.format(c, base)
  local cc, msg, name = want_cid(c, "cid.format")
  if not cc then return nil, msg, name end
  if base ~= nil and (type(base) ~= "string" or #base ~= 1) then
    error("cid.format: base must be a one-character multibase prefix", 2)
  end
  local cap = CID_STR_MAX
  if base == "0" or base == "7" then cap = CID_BIN_MAX * 8 + 4 end
  local buf = ffi_new("char[?]", cap)
  local rc = lib.ipk_cid_format(cc, base and base:byte() or 0, buf, cap)
  if rc ~= 0 then return fail(rc, nil, "cid.format") end
  return ffi_string(buf)
end

--- Canonical string form.
function M.tostring(c) return M.format(c) end

--- CID of a block: hash data with sha2-256 (or `hash`, a multihash code or
-- name) under version/codec (codec: number or name from cid.codec).
-- @return ipk_cid_t | nil, msg, name
function M.of(version, codec, data, hash)
  if type(codec) == "string" then
    codec = M.codec[codec] or error("cid.of: unknown codec '" .. codec .. "'", 2)
  end
  if type(data) ~= "string" then error("cid.of: data string expected", 2) end
  if type(hash) == "string" then
    hash = M.hash[hash] or error("cid.of: unknown hash '" .. hash .. "'", 2)
  end
  local c = cid_ct()
  local rc = lib.ipk_cid_of_hash(version, codec, hash or 0x12, data, #data, c)
  if rc ~= 0 then return fail(rc, nil, "cid.of") end
  return c
end

--- 1/true when the two CIDs are equal.
function M.equal(a, b)
  local ca = want_cid(a, "cid.equal")
  local cb = want_cid(b, "cid.equal")
  if not ca or not cb then return false end
  return lib.ipk_cid_equal(ca, cb) == 1
end

--- True when data hashes to the CID's multihash.
function M.verify(c, data)
  local cc = want_cid(c, "cid.verify")
  if not cc then return false end
  return lib.ipk_cid_verify(cc, data, #data) == 1
end

--- Fields of a CID as a Lua table {version, codec, hash, digest (binary)}.
function M.inspect(c)
  local cc, msg, name = want_cid(c, "cid.inspect")
  if not cc then return nil, msg, name end
  return {
    version = tonumber(cc.version),
    codec = tonumber(cc.codec),
    hash = tonumber(cc.mh.code),
    digest = ffi_string(cc.mh.digest, cc.mh.len),
  }
end

--- A CIDv1 with the same codec and multihash (v0 becomes dag-pb v1).
function M.to_v1(c)
  local cc, msg, name = want_cid(c, "cid.to_v1")
  if not cc then return nil, msg, name end
  local out = cid_ct(cc)
  out.version = 1
  return out
end

-- multibase ---------------------------------------------------------------

M.multibase = {}

--- Encode bytes with the base named by its prefix char; result includes it.
-- @return string | nil, msg, name
function M.multibase.encode(base, data)
  if type(base) ~= "string" or #base ~= 1 then error("multibase.encode: prefix char expected", 2) end
  if type(data) ~= "string" then error("multibase.encode: data string expected", 2) end
  local cap = tonumber(lib.ipk_multibase_encoded_max(#data))
  local buf, len = ffi_new("char[?]", cap), ffi_new("size_t[1]")
  local rc = lib.ipk_multibase_encode(base:byte(), data, #data, buf, cap, len)
  if rc ~= 0 then return fail(rc, nil, "multibase encode '" .. base .. "'") end
  return ffi_string(buf, len[0])
end

--- Decode a prefixed multibase string.
-- @return bytes, prefix | nil, msg, name
function M.multibase.decode(s)
  if type(s) ~= "string" then error("multibase.decode: string expected", 2) end
  local cap = #s + 8
  local buf, len, base = ffi_new("uint8_t[?]", cap), ffi_new("size_t[1]"), ffi_new("char[1]")
  local rc = lib.ipk_multibase_decode(s, #s, buf, cap, len, base)
  if rc ~= 0 then return fail(rc, nil, "multibase decode") end
  return ffi_string(buf, len[0]), string.char(base[0])
end

-- varint ------------------------------------------------------------------

M.varint = {}

--- Encode an unsigned integer (number < 2^53, or uint64 cdata < 2^63).
-- @return bytes | nil, msg, name
function M.varint.encode(v)
  if type(v) ~= "number" and type(v) ~= "cdata" then error("varint.encode: number expected", 2) end
  if type(v) == "number" and (v < 0 or v ~= math.floor(v)) then
    error("varint.encode: non-negative integer expected", 2)
  end
  local buf = ffi_new("uint8_t[9]")
  local n = lib.ipk_varint_encode(ffi_cast("uint64_t", v), buf)
  if n < 0 then return fail(n, nil, "varint encode") end
  return ffi_string(buf, n)
end

--- Decode a varint at the start of s.
-- @return value (uint64_t cdata), bytes consumed | nil, msg, name
function M.varint.decode(s)
  if type(s) ~= "string" then error("varint.decode: string expected", 2) end
  local v, used = ffi_new("uint64_t[1]"), ffi_new("size_t[1]")
  local rc = lib.ipk_varint_decode(s, #s, v, used)
  if rc ~= 0 then return fail(rc, nil, "varint decode") end
  return v[0], tonumber(used[0])
end

return M
