-- Per-shard backoff when GetRecords / GetShardIterator are throttled, on the
-- scripted fake over simulated time (the stream's clock is the fake's clock).
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")

local STEP = 0.1 -- simulated seconds between fetches
local EPS = 1e-9

-- The times of the calls of op on shard id.
local function times(fake, id, op)
  local out = {}
  for _, call in ipairs(fake:calls_on(id, op)) do out[#out + 1] = call.at end
  return out
end

-- How many calls of op on shard id were made after the first `from` calls.
local function calls_since(fake, from, id, op)
  local n = 0
  for i = from + 1, #fake.calls do
    local call = fake.calls[i]
    local it = fake.iterators[call.params.ShardIterator or ""]
    if call.op == op and (call.params.ShardId == id or (it and it.shard.id == id)) then n = n + 1 end
  end
  return n
end

-- Fetches every STEP simulated seconds until fake.now >= t; returns one entry
-- per fetch: { at, records | nil, err | nil, b_calls (GetRecords on B in it) }.
local function poll_until(fake, s, t, each)
  local results = {}
  while fake.now < t - EPS do
    local before = #fake.calls
    local at = fake.now
    local r, err = s:fetch_stream_records()
    results[#results + 1] = { at = at, records = r, err = err, b_calls = calls_since(fake, before, "B", "get_records") }
    if each then each(#results) end
    fake:advance(STEP)
  end
  return results
end

-- The pk values of the insert lines of a recorder log.
local function inserted(log)
  local out = {}
  for _, line in ipairs(Fake.only(log, "insert")) do out[#out + 1] = line:sub(8) end
  return out
end

describe("stream: throttled shards back off on their own", function()
  local fake, s, log
  before_each(function()
    fake = Fake.new()
    fake:add_shard("A")
    fake:add_shard("B")
    s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", clock = function() return fake.now end })
    log = Fake.recorder(s)
    assert.same({}, s:fetch_stream_state())
  end)

  for _, code in ipairs({ "ThrottlingException", "LimitExceededException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded" }) do
    it(code .. " on GetRecords: the shard is called at a decreasing rate, its sibling every fetch", function()
      fake:fail("get_records", code, { shard = "A", until_time = 120 })
      local read_before = #times(fake, "A", "get_records")
      local n = 0
      local results = poll_until(fake, s, 200, function(i)
        if i % 10 == 0 then -- one record a simulated second in each shard
          n = n + 1
          fake:insert("A", { pk = "a" .. n })
          fake:insert("B", { pk = "b" .. n })
        end
      end)

      -- A: the first throttle is retried at the next fetch, then 0.5 s, 1 s, 2 s,
      -- ... doubling up to 30 s, each times a jitter factor in [0.5, 1).
      local at = {}
      for i, t in ipairs(times(fake, "A", "get_records")) do
        if i > read_before and t < 120 then at[#at + 1] = t end -- the throttled period
      end
      assert.near(0, at[1], EPS)
      assert.near(STEP, at[2] - at[1], EPS)
      for i = 2, #at - 1 do
        local d = math.min(30, 0.5 * 2 ^ (i - 2))
        local gap = at[i + 1] - at[i]
        assert.is_true(gap >= d / 2 - EPS and gap <= d + STEP + EPS,
          string.format("gap %d is %.2f s, expected %.2f..%.2f", i, gap, d / 2, d + STEP))
      end
      -- 1190 fetches in the throttled period; A was called about a dozen times, B every fetch
      assert.is_true(#at >= 9 and #at <= 14, "A was called " .. #at .. " times while throttled")
      local late = 0
      for _, t in ipairs(at) do if t >= 60 then late = late + 1 end end
      assert.is_true(late >= 2 and late <= 5, late .. " calls in the last minute")

      for _, r in ipairs(results) do
        assert.is_true(r.b_calls >= 1, "B not read at " .. r.at)
        local a_called = false
        for _, t in ipairs(at) do if math.abs(t - r.at) < EPS then a_called = true end end
        if a_called then
          -- the fetch that met the throttle reports it, after reading B
          assert.is_nil(r.records)
          assert.equals(code, r.err.code)
          assert.equals("A", r.err.shard_id)
          assert.is_true(r.err.throttled)
        else
          assert.is_table(r.records, "a skipped shard is not an error (at " .. r.at .. ")")
        end
      end

      -- after the throttling ends everything arrives once, in order per shard
      assert.is_table(s:fetch_stream_records())
      local a, b, first_a = {}, {}, nil
      for i, v in ipairs(inserted(log)) do
        if v:sub(1, 1) == "a" then a[#a + 1] = v; first_a = first_a or i else b[#b + 1] = v end
      end
      local want_a, want_b = {}, {}
      for i = 1, n do want_a[i], want_b[i] = "a" .. i, "b" .. i end
      assert.same(want_a, a)
      assert.same(want_b, b)
      -- B's records were delivered as they came, not held back by A
      assert.is_true(first_a > 115, "B delivered " .. (first_a - 1) .. " records before A's first")
      -- one 'error' per throttled call, none for the skipped fetches
      assert.equals(#at, #Fake.only(log, "error " .. code))
      assert.equals(#at, #Fake.only(log, "error"))
    end)
  end

  it("B's records in a fetch where A was throttled are delivered at once", function()
    fake:insert("B", { pk = "b1" })
    fake:fail("get_records", "ThrottlingException", { shard = "A", times = 1 })
    local r, err = s:fetch_stream_records()
    assert.is_nil(r)
    assert.equals("ThrottlingException", err.code)
    assert.same({ "b1" }, inserted(log))
  end)

  it("resets the backoff after a success", function()
    fake:fail("get_records", "ThrottlingException", { shard = "A", until_time = 100 })
    poll_until(fake, s, 100)
    local throttled = #times(fake, "A", "get_records")
    -- the last backoff may run to ~30 s past 100; wait for A's first success
    local first_ok
    poll_until(fake, s, 140, function()
      if not first_ok and calls_since(fake, 0, "A", "get_records") > throttled then first_ok = fake.now end
    end)
    assert.truthy(first_ok)
    -- a new throttle after the success starts the schedule over: the next
    -- fetch retries, then 0.25..0.5 s
    fake:insert("A", { pk = "after" })
    fake:fail("get_records", "ThrottlingException", { shard = "A", times = 2 })
    local t0 = fake.now
    poll_until(fake, s, t0 + 1)
    local at = {}
    for _, t in ipairs(times(fake, "A", "get_records")) do if t >= t0 - EPS then at[#at + 1] = t end end
    assert.near(t0, at[1], EPS)
    assert.near(t0 + STEP, at[2], EPS)
    assert.is_true(at[3] - at[2] >= 0.25 - EPS and at[3] - at[2] <= 0.5 + STEP + EPS)
    assert.same({ "after" }, inserted(log))
  end)

  it("a throttled GetShardIterator backs the shard off the same way", function()
    fake:insert("A", { pk = "a1" })
    fake:insert("B", { pk = "b1" })
    local s2 = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", clock = function() return fake.now end })
    local log2 = Fake.recorder(s2)
    local opened_before = #times(fake, "A", "get_shard_iterator") -- by the stream of before_each
    fake:fail("get_shard_iterator", "LimitExceededException", { shard = "A", until_time = 20 })
    local fetches = 0
    -- Until 60: the last throttled attempt may come just before 20, and the
    -- backoff after it may be as long as THROTTLE_CAP (30 s).
    while fake.now < 60 do
      local before = #fake.calls
      s2:fetch_stream_state()
      fetches = fetches + 1
      assert.is_true(calls_since(fake, before, "B", "get_records") > 0, "B not read at " .. fake.now)
      fake:advance(STEP)
    end
    assert.equals(600, fetches)
    local at = {}
    for i, t in ipairs(times(fake, "A", "get_shard_iterator")) do
      if i > opened_before and t < 20 then at[#at + 1] = t end
    end
    -- 200 fetches while throttled: 0, 0.1, then 0.5 * 2^k * [0.5, 1) apart
    assert.is_true(#at >= 5 and #at <= 9, #at .. " GetShardIterator calls on A")
    assert.equals(#at, #Fake.only(log2, "error LimitExceededException"))
    assert.same({ "b1", "a1" }, inserted(log2))
  end)

  it("a backed-off parent still holds its children back", function()
    fake = Fake.new()
    fake:add_shard("P")
    fake:insert("P", { pk = "p1" })
    fake:insert("P", { pk = "p2" })
    fake:close("P")
    fake:add_shard("C", { parent = "P" })
    fake:insert("C", { pk = "c1" })
    fake:add_shard("U") -- unrelated
    fake:insert("U", { pk = "u1" })
    s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", clock = function() return fake.now end })
    log = Fake.recorder(s)
    fake:fail("get_records", "ProvisionedThroughputExceededException", { shard = "P", until_time = 10 })
    s:fetch_stream_state()
    while fake.now < 30 do -- the last backoff started before 10 s ends before 26 s
      if fake.now < 10 then
        assert.equals(0, calls_since(fake, 0, "C", "get_shard_iterator"), "child read at " .. fake.now)
      end
      s:fetch_stream_records()
      fake:advance(STEP)
    end
    assert.same({ "u1", "p1", "p2", "c1" }, inserted(log))
    assert.same({ "removed P" }, Fake.only(log, "removed"))
  end)

  it("run keeps polling the other shards at once and does not slow down for the throttled one", function()
    -- (run measures the backoff by its clock or by the time it slept, whichever is more)
    fake:fail("get_records", "ThrottlingException", { shard = "A", until_time = 60 })
    local sleeps, n = {}, 0
    local r = s:run({ interval = 0.5, max_interval = 8, sleep = function(t)
      sleeps[#sleeps + 1] = t
      fake:advance(t)
      n = n + 1
      fake:insert("B", { pk = "b" .. n }) -- B has something after every sleep
      if n % 10 == 0 then fake:insert("A", { pk = "a" .. n }) end
      if fake.now >= 100 then s:stop() end -- A's last backoff ends before 90 s
    end })
    assert.is_true(r)
    for _, t in ipairs(sleeps) do assert.equals(0.5, t) end
    local a_calls = 0
    for _, t in ipairs(times(fake, "A", "get_records")) do if t < 60 then a_calls = a_calls + 1 end end
    -- 120 fetches in the first minute (B always had something after a sleep)
    assert.is_true(a_calls >= 8 and a_calls <= 14, a_calls .. " GetRecords on A while throttled")
    local b, a = {}, {}
    for _, v in ipairs(inserted(log)) do
      if v:sub(1, 1) == "b" then b[#b + 1] = v else a[#a + 1] = v end
    end
    assert.equals(n - 1, #b) -- the last one was written after the last fetch
    assert.equals(math.floor((n - 1) / 10), #a)
  end)
end)
