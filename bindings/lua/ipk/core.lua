--- ipk.core: the FFI binding of libipk.
-- Declares the C API once at load time (ffi.cdef of bindings/lua/ipk/cdef/*)
-- and binds it: inside ipkrun the symbols live in the executable (ffi.C);
-- elsewhere (busted specs, plain luajit) libipk.so is loaded from
-- $IPK_BUILD_DIR or the system library path.
-- Error convention (luv): expected failures return nil, message, name.
local ffi = require "ffi"

local M = {}

for _, part in ipairs { "base", "cid", "store", "ml", "recipe", "io", "detect", "host", "fs", "libc" } do
  ffi.cdef(require("ipk.cdef." .. part))
end

local function bind()
  if pcall(function() return ffi.C.ipk_version end) then return ffi.C end
  local dir = os.getenv("IPK_BUILD_DIR")
  if dir and dir ~= "" then return ffi.load(dir .. "/libipk.so") end
  return ffi.load("ipk")
end

--- The bound library (cdata namespace of ipk_* functions).
M.lib = bind()
--- The host's own functions (bindings/host: line editing) when running
-- inside ipkrun, which exports them; nil elsewhere (plain luajit, busted).
M.host = pcall(function() return ffi.C.ipk_lineedit_read end) and ffi.C or nil
M.ffi = ffi
local lib = M.lib

--- A fresh error buffer for calls that take ipk_errbuf_t*.
function M.errbuf()
  return ffi.new("ipk_errbuf_t")
end

--- Turn a C return code into the luv triple.
-- Prefix convention: a module prefixes its own messages once ("car: ...",
-- "safetensors: ..." come from C); `what` is the caller's context (a path,
-- an operation), never the module's name again. A `what` the message
-- already starts with is not repeated.
-- @param rc int from a core call
-- @param eb optional ipk_errbuf_t with a detail message
-- @param what optional context prefix ("add foo.bin")
-- @return true on success; nil, message, name on failure
function M.check(rc, eb, what)
  if rc >= 0 then return true end
  local detail = eb and ffi.string(eb.msg) or ""
  local msg = ffi.string(lib.ipk_strerror(rc))
  if detail ~= "" then msg = detail end
  if what and what ~= "" and msg:sub(1, #what + 1) ~= what .. ":" then msg = what .. ": " .. msg end
  return nil, msg, ffi.string(lib.ipk_err_name(rc))
end

local errors
--- The error table of IPK_ERRNO_MAP as C knows it: name ("ECID") ->
-- {code = negative int, message = "invalid CID"}. Every name a Lua module
-- returns as the third value of `nil, msg, name` is in it.
function M.errors()
  if errors then return errors end
  errors = {}
  local unknown = ffi.string(lib.ipk_err_name(1)) -- what C names a code outside the table
  for rc = -999, -1 do -- codes run up from IPK__ERR_FIRST (-1000) + 1
    local name = ffi.string(lib.ipk_err_name(rc))
    if name == unknown then break end
    errors[name] = { code = rc, message = ffi.string(lib.ipk_strerror(rc)) }
  end
  return errors
end

--- Library version string.
function M.version() return ffi.string(lib.ipk_version()) end

--- Monotonic time in seconds (float).
function M.now() return tonumber(lib.ipk_now_ns()) / 1e9 end

return M
