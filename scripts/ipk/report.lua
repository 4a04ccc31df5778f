--- ipk.report: one self-contained HTML file about a run (`ipkrun report`):
-- inline SVG charts (per-round loss and accuracy, per-client participation
-- and sample counts, step timings) and the lineage graph of the run's steps.
-- No scripts, no external resources: it renders offline and in print.
local runner = require "ipk.run"
local dagjson = require "ipk.dagjson"

local M = {}

local fmt, concat = string.format, table.concat

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end
M.esc = esc

local W, H, PAD, TOP = 560, 270, 44, 40
local SVG_OPEN = '<svg class="%s" id="%s" xmlns="http://www.w3.org/2000/svg"'
  .. ' width="%d" height="%d" viewBox="0 0 %d %d">'
local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd" }

local function nice(v)
  if v == 0 then return "0" end
  if math.abs(v) >= 100 then return fmt("%.0f", v) end
  if math.abs(v) >= 1 then return fmt("%.2f", v) end
  return fmt("%.3f", v)
end

-- Axes with 5 ticks on y from lo to hi; x labels given.
local function axes(out, lo, hi, xlabels)
  out[#out + 1] = fmt('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>', PAD, H - PAD, W - 10, H - PAD)
  out[#out + 1] = fmt('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>', PAD, TOP, PAD, H - PAD)
  for i = 0, 4 do
    local v = lo + (hi - lo) * i / 4
    local y = (H - PAD) - (H - PAD - TOP) * i / 4
    out[#out + 1] = fmt('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>', PAD, y, W - 10, y)
    out[#out + 1] = fmt('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>', PAD - 4, y + 3, nice(v))
  end
  for _, l in ipairs(xlabels or {}) do
    out[#out + 1] = fmt('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>', l[1], H - PAD + 14, esc(l[2]))
  end
end

--- A line chart. series = {{name=, values={...}}}, x = 1..n.
function M.line_chart(id, title, series)
  local n, lo, hi = 0, math.huge, -math.huge
  for _, s in ipairs(series) do
    n = math.max(n, #s.values)
    for _, v in ipairs(s.values) do lo = math.min(lo, v); hi = math.max(hi, v) end
  end
  local out = { fmt(SVG_OPEN, "chart", id, W, H, W, H), fmt('<title>%s</title>', esc(title)) }
  out[#out + 1] = '<rect x="0" y="0" width="100%" height="100%" fill="#fff"/>'
  if n == 0 then
    out[#out + 1] = '<text x="20" y="40">no data</text></svg>'
    return concat(out, "\n")
  end
  if hi == lo then hi = lo + 1 end
  local function X(i) return PAD + (W - 10 - PAD) * ((n == 1) and 0.5 or (i - 1) / (n - 1)) end
  local function Y(v) return (H - PAD) - (H - PAD - TOP) * (v - lo) / (hi - lo) end
  local xl = {}
  local stepn = math.max(1, math.floor(n / 8))
  for i = 1, n, stepn do xl[#xl + 1] = { X(i), tostring(i) } end
  axes(out, lo, hi, xl)
  for k, s in ipairs(series) do
    local pts = {}
    for i, v in ipairs(s.values) do pts[#pts + 1] = fmt("%.1f,%.1f", X(i), Y(v)) end
    local c = COLORS[(k - 1) % #COLORS + 1]
    out[#out + 1] = fmt('<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="2.5" points="%s"/>',
      esc(s.name), c, concat(pts, " "))
    out[#out + 1] = fmt('<text x="%d" y="%d" font-size="11" fill="%s">%s</text>', PAD + 10 + 160 * (k - 1), 16, c, esc(s.name))
  end
  out[#out + 1] = fmt('<text x="%d" y="%d" font-size="11" text-anchor="middle">round</text>', (W + PAD) / 2, H - 8)
  out[#out + 1] = "</svg>"
  return concat(out, "\n")
end

--- A grouped bar chart. groups = {labels={...}, series={{name=, values={...}}}}.
function M.bar_chart(id, title, labels, series)
  local n, hi = #labels, 0
  for _, s in ipairs(series) do for _, v in ipairs(s.values) do hi = math.max(hi, v) end end
  if hi == 0 then hi = 1 end
  local out = { fmt(SVG_OPEN, "chart", id, W, H, W, H), fmt('<title>%s</title>', esc(title)),
    '<rect x="0" y="0" width="100%" height="100%" fill="#fff"/>' }
  if n == 0 then out[#out + 1] = '<text x="20" y="40">no data</text></svg>' return concat(out, "\n") end
  local slot = (W - 10 - PAD) / n
  local bw = slot * 0.8 / #series
  local xl = {}
  for i, l in ipairs(labels) do xl[#xl + 1] = { PAD + slot * (i - 0.5), l } end
  axes(out, 0, hi, xl)
  for k, s in ipairs(series) do
    local c = COLORS[(k - 1) % #COLORS + 1]
    for i, v in ipairs(s.values) do
      local h = (H - PAD - TOP) * v / hi
      out[#out + 1] = fmt('<rect class="bar" data-series="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
        .. '<title>%s %s: %s</title></rect>', esc(s.name), PAD + slot * (i - 1) + slot * 0.1 + bw * (k - 1),
        (H - PAD) - h, bw, h, c, esc(s.name), esc(labels[i]), nice(v))
    end
    out[#out + 1] = fmt('<text x="%d" y="%d" font-size="11" fill="%s">%s</text>', PAD + 10 + 160 * (k - 1), 16, c, esc(s.name))
  end
  out[#out + 1] = "</svg>"
  return concat(out, "\n")
end

--- The lineage graph: steps in layers by dependency depth, edges input -> step.
function M.lineage_svg(steps, order)
  local depth, deps = {}, {}
  for _, name in ipairs(order) do
    deps[name] = {}
    for _, i in pairs(steps[name].inputs or {}) do deps[name][#deps[name] + 1] = i.step end
    table.sort(deps[name])
  end
  local function depth_of(name, guard)
    if depth[name] then return depth[name] end
    if guard[name] or not deps[name] then return 0 end
    guard[name] = true
    local d = 0
    for _, x in ipairs(deps[name]) do d = math.max(d, depth_of(x, guard) + 1) end
    depth[name] = d
    return d
  end
  for _, name in ipairs(order) do depth_of(name, {}) end
  local layers, maxd = {}, 0
  for _, name in ipairs(order) do
    local d = depth[name]
    maxd = math.max(maxd, d)
    layers[d] = layers[d] or {}
    layers[d][#layers[d] + 1] = name
  end
  local maxrow = 1
  for _, l in pairs(layers) do maxrow = math.max(maxrow, #l) end
  local bw, bh, gx, gy = 150, 46, 60, 24
  local w, h = (maxd + 1) * (bw + gx) + 20, maxrow * (bh + gy) + 20
  local pos = {}
  for d = 0, maxd do
    for i, name in ipairs(layers[d] or {}) do pos[name] = { 10 + d * (bw + gx), 10 + (i - 1) * (bh + gy) } end
  end
  local out = { fmt(SVG_OPEN, "chart lineage", "lineage", w, h, w, h),
    '<title>lineage graph</title>', '<rect x="0" y="0" width="100%" height="100%" fill="#fff"/>',
    '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
      .. '<path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>' }
  for _, name in ipairs(order) do
    for _, d in ipairs(deps[name]) do
      local a, b = pos[d], pos[name]
      if a and b then
        out[#out + 1] = fmt('<line class="edge" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555" stroke-width="1.5"'
          .. ' marker-end="url(#arrow)"/>', a[1] + bw, a[2] + bh / 2, b[1], b[2] + bh / 2)
      end
    end
  end
  local fill = { ok = "#d8f0d8", cached = "#dde8f8", failed = "#f8d8d8", skipped = "#eee", cancelled = "#f8ecd0" }
  for _, name in ipairs(order) do
    local p, s = pos[name], steps[name]
    local out_cid = s.output and dagjson.is_link(s.output)
    out[#out + 1] = fmt('<g class="node" data-step="%s"><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="#333"/>'
      .. '<text x="%d" y="%d" font-size="12" font-weight="bold">%s</text><text x="%d" y="%d" font-size="10">%s · %s</text>'
      .. '<title>%s</title></g>',
      esc(name), p[1], p[2], bw, bh, fill[s.status] or "#fff", p[1] + 8, p[2] + 18, esc(name), p[1] + 8, p[2] + 34,
      esc(s.kind), esc(s.status), esc(out_cid or "no output"))
  end
  out[#out + 1] = "</svg>"
  return concat(out, "\n")
end

--- Build the report HTML for run id. Must run inside a task (reads blocks).
-- @return html string or nil, msg
function M.build(id)
  local run, err, name = runner.get_run(id)
  if not run then return nil, err, name end
  if not run.record_cid then return nil, "run " .. run.id .. " has no run record", "ENOENT" end
  local rec, rerr, rname = runner.read_record(run.record_cid)
  if not rec then return nil, "run record " .. run.record_cid .. ": " .. tostring(rerr), rname end
  local rows = runner.run_steps(run.id)
  local order = {}
  for _, r in ipairs(rows) do order[#order + 1] = r.step end
  -- Training outputs (the first fl.train step with a recorded output).
  local history, clients, model_cid
  for _, r in ipairs(rows) do
    if r.kind == "fl.train" and r.output_cid and not history then
      local o = runner.read_record(r.output_cid)
      if o then history, clients, model_cid = o.out.history, o.out.clients, dagjson.is_link(o.out.model) end
    end
  end
  local parts = {}
  local function add(s) parts[#parts + 1] = s end
  add("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ipk run " .. esc(run.id) .. "</title>")
  add("<style>body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
    .. "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    .. "code{font-size:11px}.grid{display:flex;flex-wrap:wrap;gap:16px}.status-ok{color:#080}.status-failed{color:#b00}</style>")
  add("</head><body>")
  add(fmt("<h1>Run %s: %s</h1>", esc(run.id), esc(run.recipe)))
  add(fmt("<p>status <b class=\"status-%s\">%s</b>, started %s UTC, %.3f s. Run record <code>%s</code>; recipe <code>%s</code>.</p>",
    esc(run.status), esc(run.status), os.date("!%Y-%m-%d %H:%M:%S", math.floor(run.started)), run.duration or 0,
    esc(run.record_cid), esc(run.recipe_cid or "-")))
  local pk = {}
  for k in pairs(run.params) do pk[#pk + 1] = k end
  table.sort(pk)
  add("<table><tr><th>param</th><th>value</th></tr>")
  for _, k in ipairs(pk) do add(fmt("<tr><td>%s</td><td>%s</td></tr>", esc(k), esc(run.params[k]))) end
  add("</table>")
  if model_cid then add(fmt("<p>model <code>%s</code></p>", esc(model_cid))) end

  add("<h2>Training</h2><div class=\"grid\">")
  local loss, tloss, acc = {}, {}, {}
  for _, h in ipairs(history or {}) do
    loss[#loss + 1] = h.test_loss or 0
    tloss[#tloss + 1] = h.train_loss or 0
    acc[#acc + 1] = h.test_accuracy or 0
  end
  add(M.line_chart("loss", "loss per round", { { name = "test loss", values = loss }, { name = "train loss", values = tloss } }))
  add(M.line_chart("accuracy", "test accuracy per round", { { name = "test accuracy", values = acc } }))
  add("</div><h2>Clients</h2><div class=\"grid\">")
  local labels, samples, rounds = {}, {}, {}
  for _, c in ipairs(clients or {}) do
    labels[#labels + 1] = tostring(c.id)
    samples[#samples + 1] = c.samples or 0
    rounds[#rounds + 1] = c.rounds or 0
  end
  add(M.bar_chart("samples", "samples per client", labels, { { name = "samples", values = samples } }))
  add(M.bar_chart("participation", "rounds participated per client", labels, { { name = "rounds", values = rounds } }))
  add("</div><h2>Steps</h2><div class=\"grid\">")
  -- Timings: this run's seconds; cached steps show the time the cached
  -- result took when it was computed.
  local tl, tv, cv = {}, {}, {}
  local db = runner.db()
  for _, r in ipairs(rows) do
    tl[#tl + 1] = r.step
    tv[#tv + 1] = r.seconds or 0
    local orig = 0
    if r.status == "cached" and r.key then
      local c = db:query("SELECT seconds FROM step_cache WHERE key = ?", r.key)[1]
      orig = c and c.seconds or 0
    end
    cv[#cv + 1] = orig
  end
  add(M.bar_chart("timings", "step timings (s)", tl, { { name = "this run (s)", values = tv },
    { name = "cached result took (s)", values = cv } }))
  add(M.lineage_svg(rec.steps, order))
  add("</div><table><tr><th>step</th><th>kind</th><th>status</th><th>seconds</th><th>output record</th><th>why</th></tr>")
  for _, r in ipairs(rows) do
    add(fmt("<tr><td>%s</td><td>%s</td><td>%s</td><td>%.3f</td><td><code>%s</code></td><td>%s</td></tr>", esc(r.step),
      esc(r.kind), esc(r.status), r.seconds or 0, esc(r.output_cid or "-"), esc(r.error or r.why or "")))
  end
  add("</table></body></html>\n")
  return concat(parts, "\n")
end

return M
