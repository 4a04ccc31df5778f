--- ipk.backend.embedded: the protocol (ipk.backend) over $IPK_HOME's
-- embedded store (ipk.store): blocks verified on every read and write by
-- the core, pins and gc in ipk.db. The default backend.
local backend = require "ipk.backend.util"
local car = require "ipk.car"
local cid = require "ipk.cid"
local ffi = require("ipk.core").ffi
local unixfs = require "ipk.unixfs"
local store_mod = require "ipk.store"

local type, tostring, ipairs, setmetatable, error, pairs, tonumber = type, tostring, ipairs, setmetatable, error, pairs, tonumber

local M = {}

local E = {}
E.__index = E

--- An embedded backend.
-- @param o {store = an open ipk.store (not closed by this backend) | home = dir}
-- @return backend | nil, msg, name
function M.new(o)
  o = o or {}
  local s, owned = o.store, false
  if not s then
    if type(o.home) ~= "string" then error("backend.embedded: {store=} or {home=} expected", 2) end
    local msg, name
    s, msg, name = store_mod.open(o.home)
    if not s then return nil, msg, name end
    owned = true
  end
  return setmetatable({ kind = "embedded", writable = true, store = s, owned = owned, home = s.home }, E)
end

function E:describe() return "embedded store " .. tostring(self.home) end

function E:put(c, bytes) return self.store:put(c, bytes) end
function E:get(c) return self.store:get(c) end
function E:has(c) return self.store:has(c) end
function E:delete(c) return self.store:del(c) end

