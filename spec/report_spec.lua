-- ipk.report: `ipkrun report RUN -o report.html` on a real training run,
-- rendered in headless Chromium: the screenshot is not blank (ImageMagick's
-- pixel statistics) and the DOM has the charts' SVG elements.
local u = support
local json = require "cjson"

local DATA = "/usr/share/datasets/fashion-mnist"
local RECIPE = u.root .. "/recipes/fashion_mnist_fedavg.lua"

local function have(cmd) return (u.sh("command -v " .. cmd)) == 0 end

local nprofile = 0
local function chromium(tmp, args)
  -- Root needs --no-sandbox; a fresh profile dir per call (inside tmp, so
  -- it is removed with it); no network.
  nprofile = nprofile + 1
  return u.sh(("timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking"
    .. " --no-first-run --user-data-dir=%s %s"):format(u.q(tmp .. "/profile" .. nprofile), args))
end

describe("ipkrun report", function()
  local tmp, env
  before_each(function()
    tmp = u.tmpdir()
    env = { IPK_HOME = tmp .. "/home" }
  end)
  after_each(function() u.rm_rf(tmp) end)

  it("escapes text and draws lines and bars as SVG", function()
    local report = require "ipk.report"
    assert.equal("a&lt;b&gt;&amp;&quot;", report.esc('a<b>&"'))
    local svg = report.line_chart("t", "t", { { name = "x<y", values = { 1, 2, 3 } } })
    assert.matches('<polyline class="series" data-name="x&lt;y"', svg, 1, true)
    local _, bars = report.bar_chart("b", "b", { "0", "1" }, { { name = "n", values = { 3, 4 } } }):gsub('class="bar"', "")
    assert.equal(2, bars)
  end)

  it("writes a self-contained HTML report that Chromium renders with its charts", function()
    if not u.exists(DATA .. "/train-labels-idx1-ubyte.gz") then
      pending("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
      return
    end
    if not have("chromium") or not have("identify") then
      if os.getenv("CI") == "true" then error("chromium and imagemagick are required (scripts/dev.sh installs them)") end
      pending("chromium or imagemagick not installed (scripts/dev.sh test installs them)")
      return
    end
    local code, out, err = u.ipkrun({ "run", RECIPE, "--param", "clients=4", "--param", "rounds=4", "--json" }, env)
    assert.equal(0, code, err)
    local run = json.decode(out).run
    local html = tmp .. "/report.html"
    code, out, err = u.ipkrun({ "report", run.id, "-o", html }, env)
    assert.equal(0, code, err)
    assert.matches("^wrote ", out)
    local page = u.read(html)
    -- self-contained: no scripts, no external resources
    assert.is_nil(page:find("<script", 1, true))
    assert.is_nil(page:find('src="http', 1, true))
    assert.is_nil(page:find('href="http', 1, true))

    -- The DOM Chromium builds has the charts.
    local c, dom = chromium(tmp, "--dump-dom " .. u.q("file://" .. html))
    assert.equal(0, c)
    for _, id in ipairs { "loss", "accuracy", "samples", "participation", "timings", "lineage" } do
      assert.matches('<svg class="chart[^"]*" id="' .. id .. '"', dom)
    end
    local _, polylines = dom:gsub('<polyline class="series"', "")
    assert.equal(3, polylines)              -- test loss, train loss, accuracy
    local _, bars = dom:gsub('<rect class="bar"', "")
    assert.equal(4 + 4 + 2 * 4, bars)       -- samples, participation (4 clients), timings (4 steps x 2)
    local _, nodes = dom:gsub('<g class="node"', "")
    assert.equal(4, nodes)
    local _, edges = dom:gsub('<line class="edge"', "")
    assert.equal(3, edges)

    -- The screenshot is not blank: pixels vary, and not all are white.
    local png = tmp .. "/shot.png"
    c = chromium(tmp, "--window-size=1280,1600 --screenshot=" .. u.q(png) .. " " .. u.q("file://" .. html))
    assert.equal(0, c)
    local ic, stats = u.sh("identify -format '%[fx:standard_deviation] %[fx:mean] %w %h' " .. u.q(png))
    assert.equal(0, ic)
    local sd, mean, w, h = stats:match("^(%S+) (%S+) (%d+) (%d+)")
    assert.equal(1280, tonumber(w))
    assert.equal(1600, tonumber(h))
    assert.is_true(tonumber(sd) > 0.05, "screenshot looks blank: stddev " .. sd)
    assert.is_true(tonumber(mean) < 0.99, "screenshot is all white: mean " .. mean)
    -- The chart area has the series colours (blue polyline/bars) drawn.
    local _, blue = u.sh("convert " .. u.q(png) .. " -fuzz 10% -fill black -opaque '#1f77b4' -fill white +opaque black"
      .. " -format '%[fx:1-mean]' info:")
    assert.is_true(tonumber(blue) > 0.005, "no chart colour in the screenshot: " .. tostring(blue))
  end)

  it("fails with one line for an unknown run and needs -o", function()
    local code, _, err = u.ipkrun({ "report", "nope", "-o", tmp .. "/r.html" }, env)
    assert.equal(1, code)
    assert.equal("ipkrun: report: no run 'nope' (see ipkrun runs)\n", err)
    assert.is_false(u.exists(tmp .. "/r.html"))
    code = u.ipkrun({ "report", "nope" }, env)
    assert.equal(2, code)
  end)
end)
