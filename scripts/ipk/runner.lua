--- ipk.runner: loads a recipe file and runs it (the first, simple runner:
-- steps in dependency order, no memoization yet; issue 5 grows it).
-- The recipe's bytes are added to the store and pinned: their CID is the
-- recipe CID recorded in every registry entry's lineage.
local recipe = require "ipk.recipe"
local runtime = require "ipk.runtime"

local M = {}

--- Environment a recipe file runs in: the standard library and `ipk`,
-- with global writes kept in the recipe's own table (not _G).
local function recipe_env()
  return setmetatable({}, { __index = _G })
end

--- Load a recipe file without running it.
-- @return recipe, bytes or nil, msg
function M.load(path)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, path .. ": " .. (oerr or "cannot open"):gsub("^[^:]*: ", "") end
  local bytes = f:read("*a")
  f:close()
  local chunk, err = loadstring(bytes, "@" .. path)
  if not chunk then return nil, err end
  setfenv(chunk, recipe_env())
  local ok, r = pcall(chunk)
  if not ok then return nil, tostring(r) end
  if not recipe.is_recipe(r) then return nil, path .. ": does not return ipk.recipe { ... }" end
  return r, bytes
end

--- Run the recipe at path with param overrides (strings or typed values).
-- @return the recipe's result table, or nil, msg
function M.run_file(path, overrides, opts)
  opts = opts or {}
  local r, bytes = M.load(path)
  if not r then return nil, bytes end
  local params, perr = recipe.resolve_params(r, overrides)
  if not params then return nil, perr end
  local store = runtime.store()
  local recipe_cid, aerr = require("ipk.unixfs").add_bytes(bytes, {
    cid_version = 1, raw_leaves = true, chunker = "size-262144", blocks = store:blocks() })
  if not recipe_cid then return nil, "recipe: " .. tostring(aerr) end
  local ok, pin_err = store:pin_add(recipe_cid, { recursive = true, name = "recipe:" .. path:gsub(".*/", "") })
  if not ok then return nil, pin_err end
  runtime.log("recipe %s  cid=%s", r.name, recipe_cid)
  return recipe.run(r, { params = params, log = opts.log or runtime.log,
    recipe_cid = recipe_cid, recipe_path = path })
end

return M
