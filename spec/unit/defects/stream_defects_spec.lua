-- Defect history: the proof that the defects of the original (the npm package
-- dynamodb-stream 1.1.4) are fixed. Keep it: a failure here is a regression to
-- the original's behaviour. One spec per defect (shared/reference/original-behaviour.md §5),
-- against the scripted fake Streams service; spec/integration/defects/original_test_spec.lua
-- runs the original's own test.
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")

local function new_stream(fake, opts)
  local s = Stream.new(fake, fake.stream_arn, opts)
  return s, Fake.recorder(s)
end

describe("defects of dynamodb-stream 1.1.4, fixed:", function()
  local fake
  before_each(function() fake = Fake.new() end)

  describe("5.1 errors in GetShardIterator/GetRecords hang the fetch", function()
    for _, case in ipairs({
      { "get_records", "ThrottlingException" },
      { "get_records", "LimitExceededException" },
      { "get_records", "InternalServerError" },
      { "get_records", "ConnectionRefused" },
      { "get_shard_iterator", "ThrottlingException" },
      { "describe_stream", "ThrottlingException" },
    }) do
      it(case[2] .. " from " .. case[1] .. " comes back as nil, err and 'error', and nothing is lost", function()
        fake:add_shard("A")
        local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
        fake:insert("A", { pk = "1" })
        fake:fail(case[1], case[2])
        local r, err = s:fetch_stream_state()
        assert.is_nil(r)
        assert.equals(case[2], err.code)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "insert 1" }, Fake.only(log, "insert"))
        assert.same({ "error " .. case[2] }, Fake.only(log, "error"))
      end)
    end
  end)

  describe("5.2 without unmarshall every event argument is undefined", function()
    it("delivers the raw AttributeValue maps", function()
      fake:add_shard("A")
      local s = Stream.new(fake, fake.stream_arn)
      local got = {}
      s:on("insert record", function(new, keys) got.new, got.keys = new, keys end)
      s:on("modify record", function(new, old) got.mnew, got.mold = new, old end)
      s:on("remove record", function(old, keys) got.old, got.rkeys = old, keys end)
      s:fetch_stream_state()
      fake:insert("A", { pk = "1", n = 5 })
      fake:modify("A", { pk = "1", n = 6 }, { pk = "1", n = 5 })
      fake:remove("A", { pk = "1", n = 6 })
      s:fetch_stream_state()
      assert.same({ pk = { S = "1" }, n = { N = "5" } }, got.new)
      assert.same({ pk = { S = "1" } }, got.keys)
      assert.same({ pk = { S = "1" }, n = { N = "6" } }, got.mnew)
      assert.same({ pk = { S = "1" }, n = { N = "5" } }, got.mold)
      assert.same({ pk = { S = "1" }, n = { N = "6" } }, got.old)
      assert.same({ pk = { S = "1" } }, got.rkeys)
    end)
  end)

  describe("5.3 new, child and re-discovered shards start at LATEST", function()
    it("reads children of a split from TRIM_HORIZON, after their parent", function()
      fake:add_shard("P")
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      fake:insert("P", { pk = "p1" })
      fake:close("P")
      fake:add_shard("C1", { parent = "P" })
      fake:add_shard("C2", { parent = "P" })
      fake:insert("C1", { pk = "c1" }) -- written before the consumer sees C1
      fake:insert("C2", { pk = "c2" })
      s:fetch_stream_state()
      assert.same({ "new P", "new C1,C2", "insert p1", "removed P", "insert c1", "insert c2" }, log)
      assert.equals(0, fake:count("get_shard_iterator", function(p)
        return p.ShardId ~= "P" and p.ShardIteratorType == "LATEST"
      end))
    end)
  end)

  describe("5.4 closed shards flap between 'new shards' and 'remove shards'", function()
    it("retires a closed shard once, and forgets it when DescribeStream drops it", function()
      fake:add_shard("P")
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      fake:insert("P", { pk = "1" })
      fake:close("P")
      fake:add_shard("C", { parent = "P" })
      for _ = 1, 4 do s:fetch_stream_state() end
      assert.same({ "new P", "new C", "insert 1", "removed P" }, log)
      assert.equals(2, fake:count("get_shard_iterator")) -- P at LATEST, then C at TRIM_HORIZON, once each
      fake:delete_shard("P")
      s:fetch_stream_state()
      assert.is_nil(s:get_shard_state().P)
      assert.same({ "new P", "new C", "insert 1", "removed P" }, log)
    end)

    it("does not announce the closed shards already in the stream at a LATEST start", function()
      fake:add_shard("P", { closed = true })
      fake:add_shard("C", { parent = "P" })
      local s, log = new_stream(fake)
      s:fetch_stream_state(); s:fetch_stream_state()
      assert.same({ "new C" }, log)
      assert.equals(0, fake:count("get_shard_iterator", function(p) return p.ShardId == "P" end))
    end)
  end)

  describe("5.5 no DescribeStream pagination (more than 100 shards)", function()
    it("reads every page and every shard", function()
      for i = 1, 250 do fake:add_shard(string.format("S%03d", i)) end
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      assert.equals(3, fake:count("describe_stream"))
      assert.equals(1, fake:count("describe_stream", function(p) return p.ExclusiveStartShardId == "S200" end))
      fake:insert("S001", { pk = "first" })
      fake:insert("S150", { pk = "middle" })
      fake:insert("S250", { pk = "last" })
      s:fetch_stream_state()
      assert.same({ "insert first", "insert middle", "insert last" }, Fake.only(log, "insert"))
      local n = 0
      for _ in pairs(s:get_shard_state()) do n = n + 1 end
      assert.equals(250, n)
    end)
  end)

  describe("5.6 ExpiredIteratorException skips to LATEST silently", function()
    it("re-opens AFTER the last delivered sequence number: no gap, no duplicate", function()
      fake:add_shard("A")
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      local seq1 = fake:insert("A", { pk = "1" })
      s:fetch_stream_state()
      fake:insert("A", { pk = "2" })
      fake:advance(901) -- the held iterator expires
      fake:insert("A", { pk = "3" })
      s:fetch_stream_state()
      assert.same({ "new A", "insert 1", "insert 2", "insert 3" }, log)
      assert.equals(1, fake:count("get_shard_iterator", function(p)
        return p.ShardIteratorType == "AFTER_SEQUENCE_NUMBER" and p.SequenceNumber == seq1
      end))
    end)

    it("re-opens at the original position when nothing was delivered yet", function()
      fake:add_shard("A")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
      s:fetch_stream_state()
      fake:advance(901)
      fake:insert("A", { pk = "1" })
      s:fetch_stream_state()
      assert.same({ "new A", "insert 1" }, log)
      assert.equals(2, fake:count("get_shard_iterator", function(p) return p.ShardIteratorType == "TRIM_HORIZON" end))
    end)
  end)

  describe("5.7 TrimmedDataAccessException is not handled", function()
    it("re-opens at TRIM_HORIZON and emits 'gap' with the shard and last delivered sequence number", function()
      fake:add_shard("A")
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      local seq1 = fake:insert("A", { pk = "1" })
      s:fetch_stream_state()
      for i = 2, 5 do fake:insert("A", { pk = tostring(i) }) end
      fake:trim("A", 3) -- records 1..3 are gone, 2 and 3 unread
      local gaps = {}
      s:on("gap", function(info) gaps[#gaps + 1] = info end)
      assert.truthy(s:fetch_stream_state())
      assert.same({ "new A", "insert 1", "gap A@" .. seq1, "insert 4", "insert 5" }, log)
      assert.same({ shard_id = "A", last_sequence_number = seq1, reason = "TrimmedDataAccessException" }, gaps[1])
    end)

    it("emits no 'gap' for DynamoDB Local's Trimmed answer to a TRIM_HORIZON iterator taken on an empty shard", function()
      fake = Fake.new({ ddb_local_quirk = true })
      fake:add_shard("A")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
      s:fetch_stream_state()
      fake:insert("A", { pk = "1" })
      fake:insert("A", { pk = "2" })
      assert.truthy(s:fetch_stream_state())
      assert.same({ "new A", "insert 1", "insert 2" }, log)
    end)

    it("reports a gap when an AT/AFTER position was trimmed away", function()
      fake:add_shard("A")
      local seq1 = fake:insert("A", { pk = "1" })
      fake:insert("A", { pk = "2" })
      fake:insert("A", { pk = "3" })
      fake:trim("A", 2)
      local s, log = new_stream(fake, { start_at = { A = { sequence_number = seq1 } } })
      s:fetch_stream_state()
      assert.same({ "new A", "gap A@nil", "insert 3" }, log)
    end)
  end)

  describe("5.8 ResourceNotFoundException for a vanished shard", function()
    it("drops a restored shard that no longer exists and reports it in 'remove shards'", function()
      fake:add_shard("A")
      fake:add_shard("Old", { closed = true })
      fake:delete_shard("Old")
      local s, log = new_stream(fake)
      s:set_shard_state({ Old = { shardId = "Old", nextShardIterator = nil }, A = { shardId = "A" } })
      fake:insert("A", { pk = "1" })
      assert.truthy(s:fetch_stream_state())
      table.sort(log)
      assert.same({ "insert 1", "removed Old" }, log)
      assert.is_nil(s:get_shard_state().Old)
    end)

    it("is an error when the stream itself is gone", function()
      fake:add_shard("A")
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      fake.stream_deleted = true
      local r, err = s:fetch_stream_state()
      assert.is_nil(r)
      assert.equals("ResourceNotFoundException", err.code)
      assert.same({ "new A", "error ResourceNotFoundException" }, log)
    end)
  end)

  describe("5.9 one GetRecords call per shard per poll", function()
    it("drains a shard in one fetch", function()
      fake = Fake.new({ page_size = 100 })
      fake:add_shard("A")
      local s = new_stream(fake)
      s:fetch_stream_state()
      for i = 1, 250 do fake:insert("A", { pk = tostring(i) }) end
      assert.equals(250, #s:fetch_stream_state())
    end)

    it("bounds the pages per shard so a busy shard does not starve the others", function()
      fake = Fake.new({ page_size = 10 })
      fake:add_shard("Busy")
      fake:add_shard("Quiet")
      local s, log = new_stream(fake, { max_pages_per_shard = 2 })
      s:fetch_stream_state()
      for i = 1, 100 do fake:insert("Busy", { pk = "b" .. i }) end
      fake:insert("Quiet", { pk = "q" })
      local before = #log
      assert.equals(21, #s:fetch_stream_state())
      local quiet_read = false -- in this fetch (first or last: the serial and parallel readers differ)
      for i = before + 1, #log do quiet_read = quiet_read or log[i] == "insert q" end
      assert.is_true(quiet_read)
      assert.equals(20, #s:fetch_stream_state())
    end)

    it("counts only answered pages against max_pages_per_shard, not re-opening an expired iterator", function()
      fake:add_shard("A")
      local s, log = new_stream(fake, { max_pages_per_shard = 1 })
      s:fetch_stream_state()
      fake:insert("A", { pk = "1" })
      s:fetch_stream_state()
      fake:insert("A", { pk = "2" })
      fake:advance(901) -- the held iterator expires
      assert.equals(1, #s:fetch_stream_state())
      assert.same({ "new A", "insert 1", "insert 2" }, log)
    end)

    it("has run fetch again at once while a shard stopped by max_pages_per_shard has more", function()
      fake:add_shard("A")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON", max_pages_per_shard = 1, limit = 1 })
      fake:insert("A", { pk = "1" })
      fake:insert("A", { pk = "2" })
      fake:insert("A", { pk = "3" })
      fake:close("A")
      local sleeps = {}
      s:on("remove shards", function() s:stop() end)
      assert.is_true(s:run({ sleep = function(t) sleeps[#sleeps + 1] = t; if #sleeps > 20 then s:stop() end end }))
      assert.same({ "new A", "insert 1", "insert 2", "insert 3", "removed A" }, log)
      assert.same({}, sleeps)
    end)

    -- Pages that deliver nothing pace like an idle shard (issue 11, item 7).
    it("has run pause after a fetch that only met empty pages of a closed shard", function()
      fake:add_shard("A")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON", max_pages_per_shard = 1 })
      fake:insert("A", { pk = "1" })
      fake:close("A")
      fake:empty_pages("A", 3)
      local sleeps = {}
      s:on("remove shards", function() s:stop() end)
      assert.is_true(s:run({ sleep = function(t) sleeps[#sleeps + 1] = t; if #sleeps > 20 then s:stop() end end }))
      assert.same({ "new A", "insert 1", "removed A" }, log)
      assert.same({ 0.1, 0.2, 0.4 }, sleeps)
    end)

    it("reads through empty pages in front of the data of a closed shard", function()
      fake:add_shard("A")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
      fake:insert("A", { pk = "1" })
      fake:close("A")
      fake:empty_pages("A", 3)
      assert.truthy(s:fetch_stream_state())
      assert.same({ "new A", "insert 1", "removed A" }, log)
    end)

    it("passes opts.limit as the GetRecords Limit", function()
      fake:add_shard("A")
      local s = new_stream(fake, { limit = 7 })
      s:fetch_stream_state()
      assert.equals(1, fake:count("get_records", function(p) return p.Limit == 7 end))
    end)
  end)

  describe("5.10 no ordering across shards", function()
    it("reads a parent to its end before its child, whatever DescribeStream's order", function()
      fake:add_shard("C", { parent = "P0" }) -- listed first; its parent comes after
      fake:add_shard("P0")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
      fake:insert("P0", { pk = "x" })
      fake:modify("P0", { pk = "x", v = 2 }, { pk = "x" })
      fake:close("P0")
      fake:modify("C", { pk = "x", v = 3 }, { pk = "x", v = 2 })
      s:fetch_stream_state()
      assert.same({ "insert x", "modify x<x", "removed P0", "modify x<x" }, Fake.only(log, "insert", "modify", "removed"))
    end)

    it("holds a child back while its parent cannot be read, and releases it when the parent ages out", function()
      fake:add_shard("P")
      fake:add_shard("C", { parent = "P" })
      fake:insert("P", { pk = "p" })
      fake:close("P")
      fake:insert("C", { pk = "c" })
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
      fake:fail("get_records", "ThrottlingException", { shard = "P" })
      assert.is_nil(s:fetch_stream_state())
      assert.same({}, Fake.only(log, "insert"))
      fake:delete_shard("P") -- P ages out of the stream
      assert.truthy(s:fetch_stream_state())
      assert.same({ "insert c" }, Fake.only(log, "insert"))
    end)

    it("keeps within-shard order across sequence numbers of different lengths", function()
      fake = Fake.new({ seq_digits = 40 })
      fake:add_shard("A")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
      for i = 1, 3 do fake:insert("A", { pk = tostring(i) }) end
      s:fetch_stream_state()
      assert.same({ "insert 1", "insert 2", "insert 3" }, Fake.only(log, "insert"))
      -- a later replay with a duplicate is filtered by the 40-digit comparison
      fake:fail("get_records", "ExpiredIteratorException")
      fake:insert("A", { pk = "4" })
      s:fetch_stream_state()
      assert.same({ "insert 1", "insert 2", "insert 3", "insert 4" }, Fake.only(log, "insert"))
    end)
  end)

  describe("5.11 iterators advance before delivery (a raising listener loses the batch)", function()
    it("reports the error and delivers the failed record and the rest on the next fetch", function()
      fake:add_shard("A")
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      for i = 1, 4 do fake:insert("A", { pk = tostring(i) }) end
      local fail_on = "2"
      s:on("insert record", function(new)
        if new.pk.S == fail_on then fail_on = nil; error("listener failed on 2") end
      end)
      local r, err = s:fetch_stream_state()
      assert.is_nil(r)
      assert.equals("ListenerError", err.code)
      assert.equals("A", err.shard_id)
      assert.equals(fake.by_id.A.records[2].dynamodb.SequenceNumber, err.sequence_number)
      assert.matches("listener failed on 2", err.message)
      assert.equals(3, #s:fetch_stream_state())
      assert.same({ "insert 1", "insert 2", "error ListenerError", "insert 2", "insert 3", "insert 4" },
        Fake.only(log, "insert", "error"))
    end)

    it("treats an unmarshall that raises the same way, before any listener sees the record", function()
      fake:add_shard("A")
      local bad = true
      local s = Stream.new(fake, fake.stream_arn, function(av)
        if bad and av.pk.S == "2" then error("cannot unmarshall") end
        return { pk = av.pk.S }
      end)
      local log = Fake.recorder(s)
      local raw = 0
      s:on("record", function() raw = raw + 1 end)
      s:fetch_stream_state()
      fake:insert("A", { pk = "1" }); fake:insert("A", { pk = "2" })
      local r, err = s:fetch_stream_state()
      assert.is_nil(r)
      assert.equals("UnmarshallError", err.code)
      assert.equals(1, raw)
      bad = false
      s:fetch_stream_state()
      assert.same({ "insert 1", "insert 2" }, Fake.only(log, "insert"))
      assert.equals(2, raw)
    end)

    it("keeps the failed record across a restart through the saved state", function()
      fake:add_shard("A")
      local s = new_stream(fake)
      s:fetch_stream_state()
      fake:insert("A", { pk = "1" }); fake:insert("A", { pk = "2" })
      s:on("insert record", function(new) if new.pk.S == "2" then error("no") end end)
      s:fetch_stream_state()
      local state = s:get_shard_state()
      assert.equals("AT_SEQUENCE_NUMBER", state.A.position.type)
      local s2, log2 = new_stream(fake)
      s2:set_shard_state(state)
      s2:fetch_stream_state()
      assert.same({ "insert 2" }, log2)
    end)
  end)

  describe("5.12 no re-entrancy guard: overlapping fetches deliver records twice", function()
    it("refuses a fetch started from a listener with FetchInProgress and delivers nothing twice", function()
      fake:add_shard("A")
      local s, log = new_stream(fake)
      s:fetch_stream_state()
      fake:insert("A", { pk = "1" }); fake:insert("A", { pk = "2" })
      local inner = {}
      s:on("insert record", function()
        local r, err = s:fetch_stream_state()
        inner[#inner + 1] = r or err.code
        r, err = s:fetch_stream_records()
        inner[#inner + 1] = r or err.code
        r, err = s:set_shard_state({})
        inner[#inner + 1] = r or err.code
      end)
      assert.equals(2, #s:fetch_stream_state())
      assert.same({ "insert 1", "insert 2" }, Fake.only(log, "insert"))
      for _, v in ipairs(inner) do assert.equals("FetchInProgress", v) end
      assert.equals(6, #inner)
    end)
  end)

  describe("5.13 no throttling or backoff of its own", function()
    it("run backs off while the service throttles, and recovers", function()
      fake:add_shard("A")
      local s, log = new_stream(fake, { start_at = "TRIM_HORIZON" })
      fake:insert("A", { pk = "1" })
      fake:fail("get_records", "ThrottlingException", { times = 3 })
      local sleeps = {}
      s:run({ interval = 0.25, max_interval = 2, sleep = function(t)
        sleeps[#sleeps + 1] = t
        if #sleeps == 4 then s:stop() end
      end })
      assert.same({ 0.25, 0.5, 1, 0.25 }, sleeps)
      assert.same({ "insert 1" }, Fake.only(log, "insert"))
      assert.equals(3, #Fake.only(log, "error ThrottlingException"))
    end)
  end)

  describe("5.14 small defects", function()
    it("validates constructor arguments", function()
      assert.has_error(function() Stream.new() end)
      assert.has_error(function() Stream.new(fake) end)
    end)

    it("set_shard_state copies the caller's tables and never mutates them", function()
      fake:add_shard("A")
      local s = new_stream(fake)
      s:fetch_stream_state()
      local mine = s:get_shard_state()
      local before = mine.A.nextShardIterator
      s:set_shard_state(mine)
      fake:insert("A", { pk = "1" })
      s:fetch_stream_state()
      assert.equals(before, mine.A.nextShardIterator)
      assert.is_nil(mine.A.sequenceNumber)
      assert.are_not.equal(before, s:get_shard_state().A.nextShardIterator)
    end)

    it("a state taken inside a listener resumes without losing the record being handled", function()
      fake:add_shard("A")
      local s = new_stream(fake)
      s:fetch_stream_state()
      fake:insert("A", { pk = "1" }); fake:insert("A", { pk = "2" }); fake:insert("A", { pk = "3" })
      local snap
      s:on("insert record", function(new) if new.pk.S == "2" then snap = s:get_shard_state() end end)
      s:fetch_stream_state()
      local s2, log2 = new_stream(fake)
      s2:set_shard_state(snap)
      s2:fetch_stream_state()
      assert.same({ "insert 2", "insert 3" }, log2)
    end)

    it("fetch_stream_state returns the records; a DescribeStream without Shards is an empty stream", function()
      local s = Stream.new({
        describe_stream = function() return { StreamDescription = { StreamStatus = "ENABLING" } } end,
        get_shard_iterator = function() error("not called") end,
        get_records = function() error("not called") end,
      }, "arn")
      assert.same({}, s:fetch_stream_state())
      assert.equals("ENABLING", s.stream_status)
    end)
  end)

  describe("5.15 TTL deletes cannot be identified", function()
    it("passes the raw record, with userIdentity, to 'remove record' and 'record'", function()
      fake:add_shard("A")
      local s = new_stream(fake)
      s:fetch_stream_state()
      fake:put("A", "REMOVE", { pk = "t" }, nil, { pk = "t" },
        { userIdentity = { type = "Service", principalId = "dynamodb.amazonaws.com" } })
      local who, raw
      s:on("remove record", function(_, _, record) who = record.userIdentity end)
      s:on("record", function(record) raw = record end)
      s:fetch_stream_state()
      assert.same({ type = "Service", principalId = "dynamodb.amazonaws.com" }, who)
      assert.equals("A", raw.shardId)
      assert.is_string(raw.eventID)
      assert.is_string(raw.dynamodb.SequenceNumber)
    end)
  end)
end)
