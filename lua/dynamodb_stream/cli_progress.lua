--- The progress display of `dynamodb-stream replicate`: on a terminal one
-- line redrawn in place (a bar and a rate during the scan, then changes per
-- second and lag), otherwise plain log lines (no escape codes, no "\r").
--
--   local display = cli_progress.new({ write = function(text) io.stdout:write(text) io.stdout:flush() end,
--     terminal = true })
--   ds.replicate({ ..., progress = function(p) display:update(p) end })
--   display:finish()  -- (display:interrupt() before writing an error to the terminal)
-- @module dynamodb_stream.cli_progress
local core = require("dynamodb_stream.core")

local M = {}

local Display = {}
Display.__index = Display

local REDRAW_INTERVAL = 0.1 -- seconds: at most 10 redraws a second on a terminal
local RATE_WINDOW = 5       -- seconds of updates a rate is measured over
local RATE_RESOLUTION = 0.1 -- seconds: closer samples replace each other (the window stays small)
local BAR_MIN, BAR_MAX = 10, 30
local DEFAULT_WIDTH, MAX_WIDTH = 80, 100000
local OPTIONS = { write = true, terminal = true, clock = true, width = true, every = true }

local function fail(message)
  error("cli_progress.new: " .. message, 3)
end

local function finite(x)
  return type(x) == "number" and x == x and x > -math.huge and x < math.huge
end

-- A count of the progress table: a finite number of at least 0, else 0.
local function count(x)
  return finite(x) and x > 0 and x or 0
end

-- A non-negative number as a whole number's digits (huge ones as 1.23e+20).
local function whole(x)
  if x < 1e15 then return ("%d"):format(math.floor(x + 0.5)) end
  return ("%.3g"):format(x)
end

-- A number below 10 with one decimal, rounded half up (as on every Lua:
-- LuaJIT's "%.1f" rounds ties otherwise than C's).
local function tenths(x)
  return ("%.1f"):format(math.floor(x * 10 + 0.5) / 10)
end

local function counted(x)
  if x < 1e15 then return ("%d"):format(math.floor(x)) end
  return ("%.3g"):format(x)
end

--- Seconds as an operator reads them: "0.4 s", "12 s", "3 min", "2 h".
-- @tparam number seconds at least 0
-- @treturn string
function M.duration(seconds)
  if seconds < 9.95 then return tenths(seconds) .. " s" end
  if seconds < 59.5 then return whole(seconds) .. " s" end
  if seconds < 59.5 * 60 then return whole(seconds / 60) .. " min" end
  return whole(seconds / 3600) .. " h"
end

local function rate_text(rate, unit)
  if rate < 9.95 then return tenths(rate) .. " " .. unit .. "/s" end
  return whole(rate) .. " " .. unit .. "/s"
end

-- The default width: COLUMNS when it is a number of columns, else 80.
local function columns()
  local n = tonumber(os.getenv("COLUMNS") or "")
  if n and n >= 1 and n <= MAX_WIDTH and n == math.floor(n) then return n end
  return DEFAULT_WIDTH
end

--- A progress display.
-- @tparam table opts
--   `write` (function(text): writes text as it is; no newline is added),
--   `terminal` (boolean: one line redrawn in place; else plain log lines; default false),
--   `clock` (function: seconds; default core.monotime),
--   `width` (columns of the terminal, 1..100000; default COLUMNS when it is a number, else 80;
--   a redrawn line is at most width - 1 columns),
--   `every` (seconds between plain log lines, above 0; default 10).
-- Bad options raise.
-- @treturn table a display: `display:update(p)`, `display:interrupt()`, `display:finish([p])`
function M.new(opts)
  if type(opts) ~= "table" then fail("opts must be a table") end
  for name in pairs(opts) do
    if not OPTIONS[name] then fail("unknown option " .. tostring(name)) end
  end
  if type(opts.write) ~= "function" then fail("opts.write must be a function") end
  if opts.terminal ~= nil and type(opts.terminal) ~= "boolean" then fail("opts.terminal must be a boolean") end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then fail("opts.clock must be a function") end
  local width = opts.width
  if width ~= nil and not (finite(width) and width == math.floor(width) and width >= 1 and width <= MAX_WIDTH) then
    fail("opts.width must be a whole number of columns in 1.." .. MAX_WIDTH)
  end
  local every = opts.every
  if every ~= nil and not (finite(every) and every > 0) then fail("opts.every must be a number of seconds above 0") end
  return setmetatable({
    write = opts.write,
    terminal = opts.terminal or false,
    clock = opts.clock or core.monotime,
    width = width or columns(),
    every = every or 10,
    samples = {},      -- { t = clock, v = counter } of the rated counter, oldest first
    phase = nil,       -- of the last update
    caught_up = nil,   -- of the last update
    last = nil,        -- the last progress table
    last_at = nil,     -- clock when it came
    shown_at = nil,    -- clock of the last line written or redrawn
    shown = nil,       -- its text
    finished = false,
  }, Display)
