-- How the consumer meets failures (issue 11, items 5, 7, 8, 9), on the scripted
-- fake over simulated time: run() never silent and never flooding, fatal
-- errors ending run(), position errors re-opening and reported once, the
-- fetch guard released by a dead coroutine, run options checked at the door.
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local helper = require("helper")

-- Replaces io.stderr while fn runs; returns the lines written to it.
local function stderr_lines(fn)
  local real, text = io.stderr, {}
  io.stderr = { write = function(self, ...)
    for i = 1, select("#", ...) do text[#text + 1] = select(i, ...) end
    return self
  end }
  local ok, err = pcall(fn)
  io.stderr = real
  assert(ok, err)
  local lines = {}
  for line in table.concat(text):gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

-- A stream on the fake whose clock is the fake's; run_for runs it for
-- `seconds` of simulated time, sleeping by advancing the fake. A run that
-- makes more than `cap` calls without sleeping is stopped (the flood the
-- specs look for would otherwise never end).
local function new_stream(fake, opts)
  opts = opts or {}
  local cap = opts.cap or 2000
  opts.cap = nil
  local s
  opts.clock = function()
    if #fake.calls > cap then s:stop() end
    return fake.now
  end
  s = Stream.new(fake, fake.stream_arn, opts)
  return s
end

local function run_for(s, fake, seconds, opts)
  opts = opts or {}
  opts.duration = seconds
  opts.sleep = function(t) fake:advance(t) end
  return s:run(opts)
end

for _, parallel in ipairs({ false, true }) do
  local mode = parallel and " (parallel rounds)" or " (serial)"

  describe("run() errors" .. mode, function()
    local fake
    before_each(function() fake = Fake.new({ parallel = parallel }) end)

    it("with no 'error' listener, writes an error once to stderr and then counts it", function()
      fake:add_shard("A")
      fake:fail("describe_stream", "ConnectionRefused", { until_time = 1e9 })
      local s = new_stream(fake)
      local r, err
      local lines = stderr_lines(function() r, err = run_for(s, fake, 3) end)
      assert.is_true(r, tostring(err))
      assert.equals(2, #lines, table.concat(lines, "\n"))
      assert.equals("dynamodb_stream: ConnectionRefused: ConnectionRefused (no 'error' listener)", lines[1])
      local n = assert(tonumber(lines[2]:match("^dynamodb_stream: ConnectionRefused: ConnectionRefused repeated (%d+) times$")), lines[2])
      assert.equals(fake:count("describe_stream") - 1, n)
    end)

    it("writes each different error once, then the counts", function()
      fake:add_shard("A")
      fake:fail("describe_stream", "ConnectionRefused", { until_time = 1 })
      fake:fail("describe_stream", "InternalServerError", { until_time = 1e9 })
      local s = new_stream(fake)
      local lines = stderr_lines(function() assert.is_true(run_for(s, fake, 3)) end)
      -- fetches at 0, 0.1, 0.3, 0.7 refused, at 1.5 and 2.5 a server error
      assert.same({
        "dynamodb_stream: ConnectionRefused: ConnectionRefused (no 'error' listener)",
        "dynamodb_stream: InternalServerError: InternalServerError (no 'error' listener)",
        "dynamodb_stream: ConnectionRefused: ConnectionRefused repeated 3 times",
        "dynamodb_stream: InternalServerError: InternalServerError repeated 1 time",
      }, lines)
    end)

    it("counts errors of shards that fail in turn, and writes the counts at most once a minute", function()
      fake:add_shard("A")
      fake:add_shard("B")
      fake:fail("get_records", "InternalServerError", { until_time = 1e9 })
      local s = new_stream(fake)
      local lines = stderr_lines(function() assert.is_true(run_for(s, fake, 150, { max_interval = 10 })) end)
      local first, counts, total = {}, { A = 0, B = 0 }, 0
      for _, line in ipairs(lines) do
        local shard = line:match("%[shard (%a)%] %(no 'error' listener%)$")
        if shard then first[#first + 1] = shard end
        local counted, n = line:match("%[shard (%a)%] repeated (%d+) times?$")
        if counted then counts[counted], total = counts[counted] + 1, total + tonumber(n) end
      end
      table.sort(first)
      assert.same({ "A", "B" }, first)
      -- per shard: a count at most once a minute (at 60 and 120 s), and at the end
      assert.is_true(counts.A <= 3 and counts.B <= 3, table.concat(lines, "\n"))
      assert.equals(#lines, 2 + counts.A + counts.B)
      assert.equals(fake:count("get_records"), 2 + total) -- every error written or counted
    end)

    it("writes nothing to stderr when 'error' has a listener", function()
      fake:add_shard("A")
      fake:fail("describe_stream", "ConnectionRefused", { until_time = 1e9 })
      local s = new_stream(fake)
      local seen = 0
      s:on("error", function() seen = seen + 1 end)
      local lines = stderr_lines(function() assert.is_true(run_for(s, fake, 3)) end)
      assert.same({}, lines)
      assert.equals(fake:count("describe_stream"), seen)
    end)

    for _, code in ipairs({ "UnrecognizedClientException", "AccessDeniedException", "InvalidSignatureException",
        "MissingAuthenticationToken", "ExpiredTokenException" }) do
      it("returns nil, err at once on " .. code .. " from DescribeStream, after emitting it", function()
        fake:add_shard("A")
        fake:fail("describe_stream", code, { until_time = 1e9 })
        local s = new_stream(fake)
        local emitted = {}
        s:on("error", function(e) emitted[#emitted + 1] = e.code end)
        local r, err = run_for(s, fake, 3)
        assert.is_nil(r)
        assert.equals(code, err.code)
        assert.same({ code }, emitted)
        assert.equals(1, fake:count("describe_stream"))
        assert.equals(0, fake.now) -- it never slept
      end)
    end

    it("returns nil, err on AccessDeniedException from GetRecords", function()
      fake:add_shard("A")
      fake:fail("get_records", "AccessDeniedException", { until_time = 1e9 })
      local s = new_stream(fake)
      local lines = {}
      local r, err
      lines = stderr_lines(function() r, err = run_for(s, fake, 3) end)
      assert.is_nil(r)
      assert.equals("AccessDeniedException", err.code)
      assert.equals(1, fake:count("get_records"))
      assert.equals(1, #lines) -- reported before run returned
    end)

    it("returns nil, err when DescribeStream calls the stream ARN invalid", function()
      fake:add_shard("A")
      fake:fail("describe_stream", "ValidationException", { until_time = 1e9, message = "Invalid StreamArn" })
      local s = new_stream(fake)
      s:on("error", function() end)
      local r, err = run_for(s, fake, 3)
      assert.is_nil(r)
      assert.equals("ValidationException", err.code)
    end)

    it("backs a shard off on TooManyRequestsException and Throttling and reads the others", function()
      for _, code in ipairs({ "TooManyRequestsException", "Throttling" }) do
        fake = Fake.new({ parallel = parallel })
        fake:add_shard("A")
        fake:add_shard("B")
        local s = new_stream(fake, { start_at = "TRIM_HORIZON" })
        local log = Fake.recorder(s)
        fake:insert("A", { pk = "a" })
        fake:insert("B", { pk = "b" })
        fake:fail("get_records", code, { shard = "A", times = 1 })
        local r, err = s:fetch_stream_state()
        assert.is_nil(r)
        assert.equals(code, err.code)
        assert.is_true(err.throttled)
        assert.equals("A", err.shard_id)
        assert.same({ "insert b" }, Fake.only(log, "insert"))
        assert.equals(1, #s:fetch_stream_records())
        assert.same({ "insert b", "insert a" }, Fake.only(log, "insert"))
      end
    end)

    it("re-opens from the last delivered record an iterator the service calls invalid, and reports it once",
        function()
      fake:add_shard("A")
      local seq1 = fake:insert("A", { pk = "1" })
      fake:insert("A", { pk = "2" })
      local s = new_stream(fake)
      local log = Fake.recorder(s)
      s:set_shard_state({ A = { shardId = "A", nextShardIterator = "not-an-iterator", sequenceNumber = seq1 } })
      local records = assert(s:fetch_stream_state())
      assert.equals(1, #records)
      assert.same({ "error ValidationException", "insert 2" }, Fake.only(log, "error", "insert"))
      local opened = fake:calls_on("A", "get_shard_iterator")
      assert.equals(1, #opened)
      assert.equals("AFTER_SEQUENCE_NUMBER", opened[1].params.ShardIteratorType)
      assert.equals(seq1, opened[1].params.SequenceNumber)
    end)
  end)

  describe("run() pacing: a shard that never advances costs about an idle poll a second" .. mode, function()
    local fake
    before_each(function() fake = Fake.new({ parallel = parallel }) end)

    -- 3 s of run with the default intervals: fetches at 0, 0.1, 0.3, 0.7, 1.5, 2.5.
    local IDLE_FETCHES = 6

    local function run_3s(s)
      local lines = stderr_lines(function() assert.is_true(run_for(s, fake, 3)) end)
      return lines
    end

    it("an idle open shard: one GetRecords a fetch", function()
      fake:add_shard("A")
      run_3s(new_stream(fake))
      assert.equals(IDLE_FETCHES, fake:count("get_records"))
    end)

    local function repeat_iterator()
      fake:tamper("get_records", function(res, params)
        res.NextShardIterator = params.ShardIterator
        return res
      end, { times = math.huge })
    end

    it("an open shard whose NextShardIterator repeats the one sent, with no records, is caught up", function()
      -- as DynamoDB Local answers at the tip of a shard
      fake:add_shard("A")
      repeat_iterator()
      local s = new_stream(fake)
      local errs = {}
      s:on("error", function(e) errs[#errs + 1] = e end)
      assert.is_true(run_for(s, fake, 3))
      assert.equals(IDLE_FETCHES, fake:count("get_records"))
      assert.same({}, errs)
    end)

    it("a closed shard whose NextShardIterator repeats the one sent, with no records, is an InvalidResponse", function()
      fake:add_shard("A")
      fake:close("A")
      repeat_iterator()
      local s = new_stream(fake, { start_at = "TRIM_HORIZON" })
      local errs = {}
      s:on("error", function(e) errs[#errs + 1] = e end)
      assert.is_true(run_for(s, fake, 3))
      assert.is_true(fake:count("get_records") <= IDLE_FETCHES, fake:count("get_records") .. " GetRecords")
      assert.equals(fake:count("get_records"), #errs)
      assert.equals("InvalidResponse", errs[1].code)
      assert.matches("NextShardIterator of a closed shard is the ShardIterator sent", errs[1].message)
    end)

    it("a closed shard answering empty pages forever", function()
      fake:add_shard("A")
      fake:insert("A", { pk = "1" })
      fake:close("A")
      fake:empty_pages("A", math.huge)
      run_3s(new_stream(fake, { start_at = "TRIM_HORIZON" }))
      -- A few read through at once (a closed shard may have empty pages
      -- before its end), then one a fetch.
      assert.is_true(fake:count("get_records") <= IDLE_FETCHES + 3, fake:count("get_records") .. " GetRecords")
    end)

    for _, code in ipairs({ "ExpiredIteratorException", "TrimmedDataAccessException" }) do
      it(code .. " on every GetRecords backs the shard off and is reported once", function()
        fake:add_shard("A")
        fake:fail("get_records", code, { shard = "A", until_time = 1e9 })
        local s = new_stream(fake, { start_at = "TRIM_HORIZON" })
        local lines = run_3s(s)
        -- Re-opened once at once, then backing off 0.5, 1, 2 s x [0.5, 1).
        local n = fake:count("get_records")
        assert.is_true(n >= 3 and n <= IDLE_FETCHES, n .. " GetRecords")
        assert.is_true(fake:count("get_shard_iterator") <= n + 1)
        assert.equals(1, #lines, table.concat(lines, "\n"))
        assert.matches(code .. ".*%[shard A%]", lines[1])
      end)
    end

    it("a shard with records is still read again at once", function()
      fake:add_shard("A")
      for i = 1, 30 do fake:insert("A", { pk = tostring(i) }) end
      local s = new_stream(fake, { start_at = "TRIM_HORIZON", max_pages_per_shard = 1, limit = 10 })
      local slept = {}
      local n = 0
      s:on("insert record", function() n = n + 1 end)
      assert.is_true(s:run({ duration = 3, sleep = function(t) slept[#slept + 1] = t; fake:advance(t) end }))
      assert.equals(30, n)
      assert.equals(0.1, slept[1]) -- three fetches of 10 at once, then idle
    end)
  end)
end

describe("run() errors inside nginx", function()
  it("go to ngx.log(ngx.ERR, ...) with no 'error' listener, not to stderr", function()
    local logged = {}
    local fake_ngx = {
      ERR = 4, socket = { tcp = function() end }, get_phase = function() return "timer" end,
      log = function(level, ...) logged[#logged + 1] = { level, table.concat({ ... }) } end,
    }
    local fake = Fake.new()
    fake:add_shard("A")
    fake:fail("describe_stream", "ConnectionRefused", { until_time = 1e9 })
    local s = new_stream(fake)
    rawset(_G, "ngx", fake_ngx)
    local ok, lines = pcall(stderr_lines, function() assert.is_true(run_for(s, fake, 3)) end)
    rawset(_G, "ngx", nil)
    assert(ok, lines)
    assert.same({}, lines)
    assert.same({
      { 4, "dynamodb_stream: ConnectionRefused: ConnectionRefused (no 'error' listener)" },
      { 4, "dynamodb_stream: ConnectionRefused: ConnectionRefused repeated 5 times" },
    }, logged)
  end)
end)

describe("the fetch guard and a coroutine that dies in a listener", function()
  local fake, s
  local yielding

  before_each(function()
    fake = Fake.new()
    fake:add_shard("A")
    fake:insert("A", { pk = "1" })
    s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON" })
    yielding = true
    s:on("insert record", function() if yielding then coroutine.yield("in listener") end end)
  end)

  -- Starts a fetch in a coroutine whose listener yields; returns the
  -- coroutine, suspended in the listener (or dead where a listener cannot
  -- yield across pcall: Lua 5.1, where the fetch failed with ListenerError).
  local function suspended_fetch()
    local co = coroutine.create(function() return s:fetch_stream_state() end)
    local ok, a, b = coroutine.resume(co)
    assert.is_true(ok)
    if coroutine.status(co) == "dead" then
      assert.is_nil(a)
      assert.equals("ListenerError", b.code)
    else
      assert.equals("in listener", a)
    end
    return co
  end

  it("keeps the guard while the coroutine is suspended (it may be resumed)", function()
    local co = suspended_fetch()
    if coroutine.status(co) == "suspended" then
      local r, err = s:fetch_stream_records()
      assert.is_nil(r)
      assert.equals("FetchInProgress", err.code)
      yielding = false
      local ok, records = coroutine.resume(co)
      assert.is_true(ok)
      assert.equals(1, #records)
    end
  end)

  it("takes the guard over from a coroutine that was dropped and collected", function()
    suspended_fetch()
    collectgarbage()
    collectgarbage()
    yielding = false
    local records = assert(s:fetch_stream_records())
    assert.equals(1, #records) -- the record whose listener never returned comes again
    assert.is_true(s:set_shard_state(s:get_shard_state()))
  end)

  if coroutine.close then
    it("takes the guard over from a coroutine that was closed", function()
      local co = suspended_fetch()
      assert.is_true(coroutine.close(co))
      yielding = false
      local records = assert(s:fetch_stream_records())
      assert.equals(1, #records)
    end)
  end

  it("takes run() over from a coroutine dropped while run slept", function()
    yielding = false
    local co = coroutine.create(function() return s:run({ sleep = function() coroutine.yield("sleeping") end }) end)
    local ok, what = coroutine.resume(co)
    assert.is_true(ok)
    assert.equals("sleeping", what)
    co = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_true(s:run({ sleep = function() s:stop() end }))
    fake:insert("A", { pk = "2" })
    local records = assert(s:fetch_stream_records()) -- not run's: the records are kept
    assert.equals(1, #records)
  end)
end)

describe("run() options are checked at the door", function()
  local fake, s
  before_each(function()
    fake = Fake.new()
    fake:add_shard("A")
    s = new_stream(fake, { cap = 100 })
  end)

  local NAN = 0 / 0
  local BAD = {
    { interval = NAN }, { interval = "x" }, { interval = 0 }, { interval = -1 }, { interval = math.huge },
    { max_interval = NAN }, { max_interval = "x" }, { max_interval = math.huge },
    { interval = 2, max_interval = 1 },
    { describe_interval = "x" }, { describe_interval = NAN }, { describe_interval = -1 },
    { duration = NAN }, { duration = "x" }, { duration = -1 }, { duration = math.huge }, { duration = {} },
    { checkpoint = 5 }, { checkpoint = {} }, { checkpoint = "" }, { checkpoint = true },
    { checkpoint = { load = function() end } }, { checkpoint = { load = function() end, save = "x" } },
    { sleep = 5 },
  }

  for _, opts in ipairs(BAD) do
    local name, value = next(opts)
    if opts.max_interval and opts.interval then name, value = "max_interval", opts.max_interval end
    it("refuses " .. name .. " = " .. tostring(value), function()
      -- (a sleep that stops run, so that an option let through shows as a failure, not a hang)
      if opts.sleep == nil then opts.sleep = function() s:stop() end end
      local ok, msg = pcall(s.run, s, opts)
      assert.is_false(ok)
      assert.matches("run: opts%." .. name .. " must be", msg)
      assert.equals(0, #fake.calls) -- nothing was requested
      assert.is_true(s:run({ duration = 0, sleep = function() end })) -- and the stream still works
    end)
  end

  it("accepts good options", function()
    local saved
    local store = { load = function() return nil end, save = function(_, st) saved = st return true end }
    assert.is_true(s:run({ interval = 0.5, max_interval = 2, describe_interval = 0, duration = 0,
      checkpoint = store, sleep = function() end }))
    assert.is_table(saved)
    assert.is_true(s:run({ interval = 5, sleep = function() s:stop() end })) -- max_interval follows interval
    local dir = helper.tmpdir()
    assert.is_true(s:run({ checkpoint = dir .. "/state.json", duration = 0, sleep = function() end }))
    assert.truthy(helper.exists(dir .. "/state.json"))
    helper.rmdir(dir)
  end)
end)
