-- ipk.fl.trainers: the trainer contract and its three kinds. Built-in (C):
-- layouts named like a PyTorch state_dict, learning, determinism, FedProx's
-- proximal_mu (0 = plain SGD bit for bit), errors naming the client,
-- cancellation. exec: a numpy client (examples/pytorch/numpy_client.py),
-- the shard files it receives, and every error path (exit code, timeout,
-- missing or malformed output, NaN, wrong names/shapes/dtypes, bad
-- result.json, cancellation killing the process). lua: a sandboxed script.
-- PyTorch (examples/pytorch/client.py) for two rounds on a Fashion-MNIST
-- subset when Debian's python3-torch is installed.
local ffi = require "ffi"
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
local home_root = support.tmpdir()
ffi.C.setenv("IPK_HOME", home_root .. "/home", 1)

local sched = require "ipk.sched"
local T = require "ipk.fl.tensors"
local trainers = require "ipk.fl.trainers"
local model = require "ipk.fl.model"
local fs = require "ipk.fs"

local function run(fn, ...) return sched.run_task(fn, ...) end

local PY = "/usr/bin/python3"
local function has_py(mods)
  return os.execute(PY .. " -c 'import " .. mods .. "' 2>/dev/null") == 0
end
local have_numpy = has_py("numpy")
local have_torch = have_numpy and has_py("torch")
local EX = support.root .. "/examples/pytorch"

-- Synthetic data: 3 classes in 6-D, well separated blobs; 600 rows.
local F, K, N = 6, 3, 600
local X = ffi.new("float[?]", N * F)
local Y = ffi.new("uint8_t[?]", N)
local TG = ffi.new("float[?]", N * 2) -- regression targets: 2 per row
do
  local r = ffi.new("ipk_rng_t")
  local lib = require("ipk.core").lib
  lib.ipk_rng_seed(r, 5, 0)
  for n = 0, N - 1 do
    Y[n] = n % K
    for f = 0, F - 1 do
      X[n * F + f] = lib.ipk_rng_normal(r) * 0.6 + ((f % K) == Y[n] and 2.5 or 0)
    end
    TG[2 * n] = 1.5 * X[n * F] - 0.5 * X[n * F + 1] + 0.25
    TG[2 * n + 1] = -X[n * F + 2] + 1
  end
end

-- A split over 2 clients (even / odd rows) and a test set (the last 150 rows).
local function split()
  local sp = { features = F, classes = K, clients = {},
               train = { X = X, y = Y, rows = N }, test = { X = X + 450 * F, y = Y + 450, rows = 150 } }
  for c = 0, 1 do
    local idx = ffi.new("uint32_t[?]", 225)
    for i = 0, 224 do idx[i] = 2 * i + c end
    sp.clients[c + 1] = { id = c + 1, n = 225, idx = idx, cid = "rows-" .. c }
  end
  return sp
end
local SP = split()
local function shard(c) return assert(trainers.shard(SP, SP.clients[c], { test_fraction = 0.2, seed = 1 })) end

local function names_shapes(set)
  local out = {}
  for _, n in ipairs(set.names) do out[n] = T.shape_str(set.tensors[n].shape) .. " " .. set.tensors[n].dtype end
  return out
end

local function dist2(a, b)
  local s = 0
  for _, n in ipairs(a.names) do
    local x, y = a.tensors[n], b.tensors[n]
    for i = 0, x.count - 1 do s = s + (x.ptr[i] - y.ptr[i]) ^ 2 end
  end
  return s
end

describe("trainer shards", function()
  it("hold out a seeded, disjoint test part of a client's rows", function()
    local a, b = shard(1), shard(1)
    assert.equal(180, a.train.n)
    assert.equal(45, a.test.n)
    local seen = {}
    for i = 0, a.train.n - 1 do seen[a.train.idx[i]] = true; assert.equal(a.train.idx[i], b.train.idx[i]) end
    for i = 0, a.test.n - 1 do assert.is_nil(seen[a.test.idx[i]]); seen[a.test.idx[i]] = true end
    local n = 0
    for k in pairs(seen) do assert.equal(0, k % 2); n = n + 1 end
    assert.equal(225, n)
    local whole = assert(trainers.shard(SP, SP.clients[2]))
    assert.equal(225, whole.train.n)
    assert.is_nil(whole.test)
    local _, err, name = trainers.shard(SP, SP.clients[1], { test_fraction = 1 })
    assert.equal("EINVAL", name)
    assert.matches("test_fraction", err)
    local c = assert(trainers.central(SP))
    assert.equal(150, c.test.n)
  end)
end)

