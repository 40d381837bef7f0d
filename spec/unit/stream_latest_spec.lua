-- Issue 11, item 4: a shard opened at LATEST (the default start) that has
-- delivered nothing must lose nothing when its iterator is lost (a restart
-- after a downtime, a long pause): it is read again from TRIM_HORIZON, and
-- only the records created more than a minute before the LATEST start are
-- skipped. 'gap' only when the stream no longer holds the data since then.
local ds = require("dynamodb_stream")
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local helper = require("helper")

local MINUTE, HOUR = 60, 3600

for _, parallel in ipairs({ false, true }) do
  describe("a LATEST start (" .. (parallel and "parallel rounds" or "serial reads") .. ")", function()
    local fake, dir, path

    before_each(function()
      fake = Fake.new({ parallel = parallel })
      fake:add_shard("A")
      dir = helper.tmpdir()
      path = dir .. "/fruit-stream.json"
    end)
    after_each(function() helper.rmdir(dir) end)

    -- The README's quick start, with the fake's wall clock.
    local function quick_start(log)
      local stream = ds.new(fake, fake.stream_arn,
        { unmarshall = ds.unmarshall, wall_clock = function() return fake:wall() end })
      stream:on("insert record", function(item) log[#log + 1] = "new " .. item.pk end)
      stream:on("gap", function(info) log[#log + 1] = "gap " .. info.reason end)
      stream:on("error", function(err) log[#log + 1] = "error " .. err.code end)
      return stream
    end

    -- stream:run{ checkpoint = path } for one fetch, as a process that is then stopped.
    local function run_once(stream)
      assert(stream:run({ checkpoint = path, sleep = function() stream:stop() end }))
    end

    it("delivers after a restart what was written while the process was down (> 15 min)", function()
      fake:insert("A", { pk = "long-before" })
      fake:advance(2 * MINUTE)
      fake:insert("A", { pk = "just-before" })     -- within the margin: delivered again (documented)
      fake:advance(30)
      local log = {}
      local opened = fake:wall()
      run_once(quick_start(log))                   -- opens at LATEST, delivers nothing, saves
      assert.same({}, log)
      local saved = assert(ds.json_decode(helper.read_file(path)))
      assert.same({ type = "LATEST", openedAt = opened, readAt = opened }, saved.A.position)

      fake:advance(20 * MINUTE)                    -- down: the saved iterator expires
      fake:insert("A", { pk = "while-down-1" })
      fake:advance(HOUR)
      fake:insert("A", { pk = "while-down-2" })
      local log2 = {}
      run_once(quick_start(log2))
      assert.same({ "new just-before", "new while-down-1", "new while-down-2" }, log2)
      assert.equals(fake.by_id.A.records[4].dynamodb.SequenceNumber,
        assert(ds.json_decode(helper.read_file(path))).A.sequenceNumber)
    end)

    it("delivers what was written during a pause longer than the iterator's life (no restart)", function()
      fake:insert("A", { pk = "old" })
      fake:advance(5 * MINUTE)
      local log = {}
      local stream = quick_start(log)
      assert(stream:fetch_stream_state())
      fake:advance(16 * MINUTE)
      fake:insert("A", { pk = "during-pause" })
      assert(stream:fetch_stream_state())
      assert.same({ "new during-pause" }, log)
      assert.equals(1, fake:count("get_shard_iterator", function(p) return p.ShardIteratorType == "LATEST" end))
      assert.equals(1, fake:count("get_shard_iterator", function(p) return p.ShardIteratorType == "TRIM_HORIZON" end))
      assert.same({ skipped = 1, delivered = 1 }, { skipped = stream:stats().skipped, delivered = stream:stats().delivered })
    end)

    it("keeps skipping across a second loss, and saves the position after the records it skipped", function()
      for i = 1, 3 do fake:insert("A", { pk = "old" .. i }) end
      fake:advance(10 * MINUTE)
      local log = {}
      local stream = quick_start(log)
      assert(stream:fetch_stream_state())
      local opened = stream:get_shard_state().A.position.openedAt
      fake:advance(16 * MINUTE)                   -- expired, nothing written since: only skips
      assert(stream:fetch_stream_state())
      local state = stream:get_shard_state()
      assert.same({ type = "AFTER_SEQUENCE_NUMBER", openedAt = opened, readAt = fake:wall(),
        sequenceNumber = fake.by_id.A.records[3].dynamodb.SequenceNumber }, state.A.position)
      assert.is_nil(state.A.sequenceNumber)       -- nothing delivered
      fake:advance(16 * MINUTE)
      fake:insert("A", { pk = "new" })
      local again = quick_start(log)
      again:set_shard_state(ds.json_decode(ds.json_encode(state)))
      assert(again:fetch_stream_state())
      assert.same({ "new new" }, log)
    end)

    it("reads through records it skips at once, not at the idle rate", function()
      for i = 1, 250 do fake:insert("A", { pk = "old" .. i }) end
      fake:advance(10 * MINUTE)
      local log = {}
      run_once(quick_start(log))                   -- opens at LATEST, saves
      fake:advance(20 * MINUTE)                    -- down: the saved iterator expires
      fake:insert("A", { pk = "new" })
      local stream = ds.new(fake, fake.stream_arn, { unmarshall = ds.unmarshall, limit = 10,
        max_pages_per_shard = 5, wall_clock = function() return fake:wall() end })
      stream:on("insert record", function(item) log[#log + 1] = item.pk; stream:stop() end)
      local slept = 0
      assert(stream:run({ checkpoint = path, sleep = function(s) slept = slept + s; fake:advance(s) end }))
      assert.same({ "new" }, log)
      assert.equals(250, stream:stats().skipped)
      assert.equals(0, slept)                      -- 26 pages of skipped records, no idle pause
    end)

    it("delivers a record without ApproximateCreationDateTime (never skipped)", function()
      fake:insert("A", { pk = "dated" })
      fake:insert("A", { pk = "undated" })
      fake:advance(10 * MINUTE)
      local log = {}
      local stream = quick_start(log)
      assert(stream:fetch_stream_state())
      fake:advance(16 * MINUTE)
      fake:tamper("get_records", function(res)
        for _, r in ipairs(res.Records) do
          if r.dynamodb.NewImage.pk.S == "undated" then r.dynamodb.ApproximateCreationDateTime = nil end
        end
        return res
      end, { times = math.huge })
      assert(stream:fetch_stream_state())
      assert.same({ "new undated" }, log)
    end)

    describe("'gap'", function()
      it("none after a downtime shorter than the retention, even with the old records trimmed", function()
        fake:insert("A", { pk = "old" })
        local log = {}
        run_once(quick_start(log))
        fake:advance(2 * HOUR)
        fake:insert("A", { pk = "while-down" })
        fake:advance(21 * HOUR)
        fake:trim("A", 1)                          -- "old" is more than 24 h old
        run_once(quick_start(log))
        assert.same({ "new while-down" }, log)
      end)

      it("none after a longer downtime when a record from before the LATEST start is still there", function()
        fake:insert("A", { pk = "old" })
        fake:advance(10 * MINUTE)
        local log = {}
        run_once(quick_start(log))
        fake:advance(25 * HOUR)
        fake:insert("A", { pk = "while-down" })
        run_once(quick_start(log))
        assert.same({ "new while-down" }, log)
      end)

      it("emitted once after a longer downtime when nothing from before the LATEST start is left", function()
        fake:insert("A", { pk = "old" })
        fake:advance(10 * MINUTE)
        local log = {}
        local first = quick_start(log)
        run_once(first)
        local opened = first:get_shard_state().A.position.openedAt
        fake:advance(HOUR)
        fake:insert("A", { pk = "trimmed-unread" })
        fake:advance(25 * HOUR)
        fake:insert("A", { pk = "while-down" })
        fake:trim("A", 2)
        local infos = {}
        local second = quick_start(log)
        second:on("gap", function(info) infos[#infos + 1] = info end)
        run_once(second)
        assert.same({ "gap RetentionExceeded", "new while-down" }, log)
        assert.same({ { shard_id = "A", reason = "RetentionExceeded", since = opened } }, infos)
        fake:insert("A", { pk = "later" })
        run_once(quick_start(log))
        assert.same({ "gap RetentionExceeded", "new while-down", "new later" }, log)
      end)

      it("none when a quiet consumer that ran for more than a day restarts after a short downtime", function()
        fake:insert("A", { pk = "old" })
        local log = {}
        local stream = quick_start(log)
        for _ = 1, 26 * 4 do                       -- 26 hours of polls, nothing written
          assert(stream:fetch_stream_state())
          fake:advance(15 * MINUTE - 1)
        end
        local state = stream:get_shard_state()
        assert.equals(fake:wall() - (15 * MINUTE - 1), state.A.position.readAt)
        fake.by_id.A.trim = 1                      -- "old" is gone: older than 24 h
        fake:advance(20 * MINUTE)
        fake:insert("A", { pk = "while-down" })
        local again = quick_start(log)
        again:set_shard_state(ds.json_decode(ds.json_encode(state)))
        assert(again:fetch_stream_state())
        assert.same({ "new while-down" }, log)
      end)

      it("none for a quiet consumer whose iterator expires at every poll (read from the horizon each time)", function()
        fake:insert("A", { pk = "old" })
        fake:advance(10 * MINUTE)
        local log = {}
        local stream = quick_start(log)
        for _ = 1, 26 * 3 do                       -- 26 hours of polls 20 minutes apart
          assert(stream:fetch_stream_state())
          fake:advance(20 * MINUTE)
        end
        fake.by_id.A.trim = 1
        -- AWS answers so for a position after a trimmed record (the fake only when the next is)
        fake:fail("get_shard_iterator", "TrimmedDataAccessException")
        fake:insert("A", { pk = "late" })
        assert(stream:fetch_stream_state())
        assert.same({ "new late" }, log)
      end)

      it("emitted from the last read when the consumer was down for longer than the retention", function()
        local log = {}
        local stream = quick_start(log)
        for _ = 1, 10 do
          assert(stream:fetch_stream_state())
          fake:advance(10 * MINUTE)
        end
        local last_read = stream:get_shard_state().A.position.readAt
        fake:insert("A", { pk = "trimmed-unread" })
        fake:advance(25 * HOUR)
        fake:insert("A", { pk = "while-down" })
        fake:trim("A", 1)
        local infos = {}
        local again = quick_start(log)
        again:on("gap", function(info) infos[#infos + 1] = info end)
        again:set_shard_state(stream:get_shard_state())
        assert(again:fetch_stream_state())
        assert.same({ "gap RetentionExceeded", "new while-down" }, log)
        assert.same({ { shard_id = "A", reason = "RetentionExceeded", since = last_read } }, infos)
      end)

      it("judged at the first record when the shard holds nothing after a longer downtime", function()
        local log = {}
        local first = quick_start(log)
        run_once(first)
        local last_read = first:get_shard_state().A.position.readAt
        fake:insert("A", { pk = "trimmed-unread" })
        fake:advance(25 * HOUR)
        fake:trim("A", 1)
        local infos = {}
        local function process()
          local stream = quick_start(log)
          stream:on("gap", function(info) infos[#infos + 1] = info end)
          run_once(stream)
        end
        process()                                  -- nothing left in the shard: not judged yet
        assert.same({}, log)
        fake:advance(HOUR)
        fake:insert("A", { pk = "later" })
        process()                                  -- restarted again, the first record
        assert.same({ "gap RetentionExceeded", "new later" }, log)
        assert.same({ { shard_id = "A", reason = "RetentionExceeded", since = last_read } }, infos)
        fake:insert("A", { pk = "even-later" })
        process()
        assert.same({ "gap RetentionExceeded", "new later", "new even-later" }, log)
      end)

      it("emitted when a closed shard holds nothing any more after a longer downtime", function()
        local log = {}
        run_once(quick_start(log))
        fake:insert("A", { pk = "trimmed-unread" })
        fake:close("A")
        fake:advance(25 * HOUR)
        fake:trim("A", 1)
        local removed = {}
        local stream = quick_start(log)
        stream:on("remove shards", function(ids) removed[#removed + 1] = ids[1] end)
        run_once(stream)
        assert.same({ "gap RetentionExceeded" }, log)
        assert.same({ "A" }, removed)
      end)
    end)

    describe("restored states", function()
      it("a LATEST position saved without its time (older versions) is read from TRIM_HORIZON", function()
        fake:insert("A", { pk = "1" })
        local log = {}
        local stream = quick_start(log)
        stream:set_shard_state({ A = { shardId = "A", position = { type = "LATEST" } } })
        assert(stream:fetch_stream_state())
        assert.same({ "new 1" }, log)
      end)

      it("an npm state (iterator only) whose iterator expired is read from TRIM_HORIZON", function()
        local it = fake:get_shard_iterator({ StreamArn = fake.stream_arn, ShardId = "A",
          ShardIteratorType = "LATEST" }).ShardIterator
        fake:insert("A", { pk = "1" })
        fake:advance(HOUR)
        local log = {}
        local stream = quick_start(log)
        stream:set_shard_state({ A = { shardId = "A", nextShardIterator = it } })
        assert(stream:fetch_stream_state())
        assert.same({ "new 1" }, log)
      end)

      it("refuses an openedAt that is not a time", function()
        local stream = quick_start({})
        for _, bad in ipairs({ "1700000000", -1, 0 / 0, math.huge, {} }) do
          assert.has_error(function()
            stream:set_shard_state({ A = { shardId = "A", position = { type = "LATEST", openedAt = bad } } })
          end, "shard state A: openedAt must be a time in epoch seconds")
        end
      end)
    end)
  end)
end

describe("a LATEST start, wall clock by default", function()
  it("records os.time() when the shard is opened", function()
    local fake = Fake.new()
    fake:add_shard("A")
    local s = Stream.new(fake, fake.stream_arn)
    local before = os.time()
    assert(s:fetch_stream_state())
    local opened = s:get_shard_state().A.position.openedAt
    assert.is_true(opened >= before and opened <= os.time())
    assert.has_error(function() Stream.new(fake, fake.stream_arn, { wall_clock = 5 }) end,
      "opts.wall_clock must be a function")
  end)
end)
