--- Test files for detection, registry and dataset specs: real files from
-- Debian/npm packages (extracted, never installed: `apt-get download` +
-- `dpkg -x`, `npm pack` + tar) into a cache dir, and minimal files made by
-- independent writers (spec/support/make_files.py: Python, numpy, h5py,
-- protoc). Absent tools or packages: nil + reason (the spec marks its
-- tests pending); with CI=true that is an error.
local u = require "support.util"

local M = {}

M.cache = os.getenv("IPK_TEST_CACHE") or "/tmp/ipk-test-debs"

local function missing(why)
  if os.getenv("CI") == "true" then error("test files unavailable (CI=true requires them): " .. why, 3) end
  return nil, why
end

local function isdir(p)
  return u.sh("test -d " .. u.q(p)) == 0
end

--- Root of the extracted Debian package pkg (cached), or nil, why.
function M.deb(pkg)
  local root = M.cache .. "/x/" .. pkg
  if isdir(root .. "/usr") then return root end
  local cmd = ("mkdir -p %s && cd %s && (ls %s_*.deb >/dev/null 2>&1 || apt-get download %s)"
    .. " && mkdir -p %s && dpkg -x $(ls %s_*.deb | head -1) %s")
    :format(u.q(M.cache), u.q(M.cache), pkg, pkg, u.q(root), pkg, u.q(root))
  local code, _, err = u.sh("(" .. cmd .. ")")
  if code ~= 0 then return missing("Debian package " .. pkg .. ": " .. err:gsub("\n.*", "")) end
  return root
end

--- Root of the npm package pkg's files (`npm pack`, no install scripts), or nil, why.
function M.npm(pkg)
  local name = pkg:gsub("^@", ""):gsub("/", "-")
  local root = M.cache .. "/x/" .. name
  if isdir(root .. "/package") then return root .. "/package" end
  local cmd = ("mkdir -p %s && cd %s && (ls %s-*.tgz >/dev/null 2>&1 || npm pack --silent %s)"
    .. " && mkdir -p %s && tar xzf $(ls %s-*.tgz | head -1) -C %s")
    :format(u.q(M.cache), u.q(M.cache), name, pkg, u.q(root), name, u.q(root))
  local code, _, err = u.sh("(" .. cmd .. ")")
  if code ~= 0 then return missing("npm package " .. pkg .. ": " .. err:gsub("\n.*", "")) end
  return root .. "/package"
end

local made
--- Directory of files written by make_files.py (once per process), or nil, why.
function M.made()
  if made then return made end
  local dir = u.tmpdir()
  local code, _, err = u.sh("/usr/bin/python3 " .. u.q(u.root .. "/spec/support/make_files.py") .. " " .. u.q(dir))
  if code ~= 0 then
    u.rm_rf(dir)
    return missing("make_files.py (needs python3-numpy, python3-h5py, protobuf-compiler): " .. err:gsub("\n$", ""):gsub(".*\n", ""))
  end
  made = dir
  return dir
end

return M