describe("builtin trainers", function()
  it("name their tensors like a PyTorch state_dict ([out, in], F32)", function()
    local cases = {
      { model.softmax { classes = 3 }, { weight = "[3,6] F32", bias = "[3] F32" } },
      { model.logistic {}, { weight = "[1,6] F32", bias = "[1] F32" }, 2 },
      { model.linear { outputs = 2 }, { weight = "[2,6] F32", bias = "[2] F32" } },
      { model.mlp { classes = 3, hidden = { 8, 5 } }, { ["fc1.weight"] = "[8,6] F32", ["fc1.bias"] = "[8] F32",
        ["fc2.weight"] = "[5,8] F32", ["fc2.bias"] = "[5] F32", ["fc3.weight"] = "[3,5] F32", ["fc3.bias"] = "[3] F32" } },
    }
    for _, c in ipairs(cases) do
      local tr = assert(trainers.resolve(c[1]))
      assert.equal("builtin", tr.kind)
      local set = run(function() return assert(tr.init(tr.spec, F, c[3] or K, 1)) end)
      assert.same(c[2], names_shapes(set))
      assert.equal(c[1].type, set.metadata["ipk.model"])
    end
  end)

  it("initialise an MLP from the seed (He/Xavier), the same bits for the same seed", function()
    local tr = assert(trainers.resolve(model.mlp { classes = 3, hidden = { 16 } }))
    local a, b, c = run(function() return tr.init(tr.spec, F, K, 7), tr.init(tr.spec, F, K, 7), tr.init(tr.spec, F, K, 8) end)
    assert.equal(a:to_safetensors(), b:to_safetensors())
    assert.not_equal(a:to_safetensors(), c:to_safetensors())
    local w = a.tensors["fc1.weight"]
    local s2 = 0
    for i = 0, w.count - 1 do s2 = s2 + w.ptr[i] ^ 2 end
    assert.is_true(s2 > 0)
    for i = 0, 15 do assert.equal(0, a.tensors["fc1.bias"].ptr[i]) end
  end)

  for _, spec in ipairs { model.softmax { classes = 3, lr = 0.1, batch = 16 },
                          model.mlp { classes = 3, hidden = { 12 }, lr = 0.1, batch = 16 } } do
    it(spec.type .. " learns, leaves the global alone, and is deterministic", function()
      local tr = assert(trainers.resolve(spec))
      local sh = shard(1)
      local c = assert(trainers.central(SP))
      run(function()
        local g = assert(tr.init(tr.spec, F, K, 3))
        local gbytes = g:to_safetensors()
        local e0 = assert(tr.evaluate(g, c))
        local cfg = { round = 1, seed = 11, epochs = 3 }
        local u, r = assert(tr.fit(g, sh, cfg))
        assert.equal(gbytes, g:to_safetensors())
        assert.equal(180, r.num_examples)
        assert.is_number(r.metrics.train_loss)
        local e1 = assert(tr.evaluate(u, c))
        assert.equal(150, e1.num_examples)
        assert.is_true(e1.accuracy > 0.95 and e1.accuracy > e0.accuracy, tostring(e1.accuracy))
        assert.is_true(e1.loss < e0.loss)
        local fe = assert(tr.evaluate(u, sh))
        assert.equal(45, fe.num_examples)
        local u2 = assert(tr.fit(g, sh, cfg))
        assert.equal(u:to_safetensors(), u2:to_safetensors())
        local u3 = assert(tr.fit(g, sh, { round = 1, seed = 12, epochs = 3 }))
        assert.not_equal(u:to_safetensors(), u3:to_safetensors())
      end)
    end)
  end

  it("honour FedProx's proximal_mu: 0 is plain SGD bit for bit, mu > 0 pulls towards the global", function()
    for _, spec in ipairs { model.softmax { classes = 3, lr = 0.2 }, model.mlp { classes = 3, hidden = { 10 }, lr = 0.2 },
                            model.logistic { lr = 0.2 }, model.linear { outputs = 2, lr = 0.02 } } do
      local tr = assert(trainers.resolve(spec))
      local sh = shard(2)
      if spec.type == "linear" then sh.train.targets, sh.outputs = TG, 2 end
      if spec.type == "logistic" then
        local yb = ffi.new("uint8_t[?]", N)
        for i = 0, N - 1 do yb[i] = Y[i] == 0 and 1 or 0 end
        sh.train.labels = yb
        sh.keep = yb
      end
      run(function()
        local g = assert(tr.init(tr.spec, F, spec.type == "linear" and 2 or (spec.type == "logistic" and 2 or K), 4))
        -- a global away from zero, so the pull shows
        g = assert(tr.fit(g, sh, { seed = 99, epochs = 1 }))
        local plain = assert(tr.fit(g, sh, { seed = 5, epochs = 2 }))
        local mu0 = assert(tr.fit(g, sh, { seed = 5, epochs = 2, proximal_mu = 0 }))
        -- the same pull per step (lr * mu = 0.4) for every model
        local prox = assert(tr.fit(g, sh, { seed = 5, epochs = 2, proximal_mu = 0.4 / spec.lr }))
        assert.equal(plain:to_safetensors(), mu0:to_safetensors())
        assert.not_equal(plain:to_safetensors(), prox:to_safetensors())
        assert.is_true(dist2(prox, g) < 0.7 * dist2(plain, g), spec.type)
      end)
    end
  end)

  it("fit linear regression (MSE) and binary logistic regression", function()
    run(function()
      local tr = assert(trainers.resolve(model.linear { outputs = 2, lr = 0.05, batch = 10 }))
      local sh = { client = 7, features = F, outputs = 2, train = { X = X, targets = TG, n = 450 },
                   test = { X = X + 450 * F, targets = TG + 900, n = 150 } }
      local g = assert(tr.init(tr.spec, F, 2, 0))
      local u = assert(tr.fit(g, sh, { epochs = 20, seed = 1 }))
      local e = assert(tr.evaluate(u, sh))
      assert.is_nil(e.accuracy)
      assert.is_true(e.mse < 1e-3, tostring(e.mse))
      assert.is_true(math.abs(u.tensors.weight.ptr[0] - 1.5) < 0.02)
      local yb = ffi.new("uint8_t[?]", N)
      for i = 0, N - 1 do yb[i] = Y[i] == 1 and 1 or 0 end
      local lg = assert(trainers.resolve(model.logistic { lr = 0.5 }))
      local lsh = { client = 8, features = F, train = { X = X, labels = yb, n = 450 },
                    test = { X = X + 450 * F, labels = yb + 450, n = 150 } }
      local g2 = assert(lg.init(lg.spec, F, 2, 0))
      local u2 = assert(lg.fit(g2, lsh, { epochs = 5 }))
      local e2 = assert(lg.evaluate(u2, lsh))
      assert.is_true(e2.accuracy > 0.97, tostring(e2.accuracy))
    end)
  end)

  it("refuse a model of another layout, bad config and divergence, naming the client", function()
    local tr = assert(trainers.resolve(model.softmax { classes = 3 }))
    run(function()
      local g = assert(tr.init(tr.spec, F, K, 0))
      local bad = T.new()
      bad:add("weight", "F32", { 3, 5 })
      bad:add("bias", "F32", { 3 })
      local _, err, name = tr.fit(bad, shard(2), {})
      assert.equal("ESHAPE", name)
      assert.matches("^client 2: tensor weight: shape %[3,5%] F32, expected %[3,6%] F32", err)
      local f64 = T.new()
      f64:add("weight", "F64", { 3, 6 })
      f64:add("bias", "F32", { 3 })
      _, err, name = tr.fit(f64, shard(2), {})
      assert.equal("ESHAPE", name)
      assert.matches("dtype", err)
      _, err, name = tr.fit(g, shard(1), { lr = -1 })
      assert.equal("EINVAL", name)
      assert.matches("^client 1: config lr", err)
      _, err, name = tr.fit(g, shard(1), { proximal_mu = 0 / 0 })
      assert.equal("EINVAL", name)
      assert.matches("^client 1: config proximal_mu", err)
      -- divergence: huge inputs and lr
      local big = ffi.new("float[?]", 4 * F)
      for i = 0, 4 * F - 1 do big[i] = 1e30 end
      local lin = assert(trainers.resolve(model.linear { outputs = 1, lr = 10 }))
      local tg = ffi.new("float[4]", { 1e30, -1e30, 1e30, -1e30 })
      local gl = assert(lin.init(lin.spec, F, 1, 0))
      _, err, name = lin.fit(gl, { client = 9, features = F, train = { X = big, targets = tg, n = 4 } }, { epochs = 3 })
      assert.equal("ERANGE", name)
      assert.matches("^client 9: .*diverged", err)
      -- labels out of range
      local y9 = ffi.new("uint8_t[4]", { 0, 1, 7, 0 })
      _, err, name = tr.fit(g, { client = 3, features = F, train = { X = X, labels = y9, n = 4 } }, {})
      assert.equal("EINVAL", name)
      assert.matches("^client 3: .*row 2: label 7", err)
    end)
    -- a spec is plain data: its values are checked at init/fit
    assert.is_table(trainers.resolve { type = "mlp", hidden = { 0 } })
    local _, err, name = run(function()
      local m = assert(trainers.resolve { type = "mlp", classes = 3, hidden = { 0 } })
      return m.init(m.spec, F, K, 0)
    end)
    assert.equal("EINVAL", name)
    assert.matches("hidden%[1%]", err)
    _, err, name = trainers.resolve { kind = "nope" }
    assert.equal("EINVAL", name)
    assert.matches("unknown kind", err)
  end)

  it("stop a long fit when the task is cancelled", function()
    local tr = assert(trainers.resolve(model.mlp { classes = 3, hidden = { 64 }, batch = 1 }))
    local err, dt = run(function()
      local g = assert(tr.init(tr.spec, F, K, 0))
      local t = sched.spawn(function() return tr.fit(g, shard(1), { epochs = 100000 }) end)
      sched.sleep(0.05)
      local t0 = require("ipk.core").now()
      sched.cancel(t, "test stop")
      sched.settle { t }
      return t.err, require("ipk.core").now() - t0
    end)
    assert.equal("cancelled: test stop", err)
    assert.is_true(dt < 2)
  end)
end)

