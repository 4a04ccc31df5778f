--- ipkrun fl rounds RUN: the round records (ipk.fl.records) of a run's
-- federated training, oldest first: round, global model CID, participants,
-- metrics, record CID. A run's chain is found from its fl.train step's
-- output record (its `rounds` link) when the step finished, else from the
-- fl_rounds rows the run (or a run it resumed) wrote as rounds ended: an
-- interrupted run lists the rounds it checkpointed. Seconds come from the
-- run database (records hold no wall-clock time); absent for a pulled run.
local util = require "ipk.cmd.util"
local json = require "ipk.json"
local dagjson = require "ipk.dagjson"
local runner = require "ipk.run"
local records = require "ipk.fl.records"

local M = {}

M.usage = "fl rounds RUN [--step STEP] [--json]"
M.summary = "list a run's federated rounds (round records: model CID, participants, metrics), oldest first"

-- step name -> head record CID, for run row `run`.
local function heads(run)
  local out, order = {}, {}
  for _, s in ipairs(runner.run_steps(run.id)) do
    if s.kind == "fl.train" and s.output_cid then
      local rec = runner.read_record(s.output_cid)
      local head = rec and type(rec.out) == "table" and dagjson.is_link(rec.out.rounds)
      if head and not out[s.step] then out[s.step] = head; order[#order + 1] = s.step end
    end
  end
  for _, id in ipairs(records.lineage(run.id)) do
    local seen = {}
    for _, row in ipairs(records.rows(id)) do
      -- rows are by step then round: the last one of a step is its newest
      if not out[row.step] or seen[row.step] then
        if not out[row.step] then order[#order + 1] = row.step end
        out[row.step], seen[row.step] = row.record_cid, true
      end
    end
  end
  return out, order
end

local function entry(e)
  local rec = e.record
  local parts = {}
  for i, p in ipairs(rec.participants or {}) do
    parts[i] = { client = p.client, update = p.update, num_examples = p.num_examples, seed = p.seed,
                 metrics = p.metrics }
  end
  local t = records.timing(e.cid)
  return { round = rec.round, record_cid = e.cid, model_cid = dagjson.is_link(rec.model),
    prev = dagjson.is_link(rec.prev), participants = json.array(parts), rejected = rec.rejected,
    metrics = rec.metrics, strategy = rec.strategy and rec.strategy.name, config = rec.config,
    seconds = t and t.seconds }
end

local function fmt(x, f) return x and (f):format(x) or "-" end

function M.run(argv)
  local opts, pos = util.parse(argv, { step = { kind = "value" } })
  if not opts then return util.usage_error("fl rounds", pos) end
  if #pos ~= 1 then return util.usage_error("fl rounds", "expected one RUN id (see ipkrun runs)") end
  local run, err = runner.get_run(pos[1])
  if not run then return util.fail("fl rounds", err) end
  local hs, order = heads(run)
  if opts.step then
    if not hs[opts.step] then
      return util.fail("fl rounds", "run " .. run.id .. " has no round records for step '" .. opts.step .. "'")
    end
    order = { opts.step }
  end
  if #order == 0 then
    return util.fail("fl rounds", "run " .. run.id .. " has no round records (no fl.train step finished a round)")
  end
  local steps = {}
  for _, name in ipairs(order) do
    local chain, cerr = records.chain(hs[name])
    if not chain then return util.fail("fl rounds", "step '" .. name .. "': " .. tostring(cerr)) end
    local list = {}
    for i, e in ipairs(chain) do list[i] = entry(e) end
    steps[#steps + 1] = { step = name, head = hs[name], rounds = json.array(list) }
  end
  if opts.json then
    util.emit_json({ run = run.id, status = run.status, steps = json.array(steps) })
    return 0
  end
  local w = io.stdout
  for _, s in ipairs(steps) do
    w:write(("run %s  step %s  %d rounds  head %s\n"):format(run.id, s.step, #s.rounds, s.head))
    w:write(("%5s  %-59s  %7s  %10s  %8s  %8s  %7s  %s\n"):format("ROUND", "MODEL", "CLIENTS", "TRAIN_LOSS",
      "ACCURACY", "FED_ACC", "SECONDS", "PARTICIPANTS"))
    for _, r in ipairs(s.rounds) do
      local m = r.metrics or {}
      local ids = {}
      for i, p in ipairs(r.participants) do ids[i] = p.client end
      table.sort(ids)
      local rej = r.rejected and ("  rejected " .. #r.rejected) or ""
      w:write(("%5d  %-59s  %7d  %10s  %8s  %8s  %7s  %s%s\n"):format(r.round, r.model_cid, #r.participants,
        fmt(m.train_loss, "%.4f"), fmt(m.central and m.central.accuracy, "%.4f"),
        fmt(m.federated and m.federated.accuracy, "%.4f"), fmt(r.seconds, "%.2f"), table.concat(ids, ","), rej))
    end
  end
  return 0
end

return M
