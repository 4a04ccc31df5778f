--- ipk.registry.steps: the registry step constructor a recipe uses
-- (ipk.registry.add{...}); it returns a step description the engine runs
-- and memoizes (ipk.run).
local recipe = require "ipk.run.recipe"
local catalog = require "ipk.registry.catalog"

local pairs, error = pairs, error

local M = {}

--- Step: register a trained model. Inputs: model (an fl.train output).
-- Memoized (ipk.run): the key includes the recipe CID (it enters the
-- lineage); the output record is the entry with the model as a link.
M.add = recipe.kind { kind = "registry.add", version = 1, inputs = { model = true }, context = { "recipe_cid" },
  args = { "name", "version" },
  run = function(ctx, args)
    local m = args.model
    local lineage = {}
    for k, v in pairs(m.lineage or {}) do lineage[k] = v end
    lineage.recipe_cid = ctx.recipe_cid
    local e, err = catalog.register { name = args.name, version = args.version, model_cid = m.model_cid,
      framework = m.framework, format = m.format, metrics = m.metrics, params = m.params, lineage = lineage }
    if not e then error(err, 0) end
    ctx.log("registry %s@%s -> %s%s", e.name, e.version, e.model_cid, e.existing and " (already registered)" or "")
    return e
  end,
  encode = function(e)
    local r = {}
    for k, v in pairs(e) do r[k] = v end
    r.model_cid = recipe.link(e.model_cid)
    return r
  end,
  decode = function(r)
    local e = {}
    for k, v in pairs(r) do e[k] = v end
    e.model_cid = recipe.link_cid(r.model_cid)
    -- Restored only while the entry is still registered as recorded (it is
    -- then, by definition, an existing entry); otherwise the step re-runs.
    local cur = catalog.get(e.name, e.version)
    if not cur or cur.model_cid ~= e.model_cid then
      return nil, "registry entry " .. e.name .. "@" .. e.version .. " changed", "ECONFLICT"
    end
    e.existing = true
    return e
  end }

return M
