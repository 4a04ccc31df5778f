-- ipk.recipe: params, DAG order, references, errors with file:line.
local recipe = require "ipk.run.recipe"
local run = require "ipk.run"
local sched = require "ipk.sched"

local function make(steps, params)
  return recipe.recipe { name = "t", params = params or {}, steps = steps }
end

describe("ipk.run.recipe", function()
  it("runs steps in dependency order and passes outputs as inputs", function()
    local seen = {}
    local add = recipe.kind { kind = "test.add", inputs = { from = true }, run = function(_, a)
      seen[#seen + 1] = a.label
      return (a.from or 0) + a.n
    end }
    local r = make({
      c = add { from = "b", n = 100, label = "c" },
      a = add { n = 1, label = "a" },
      b = add { from = "a", n = recipe.param "k", label = "b" },
    }, { k = 10 })
    local out = sched.run_task(run.run_recipe, r, { params = assert(recipe.resolve_params(r, { k = "20" })) })
    assert.same({ "a", "b", "c" }, seen)
    assert.equal(121, out.c)
  end)

  it("checks param overrides against declared types", function()
    local r = make({ a = recipe.step { run = function() return 1 end } },
      { n = { default = 8, type = "integer", min = 1 }, alpha = 0.5, name = "x", on = true })
    local p = assert(recipe.resolve_params(r, { n = "3", alpha = "0", on = "false" }))
    assert.equal(3, p.n); assert.equal(0, p.alpha); assert.equal(false, p.on); assert.equal("x", p.name)
    local _, err = recipe.resolve_params(r, { n = "2.5" })
    assert.equal("param 'n': expected integer, got '2.5'", err)
    _, err = recipe.resolve_params(r, { n = "0" })
    assert.equal("param 'n': 0 is below the minimum 1", err)
    _, err = recipe.resolve_params(r, { bogus = "1" })
    assert.equal("unknown param 'bogus' (recipe 't' has: alpha, n, name, on)", err)
    _, err = recipe.resolve_params(r, { alpha = "abc" })
    assert.equal("param 'alpha': expected number, got 'abc'", err)
  end)

  it("rejects cycles and unknown references naming the recipe line", function()
    local k = recipe.kind { kind = "test.k", inputs = { x = true }, run = function() return 0 end }
    local r = make({ a = k { x = "b" }, b = k { x = "a" } })
    local _, err = recipe.order(r)
    assert.matches("recipe_spec.lua:%d+: cycle: a %-> b %-> a", err)
    r = make({ a = k { x = "nope" } })
    _, err = recipe.order(r)
    assert.matches("recipe_spec.lua:%d+: step 'a': input 'x' names unknown step 'nope'", err)
    -- regression (breaklua): a param as an input was "names unknown step 'table: 0x...'"
    r = make({ a = k { x = recipe.param "n" } }, { n = { default = 1 } })
    _, err = recipe.order(r)
    assert.matches("recipe_spec.lua:%d+: step 'a': input 'x' is ipk.param 'n', not a step name %(inputs name other steps%)$", err)
    r = make({ a = recipe.step { inputs = { y = {} }, run = function() return 0 end } })
    _, err = recipe.order(r)
    assert.matches("recipe_spec.lua:%d+: step 'a': input 'y' is a table, not a step name", err)
  end)

  it("reports a failing step by name", function()
    local r = make({ bad = recipe.step { run = function() error("disk on fire", 0) end } })
    local out, err = sched.run_task(run.run_recipe, r, {})
    assert.is_nil(out)
    assert.equal("step 'bad': disk on fire", err)
  end)

  it("validates the recipe shape", function()
    assert.has_error(function() recipe.recipe { steps = {} } end, "recipe: 'name' (string) is required")
    assert.has_error(function() recipe.recipe { name = "x", steps = { a = 1 } } end,
      "recipe 'x': step 'a' is not a step (use ipk.step{...} or a built-in)")
  end)

  -- Regression (newcomer review): ipk.fl.train { roundz = 2 } or a
  -- misplaced trainer = {...} was dropped silently and the step trained the
  -- default model for 10 rounds.
  it("refuses an argument a built-in step does not take, at the line that wrote it", function()
    local fl, registry = require "ipk.fl", require "ipk.registry"
    local ok, err = pcall(function() local s = fl.train { shards = "s", roundz = 2, trainer = {} }; return s end)
    assert.is_false(ok)
    assert.matches("recipe_spec.lua:%d+: step 'fl.train': unknown arguments 'roundz', 'trainer' %(it takes: ", err)
    assert.matches("rounds", err, 1, true)
    ok, err = pcall(function() return registry.add { model = "m", name = "n", version = "1", alias = "x" } end)
    assert.is_false(ok)
    assert.matches("step 'registry.add': unknown argument 'alias'", err, 1, true)
    local dataset = require "ipk.dataset"
    ok, err = pcall(function() local s = dataset.split { data = "d", client = 4 }; return s end)
    assert.is_false(ok)
    assert.matches("step 'dataset.split': unknown argument 'client'", err, 1, true)
    ok, err = pcall(function() local s = dataset.add { path = "p", name = "n", verison = "1" }; return s end)
    assert.is_false(ok)
    assert.matches("step 'dataset.add': unknown argument 'verison'", err, 1, true)
    -- the arguments every step takes (timeout, retries, after, ...) stay accepted
    assert.is_true(recipe.is_step(fl.train { shards = "s", rounds = 2, timeout = 5, retries = 1, after = { "x" } }))
  end)
end)