-- Writes a python script into dir and returns its exec trainer spec.
local function pyscript(dir, name, body, extra)
  local path = dir .. "/" .. name .. ".py"
  support.write(path, "import json, os, sys\nsys.path.insert(0, " .. ("%q"):format(EX) .. ")\n"
    .. "import numpy as np\nimport safetensors_np as st\ncfg = json.load(open('config.json'))\n" .. body)
  local spec = { kind = "exec", command = { PY, path }, timeout = 60 }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end

-- Whether process pid has ended (gone, or a zombie) within 3 s.
local function gone(pid)
  local proc = require "ipk.proc"
  for _ = 1, 300 do
    if not proc.alive(pid) then return true end
    os.execute("sleep 0.01")
  end
  return false
end

local function staging_left()
  local list = fs.walk(home_root .. "/home/staging", { depth = 1 }) or {}
  local out = {}
  for _, e in ipairs(list) do if e.path:match("^trainer%.") then out[#out + 1] = e.path end end
  return out
end

describe("exec trainer", function()
  if not have_numpy then
    pending("python3-numpy not installed: exec trainer specs skipped")
    return
  end
  local dir
  setup(function() dir = support.tmpdir() end)
  teardown(function() support.rm_rf(dir) end)

  local function numpy_tr(extra)
    local spec = { kind = "exec", command = { PY, EX .. "/numpy_client.py" }, timeout = 60, lr = 0.1, batch = 16 }
    for k, v in pairs(extra or {}) do spec[k] = v end
    return assert(trainers.resolve(spec))
  end

  it("runs a numpy client: init, fit (with FedProx) and evaluate, interchangeable with the builtin softmax", function()
    local tr = numpy_tr()
    assert.equal("exec", tr.kind)
    local builtin = assert(trainers.resolve(model.softmax { classes = 3 }))
    run(function()
      local g = assert(tr.init(tr.spec, F, K, 0))
      assert.same({ weight = "[3,6] F32", bias = "[3] F32" }, names_shapes(g))
      local c = assert(trainers.central(SP))
      local u, r = assert(tr.fit(g, shard(1), { round = 1, seed = 3, epochs = 2 }))
      assert.equal(180, r.num_examples)
      assert.is_number(r.metrics.train_loss)
      assert.is_true(r.metrics.val_accuracy > 0.9)
      local e = assert(tr.evaluate(u, c))
      local eb = assert(builtin.evaluate(u, c))
      assert.equal(150, e.num_examples)
      assert.is_true(e.accuracy > 0.95)
      assert.is_true(math.abs(e.accuracy - eb.accuracy) < 1e-9)
      assert.is_true(math.abs(e.loss - eb.loss) < 1e-4)
      local p = assert(tr.fit(u, shard(1), { round = 2, seed = 3, epochs = 2, proximal_mu = 5 }))
      local q = assert(tr.fit(u, shard(1), { round = 2, seed = 3, epochs = 2, proximal_mu = 0 }))
      assert.is_true(dist2(p, u) < 0.7 * dist2(q, u))
    end)
    assert.same({}, staging_left())
    tr.close()
  end)

  it("gives the command the documented files: config.json, model and shard safetensors, env", function()
    local tr = assert(trainers.resolve(pyscript(dir, "dump", [[
import shutil
out = os.environ['DUMP']
for f in ['config.json', 'model.safetensors', 'train.safetensors', 'test.safetensors']:
    shutil.copy(f, out + '/' + f)
json.dump({k: v for k, v in os.environ.items() if k.startswith('IPK_TRAINER_')}, open(out + '/env.json', 'w'))
m = st.load('model.safetensors')
st.save(m, 'out.safetensors')
json.dump({'num_examples': 5, 'metrics': {'ok': True, 'name': 'x'}}, open('result.json', 'w'))
]], { env = { DUMP = dir }, lr = 0.3 })))
    local sh = shard(2)
    run(function()
      local g = T.new { ["ipk.model"] = "softmax" }
      g:add("weight", "F32", { 3, 6 })
      g:add("bias", "F32", { 3 })
      g.tensors.weight.ptr[4] = 1.25
      local up, res = assert(tr.fit(g, sh, { round = 4, seed = 77, epochs = 1, proximal_mu = 0.5, hint = "x" }))
      assert.equal(5, res.num_examples)
      assert.same({ ok = true, name = "x" }, res.metrics)
      assert.equal(g:to_safetensors(), up:to_safetensors())
    end)
    local cfg = support.json_file(dir .. "/config.json")
    assert.equal("fit", cfg.mode)
    assert.equal("2", cfg.client)
    assert.equal(4, cfg.round)
    assert.equal(77, cfg.seed)
    assert.equal(0.5, cfg.proximal_mu)
    assert.equal(0.3, cfg.lr)
    assert.equal("x", cfg.hint)
    assert.equal(6, cfg.features)
    assert.equal(3, cfg.classes)
    assert.equal("model.safetensors", cfg.model)
    assert.equal("out.safetensors", cfg.out)
    assert.equal("result.json", cfg.result)
    assert.same({ path = "train.safetensors", rows = 180, cid = cfg.train.cid }, cfg.train)
    assert.equal(45, cfg.test.rows)
    -- the shard file holds exactly the client's rows
    local bytes = support.read(dir .. "/train.safetensors")
    assert.equal(cfg.train.cid, require("ipk.cid").format(assert(require("ipk.cid").of(1, 0x55, bytes))))
    local d = assert(T.from_safetensors(bytes))
    assert.same({ x = "[180,6] F32", y = "[180] I64" }, names_shapes(d))
    for i = 0, 179 do
      local row = sh.train.idx[i]
      assert.equal(Y[row], tonumber(d.tensors.y.ptr[i]))
      for f = 0, F - 1 do assert.equal(X[row * F + f], d.tensors.x.ptr[i * F + f]) end
    end
    local m = assert(T.from_safetensors(support.read(dir .. "/model.safetensors")))
    assert.equal(1.25, m.tensors.weight.ptr[4])
    local env = support.json_file(dir .. "/env.json")
    assert.equal("fit", env.IPK_TRAINER_MODE)
    assert.matches("/config%.json$", env.IPK_TRAINER_CONFIG)
    assert.matches("/train%.safetensors$", env.IPK_TRAINER_TRAIN)
    assert.matches("/out%.safetensors$", env.IPK_TRAINER_OUT)
    tr.close()
  end)

  it("verifies the shard files: a client that writes into one gets a fresh copy next time", function()
    local tr = assert(trainers.resolve(pyscript(dir, "tamper", [[
import base64, hashlib
raw = open(cfg['train']['path'], 'rb').read()
cid = 'b' + base64.b32encode(bytes([1, 0x55, 0x12, 0x20]) + hashlib.sha256(raw).digest()).decode().lower().rstrip('=')
if cid != cfg['train']['cid']:
    sys.exit('train.safetensors does not match its cid')
open(cfg['train']['path'], 'ab').write(b'tampered')
st.save(st.load('model.safetensors'), 'out.safetensors')
json.dump({'num_examples': cfg['train']['rows']}, open('result.json', 'w'))
]])))
    run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      for round = 1, 3 do
        local _, r = assert(tr.fit(g, shard(1), { round = round }))
        assert.equal(180, r.num_examples)
      end
    end)
    tr.close()
  end)

  it("runs at most `parallel` commands at once", function()
    local log = dir .. "/par.log"
    os.remove(log)
    local tr = assert(trainers.resolve { kind = "exec", parallel = 2,
      command = { "sh", "-c", "echo s >> " .. log .. "; sleep 0.2; echo e >> " .. log .. "; exit 1" } })
    local errs = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = sched.spawn(function() local _, err = tr.fit(g, shard(1 + i % 2), {}); return err end)
      end
      return sched.join(tasks)
    end)
    for _, e in ipairs(errs) do assert.matches("exit code 1", e) end
    local depth, peak, n = 0, 0, 0
    for l in support.read(log):gmatch("[^\n]+") do
      depth = depth + (l == "s" and 1 or -1)
      peak = math.max(peak, depth)
      n = n + 1
    end
    assert.equal(10, n)
    assert.equal(2, peak)
    assert.same({}, staging_left())
    local _, err, name = trainers.resolve { kind = "exec", command = { "x" }, parallel = 1.5 }
    assert.equal("EINVAL", name)
    assert.matches("parallel", err)
  end)

  -- every error path: {name, script body or command, expected name, message pattern}
  local W = "st.save({'weight': np.zeros((3, 6), np.float32), 'bias': np.zeros(3, np.float32)}, 'out.safetensors')\n"
  local R = "json.dump({'num_examples': 3, 'metrics': {}}, open('result.json', 'w'))\n"
  local cases = {
    { "a non-zero exit", "sys.stderr.write('line1\\nboom: bad input\\n'); sys.exit(3)\n", "EIO",
      "^client 1: exec trainer '.-': exit code 3:\nline1\nboom: bad input$" },
    { "a crash by signal", "import signal; os.kill(os.getpid(), signal.SIGSEGV)\n", "EIO", "killed by signal 11" },
    { "no out.safetensors", R, "ENOENT", "^client 1: exec trainer '.-' wrote no out%.safetensors" },
    { "no result.json", W, "ENOENT", "wrote no result%.json" },
    { "a malformed out.safetensors", "open('out.safetensors', 'wb').write(b'\\x10' + b'\\0' * 7 + b'{not json')\n" .. R,
      "E", "^client 1: out%.safetensors: " },
    { "NaN in the model",
      "st.save({'weight': np.full((3, 6), np.nan, np.float32), 'bias': np.zeros(3, np.float32)}, 'out.safetensors')\n" .. R,
      "ERANGE", "^client 1: tensor weight: non%-finite value NaN" },
    { "inf in the model",
      "st.save({'weight': np.zeros((3, 6), np.float32), 'bias': np.array([0, np.inf, 0], np.float32)}, 'out.safetensors')\n" .. R,
      "ERANGE", "tensor bias: non%-finite value inf" },
    { "a wrong shape", "st.save({'weight': np.zeros((3, 5), np.float32), 'bias': np.zeros(3, np.float32)}, 'out.safetensors')\n" .. R,
      "ESHAPE", "^client 1: tensor weight: shape %[3,5%] F32, expected %[3,6%] F32" },
    { "a wrong dtype", "st.save({'weight': np.zeros((3, 6), np.float64), 'bias': np.zeros(3, np.float32)}, 'out.safetensors')\n" .. R,
      "ESHAPE", "tensor weight: dtype %[3,6%] F64, expected %[3,6%] F32" },
    { "a missing tensor", "st.save({'weight': np.zeros((3, 6), np.float32)}, 'out.safetensors')\n" .. R,
      "ESHAPE", "tensor bias: missing" },
    { "an extra tensor", "st.save({'weight': np.zeros((3, 6), np.float32), 'bias': np.zeros(3, np.float32), "
      .. "'extra': np.zeros(1, np.float32)}, 'out.safetensors')\n" .. R,
      "ESHAPE", "tensor extra: not in the model" },
    { "malformed result.json", W .. "open('result.json', 'w').write('{\"num_examples\": ')\n", "EFORMAT", "^client 1: result%.json" },
    { "NaN in result.json", W .. "json.dump({'num_examples': 3, 'metrics': {'loss': float('nan')}}, open('result.json', 'w'))\n",
      "ERANGE", "NaN or Infinity" },
    { "a negative num_examples", W .. "json.dump({'num_examples': -1}, open('result.json', 'w'))\n", "EFORMAT",
      "num_examples must be an integer >= 0, got %-1" },
    { "a fractional num_examples", W .. "json.dump({'num_examples': 2.5}, open('result.json', 'w'))\n", "EFORMAT", "num_examples" },
    { "a metric that is not a scalar", W .. "json.dump({'num_examples': 2, 'metrics': {'a': [1]}}, open('result.json', 'w'))\n",
      "EFORMAT", "metric a" },
  }
  for _, c in ipairs(cases) do
    it("rejects " .. c[1] .. " naming the client", function()
      local tr = assert(trainers.resolve(pyscript(dir, "case", c[2])))
      local _, err, name = run(function()
        local g = T.new()
        g:add("weight", "F32", { 3, 6 })
        g:add("bias", "F32", { 3 })
        return tr.fit(g, shard(1), { round = 1 })
      end)
      assert.is_string(err)
      if c[3] == "E" then assert.matches("^E", name) else assert.equal(c[3], name) end
      assert.matches(c[4], err)
      assert.same({}, staging_left())
      tr.close()
    end)
  end

  it("reports the tail of a huge stderr without reading all of it", function()
    -- a 3 GiB sparse stderr (no disk used), then the last words: the whole
    -- file read into memory used to fail ("not enough memory") or take minutes
    local tr = assert(trainers.resolve { kind = "exec", timeout = 30, command = { "sh", "-c",
      'truncate -s 3G "$IPK_TRAINER_DIR/.stderr"; printf "\\nfirst\\nlast words\\n" >> "$IPK_TRAINER_DIR/.stderr"; exit 4' } })
    local t0 = require("ipk.core").now()
    local _, err, name = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      return tr.fit(g, shard(1), {})
    end)
    assert.is_true(require("ipk.core").now() - t0 < 10)
    assert.equal("EIO", name)
    assert.matches("^client 1: exec trainer 'sh %-c .-': exit code 4:\nfirst\nlast words$", err)
    assert.same({}, staging_left())
  end)

  it("refuses a result.json larger than the limit without reading it", function()
    local tr = assert(trainers.resolve { kind = "exec", timeout = 30, command = { "sh", "-c",
      'cp "$IPK_TRAINER_MODEL" "$IPK_TRAINER_OUT"; truncate -s 3G "$IPK_TRAINER_RESULT"' } })
    local _, err, name = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      return tr.fit(g, shard(1), {})
    end)
    assert.equal("EFORMAT", name)
    assert.matches("^client 1: result%.json: 3221225472 bytes, more than the limit of 16777216", err)
    assert.same({}, staging_left())
  end)

  it("refuses an out.safetensors far larger than the global's layout without reading it", function()
    local tr = assert(trainers.resolve { kind = "exec", timeout = 30, command = { "sh", "-c",
      'cp "$IPK_TRAINER_MODEL" "$IPK_TRAINER_OUT"; truncate -s 3G "$IPK_TRAINER_OUT"' } })
    local _, err, name = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      return tr.fit(g, shard(1), {})
    end)
    assert.equal("EFORMAT", name)
    -- 8 + 1e8 + 4 data bytes
    assert.matches("^client 1: out%.safetensors: 3221225472 bytes, more than the 100000012 ", err)
    assert.same({}, staging_left())
  end)

  it("kills a command at its timeout, with its children", function()
    local pidf = dir .. "/gc.pid"
    local tr = assert(trainers.resolve { kind = "exec", timeout = 0.5,
      command = { "sh", "-c", "sleep 30 & echo $! > " .. pidf .. "; echo waiting >&2; wait" } })
    local t0 = require("ipk.core").now()
    local _, err, name = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      return tr.fit(g, shard(1), {})
    end)
    assert.is_true(require("ipk.core").now() - t0 < 10)
    assert.equal("ETIMEDOUT", name)
    assert.matches("^client 1: exec trainer 'sh %-c .-': timed out after 0%.5s %(killed%):\nwaiting$", err)
    -- SIGKILL is delivered asynchronously: the grandchild is gone (or a
    -- zombie of init) within a moment
    local pid = tonumber(support.read(pidf))
    assert.is_true(gone(pid), "grandchild still running")
    assert.same({}, staging_left())
  end)

  it("stops the command when the task is cancelled, and leaves no directory", function()
    local pidf = dir .. "/c.pid"
    os.remove(pidf)
    local tr = assert(trainers.resolve { kind = "exec", command = { "sh", "-c", "echo $$ > " .. pidf .. "; exec sleep 30" } })
    local err, dt = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      local t = sched.spawn(function() return tr.fit(g, shard(1), {}) end)
      for _ = 1, 200 do
        if support.exists(pidf) and #support.read(pidf) > 0 then break end
        sched.sleep(0.01)
      end
      local t0 = require("ipk.core").now()
      sched.cancel(t, "stop it")
      sched.settle { t }
      return t.err, require("ipk.core").now() - t0
    end)
    assert.equal("cancelled: stop it", err)
    assert.is_true(dt < 2)
    local pid = tonumber(support.read(pidf))
    assert.is_true(gone(pid), "the command is still running")
    assert.same({}, staging_left())
  end)

  it("refuses a command that cannot start or is not an argv list", function()
    local tr = assert(trainers.resolve { kind = "exec", command = { "/nonexistent/trainer-bin" } })
    local _, err, name = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      return tr.fit(g, shard(2), {})
    end)
    assert.equal("ENOENT", name)
    assert.matches("^client 2: exec trainer: exec: cannot start '/nonexistent/trainer%-bin'", err)
    _, err, name = trainers.resolve { kind = "exec", command = "python3 client.py" }
    assert.equal("EINVAL", name)
    assert.matches("no shell", err)
    _, err, name = trainers.resolve { kind = "exec", command = { "x" }, timeout = -1 }
    assert.equal("EINVAL", name)
    assert.matches("timeout", err)
    _, err, name = trainers.resolve { kind = "exec", command = { "x" }, env = { ["A B"] = "1" } }
    assert.equal("EINVAL", name)
    assert.matches("env", err)
    _, err, name = trainers.resolve { kind = "exec", command = {} }
    assert.equal("EINVAL", name)
    assert.matches("non%-empty", err)
  end)

  it("evaluates with the command (mode evaluate) and checks its answer", function()
    local tr = assert(trainers.resolve(pyscript(dir, "ev", [[
assert cfg['mode'] == 'evaluate' and 'train' not in cfg
d = st.load(cfg['test']['path'])
json.dump({'num_examples': int(len(d['y'])), 'loss': 0.5, 'accuracy': float((d['y'] == 0).mean()), 'f1': 0.25}, open('result.json', 'w'))
]])))
    local r = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      return assert(tr.evaluate(g, assert(trainers.central(SP))))
    end)
    assert.equal(150, r.num_examples)
    assert.equal(0.5, r.loss)
    assert.equal(0.25, r.f1)
    assert.is_true(math.abs(r.accuracy - 50 / 150) < 1e-12)
    local bad = assert(trainers.resolve(pyscript(dir, "ev2",
      "json.dump({'num_examples': 1, 'loss': 1, 'accuracy': 7}, open('result.json', 'w'))\n")))
    local _, err, name = run(function()
      local g = T.new(); g:add("w", "F32", { 1 })
      return bad.evaluate(g, assert(trainers.central(SP)))
    end)
    assert.equal("ERANGE", name)
    assert.matches("^client central: evaluate: accuracy", err)
  end)