function E:stat(c)
  local p, s = backend.want(c)
  if not p then return nil, s, "ECID" end
  local bytes, msg, name = self.store:get(p)
  if not bytes then return nil, msg, name end
  return { cid = s, size = #bytes }
end

function E:pin_add(c, o)
  o = o or {}
  return self.store:pin_add(c, { recursive = o.recursive ~= false, name = o.name })
end

function E:pin_rm(c) return self.store:pin_rm(c) end
function E:pin_has(c) return self.store:pin_has(c) end

function E:pin_ls(o)
  o = o or {}
  local want, msg, name
  if o.cid then
    want, msg, name = backend.want(o.cid)
    if not want then return nil, msg, name end
    want = cid.format(want)
  end
  -- indirect pins (blocks a recursive pin reaches) are not listed here
  local t = o.type or "all"
  local out = {}
  for _, p in ipairs(self.store:pin_ls()) do
    if (not want or p.cid == want) and (t == "all" or p.type == t) then
      out[#out + 1] = { cid = p.cid, type = p.type, name = (p.name ~= "" and p.name) or nil }
    end
  end
  return backend.sort_pins(out)
end

-- Before anything is stored: every block reachable from the roots must be in
-- the file or already in the store, or the pin that follows would fail and
-- leave the file's blocks behind. Returns true or nil, msg, name.
local function check_complete(self, path, zero_len_eof)
  local r, msg, name = car.open(path, { zero_len_eof = zero_len_eof })
  if not r then return nil, msg, name end
  local info = r:info()
  local have, nodes = {}, {}
  while true do
    local c, data = r:next()
    if not c then
      if data then r:close(); return nil, data, "EFORMAT" end
      break
    end
    local s = type(c) == "string" and c or cid.format(c)
    have[s] = true
    local cc = cid.parse(s)
    if cc.codec ~= backend.RAW then nodes[s] = data end
  end
  r:close()
  -- An explicit stack, not recursion: a chain of 20000 linked dag-cbor
  -- blocks overflowed the Lua stack ("car: stack overflow").
  local seen, stack = {}, {}
  for i = #(info.roots or {}), 1, -1 do
    local root = info.roots[i]
    stack[#stack + 1] = { type(root) == "string" and root or cid.format(root), nil }
  end
  while #stack > 0 do
    local top = table.remove(stack)
    local s, from = top[1], top[2]
    if not seen[s] then
      seen[s] = true
      local data
      if backend.is_inline(s) then
        -- An identity CID carries its block: a dag-cbor one still links on.
        local cc = cid.parse(s)
        if tonumber(cc.codec) ~= backend.RAW then data = ffi.string(cc.mh.digest, cc.mh.len) end
      elseif not have[s] then
        if not self.store:has(s) then
          return nil, ("%s: the DAG is incomplete: block %s%s is neither in the file nor in the store; nothing imported")
            :format(path, s, from and (" (linked from " .. from .. ")") or ""), "ENOBLOCK"
        end
      else
        data = nodes[s]
      end
      if data then
        local links, lmsg, lname = backend.links(s, data)
        if not links then return nil, path .. ": " .. lmsg, lname end
        for i = #links, 1, -1 do stack[#stack + 1] = { links[i], s } end
      end
    end
  end
  return true
end

function E:import_car(path, o)
  o = o or {}
  local pin = o.pin_roots ~= false
  if pin then
    local ok, msg, name = check_complete(self, path, o.zero_len_eof)
    if not ok then return nil, msg, name end
  end
  local res, msg, name = car.import(path, { sink = self.store:blocks(), zero_len_eof = o.zero_len_eof })
  if not res then return nil, msg, name end
  if pin then
    for _, r in ipairs(res.roots) do
      local ok, perr, pname = self.store:pin_add(r, { recursive = true, name = o.name })
      if not ok then
        return nil, "imported " .. res.blocks .. " blocks but pinning root " .. r .. " failed: " .. tostring(perr), pname
      end
    end
  end
  return res
end

function E:export_dag(c, path)
  return car.export(c, self.store:blocks(), path)
end

local function unixfs_opts(o, blocks)
  local uo = {}
  for k, v in pairs(o or {}) do if k ~= "pin" and k ~= "name" then uo[k] = v end end
  uo.blocks = blocks
  return uo
end

function E:add(path, o)
  o = o or {}
  local uo = unixfs_opts(o, self.store:blocks())
  if o.only_hash then uo.blocks = nil end
  local res, msg, name = unixfs.add(path, uo)
  if not res then return nil, msg, name end
  if o.pin ~= false and not o.only_hash then
    local ok, perr, pname = self.store:pin_add(res.root, { recursive = true, name = o.name })
    if not ok then return nil, perr, pname end
  end
  return res
end

function E:add_bytes(s, o)
  o = o or {}
  local c, size, name = unixfs.add_bytes(s, unixfs_opts(o, self.store:blocks()))
  if not c then return nil, size, name end
  if o.pin ~= false then
    local ok, perr, pname = self.store:pin_add(c, { recursive = true, name = o.name })
    if not ok then return nil, perr, pname end
  end
  return c, size
end

--- A writer that skips offset bytes and stops after length (nil when
-- neither is given: the plain out).
function M.slicer(out, o)
  if not o or (not o.offset and not o.length) then return out end
  local write
  if type(out) == "function" then write = out
  elseif type(out) == "number" then
    local fd = out
    write = function(s)
      if fd == 1 then io.stdout:write(s) else error("cat: offset/length need stdout, a function or a writer", 3) end
    end
  else write = function(s) return out:write(s) end end
  local skip, left = o.offset or 0, o.length or math.huge
  return function(chunk)
    if skip >= #chunk then skip = skip - #chunk return end
    if skip > 0 then chunk = chunk:sub(skip + 1); skip = 0 end
    if left <= 0 then return end
    if #chunk > left then chunk = chunk:sub(1, left) end
    left = left - #chunk
    write(chunk)
  end
end

function E:cat(c, out, o)
  return unixfs.cat(c, self.store:blocks(), M.slicer(out, o))
end

function E:save(c, path) return unixfs.get(c, self.store:blocks(), path) end
function E:blocks() return self.store:blocks() end
function E:gc() return self.store:gc() end

function E:close()
  if self.owned and self.store then self.store:close() end
  self.store = nil
end

return M
