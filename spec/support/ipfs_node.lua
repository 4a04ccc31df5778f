--- Test support: real IPFS nodes on loopback for the integration specs.
-- Installs the js-ipfs node (npm ci of spec/support/ipfs-node, pinned by its
-- package-lock.json) into $IPK_BUILD_DIR/ipfs-node once, starts nodes with
-- spec/support/ipfs-node/node.mjs on free loopback ports, and stops them by
-- PID. Every node gets its own repo under a temp dir removed on stop.
local util = require "support.util"

local M = {}

local src = util.root .. "/spec/support/ipfs-node"
M.dir = os.getenv("IPK_IPFS_NODE_DIR") or (util.build .. "/ipfs-node")

local function sh_ok(cmd)
  local code, out, err = util.sh(cmd)
  return code == 0, out, err
end

local function stamp()
  local _, out = sh_ok("cat " .. util.q(src .. "/package.json") .. " " .. util.q(src .. "/package-lock.json")
    .. " | sha256sum | cut -d' ' -f1")
  return (out:gsub("%s+$", ""))
end

--- Install the node (npm ci) unless the install dir already matches the
-- lock file. Returns true or nil, reason (no node/npm: callers skip).
function M.install()
  if M.installed then return true end
  if not sh_ok("(command -v node && command -v npm)") then return nil, "node/npm not installed" end
  local want = stamp()
  local have = util.exists(M.dir .. "/.stamp") and util.read(M.dir .. "/.stamp"):gsub("%s+$", "") or ""
  if have ~= want or not util.exists(M.dir .. "/node_modules/ipfs-core/package.json") then
    os.execute("mkdir -p " .. util.q(M.dir))
    for _, f in ipairs { "package.json", "package-lock.json" } do
      os.execute("cp " .. util.q(src .. "/" .. f) .. " " .. util.q(M.dir .. "/" .. f))
    end
    local ok, _, err = sh_ok("cd " .. util.q(M.dir) .. " && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error")
    if not ok then return nil, "npm ci failed: " .. err end
    util.write(M.dir .. "/.stamp", want .. "\n")
  end
  os.execute("cp " .. util.q(src .. "/node.mjs") .. " " .. util.q(M.dir .. "/node.mjs"))
  M.installed = true
  return true
end

local function sleep(s) os.execute("sleep " .. s) end

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0 or os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end
M.alive = alive

--- Start a node. o: {repo = dir (reused: a restart keeps its blocks),
-- api_port = n (0 = free port)}. Returns {api=, gateway=, swarm=, peer=,
-- pid=, repo=, log=} or raises with the node's log.
function M.start(o)
  o = o or {}
  assert(M.install())
  local repo = o.repo or (util.tmpdir() .. "/repo")
  local log = repo .. ".log"
  os.execute("mkdir -p " .. util.q(repo))
  os.remove(repo .. "/repo.lock")
  os.execute("rm -rf " .. util.q(repo .. "/repo.lock") .. " " .. util.q(repo .. "/api"))
  -- A restart reuses the log path: remove the old log first, or its READY
  -- line (with the dead node's PID) could be read before the new node's
  -- shell truncates the file.
  os.remove(log)
  -- exec: the background job's PID ($!) is the node itself, never a shell
  local p = io.popen("(cd " .. util.q(M.dir) .. " && exec node node.mjs " .. util.q(repo) .. " "
    .. (o.api_port or 0) .. " 0 0 </dev/null >" .. util.q(log) .. " 2>&1) & echo $!")
  local pid = tonumber(p:read("*l")); p:close()
  local deadline = os.time() + 60
  while true do
    local f = io.open(log, "rb")
    local text = f and f:read("*a") or ""
    if f then f:close() end
    local ready = text:match("READY (%b{})")
    if ready then
      local info = require("cjson").decode(ready)
      if info.pid ~= pid then
        os.execute("kill " .. info.pid .. " " .. pid .. " 2>/dev/null")
        error("ipfs node: PID " .. tostring(info.pid) .. " is not the started " .. pid, 2)
      end
      info.repo, info.log = repo, log
      return info
    end
    if not alive(pid) or os.time() > deadline then
      os.execute("kill " .. pid .. " 2>/dev/null")
      error("ipfs node did not start: " .. text, 2)
    end
    sleep(0.1)
  end
end

--- Stop a node by its PID: SIGTERM, then SIGKILL after 10 s. sig = "KILL"
-- kills at once (a crash). The repo stays for a restart unless o.rm.
function M.stop(node, sig)
  if not node or not node.pid then return end
  os.execute("kill -" .. (sig or "TERM") .. " " .. node.pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not alive(node.pid) then break end
    sleep(0.1)
  end
  if alive(node.pid) then os.execute("kill -KILL " .. node.pid .. " 2>/dev/null") end
  node.stopped = true
end

--- Stop and remove the node's temp dir.
function M.destroy(node)
  M.stop(node)
  local d = node.repo and node.repo:match("^(/tmp/ipk%-spec%.[^/]+)/repo$")
  if d then util.rm_rf(d) end
end

--- Start the fault-injecting fake server (spec/support/ipfs-node/fake.mjs)
-- serving files from dir (blocks/<CID>, cars/<CID>.car, tamper). token:
-- require "Authorization: Bearer token". Returns {url=, pid=}.
function M.start_fake(dir, token)
  if not sh_ok("(command -v node)") then error("node not installed", 2) end
  M.nfake = (M.nfake or 0) + 1
  local log = dir .. "/fake" .. M.nfake .. ".log"
  local p = io.popen("(exec node " .. util.q(src .. "/fake.mjs") .. " " .. util.q(dir) .. " " .. (token and util.q(token) or "")
    .. " </dev/null >" .. util.q(log) .. " 2>&1) & echo $!")
  local pid = tonumber(p:read("*l")); p:close()
  for _ = 1, 100 do
    local f = io.open(log, "rb")
    local text = f and f:read("*a") or ""
    if f then f:close() end
    local ready = text:match("READY (%b{})")
    if ready then
      local info = require("cjson").decode(ready)
      info.pid = pid
      return info
    end
    sleep(0.1)
  end
  os.execute("kill " .. pid .. " 2>/dev/null")
  error("fake server did not start", 2)
end

--- True when node and npm exist (the integration specs skip otherwise).
function M.available()
  return sh_ok("(command -v node && command -v npm)")
end

return M
