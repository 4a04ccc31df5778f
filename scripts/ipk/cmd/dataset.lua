--- ipkrun dataset: dataset versions (add, get, list, show, shard, split,
-- diff, verify).
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local ds = require "ipk.dataset"

local M = {}

M.usage = "dataset add PATH --name N [--version V] | get N[@V] -o DIR | list [--name N] | show N[@V]\n"
  .. "      dataset shard N[@V] --count K | split N[@V] [--test 0.2] [--seed S] [--stratify COL]\n"
  .. "      dataset diff A B | verify N[@V]   (A, B: N@V or CID; every subcommand takes --json)"
M.summary = "dataset versions with detected formats and statistics"

local SPEC = {
  name = { kind = "value" }, version = { kind = "value" }, output = { kind = "value", short = "o" },
  count = { kind = "value" }, test = { kind = "value" }, seed = { kind = "value" },
  stratify = { kind = "value" }, json = { kind = "bool" }, format = { kind = "value" },
}

local function line(v)
  local s = v.stats or {}
  return ("%s@%s\t%s\t%s\trows=%s\tbytes=%s"):format(v.name, v.version, v.format or "-", v.cid,
    tostring(s.num_rows or "-"), tostring(s.size_bytes or "-"))
end

function M.run(argv)
  local sub = argv[1]
  local opts, pos = util.parse({ unpack(argv, 2) }, SPEC)
  if not opts then return util.usage_error("dataset", pos) end
  local cmd = "dataset " .. tostring(sub)
  local function out(r, text)
    if opts.json then util.emit_json(r) else io.stdout:write(text, "\n") end
    return 0
  end
  if sub == "add" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected one PATH") end
    if not opts.name then return util.usage_error(cmd, "--name is required") end
    local v, err = ds.add_version { path = pos[1], name = opts.name, version = opts.version }
    if not v then return util.fail(cmd, err) end
    v.splits = nil
    return out(v, line(v))
  elseif sub == "get" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N[@V]") end
    if not opts.output then return util.usage_error(cmd, "-o DIR is required") end
    local v, err = ds.fetch(pos[1], opts.output)
    if not v then return util.fail(cmd, err) end
    return out(v, "saved " .. v.cid .. " to " .. opts.output)
  elseif sub == "list" then
    local rows = ds.list { name = opts.name, format = opts.format }
    if opts.json then util.emit_json({ datasets = json.array(rows), count = #rows }) return 0 end
    for _, v in ipairs(rows) do io.stdout:write(line(v), "\n") end
    return 0
  elseif sub == "show" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N[@V]") end
    local v, err = ds.get(pos[1])
    if not v then return util.fail(cmd, err) end
    return out(v, util.to_json(v))
  elseif sub == "shard" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N[@V]") end
    if not opts.count then return util.usage_error(cmd, "--count K is required") end
    local r, err = ds.shard(pos[1], { count = tonumber(opts.count) or opts.count })
    if not r then return util.fail(cmd, err) end
    local lines = { r.cid }
    for _, s in ipairs(r.shards) do lines[#lines + 1] = s.cid .. "\t" .. s.name end
    return out(r, table.concat(lines, "\n"))
  elseif sub == "split" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N[@V]") end
    local r, err = ds.split_rows(pos[1], { test = opts.test, seed = opts.seed, stratify = opts.stratify })
    if not r then return util.fail(cmd, err) end
    return out(r, ("%s\ttrain %s (%d rows)\ttest %s (%d rows)"):format(r.cid, r.train.cid, r.train.rows,
      r.test.cid, r.test.rows))
  elseif sub == "diff" then
    if #pos ~= 2 then return util.usage_error(cmd, "expected A B") end
    local r, err = ds.diff(pos[1], pos[2])
    if not r then return util.fail(cmd, err) end
    local t = {}
    for _, p in ipairs(r.added) do t[#t + 1] = "+ " .. p end
    for _, p in ipairs(r.removed) do t[#t + 1] = "- " .. p end
    for _, c in ipairs(r.changed) do t[#t + 1] = ("~ %s (%d of %d chunks changed)"):format(c.path, c.chunks_changed, c.chunks) end
    t[#t + 1] = ("%d unchanged, %d bytes shared"):format(r.unchanged, r.bytes_shared)
    return out(r, table.concat(t, "\n"))
  elseif sub == "verify" then
    if #pos ~= 1 then return util.usage_error(cmd, "expected N[@V]") end
    local r, err = ds.verify(pos[1])
    if not r then return util.fail(cmd, err) end
    if not r.ok then
      if opts.json then util.emit_json(r) end
      return util.fail(cmd, r.cid .. ": content re-hashes to " .. r.recomputed)
    end
    -- The stored version is intact; say so, and say when the folder it was
    -- added from no longer gives the same CID (DVC's "modified").
    if r.source and r.source_matches == false then
      io.stderr:write("ipkrun: dataset verify: note: ", r.source, " has changed since it was added (it no longer gives ",
        r.cid, "); add it again for a new version\n")
    end
    return out(r, "ok " .. r.cid .. ((r.source_matches == false) and " (source modified)" or ""))
  end
  return util.usage_error("dataset", "expected add|get|list|show|shard|split|diff|verify (see ipkrun --help)")
end

return M