end)

describe("lua trainer", function()
  local dir
  setup(function() dir = support.tmpdir() end)
  teardown(function() support.rm_rf(dir) end)

  it("runs a sandboxed script's init, fit and evaluate over tensor views", function()
    local path = dir .. "/halve.lua"
    support.write(path, [[
local T = require("ipk").fl.tensors
return {
  name = "halve",
  init = function(spec, features, classes, seed)
    local s = T.new()
    local w = s:add("w", "F32", { classes, features })
    for i = 0, w.count - 1 do w.ptr[i] = seed end
    return s
  end,
  fit = function(global, shard, config)
    local w = global.tensors.w
    for i = 0, w.count - 1 do w.ptr[i] = w.ptr[i] * 0.5 + (config.proximal_mu or 0) end
    return global, { num_examples = shard.train.n, metrics = { round = config.round } }
  end,
  evaluate = function(tensors, shard)
    return { num_examples = shard.test.n, loss = tensors.tensors.w.ptr[0], accuracy = 0.5 }
  end,
}
]])
    local tr = assert(trainers.resolve { kind = "lua", script = path })
    assert.equal("lua", tr.kind)
    assert.equal("halve", tr.name)
    run(function()
      local g = assert(tr.init(tr.spec, 2, 3, 4))
      assert.same({ w = "[3,2] F32" }, names_shapes(g))
      local u, r = assert(tr.fit(g, shard(1), { round = 2, proximal_mu = 1 }))
      assert.equal(4, g.tensors.w.ptr[0]) -- the global is untouched
      assert.equal(3, u.tensors.w.ptr[0])
      assert.same({ num_examples = 180, metrics = { round = 2 } }, r)
      local e = assert(tr.evaluate(u, shard(1)))
      assert.same({ num_examples = 45, loss = 3, accuracy = 0.5 }, e)
    end)
  end)

  it("turns a script's errors and bad results into errors naming the client", function()
    local tr = assert(trainers.resolve { kind = "lua",
      fit = function(global, _, config)
        if config.mode == "raise" then error("my bug") end
        if config.mode == "shape" then
          local s = T.new(); s:add("w", "F32", { 2 }); return s, { num_examples = 1 }
        end
        if config.mode == "nan" then global.tensors.w.ptr[0] = 0 / 0; return global, { num_examples = 1 } end
        return global, { num_examples = -3 }
      end,
      evaluate = function() return { num_examples = 1 } end })
    run(function()
      local g = T.new(); g:add("w", "F32", { 3 })
      local _, err, name = tr.fit(g, shard(2), { mode = "raise" })
      assert.equal("EINVAL", name)
      assert.matches("^client 2: .*my bug", err)
      _, err, name = tr.fit(g, shard(2), { mode = "shape" })
      assert.equal("ESHAPE", name)
      assert.matches("^client 2: tensor w: shape %[2%]", err)
      _, err, name = tr.fit(g, shard(2), { mode = "nan" })
      assert.equal("ERANGE", name)
      assert.matches("^client 2: tensor w: non%-finite", err)
      _, err, name = tr.fit(g, shard(2), {})
      assert.equal("EFORMAT", name)
      assert.matches("^client 2: num_examples", err)
      _, err, name = tr.evaluate(g, shard(2))
      assert.equal("EFORMAT", name)
      assert.matches("loss", err)
    end)
    local _, err, name = trainers.resolve { kind = "lua", script = dir .. "/missing.lua" }
    assert.equal("ENOENT", name)
    assert.matches("missing%.lua", err)
    support.write(dir .. "/nofit.lua", "return { evaluate = function() end }")
    _, err, name = trainers.resolve { kind = "lua", script = dir .. "/nofit.lua" }
    assert.equal("EINVAL", name)
    assert.matches("must provide", err)
    support.write(dir .. "/io.lua", "io.open('/etc/passwd'); return {}")
    _, err, name = trainers.resolve { kind = "lua", script = dir .. "/io.lua" }
    assert.is_string(err)
    assert.is_string(name)
  end)
end)

