--- ipkrun verify: walk a model's lineage back to the dataset bytes.
local util = require "ipk.cmd.util"
local cidmod = require "ipk.cid"
local json = require "ipk.json"
local lineage = require "ipk.lineage"

local M = {}

M.usage = "verify CID [--json]"
M.summary = "re-hash every block from CID back through its run records to the dataset bytes; print the chain"

function M.run(argv)
  local opts, pos = util.parse(argv, { json = { kind = "bool" } })
  if not opts then return util.usage_error("verify", pos) end
  if not pos[1] then return util.usage_error("verify", "expected a CID") end
  local c, perr = util.parse_cid(pos[1])
  if not c then return util.fail("verify", perr) end
  local rep, err = lineage.verify(cidmod.format(c))
  if not rep then return util.fail("verify", err) end
  if opts.json then
    for _, e in ipairs(rep.chain) do e.artifacts = json.array(e.artifacts); e.inputs = json.array(e.inputs) end
    rep.chain = json.array(rep.chain)
    util.emit_json(rep)
  else
    local w = io.stdout
    w:write(("%s  (run %s, record %s)\n"):format(rep.cid, rep.run, rep.run_record))
    for _, e in ipairs(rep.chain) do
      w:write(("%s step %s (%s)  output %s\n"):format(e.error and "FAIL" or "ok  ", e.step, e.kind, tostring(e.output_cid)))
      if e.error then w:write("       ", e.error, "\n") end
      for _, a in ipairs(e.artifacts) do
        if a.ok then w:write(("       %s  %d blocks, %d bytes re-hashed\n"):format(a.cid, a.blocks, a.bytes))
        else w:write(("  FAIL %s  %s\n"):format(a.cid, tostring(a.error))) end
      end
      if e.source then
        w:write(("       source %s -> %s %s\n"):format(e.source.path, tostring(e.source.cid),
          e.source.matches and "(matches)" or "(DOES NOT MATCH)"))
      end
      if #e.inputs > 0 then w:write("       from ", table.concat(e.inputs, ", "), "\n") end
    end
    if rep.recipe then w:write(("%s recipe %s\n"):format(rep.recipe.ok and "ok  " or "FAIL", rep.recipe.cid)) end
    w:write(rep.ok and "verified\n" or "VERIFICATION FAILED\n")
  end
  if not rep.ok then
    io.stderr:write("ipkrun: verify: ", rep.cid, ": lineage does not verify\n")
    return 1
  end
  return 0
end

return M
