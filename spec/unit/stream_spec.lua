-- The consumer's API against the scripted fake Streams service.
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local core = require("dynamodb_stream.core")

-- What a state becomes after a trip through JSON text (a checkpoint file).
local function json_roundtrip(v)
  return core.json_decode(core.json_encode(v))
end

describe("dynamodb_stream.stream", function()
  local fake, stream, log

  before_each(function()
    fake = Fake.new()
    fake:add_shard("A")
    stream = Stream.new(fake, fake.stream_arn)
    log = Fake.recorder(stream)
  end)

  describe("new", function()
    it("raises on a bad client, stream ARN or third argument", function()
      assert.has_error(function() Stream.new(nil, "arn") end, "client (a DynamoDB Streams client) expected")
      assert.has_error(function() Stream.new({ describe_stream = function() end }, "arn") end,
        "client has no get_shard_iterator (or getShardIterator) method")
      assert.has_error(function() Stream.new(fake, nil) end, "stream_arn (a string) expected")
      assert.has_error(function() Stream.new(fake, "") end, "stream_arn (a string) expected")
      assert.has_error(function() Stream.new(fake, "arn", 42) end, "third argument must be a function or a table")
      assert.has_error(function() Stream.new(fake, "arn", { start_at = "NOW" }) end)
      assert.has_error(function() Stream.new(fake, "arn", { limit = 5000 }) end,
        "opts.limit must be an integer in 1..1000")
      assert.has_error(function()
        Stream.new(fake, "arn", { start_at = { A = { sequence_number = 12 } } })
      end)
    end)

    it("accepts a client with camelCase methods only", function()
      local s = Stream.new(fake:camel(), fake.stream_arn)
      local l = Fake.recorder(s)
      assert.truthy(s:fetchStreamState())
      fake:insert("A", { pk = "1" })
      assert.equals(1, #s:fetchStreamState())
      assert.same({ "new A", "insert 1" }, l)
    end)

    it("prefers snake_case methods when the client has both", function()
      local used = {}
      local client = setmetatable({}, { __index = function(_, name)
        return function(_, p)
          used[#used + 1] = name
          local snake = name:gsub("%u", function(c) return "_" .. c:lower() end)
          return fake[snake](fake, p)
        end
      end })
      local s = Stream.new(client, fake.stream_arn)
      s:fetch_stream_state()
      for _, name in ipairs(used) do assert.matches("_", name) end
      assert.is_true(#used >= 3)
    end)
  end)

  describe("events", function()
    it("emits the original's events in its argument order, then the raw record", function()
      local s = Stream.new(fake, fake.stream_arn, function(av)
        local out = {}
        for k, v in pairs(av) do out[k] = v.S or tonumber(v.N) end
        return out
      end)
      local got = {}
      s:on("insert record", function(...) got[#got + 1] = { "insert", ... } end)
      s:on("modify record", function(...) got[#got + 1] = { "modify", ... } end)
      s:on("remove record", function(...) got[#got + 1] = { "remove", ... } end)
      s:on("record", function(record, shard_id) got[#got + 1] = { "record", record.eventName, shard_id, record.shardId } end)
      s:fetch_stream_state()
      fake:insert("A", { pk = "1", n = 1 })
      fake:modify("A", { pk = "1", n = 2 }, { pk = "1", n = 1 })
      fake:remove("A", { pk = "1", n = 2 })
      s:fetch_stream_state()
      assert.same({ "record", "INSERT", "A", "A" }, got[1])
      assert.same({ "insert", { pk = "1", n = 1 }, { pk = "1" } }, { got[2][1], got[2][2], got[2][3] })
      assert.same({ "modify", { pk = "1", n = 2 }, { pk = "1", n = 1 }, { pk = "1" } },
        { got[4][1], got[4][2], got[4][3], got[4][4] })
      assert.same({ "remove", { pk = "1", n = 2 }, { pk = "1" } }, { got[6][1], got[6][2], got[6][3] })
      assert.equals("REMOVE", got[6][4].eventName) -- the raw record comes last
      assert.equals(6, #got)
    end)

    it("returns the raw records it delivered from every fetch method", function()
      assert.same({}, stream:fetch_stream_state())
      fake:insert("A", { pk = "1" })
      fake:insert("A", { pk = "2" })
      local records = stream:fetch_stream_records()
      assert.equals(2, #records)
      assert.equals("INSERT", records[1].eventName)
      assert.equals(fake.by_id.A.records[2].dynamodb.SequenceNumber, records[2].dynamodb.SequenceNumber)
      assert.is_true(stream:fetch_stream_shards())
    end)

    it("delivers records of unknown event names as 'record' only", function()
      stream:fetch_stream_state()
      fake:put("A", "UPSERT", { pk = "x" })
      local raw = {}
      stream:on("record", function(r) raw[#raw + 1] = r.eventName end)
      assert.equals(1, #stream:fetch_stream_state())
      assert.same({ "UPSERT" }, raw)
      assert.same({ "new A" }, log)
    end)

    it("returns nil, err and emits 'error' once on failure, and does not raise without an 'error' listener", function()
      fake:fail("describe_stream", "InternalServerError")
      local r, err = stream:fetch_stream_state()
      assert.is_nil(r)
      assert.equals("InternalServerError", err.code)
      assert.same({ "error InternalServerError" }, log)
      local quiet = Stream.new(fake, fake.stream_arn)
      fake:fail("describe_stream", "InternalServerError")
      r, err = quiet:fetch_stream_state()
      assert.is_nil(r)
      assert.equals("InternalServerError", err.code)
    end)

    it("turns a client that raises into nil, err", function()
      local boom = { describe_stream = function() error("socket exploded") end,
        get_shard_iterator = function() end, get_records = function() end }
      local r, err = Stream.new(boom, "arn"):fetch_stream_state()
      assert.is_nil(r)
      assert.equals("ClientError", err.code)
      assert.matches("socket exploded", err.message)
    end)

    it("ignores an 'error' listener that raises", function()
      local s = Stream.new(fake, fake.stream_arn)
      s:on("error", function() error("listener broke") end)
      fake:fail("describe_stream", "InternalServerError")
      local r, err = s:fetch_stream_state()
      assert.is_nil(r)
      assert.equals("InternalServerError", err.code)
    end)
  end)

  describe("start_at", function()
    it("LATEST (default) skips what was written before the first fetch", function()
      fake:insert("A", { pk = "old" })
      stream:fetch_stream_state()
      fake:insert("A", { pk = "new" })
      stream:fetch_stream_state()
      assert.same({ "new A", "insert new" }, log)
    end)

    it("TRIM_HORIZON reads everything still in the stream", function()
      fake:insert("A", { pk = "old" })
      local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON" })
      local l = Fake.recorder(s)
      s:fetch_stream_state()
      assert.same({ "new A", "insert old" }, l)
    end)

    it("per-shard sequence numbers, AT and AFTER", function()
      local s1 = fake:insert("A", { pk = "1" })
      local s2 = fake:insert("A", { pk = "2" })
      fake:insert("A", { pk = "3" })
      local at = Stream.new(fake, fake.stream_arn, { start_at = { A = { sequence_number = s2, type = "AT_SEQUENCE_NUMBER" } } })
      local l1 = Fake.recorder(at)
      at:fetch_stream_state()
      assert.same({ "new A", "insert 2", "insert 3" }, l1)
      local after = Stream.new(fake, fake.stream_arn, { start_at = { A = { sequence_number = s1 } } })
      local l2 = Fake.recorder(after)
      after:fetch_stream_state()
      assert.same({ "new A", "insert 2", "insert 3" }, l2)
    end)
  end)

  describe("shard state", function()
    it("is JSON-serialisable and a superset of the original's { shardId, nextShardIterator }", function()
      stream:fetch_stream_state()
      local seq = fake:insert("A", { pk = "1" })
      stream:fetch_stream_state()
      local state = stream:get_shard_state()
      assert.equals("A", state.A.shardId)
      assert.is_string(state.A.nextShardIterator)
      assert.equals(seq, state.A.sequenceNumber)
      assert.same({ type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = seq }, state.A.position)
      assert.same(state, json_roundtrip(state))
      assert.same(state, core.json_decode and core.json_decode(core.json_encode(state)) or state)
    end)

    it("resumes from a restored state with no gap and no duplicate", function()
      stream:fetch_stream_state()
      fake:insert("A", { pk = "1" })
      stream:fetch_stream_state()
      local saved = json_roundtrip(stream:get_shard_state())
      fake:insert("A", { pk = "2" })
      local s = Stream.new(fake, fake.stream_arn)
      local l = Fake.recorder(s)
      s:set_shard_state(saved)
      s:fetch_stream_state()
      assert.same({ "insert 2" }, l)
    end)

    it("resumes from sequence numbers when the restored iterators have expired", function()
      stream:fetch_stream_state()
      fake:insert("A", { pk = "1" })
      stream:fetch_stream_state()
      local saved = json_roundtrip(stream:get_shard_state())
      fake:insert("A", { pk = "2" })
      fake:advance(3600)
      local s = Stream.new(fake, fake.stream_arn)
      local l = Fake.recorder(s)
      s:set_shard_state(saved)
      s:fetch_stream_state()
      assert.same({ "insert 2" }, l)
      assert.equals(1, fake:count("get_shard_iterator", function(p)
        return p.ShardIteratorType == "AFTER_SEQUENCE_NUMBER" and p.SequenceNumber == saved.A.sequenceNumber
      end))
    end)

    it("loads a state saved by the npm package (iterators only)", function()
      stream:fetch_stream_state()
      fake:insert("A", { pk = "1" })
      local it = stream:get_shard_state().A.nextShardIterator
      local s = Stream.new(fake, fake.stream_arn)
      local l = Fake.recorder(s)
      s:setShardState({ A = { shardId = "A", nextShardIterator = it } })
      s:fetchStreamState()
      assert.same({ "insert 1" }, l)
    end)

    it("reads a shard of an npm state whose iterator expired from TRIM_HORIZON (nothing lost)", function()
      local it = fake:get_shard_iterator({ StreamArn = fake.stream_arn, ShardId = "A",
        ShardIteratorType = "TRIM_HORIZON" }).ShardIterator
      fake:insert("A", { pk = "1" })
      fake:advance(3600)
      local s = Stream.new(fake, fake.stream_arn)
      local l = Fake.recorder(s)
      s:set_shard_state({ A = { shardId = "A", nextShardIterator = it } })
      s:fetch_stream_state()
      assert.same({ "insert 1" }, l)
      assert.equals(1, fake:count("get_shard_iterator", function(p) return p.ShardIteratorType == "TRIM_HORIZON" end) - 1)
    end)

    it("treats a JSON null iterator as absent", function()
      local s = Stream.new(fake, fake.stream_arn)
      s:set_shard_state({ A = { shardId = "A", nextShardIterator = core.null } })
      fake:insert("A", { pk = "1" })
      assert.equals(1, #s:fetch_stream_state())
    end)

    it("rejects a malformed state", function()
      assert.has_error(function() stream:set_shard_state("x") end, "shard state table expected")
      assert.has_error(function() stream:set_shard_state({ A = { sequenceNumber = "12x" } }) end)
      assert.has_error(function() stream:set_shard_state({ "A" }) end)
    end)
  end)

  describe("run", function()
    local function sleeper(max_sleeps)
      local sleeps = {}
      return sleeps, function(s)
        sleeps[#sleeps + 1] = s
        if #sleeps >= max_sleeps then stream:stop() end
      end
    end

    it("backs off exponentially when idle, up to max_interval, and returns true after stop()", function()
      local sleeps, sleep = sleeper(6)
      assert.is_true(stream:run({ sleep = sleep, interval = 1, max_interval = 5 }))
      assert.same({ 1, 2, 4, 5, 5, 5 }, sleeps)
      -- one GetRecords per shard per idle fetch; DescribeStream only at the start
      assert.equals(6, fake:count("get_records"))
      assert.equals(1, fake:count("describe_stream"))
    end)

    it("asks the client to refresh its credentials before each fetch and reports a failure without stopping", function()
      local asked = 0
      fake.refresh_credentials = function()
        asked = asked + 1
        if asked == 2 then
          return nil, setmetatable({ code = "Throttling", message = "credentials (profile x): sts busy" },
            { __tostring = function(e) return e.code .. ": " .. e.message end })
        end
        return true
      end
      local reported = {}
      stream:on("error", function(err) reported[#reported + 1] = err end)
      local _, sleep = sleeper(3)
      assert.is_true(stream:run({ sleep = sleep, interval = 1 }))
      assert.equals(3, asked)
      assert.equals(1, #reported)
      assert.matches("sts busy", tostring(reported[1]))
      assert.same({ "new A", "error Throttling" }, log)
      assert.equals(3, fake:count("get_records")) -- every fetch went on
    end)

    it("fetches again at once while records flow, and resets the backoff", function()
      local fetches = 0
      fake.describe_hook = nil
      local sleeps = {}
      local limited = Stream.new(fake, fake.stream_arn, { max_pages_per_shard = 1, limit = 2 })
      limited:fetch_stream_state()
      for i = 1, 5 do fake:insert("A", { pk = tostring(i) }) end
      limited:on("record", function() fetches = fetches + 1 end)
      limited:run({ interval = 0.5, max_interval = 4, sleep = function(s)
        sleeps[#sleeps + 1] = s
        if #sleeps == 3 then limited:stop() end
      end })
      assert.equals(5, fetches)
      assert.same({ 0.5, 1, 2 }, sleeps) -- no sleep between the three fetches that had records
    end)

    it("stops from a listener after the record being delivered; the rest comes next run", function()
      stream:fetch_stream_state()
      for i = 1, 4 do fake:insert("A", { pk = tostring(i) }) end
      local seen = {}
      local function on_insert(new)
        seen[#seen + 1] = new.pk.S
        if #seen == 2 then stream:stop() end
      end
      stream:on("insert record", on_insert)
      assert.is_true(stream:run({ sleep = function() error("should not sleep") end }))
      assert.same({ "1", "2" }, seen)
      stream:off("insert record", on_insert)
      assert.equals(2, #stream:fetch_stream_records())
    end)

    it("ends after duration seconds", function()
      local t0 = core.monotime()
      assert.is_true(stream:run({ interval = 0.01, max_interval = 0.02, duration = 0.1 }))
      local took = core.monotime() - t0
      assert.is_true(took >= 0.09 and took < 1, "took " .. took)
    end)

    it("re-describes at once when a shard ends, to find its children", function()
      stream:fetch_stream_state()
      fake:insert("A", { pk = "1" })
      stream:once("insert record", function()
        fake:close("A")
        fake:add_shard("B", { parent = "A" })
        fake:insert("B", { pk = "2" })
      end)
      local sleeps, sleep = sleeper(1)
      stream:run({ sleep = sleep, describe_interval = 1000 })
      assert.same({ "new A", "insert 1", "removed A", "new B", "insert 2" }, log)
      assert.equals(1, #sleeps)
      assert.equals(3, fake:count("describe_stream")) -- the fetch before, the run's first, after A ended
    end)

    it("returns nil, err when the stream is gone", function()
      fake.stream_deleted = true
      local r, err = stream:run({ sleep = function() end })
      assert.is_nil(r)
      assert.equals("ResourceNotFoundException", err.code)
    end)

    it("refuses to run twice at once", function()
      local inner
      stream:on("new shards", function() inner = { stream:run({}) } end)
      local _, sleep = sleeper(1)
      stream:run({ sleep = sleep })
      assert.is_nil(inner[1])
      assert.equals("FetchInProgress", inner[2].code)
    end)
  end)
end)