end

-- What p says, checked: every field a usable value whatever p holds.
local function read(p)
  local lag = p.lag
  return {
    phase = p.phase == "follow" and "follow" or "scan",
    scanned = count(p.scanned),
    estimated = count(p.estimated),
    written = count(p.written),
    changes = count(p.changes),
    lag = finite(lag) and math.max(lag, 0) or nil,
    caught_up = p.caught_up == true,
    elapsed = finite(p.elapsed) and math.max(p.elapsed, 0) or nil,
  }
end

-- Records the rated counter (items scanned, or changes applied) at time now
-- and returns its rate over the last RATE_WINDOW seconds, or nil before two
-- samples.
function Display:_rate(now, value)
  local samples = self.samples
  local newest = samples[#samples]
  if newest and (now < newest.t or value < newest.v) then -- a clock or a counter going back: start again
    samples = {}
    self.samples = samples
  end
  local before = samples[#samples - 1]
  if before and now - before.t < RATE_RESOLUTION then
    samples[#samples] = { t = now, v = value }
  else
    samples[#samples + 1] = { t = now, v = value }
  end
  -- the base is the newest sample at least RATE_WINDOW old (the window spans it)
  while samples[2] and samples[2].t <= now - RATE_WINDOW do table.remove(samples, 1) end
  local base = samples[1]
  if now - base.t <= 0 then return nil end
  local rate = (value - base.v) / (now - base.t)
  return finite(rate) and rate or nil
end

-- The bar of a scan with an estimate, "[#####-----] ": an eighth of the
-- width (10 to 30 columns: the text still fits in 80), the same on every redraw.
function Display:_bar(fraction)
  local size = math.max(BAR_MIN, math.min(BAR_MAX, math.floor(self.width / 8)))
  local filled = math.floor(size * fraction)
  return "[" .. ("#"):rep(filled) .. ("-"):rep(size - filled) .. "] "
end

-- n and the unit, singular for 1.
local function amount(n, unit)
  return counted(n) .. " " .. unit .. (n == 1 and "" or "s")
end

-- The line of progress v at rate: "scan 12345/27000 items (45%), ..." or
-- "follow 5000 changes applied, ..." (a bar after "scan " on a terminal).
function Display:_text(v, rate)
  local parts, fraction = {}, nil
  if v.phase == "scan" then
    if v.estimated > 0 and v.scanned <= v.estimated then
      fraction = v.scanned / v.estimated
      parts[1] = ("%s/%s items (%d%%)"):format(counted(v.scanned), counted(v.estimated), math.floor(100 * fraction))
    else
      parts[1] = amount(v.scanned, "item")
    end
    if v.written ~= v.scanned then parts[#parts + 1] = counted(v.written) .. " written" end
    if rate then parts[#parts + 1] = rate_text(rate, "items") end
    parts[#parts + 1] = amount(v.changes, "change") .. " applied"
  else
    parts[1] = amount(v.changes, "change") .. " applied"
    if rate then parts[#parts + 1] = rate_text(rate, "changes") end
    if v.lag then parts[#parts + 1] = "lag " .. M.duration(v.lag) end
    if v.caught_up then parts[#parts + 1] = "caught up" end
  end
  local text = table.concat(parts, ", ")
  local bar = (self.terminal and fraction) and self:_bar(fraction) or ""
  return v.phase .. " " .. bar .. text
end

-- Writes text: on a terminal over the current line (cut to width - 1
-- columns: a longer one would wrap, and "\r" would not reach its start).
function Display:_show(text, now, ending)
  if self.terminal then
    self.write("\r" .. text:sub(1, self.width - 1) .. "\27[K" .. ending)
  else
    self.write("replicate: " .. text .. "\n")
  end
  self.shown_at, self.shown = now, text
end

--- Shows progress p (the progress table of ds.replicate: phase, scanned,
-- estimated, written, changes, lag, caught_up, elapsed, done), when it is
-- time: on a terminal at most 10 redraws a second, at once on a change of
-- phase or of caught_up; plain lines at each change of phase (from the scan to
-- the follow: "scan done, N items; follow ...") and at most one every `every`
-- seconds otherwise. Every update feeds the rate, shown or not.
-- When p.done is true this is display:finish(p). Nothing after finish.
-- Missing, negative or non-finite numbers of p count as 0 (lag: unknown).
-- @tparam table p
function Display:update(p)
  if type(p) ~= "table" then error("display:update: the progress must be a table", 2) end
  if p.done == true then return self:finish(p) end
  if self.finished then return end
  local now, v = self.clock(), read(p)
  local changed = v.phase ~= self.phase
  local scan_done = changed and self.phase == "scan"
  if changed then self.samples = {} end
  local rate = self:_rate(now, v.phase == "scan" and v.scanned or v.changes)
  self.phase, self.last, self.last_at = v.phase, p, now
  local flipped = v.caught_up ~= self.caught_up
  self.caught_up = v.caught_up
  local since = self.shown_at and now - self.shown_at
  local stale = since == nil or since < 0 -- nothing shown yet, or a clock that went back
  if self.terminal then
    if not (changed or flipped or stale or since >= REDRAW_INTERVAL) then return end
    local text = self:_text(v, rate)
    if changed or text ~= self.shown then self:_show(text, now, "") end
  elseif changed or stale or since >= self.every then
    -- the log keeps what the scan copied (its last lines may be 10 s old)
    local summary = scan_done and ("scan done, " .. amount(v.scanned, "item")
      .. (v.written ~= v.scanned and ", " .. counted(v.written) .. " written" or "") .. "; ") or ""
    self:_show(summary .. self:_text(v, rate), now)
  end
end

--- Makes room for other output (an error on stderr, say): on a terminal the
-- line drawn is ended with "\n" (it stays as a record of where the copy
-- stood) and the next update draws a new line at once; in a log, where every
-- line is ended, nothing.
function Display:interrupt()
  if self.terminal and self.shown and not self.finished then
    self.write("\n")
    self.shown, self.shown_at = nil, nil
  end
end

--- Shows the last progress and ends the display: on a terminal the final
-- line and "\n" (call it before writing anything else, an error message on
-- stderr say); otherwise a last plain line. Instead of the rate of the last
-- seconds it shows the time of the run, p.elapsed: ", after 3 min" on a
-- terminal (the line fits in 80 columns), ", stopped after 3 min" in a log.
-- Later updates and finishes do nothing.
-- @tparam[opt] table p the last progress (default: the last one updated,
-- its elapsed time counted on to now; with none ever, nothing is written)
function Display:finish(p)
  if p ~= nil and type(p) ~= "table" then error("display:finish: the progress must be a table", 2) end
  if self.finished then return end
  self.finished = true
  local now = self.clock()
  local v = p and read(p) or self.last and read(self.last)
  if v == nil then return end
  if p == nil and v.elapsed and now >= self.last_at then v.elapsed = v.elapsed + (now - self.last_at) end
  local stopped = self.terminal and "" or ", stopped"
  if v.elapsed then stopped = stopped .. (self.terminal and ", after " or " after ") .. M.duration(v.elapsed) end
  local text = self:_text(v, nil) .. stopped
  self:_show(text, now, "\n")
end

return M
