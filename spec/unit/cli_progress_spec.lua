-- The progress display of replicate (dynamodb_stream.cli_progress) with a
-- fake clock and a capturing write: the exact text on a terminal and in a
-- log, throttling, rates, lag, truncation, finish, bad options and hostile
-- progress tables.
local cli_progress = require("dynamodb_stream.cli_progress")

-- A display over a fake clock; .out lists every write, .now sets the clock.
local function display(opts)
  local t = { out = {}, time = 0 }
  opts = opts or {}
  opts.write = function(text) t.out[#t.out + 1] = text end
  opts.clock = function() return t.time end
  if opts.width == nil then opts.width = 80 end
  t.display = cli_progress.new(opts)
  function t.at(time, p)
    t.time = time
    t.display:update(p)
    return t
  end
  return t
end

local function scan(scanned, estimated, changes, written)
  return { phase = "scan", scanned = scanned, estimated = estimated, written = written or scanned,
    changes = changes or 0, caught_up = false, elapsed = 1 }
end

local function follow(changes, lag, caught_up)
  return { phase = "follow", scanned = 100, estimated = 100, written = 100, changes = changes, lag = lag,
    caught_up = caught_up or false, elapsed = 1 }
end

local function redraw(text) return "\r" .. text .. "\27[K" end

describe("cli_progress.new: bad options raise, naming the option", function()
  local write = function() end
  local cases = {
    { nil, "opts must be a table" },
    { "x", "opts must be a table" },
    { {}, "opts.write must be a function" },
    { { write = "stdout" }, "opts.write must be a function" },
    { { write = write, colour = true }, "unknown option colour" },
    { { write = write, terminal = "yes" }, "opts.terminal must be a boolean" },
    { { write = write, terminal = 1 }, "opts.terminal must be a boolean" },
    { { write = write, clock = 5 }, "opts.clock must be a function" },
    { { write = write, width = 0 }, "opts.width must be a whole number of columns in 1..100000" },
    { { write = write, width = 80.5 }, "opts.width must be a whole number of columns in 1..100000" },
    { { write = write, width = 0 / 0 }, "opts.width must be a whole number of columns in 1..100000" },
    { { write = write, width = math.huge }, "opts.width must be a whole number of columns in 1..100000" },
    { { write = write, width = 1e6 }, "opts.width must be a whole number of columns in 1..100000" },
    { { write = write, width = "80" }, "opts.width must be a whole number of columns in 1..100000" },
    { { write = write, every = 0 }, "opts.every must be a number of seconds above 0" },
    { { write = write, every = -1 }, "opts.every must be a number of seconds above 0" },
    { { write = write, every = 0 / 0 }, "opts.every must be a number of seconds above 0" },
    { { write = write, every = math.huge }, "opts.every must be a number of seconds above 0" },
    { { write = write, every = "10" }, "opts.every must be a number of seconds above 0" },
  }
  for _, case in ipairs(cases) do
    it(case[2] .. " (" .. tostring(case[1]) .. ")", function()
      local ok, err = pcall(function() local d = cli_progress.new(case[1]) return d end) -- (no tail call: the message points here)
      assert.is_false(ok)
      assert.matches("cli_progress_spec%.lua:%d+: cli_progress%.new: " .. case[2]:gsub("%p", "%%%0") .. "$", err)
    end)
  end

  it("update and finish raise on a progress that is not a table", function()
    local d = display().display
    assert.has_error(function() d:update(nil) end, "display:update: the progress must be a table")
    assert.has_error(function() d:update(5) end, "display:update: the progress must be a table")
    assert.has_error(function() d:finish("done") end, "display:finish: the progress must be a table")
  end)

  it("the width defaults to COLUMNS when it is a whole number of columns, else 80", function()
    local getenv = os.getenv
    local function width_with(columns)
      os.getenv = function(name) if name == "COLUMNS" then return columns end return getenv(name) end
      local ok, t = pcall(function()
        local out = {}
        local d = cli_progress.new({ write = function(s) out[#out + 1] = s end, terminal = true, clock = function() return 0 end })
        d:update(follow(123456789, 1, true))
        return out[1]
      end)
      os.getenv = getenv
      assert(ok, t)
      return #t - #"\r\27[K"
    end
    local full = #"follow 123456789 changes applied, lag 1.0 s, caught up"
    assert.equals(full, width_with(nil))
    assert.equals(19, width_with("20"))
    assert.equals(full, width_with("0"))
    assert.equals(full, width_with("-5"))
    assert.equals(full, width_with("wide"))
    assert.equals(full, width_with("20.5"))
  end)
end)

describe("cli_progress on a terminal", function()
  it("the scan: a bar, the percentage of the estimate, items, items/s, changes", function()
    local t = display({ terminal = true })
    t.at(0, scan(0, 27000))
    t.at(1, scan(1234, 27000, 1))
    t.at(2, scan(12345, 27000, 12))
    t.at(3, scan(27000, 27000, 12))
    assert.same({
      redraw("scan [----------] 0/27000 items (0%), 0 changes applied"),
      redraw("scan [----------] 1234/27000 items (4%), 1234 items/s, 1 change applied"),
      redraw("scan [####------] 12345/27000 items (45%), 6173 items/s, 12 changes applied"),
      redraw("scan [##########] 27000/27000 items (100%), 9000 items/s, 12 changes applied"),
    }, t.out)
  end)

  it("the bar is an eighth of the width, 10 to 30 columns", function()
    local wide = display({ terminal = true, width = 200 }).at(0, scan(50, 100))
    assert.equals(redraw("scan [############-------------] 50/100 items (50%), 0 changes applied"), wide.out[1])
    local widest = display({ terminal = true, width = 1000 }).at(0, scan(1, 3))
    assert.equals(redraw("scan [##########--------------------] 1/3 items (33%), 0 changes applied"), widest.out[1])
  end)

  it("no estimate (0) or more items than estimated: no bar, no percentage, just the count", function()
    local t = display({ terminal = true })
    t.at(0, scan(1, 0))
    t.at(1, scan(500, 0))
    t.at(2, scan(501, 500))
    assert.same({
      redraw("scan 1 item, 0 changes applied"),
      redraw("scan 500 items, 499 items/s, 0 changes applied"),
      redraw("scan 501 items, 250 items/s, 0 changes applied"),
    }, t.out)
  end)

  it("items the transform skipped: written shown when it differs from scanned", function()
    local t = display({ terminal = true }).at(0, scan(100, 200, 3, 90))
    assert.same({ redraw("scan [#####-----] 100/200 items (50%), 90 written, 3 changes applied") }, t.out)
  end)

  it("the follow: changes applied, changes/s, lag, caught up", function()
    local t = display({ terminal = true })
    t.at(0, follow(0))
    t.at(1, follow(1, 12.3))
    t.at(2, follow(5000, 0.44, true))
    assert.same({
      redraw("follow 0 changes applied"),
      redraw("follow 1 change applied, 1.0 changes/s, lag 12 s"),
      redraw("follow 5000 changes applied, 2500 changes/s, lag 0.4 s, caught up"),
    }, t.out)
  end)

  it("redraws at most 10 times a second; every update still counts in the rate", function()
    local t = display({ terminal = true })
    for i = 0, 20 do t.at(i / 32, scan(i * 10, 1000)) end -- 21 updates over 0.625 s
    assert.same({
      redraw("scan [----------] 0/1000 items (0%), 0 changes applied"),
      redraw("scan [----------] 40/1000 items (4%), 320 items/s, 0 changes applied"),   -- 4/32 s later
      redraw("scan [----------] 80/1000 items (8%), 320 items/s, 0 changes applied"),
      redraw("scan [#---------] 120/1000 items (12%), 320 items/s, 0 changes applied"),
      redraw("scan [#---------] 160/1000 items (16%), 320 items/s, 0 changes applied"),
      redraw("scan [##--------] 200/1000 items (20%), 320 items/s, 0 changes applied"),
    }, t.out)
    local busy = display({ terminal = true })
    for i = 0, 999 do busy.at(i / 1000, follow(i)) end -- 1000 updates in a second
    assert.equals(10, #busy.out)
  end)

  it("a text that did not change is not drawn again", function()
    local t = display({ terminal = true })
    t.at(0, follow(7, 1))
    t.at(1, follow(7, 1))
    t.at(2, follow(7, 1))
    t.at(3, follow(7, 1))
    assert.same({
      redraw("follow 7 changes applied, lag 1.0 s"),
      redraw("follow 7 changes applied, 0.0 changes/s, lag 1.0 s"),
    }, t.out)
    t.at(4, follow(7, 2))
    assert.equals(redraw("follow 7 changes applied, 0.0 changes/s, lag 2.0 s"), t.out[3])
  end)

  it("a change of phase, or of caught up, is drawn at once", function()
    local t = display({ terminal = true })
    t.at(0, scan(10, 10))
    t.at(0.01, follow(0))
    t.at(0.02, follow(3, 1, true))
    t.at(0.03, follow(4, 1, false))
    t.at(0.04, follow(5, 1, false)) -- nothing new but the count: throttled
    assert.same({
      redraw("scan [##########] 10/10 items (100%), 0 changes applied"),
      redraw("follow 0 changes applied"),
      redraw("follow 3 changes applied, 300 changes/s, lag 1.0 s, caught up"),
      redraw("follow 4 changes applied, 200 changes/s, lag 1.0 s"), -- 0.02 replaced 0.01 (0.1 s resolution)
    }, t.out)
  end)

  it("never writes a line longer than width - 1 columns", function()
    for _, width in ipairs({ 1, 2, 10, 30, 57, 58, 80 }) do
      local t = display({ terminal = true, width = width })
      t.at(0, scan(123456789, 987654321, 123456789))
      t.at(1, follow(123456789012, 123456, true))
      t.display:finish(follow(123456789013, 1e9, true))
      assert.equals(3, #t.out)
      for _, text in ipairs(t.out) do
        local body = assert(text:match("^\r(.-)\27%[K\n?$"), text)
        assert.is_true(#body <= width - 1, ("%d columns: %q"):format(width, text))
      end
      assert.equals(redraw(("follow 123456789012 changes applied, lag 34 h, caught up"):sub(1, width - 1)), t.out[2])
    end
  end)

  it("interrupt ends the line drawn, and the next update draws a new one at once", function()
    local t = display({ terminal = true })
    t.display:interrupt()                  -- nothing drawn yet: nothing to end
    t.at(0, follow(5, 0.2))
    t.display:interrupt()
    t.display:interrupt()                  -- already ended
    t.at(0.01, follow(6, 0.2))             -- within 0.1 s, yet drawn
    t.at(0.02, follow(7, 0.2))             -- throttled again
    t.display:finish()
    t.display:interrupt()                  -- after finish: nothing
    assert.same({
      redraw("follow 5 changes applied, lag 0.2 s"),
      "\n",
      redraw("follow 6 changes applied, 100 changes/s, lag 0.2 s"),
      redraw("follow 7 changes applied, lag 0.2 s, after 1.0 s") .. "\n",
    }, t.out)
  end)

  it("interrupt writes nothing in a log (every line is ended)", function()
    local t = display()
    t.at(0, follow(5, 0.2))
    t.display:interrupt()
    t.at(1, follow(6, 0.2))
    assert.same({ "replicate: follow 5 changes applied, lag 0.2 s\n" }, t.out)
  end)

  it("finish draws the final line, then one newline, once", function()
    local t = display({ terminal = true })
    t.at(0, follow(5, 0.2))
    t.display:finish(follow(10, 0.5, true))
    t.display:finish(follow(11, 0.5, true))
    t.at(5, follow(12))
    assert.same({
      redraw("follow 5 changes applied, lag 0.2 s"),
      "\r" .. "follow 10 changes applied, lag 0.5 s, caught up, after 1.0 s" .. "\27[K\n", -- the time, not the rate
    }, t.out)
  end)
end)

describe("cli_progress in a log (not a terminal)", function()
  it("one line at the first update, then at most one every 10 s, and at a change of phase", function()
    local t = display()
    for s = 0, 25 do t.at(s, scan(s * 1000, 27000, s)) end
    local first = follow(40, 1.23)
    first.scanned, first.written = 27012, 27000 -- the transform skipped 12
    t.at(25.5, first)
    t.at(26, follow(41, 1.2, true))
    t.at(36, follow(5000, 1.25, true))
    assert.same({
      "replicate: scan 0/27000 items (0%), 0 changes applied\n",
      "replicate: scan 10000/27000 items (37%), 1000 items/s, 10 changes applied\n",
      "replicate: scan 20000/27000 items (74%), 1000 items/s, 20 changes applied\n",
      "replicate: scan done, 27012 items, 27000 written; follow 40 changes applied, lag 1.2 s\n",
      "replicate: follow 5000 changes applied, 496 changes/s, lag 1.3 s, caught up\n", -- (5000 - 41) / (36 - 26); 1.25 up
    }, t.out)
  end)

  it("every sets the interval; a phase change still writes at once", function()
    local t = display({ every = 2.5 })
    for i = 0, 10 do t.at(i, scan(i, 0)) end
    t.at(10.1, follow(0))
    assert.same({
      "replicate: scan 0 items, 0 changes applied\n",
      "replicate: scan 3 items, 1.0 items/s, 0 changes applied\n",
      "replicate: scan 6 items, 1.0 items/s, 0 changes applied\n",
      "replicate: scan 9 items, 1.0 items/s, 0 changes applied\n",
      "replicate: scan done, 100 items; follow 0 changes applied\n",
    }, t.out)
  end)

  it("finish writes a last line with the time taken; finish() without a progress takes the last, its time counted on",
    function()
    local t = display()
    t.at(0, follow(1, 0.5))
    t.at(1, follow(2, 0.5))
    t.time = 2
    t.display:finish()
    local p = follow(3)
    p.elapsed = 7200
    t.display:finish(p) -- once only
    assert.same({
      "replicate: follow 1 change applied, lag 0.5 s\n",
      "replicate: follow 2 changes applied, lag 0.5 s, stopped after 2.0 s\n", -- elapsed 1 at 1, finished at 2
    }, t.out)
  end)

  it("an update with done = true is the finish", function()
    local t = display()
    local p = scan(4, 4)
    p.done, p.elapsed = true, 125
    t.at(0, p)
    t.at(1, scan(5, 5))
    assert.same({ "replicate: scan 4/4 items (100%), 0 changes applied, stopped after 2 min\n" }, t.out)
  end)

  it("finish with nothing ever shown writes nothing", function()
    local t = display()
    t.display:finish()
    local term = display({ terminal = true })
    term.display:finish()
    assert.same({}, t.out)
    assert.same({}, term.out)
  end)

  it("a line is never cut to the width", function()
    local t = display({ width = 10 }).at(0, follow(123456789))
    assert.same({ "replicate: follow 123456789 changes applied\n" }, t.out)
  end)
end)

describe("cli_progress rates", function()
  it("are measured over the last 5 seconds of updates", function()
    local t = display({ every = 1 })
    t.at(0, follow(0))
    t.at(1, follow(1000)) -- 1000/s
    t.at(2, follow(2000))
    t.at(6, follow(2000)) -- idle since 2: 1000 over the last 5 s (1 -> 6)
    t.at(8, follow(2000)) -- base 2: (2000 - 2000) / 6
    assert.same({
      "replicate: follow 0 changes applied\n",
      "replicate: follow 1000 changes applied, 1000 changes/s\n",
      "replicate: follow 2000 changes applied, 1000 changes/s\n",
      "replicate: follow 2000 changes applied, 200 changes/s\n",
      "replicate: follow 2000 changes applied, 0.0 changes/s\n",
    }, t.out)
  end)

  it("start again when the phase changes, the counter goes back or the clock goes back", function()
    local t = display({ every = 1 })
    t.at(0, scan(0, 0))
    t.at(1, scan(100, 0))
    t.at(2, follow(5))                 -- a new phase: no rate yet
    t.at(3, follow(10))
    t.at(4, follow(2))                 -- the counter went back: no rate
    t.at(5, follow(4))
    t.at(1, follow(6))                 -- the clock went back: written (the interval cannot be told), no rate
    assert.same({
      "replicate: scan 0 items, 0 changes applied\n",
      "replicate: scan 100 items, 100 items/s, 0 changes applied\n",
      "replicate: scan done, 100 items; follow 5 changes applied\n",
      "replicate: follow 10 changes applied, 5.0 changes/s\n",
      "replicate: follow 2 changes applied\n",
      "replicate: follow 4 changes applied, 2.0 changes/s\n",
      "replicate: follow 6 changes applied\n",
    }, t.out)
  end)

  it("many updates a second keep few samples (the window stays small)", function()
    local t = display({ every = 50 })
    for i = 0, 60000 do
      t.at(i / 1000, follow(i))
      assert(#t.display.samples <= 60, #t.display.samples) -- about 5 s / 0.1 s, not 5000
    end
    assert.same({
      "replicate: follow 0 changes applied\n",
      "replicate: follow 50000 changes applied, 1000 changes/s\n",
    }, t.out)
  end)
end)

describe("cli_progress.duration (the lag, the time taken)", function()
  local cases = {
    { 0, "0.0 s" }, { 0.4, "0.4 s" }, { 0.44, "0.4 s" }, { 0.25, "0.3 s" }, { 1.25, "1.3 s" }, { 9.94, "9.9 s" }, { 9.95, "10 s" }, { 12, "12 s" },
    { 12.4, "12 s" }, { 59.4, "59 s" }, { 59.5, "1 min" }, { 180, "3 min" }, { 200, "3 min" },
    { 59.4 * 60, "59 min" }, { 59.5 * 60, "1 h" }, { 7200, "2 h" }, { 86400, "24 h" }, { 1e30, "2.78e+26 h" },
    { math.huge, "inf h" },
  }
  for _, case in ipairs(cases) do
    it(tostring(case[1]) .. " s -> " .. case[2], function()
      assert.equals(case[2], cli_progress.duration(case[1]))
    end)
  end
end)

describe("cli_progress with hostile progress tables", function()
  local nan = 0 / 0
  local hostile = {
    {},
    { phase = "scan" },
    { phase = "follow" },
    { phase = "\27[2J" },
    { phase = 5, scanned = "many" },
    { phase = "scan", scanned = -5, estimated = -1, written = -3, changes = -2 },
    { phase = "scan", scanned = nan, estimated = nan, written = nan, changes = nan, elapsed = nan },
    { phase = "scan", scanned = 1e300, estimated = 1e300, written = 1e300, changes = 1e300 },
    { phase = "scan", scanned = 1e300, estimated = 1e308 },
    { phase = "scan", scanned = math.huge, estimated = math.huge, changes = -math.huge },
    { phase = "scan", scanned = 2 ^ 63, estimated = 2 ^ 64, written = 2 ^ 53 + 1 },
    { phase = "scan", scanned = 5, estimated = 1e-300 },
    { phase = "follow", changes = 1e300, lag = 1e300, caught_up = "yes", elapsed = -1 },
    { phase = "follow", changes = nan, lag = nan },
    { phase = "follow", changes = 1, lag = -30 },
    { phase = "follow", changes = 2, lag = math.huge },
    { phase = "follow", changes = 3, lag = -math.huge },
    { phase = "follow", changes = 4, lag = "1 s", elapsed = math.huge },
    { phase = {}, scanned = {}, estimated = true, lag = print },
  }
  if math.type then hostile[#hostile + 1] = { phase = "scan", scanned = math.maxinteger, estimated = math.mininteger } end

  for _, terminal in ipairs({ true, false }) do
    it("never raise, and write only printable text (" .. (terminal and "terminal" or "log") .. ")", function()
      local t = display({ terminal = terminal, every = 0.5 })
      for i, p in ipairs(hostile) do
        t.at(i, p)
        local done = {}
        for k, v in pairs(p) do done[k] = v end
        done.done = true
        local f = display({ terminal = terminal })
        f.at(0, p)
        f.at(1, done)
        for _, text in ipairs(f.out) do t.out[#t.out + 1] = text end
      end
      assert.is_true(#t.out >= #hostile * 2)
      for _, text in ipairs(t.out) do
        local body = terminal and assert(text:match("^\r(.-)\27%[K\n?$"), text) or assert(text:match("^(.-)\n$"), text)
        assert.is_nil(body:find("[%c\128-\255]"), text)
        if terminal then assert.is_true(#body <= 79, text) end
      end
    end)
  end

  it("shows what they mean: counts of 0, no lag, the scan unless the phase is follow", function()
    local t = display({ every = 0.5 })
    t.at(0, { phase = "\27[2J", scanned = -5, estimated = nan, changes = nan })
    t.at(1, { phase = "follow", changes = 1e300, lag = -30 })
    t.at(2, { phase = "follow", changes = 1e300, lag = nan, caught_up = "yes" })
    t.at(3, { phase = "scan", scanned = 2 ^ 63, estimated = 2 ^ 64, written = 2 ^ 53 })
    assert.same({
      "replicate: scan 0 items, 0 changes applied\n",
      "replicate: scan done, 0 items; follow 1e+300 changes applied, lag 0.0 s\n",
      "replicate: follow 1e+300 changes applied, 0.0 changes/s\n",
      "replicate: scan 9.22e+18/1.84e+19 items (50%), 9.01e+15 written, 0 changes applied\n",
    }, t.out)
  end)
end)
