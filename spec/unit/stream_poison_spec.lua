-- Issue 11, item 6: a record whose listener always raises must not stall its
-- shard forever when the user sets Lambda's limits: max_record_attempts and
-- max_record_age hand it to on_failure (a function or a JSON-lines file) and
-- the shard moves on; if on_failure fails, the shard stays at the record.
local ds = require("dynamodb_stream")
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local helper = require("helper")

-- The delivery counters of stats() (its page and lag metrics have their own spec).
local function delivery_counters(stream)
  local all, out = stream:stats(), {}
  for _, name in ipairs({ "delivered", "failed_attempts", "retries", "failed_over", "on_failure_errors",
      "skipped", "gaps" }) do
    out[name] = all[name]
  end
  return out
end

for _, parallel in ipairs({ false, true }) do
  describe("poison records (" .. (parallel and "parallel rounds" or "serial reads") .. ")", function()
    local fake

    before_each(function()
      fake = Fake.new({ parallel = parallel })
      fake:add_shard("A")
    end)

    -- A stream from TRIM_HORIZON whose 'insert record' listener raises for pk "poison".
    local function poisoned(opts)
      opts.start_at, opts.wall_clock = "TRIM_HORIZON", function() return fake:wall() end
      local s = Stream.new(fake, fake.stream_arn, opts)
      local log = Fake.recorder(s)
      s:on("insert record", function(new) if Fake.pk(new) == "poison" then error("cannot take it") end end)
      return s, log
    end

    local function failures_to(list)
      return function(record, err, shard_id)
        list[#list + 1] = { pk = Fake.pk(record.dynamodb.Keys), code = err.code, attempts = err.attempts,
          shard_id = shard_id, message = err.message }
      end
    end

    it("max_record_attempts = 3: on_failure after the 3rd attempt, then the next records", function()
      local failed = {}
      local s, log = poisoned({ max_record_attempts = 3, on_failure = failures_to(failed) })
      fake:insert("A", { pk = "1" })
      local poison = fake:insert("A", { pk = "poison" })
      fake:insert("A", { pk = "3" })
      for _ = 1, 2 do
        local r, err = s:fetch_stream_state()
        assert.is_nil(r)
        assert.equals("ListenerError", err.code)
      end
      assert.same({}, failed)
      assert.truthy(s:fetch_stream_state())
      assert.equals(1, #failed)
      assert.same({ pk = "poison", code = "ListenerError", attempts = 3, shard_id = "A" },
        { pk = failed[1].pk, code = failed[1].code, attempts = failed[1].attempts, shard_id = failed[1].shard_id })
      assert.matches("cannot take it", failed[1].message)
      assert.same({ "new A", "insert 1", "insert poison", "error ListenerError", "insert poison",
        "error ListenerError", "insert poison", "insert 3" }, log)
      assert.same({ delivered = 2, failed_attempts = 3, retries = 2, failed_over = 1, on_failure_errors = 0,
        skipped = 0, gaps = 0 }, delivery_counters(s))
      -- the checkpoint is past the record handed over
      local state = s:get_shard_state()
      assert.same({ type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = fake.by_id.A.records[3].dynamodb.SequenceNumber },
        state.A.position)
      local again = Stream.new(fake, fake.stream_arn)
      local log2 = Fake.recorder(again)
      fake:advance(3600)                        -- the saved iterators have expired
      again:set_shard_state(ds.json_decode(ds.json_encode(state)))
      assert.truthy(again:fetch_stream_state())
      assert.same({}, Fake.only(log2, "insert"))
      assert.is_string(poison)
    end)

    it("the checkpoint after a failover resumes after the poison record", function()
      local s = poisoned({ max_record_attempts = 1, on_failure = function() end })
      local poison = fake:insert("A", { pk = "poison" })
      assert.truthy(s:fetch_stream_state())
      local state = s:get_shard_state()
      assert.equals(poison, state.A.sequenceNumber)
      assert.same({ type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = poison }, state.A.position)
      fake:insert("A", { pk = "next" })
      fake:advance(3600)
      local again = Stream.new(fake, fake.stream_arn)
      local log = Fake.recorder(again)
      again:set_shard_state(state)
      assert.truthy(again:fetch_stream_state())
      assert.same({ "insert next" }, Fake.only(log, "insert"))
    end)

    it("run{ checkpoint = path } saves the position past the record handed over", function()
      local dir = helper.tmpdir()
      local path = dir .. "/state.json"
      local failed = {}
      local s, log = poisoned({ max_record_attempts = 2, on_failure = failures_to(failed) })
      local poison = fake:insert("A", { pk = "poison" })
      local rounds = 0
      assert.is_true(s:run({ checkpoint = path, sleep = function()
        rounds = rounds + 1
        if rounds >= 3 then s:stop() end
      end }))
      local saved = assert(ds.json_decode(helper.read_file(path)))
      helper.rmdir(dir)
      assert.equals(1, #failed)
      assert.equals(poison, saved.A.sequenceNumber)
      assert.same({ type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = poison }, saved.A.position)
      assert.same({ "error ListenerError" }, Fake.only(log, "error"))
    end)

    it("counts attempts per record and starts again for the next one", function()
      local failed = {}
      local s = poisoned({ max_record_attempts = 2, on_failure = failures_to(failed) })
      local flaky = 1
      s:on("insert record", function(new)
        if Fake.pk(new) == "flaky" and flaky > 0 then flaky = flaky - 1; error("once") end
      end)
      fake:insert("A", { pk = "flaky" })
      fake:insert("A", { pk = "poison" })
      assert.is_nil(s:fetch_stream_state())     -- flaky, attempt 1
      assert.is_nil(s:fetch_stream_state())     -- flaky delivered; poison, attempt 1
      assert.same({}, failed)
      assert.truthy(s:fetch_stream_state())     -- poison, attempt 2: handed over
      assert.same({ "poison" }, { failed[1].pk })
      assert.equals(2, failed[1].attempts)
    end)

    it("without a limit a failing record is retried at every fetch, as before", function()
      local s, log = poisoned({})
      fake:insert("A", { pk = "poison" })
      fake:insert("A", { pk = "2" })
      for _ = 1, 5 do assert.is_nil(s:fetch_stream_state()) end
      assert.same({}, Fake.only(log, "insert 2"))
      assert.equals(5, s:stats().failed_attempts)
    end)

    describe("when on_failure fails the shard stays at the record", function()
      for _, case in ipairs({
        { "raises", function() error("destination down") end, "destination down" },
        { "returns nil, err", function() return nil, "queue full" end, "queue full" },
        { "returns false", function() return false end, "on_failure returned false" },
      }) do
        it("on_failure " .. case[1] .. ": nothing is skipped, the next fetch hands it over again", function()
          local calls, broken = 0, true
          local s, log = poisoned({ max_record_attempts = 1, on_failure = function(...)
            calls = calls + 1
            if broken then return case[2](...) end
          end })
          local poison = fake:insert("A", { pk = "poison" })
          fake:insert("A", { pk = "after" })
          local r, err = s:fetch_stream_state()
          assert.is_nil(r)
          assert.equals("OnFailureError", err.code)
          assert.matches(case[3], err.message, 1, true)
          assert.equals("ListenerError", err.record_error.code)
          assert.equals(poison, err.sequence_number)
          assert.same({}, Fake.only(log, "insert after"))
          assert.same({ type = "AT_SEQUENCE_NUMBER", sequenceNumber = poison }, s:get_shard_state().A.position)
          assert.is_nil(s:fetch_stream_state())   -- still broken: straight to on_failure, no listener call
          assert.equals(2, calls)
          assert.same({ "insert poison" }, Fake.only(log, "insert poison"))
          broken = false
          assert.truthy(s:fetch_stream_state())
          assert.equals(3, calls)
          assert.same({ "insert after" }, Fake.only(log, "insert after"))
          assert.equals(2, s:stats().on_failure_errors)
          assert.equals(1, s:stats().failed_over)
        end)
      end
    end)

    describe("on_failure = a file path", function()
      local dir
      before_each(function() dir = helper.tmpdir() end)
      after_each(function() helper.rmdir(dir) end)

      it("appends one JSON line per record with the error and the record", function()
        local path = dir .. "/dead-letters.jsonl"
        helper.write_file(path, "")
        local s = poisoned({ max_record_attempts = 2, on_failure = path, unmarshall = ds.unmarshall })
        local p1 = fake:insert("A", { pk = "poison", n = 1 })
        fake:insert("A", { pk = "ok" })
        local p2 = fake:insert("A", { pk = "poison", n = 2 })
        for _ = 1, 4 do s:fetch_stream_state() end
        local lines = {}
        for line in io.lines(path) do lines[#lines + 1] = assert(ds.json_decode(line)) end
        assert.equals(2, #lines)
        for i, seq in ipairs({ p1, p2 }) do
          local entry = lines[i]
          assert.equals("A", entry.shardId)
          assert.equals(seq, entry.sequenceNumber)
          assert.equals(fake:wall(), entry.failedAt)
          assert.equals("ListenerError", entry.error.code)
          assert.equals(2, entry.error.attempts)
          assert.matches("cannot take it", entry.error.message)
          assert.equals(seq, entry.record.dynamodb.SequenceNumber)
          assert.equals("INSERT", entry.record.eventName)
          assert.same({ pk = "poison", n = i }, entry.record.dynamodb.NewImage)
        end
        assert.equals(2, s:stats().failed_over)
        assert.equals(1, s:stats().delivered)
      end)

      it("a record JSON cannot hold is an on_failure failure, not a skip", function()
        local s, log = poisoned({ max_record_attempts = 1, on_failure = dir .. "/dead-letters.jsonl" })
        s:on("record", function(record) record.note = function() end end) -- a listener left a function in it
        fake:insert("A", { pk = "poison" })
        fake:insert("A", { pk = "after" })
        local r, err = s:fetch_stream_state()
        assert.is_nil(r)
        assert.equals("OnFailureError", err.code)
        assert.matches("cannot encode the record as JSON", err.message, 1, true)
        assert.same({}, Fake.only(log, "insert after"))
        assert.is_nil(io.open(dir .. "/dead-letters.jsonl"))
      end)

      it("a write that fails is an on_failure failure: the shard stays at the record", function()
        local s, log = poisoned({ max_record_attempts = 1, on_failure = dir .. "/missing/dead-letters.jsonl" })
        fake:insert("A", { pk = "poison" })
        fake:insert("A", { pk = "after" })
        local r, err = s:fetch_stream_state()
        assert.is_nil(r)
        assert.equals("OnFailureError", err.code)
        assert.matches("missing/dead-letters.jsonl", err.message, 1, true)
        assert.same({}, Fake.only(log, "insert after"))
        os.execute("mkdir " .. helper.shell_quote(dir .. "/missing"))
        assert.truthy(s:fetch_stream_state())
        assert.same({ "insert after" }, Fake.only(log, "insert after"))
      end)
    end)

    describe("max_record_age", function()
      it("hands records older than the limit to on_failure without calling the listeners", function()
        local failed = {}
        local s, log = poisoned({ max_record_age = 600, on_failure = failures_to(failed) })
        fake:insert("A", { pk = "old" })
        fake:advance(601)
        fake:insert("A", { pk = "young" })
        fake:tamper("get_records", function(res)
          res.Records[#res.Records + 1] = {
            eventName = "INSERT", dynamodb = { Keys = { pk = { S = "undated" } }, NewImage = { pk = { S = "undated" } },
              SequenceNumber = "9" .. ("0"):rep(20) } }
          return res
        end)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "insert young", "insert undated" }, Fake.only(log, "insert"))
        assert.equals(1, #failed)
        assert.same({ pk = "old", code = "RecordAgeExceeded", attempts = 0 },
          { pk = failed[1].pk, code = failed[1].code, attempts = failed[1].attempts })
        assert.matches("601 s old", failed[1].message, 1, true)
      end)

      it("applies to a record being retried once it grows too old", function()
        local failed = {}
        local s, log = poisoned({ max_record_age = 600, on_failure = failures_to(failed) })
        fake:insert("A", { pk = "poison" })
        assert.is_nil(s:fetch_stream_state())
        fake:advance(300)
        assert.is_nil(s:fetch_stream_state())
        fake:advance(301)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "insert poison", "insert poison" }, Fake.only(log, "insert"))
        assert.same({ "RecordAgeExceeded", 2 }, { failed[1].code, failed[1].attempts })
      end)
    end)
  end)
end

describe("poison record options", function()
  local fake = Fake.new()
  local function new(opts) return Stream.new(fake, fake.stream_arn, opts) end
  local function handler() end

  for _, case in ipairs({
    { { max_record_attempts = 0, on_failure = handler }, "opts.max_record_attempts must be an integer in 1..1000000000" },
    { { max_record_attempts = 1.5, on_failure = handler }, "opts.max_record_attempts must be an integer in 1..1000000000" },
    { { max_record_attempts = "3", on_failure = handler }, "opts.max_record_attempts must be an integer in 1..1000000000" },
    { { max_record_age = 0, on_failure = handler }, "opts.max_record_age must be a number of seconds > 0" },
    { { max_record_age = -5, on_failure = handler }, "opts.max_record_age must be a number of seconds > 0" },
    { { max_record_age = 0 / 0, on_failure = handler }, "opts.max_record_age must be a number of seconds > 0" },
    { { max_record_age = math.huge, on_failure = handler }, "opts.max_record_age must be a number of seconds > 0" },
    { { max_record_age = "60", on_failure = handler }, "opts.max_record_age must be a number of seconds > 0" },
    { { max_record_attempts = 3 }, "opts.on_failure is required with max_record_attempts or max_record_age" },
    { { max_record_age = 60 }, "opts.on_failure is required with max_record_attempts or max_record_age" },
    { { on_failure = handler }, "opts.on_failure needs max_record_attempts or max_record_age" },
    { { max_record_attempts = 3, on_failure = 5 },
      "opts.on_failure must be a function or a file path (a non-empty string without NUL)" },
    { { max_record_attempts = 3, on_failure = "" },
      "opts.on_failure must be a function or a file path (a non-empty string without NUL)" },
    { { max_record_attempts = 3, on_failure = "dead\0letters" },
      "opts.on_failure must be a function or a file path (a non-empty string without NUL)" },
    { { max_record_attempts = 3, on_failure = {} },
      "opts.on_failure must be a function or a file path (a non-empty string without NUL)" },
  }) do
    it("refuses " .. ds.json_encode((function()
      local shown = {}
      for k, v in pairs(case[1]) do
        shown[k] = type(v) == "function" and "<function>" or type(v) == "table" and "<table>"
          or v ~= v and "<nan>" or v == math.huge and "<inf>" or v
      end
      return shown
    end)()), function()
      assert.has_error(function() new(case[1]) end, case[2])
    end)
  end

  it("accepts the limits with a destination", function()
    assert.truthy(new({ max_record_attempts = 1, max_record_age = 60.5, on_failure = handler }))
    assert.truthy(new({ max_record_age = 86400, on_failure = "/tmp/dead-letters.jsonl" }))
    assert.same({ delivered = 0, failed_attempts = 0, retries = 0, failed_over = 0, on_failure_errors = 0,
      skipped = 0, gaps = 0 }, delivery_counters(new({})))
  end)
end)