describe("PyTorch exec client (examples/pytorch/client.py)", function()
  local fm = "/usr/share/datasets/fashion-mnist"
  if not have_torch or not support.exists(fm .. "/train-labels-idx1-ubyte.gz") then
    -- scripts/dev.sh test installs both: in CI a skip would hide the spec
    if os.getenv("CI") == "true" then
      it("needs python3-torch and dataset-fashion-mnist in CI", function()
        error("python3-torch or dataset-fashion-mnist is not installed (scripts/dev.sh test installs them)")
      end)
    else
      pending("python3-torch or dataset-fashion-mnist not installed: PyTorch client spec skipped")
    end
    return
  end
  it("trains a CNN federatedly for two rounds on a Fashion-MNIST subset", function()
    local idxmod = require "ipk.dataset.idx"
    local res = run(function()
      local im = assert(idxmod.load(fm .. "/train-images-idx3-ubyte.gz"))
      local lb = assert(idxmod.load(fm .. "/train-labels-idx1-ubyte.gz"))
      local tim = assert(idxmod.load(fm .. "/t10k-images-idx3-ubyte.gz"))
      local tlb = assert(idxmod.load(fm .. "/t10k-labels-idx1-ubyte.gz"))
      local tr_x, te_x = idxmod.features(im), idxmod.features(tim)
      -- two clients, 800 rows each (even and odd rows of the first 1600)
      local clients = {}
      for c = 1, 2 do
        local idx = ffi.new("uint32_t[800]")
        for i = 0, 799 do idx[i] = 2 * i + c - 1 end
        clients[c] = { id = c, n = 800, idx = idx, cid = "torch-" .. c }
      end
      local sp = { features = tr_x.features, classes = 10, clients = clients,
                   train = { X = tr_x.X, y = lb.data }, test = { X = te_x.X, y = tlb.data, rows = 1000 } }
      local tr = assert(trainers.resolve { kind = "exec", command = { PY, EX .. "/client.py" }, timeout = 600,
        lr = 0.05, batch = 32, epochs = 1 })
      local g = assert(tr.init(tr.spec, sp.features, 10, 1))
      local central = assert(trainers.central(sp))
      local e0 = assert(tr.evaluate(g, central))
      local hist = {}
      for round = 1, 2 do
        local ups = {}
        for _, c in ipairs(clients) do
          local u, r = assert(tr.fit(g, assert(trainers.shard(sp, c)), { round = round, seed = round * 10 + c.id }))
          ups[#ups + 1] = { u, r.num_examples }
        end
        -- FedAvg (sample-weighted mean) of the two updates
        local total = 0
        for _, u in ipairs(ups) do total = total + u[2] end
        local avg = g:copy()
        for _, n in ipairs(avg.names) do
          local t = avg.tensors[n]
          for i = 0, t.count - 1 do
            local s = 0
            for _, u in ipairs(ups) do s = s + u[1].tensors[n].ptr[i] * u[2] end
            t.ptr[i] = s / total
          end
        end
        g = avg
        hist[round] = assert(tr.evaluate(g, central))
      end
      tr.close()
      return { e0 = e0, hist = hist, names = names_shapes(g) }
    end)
    assert.equal("[16,1,3,3] F32", res.names["conv1.weight"])
    assert.equal("[10] F32", res.names["fc2.bias"])
    assert.equal(1000, res.hist[2].num_examples)
    assert.is_true(res.e0.accuracy < 0.3)
    assert.is_true(res.hist[2].accuracy > 0.6, "accuracy after 2 rounds: " .. res.hist[2].accuracy)
  end)
end)

-- Issue 9: an ensemble (the `ensemble` strategy's member.<i>.<name> model)
-- is evaluated by averaging its members' probabilities.
describe("ensemble evaluation (trainers.evaluate_ensemble)", function()
  local function ensemble(members)
    local e = T.new()
    for i, m in ipairs(members) do
      for _, n in ipairs(m.names) do e:add(T.copy_tensor(m.tensors[n], ("member.%d.%s"):format(i - 1, n))) end
    end
    return e
  end

  it("averages member probabilities: two copies of a model evaluate as the model; two models by the hand-made mean", function()
    local tr = assert(trainers.resolve(model.softmax { classes = 3, lr = 0.1, batch = 16 }))
    local c = assert(trainers.central(SP))
    run(function()
      local g = assert(tr.init(tr.spec, F, K, 3))
      local u1 = assert(tr.fit(g, shard(1), { round = 1, seed = 1, epochs = 1 }))
      local u2 = assert(tr.fit(g, shard(2), { round = 1, seed = 2, epochs = 1, lr = 0.01 }))
      local one = assert(tr.evaluate(u1, c))
      local same = assert(trainers.evaluate_ensemble(tr, ensemble { u1, u1 }, c))
      assert.equal(one.accuracy, same.accuracy)
      assert.is_true(math.abs(one.loss - same.loss) < 1e-5, one.loss .. " vs " .. same.loss)
      assert.equal(150, same.num_examples)
      assert.equal(2, same.members)
      -- the mean of the two members' probabilities, computed here
      local p1, p2 = assert(tr.predict(u1, c)), assert(tr.predict(u2, c))
      assert.equal(3, p1.outputs)
      local correct, loss = 0, 0
      for r = 0, 149 do
        local best, arg = -1, 0
        for k = 0, 2 do
          local p = (p1.ptr[r * 3 + k] + p2.ptr[r * 3 + k]) / 2
          if p > best then best, arg = p, k end
        end
        local y = c.test.labels[c.test.idx and c.test.idx[r] or r]
        if arg == y then correct = correct + 1 end
        loss = loss - math.log((p1.ptr[r * 3 + y] + p2.ptr[r * 3 + y]) / 2)
      end
      local both = assert(trainers.evaluate_ensemble(tr, ensemble { u1, u2 }, c))
      assert.equal(correct / 150, both.accuracy)
      assert.is_true(math.abs(loss / 150 - both.loss) < 1e-9)
      assert.not_equal(one.loss, both.loss)
    end)
  end)

  it("refuses a non-member tensor and a trainer without predict, naming why", function()
    local tr = assert(trainers.resolve(model.softmax { classes = 3 }))
    local c = assert(trainers.central(SP))
    run(function()
      local g = assert(tr.init(tr.spec, F, K, 3))
      local _, err, name = trainers.evaluate_ensemble(tr, g, c)
      assert.equal("EINVAL", name)
      assert.matches("is not member.<i>.<name>", err, 1, true)
      _, err, name = trainers.evaluate_ensemble({ kind = "exec" }, ensemble { g }, c)
      assert.equal("EUNSUPP", name)
      assert.matches("exec trainers do not", err, 1, true)
    end)
  end)
end)
