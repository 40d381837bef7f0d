-- Issue 16, batches with partial acknowledgement: stream:on('batch', fn) gets
-- the records of one shard in order, up to batch_size, collected for up to
-- batch_window seconds (Lambda's BatchSize and MaximumBatchingWindowInSeconds);
-- the listener returns nothing, or { failed = seq } (Lambda's
-- ReportBatchItemFailures), or raises; bisect (BisectBatchOnFunctionError)
-- splits a failing batch. The position never passes a record whose batch has
-- not returned successfully. Lambda's cases: shared/reference/lambda-processing.md
-- §4 (the partial response table) and B1-B7.
local ds = require("dynamodb_stream")
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")

for _, parallel in ipairs({ false, true }) do
  describe("batches (" .. (parallel and "parallel rounds" or "serial reads") .. ")", function()
    local fake

    before_each(function()
      fake = Fake.new({ parallel = parallel })
      fake:add_shard("A")
    end)

    -- A stream from TRIM_HORIZON on the fake's clocks.
    local function new_stream(opts)
      opts = opts or {}
      opts.start_at = opts.start_at or "TRIM_HORIZON"
      opts.clock = function() return fake.now end
      opts.wall_clock = function() return fake:wall() end
      return Stream.new(fake, fake.stream_arn, opts)
    end

    -- n records put into shard A: their sequence numbers, pk "1".."n".
    local function put(n, first)
      local seqs = {}
      for i = first or 1, (first or 1) + n - 1 do seqs[#seqs + 1] = fake:insert("A", { pk = tostring(i) }) end
      return seqs
    end

    local function pks(records)
      local out = {}
      for i, r in ipairs(records) do out[i] = Fake.pk(r.dynamodb.Keys) end
      return table.concat(out, ",")
    end

    -- Records every batch as "pk,pk,..." in batches; answer(records, call) is the listener's answer.
    local function batch_log(s, answer)
      local batches = {}
      s:on("batch", function(records, shard_id)
        assert.equals("A", shard_id)
        batches[#batches + 1] = pks(records)
        if answer then return answer(records, #batches) end
      end)
      return batches
    end

    local function checkpoint(s) return s:get_shard_state().A end

    describe("options", function()
      it("refuses every bad batch_size, batch_window and bisect with a message naming it", function()
        local bad = {
          { { batch_size = 0 }, "opts.batch_size must be an integer in 1..10000" },
          { { batch_size = 10001 }, "opts.batch_size must be an integer in 1..10000" },
          { { batch_size = 2.5 }, "opts.batch_size must be an integer in 1..10000" },
          { { batch_size = "10" }, "opts.batch_size must be an integer in 1..10000" },
          { { batch_window = -1 }, "opts.batch_window must be a number of seconds in 0..300" },
          { { batch_window = 301 }, "opts.batch_window must be a number of seconds in 0..300" },
          { { batch_window = 0 / 0 }, "opts.batch_window must be a number of seconds in 0..300" },
          { { batch_window = math.huge }, "opts.batch_window must be a number of seconds in 0..300" },
          { { batch_window = "1" }, "opts.batch_window must be a number of seconds in 0..300" },
          { { bisect = "yes" }, "opts.bisect must be a boolean" },
          { { bisect = 1 }, "opts.bisect must be a boolean" },
        }
        for _, case in ipairs(bad) do
          local ok, err = pcall(Stream.new, fake, fake.stream_arn, case[1])
          assert.is_false(ok)
          assert.equals(case[2], err:match("opts%..*$"))
        end
        for _, good in ipairs({ { batch_size = 1 }, { batch_size = 10000 }, { batch_window = 0 },
          { batch_window = 300 }, { batch_window = 0.5 }, { bisect = true }, { bisect = false } }) do
          assert.truthy(Stream.new(fake, fake.stream_arn, good))
        end
      end)
    end)

    describe("sizes and windows", function()
      it("batch_size cuts what one fetch read into batches in order; the default is 100", function()
        put(5)
        local s = new_stream({ batch_size = 2 })
        local batches = batch_log(s)
        assert.equals(5, #assert(s:fetch_stream_state()))
        assert.same({ "1,2", "3,4", "5" }, batches)
        put(250, 6)
        local d = new_stream()
        local sizes = {}
        d:on("batch", function(records) sizes[#sizes + 1] = #records end)
        assert.truthy(d:fetch_stream_state())
        assert.same({ 100, 100, 55 }, sizes)
      end)

      it("batch_window 0: one batch per fetch, however few records it read", function()
        local s = new_stream()
        local batches = batch_log(s)
        put(1)
        assert.truthy(s:fetch_stream_state())
        put(2, 2)
        assert.truthy(s:fetch_stream_state())
        assert.truthy(s:fetch_stream_state()) -- nothing new: no empty batch
        assert.same({ "1", "2,3" }, batches)
      end)

      it("batch_window collects across fetches until the window ends or the batch is full", function()
        local s = new_stream({ batch_window = 10, batch_size = 5 })
        local batches = batch_log(s)
        put(2)
        assert.same({}, assert(s:fetch_stream_state()))
        fake:advance(6)
        put(1, 3)
        assert.same({}, assert(s:fetch_stream_state()))
        assert.same({}, batches)
        -- nothing acknowledged yet: no position past the batch, no iterator past it
        local st = checkpoint(s)
        assert.is_nil(st.sequenceNumber)
        assert.is_nil(st.nextShardIterator)
        assert.same({ type = "TRIM_HORIZON" }, st.position)
        fake:advance(4)                                  -- 10 s after the first record was read
        assert.equals(3, #assert(s:fetch_stream_state()))
        assert.same({ "1,2,3" }, batches)
        put(6, 4)                                        -- a full batch does not wait
        assert.equals(5, #assert(s:fetch_stream_state()))
        assert.same({ "1,2,3", "4,5,6,7,8" }, batches)
        fake:advance(10)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "1,2,3", "4,5,6,7,8", "9" }, batches)
      end)

      it("run wakes up when a batch's window ends", function()
        local s = new_stream({ batch_window = 3 })
        local at
        s:on("batch", function() at = fake.now s:stop() end)
        put(2)
        assert.is_true(s:run({ interval = 0.1, max_interval = 60, sleep = function(t) fake:advance(t) end }))
        assert.is_true(at >= 3 and at <= 3.2, "delivered at " .. tostring(at))
      end)

      it("a closed shard's last batch is delivered before it ends, and its child waits", function()
        put(2)
        fake:close("A")
        fake:add_shard("B", { parent = "A" })
        fake:insert("B", { pk = "b" })
        local s = new_stream({ batch_window = 100 })
        local got = {}
        s:on("batch", function(records, shard_id) got[#got + 1] = shard_id .. ":" .. pks(records) end)
        assert.truthy(s:fetch_stream_state())
        fake:advance(100)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "A:1,2", "B:b" }, got)
      end)
    end)

    describe("partial acknowledgement", function()
      -- The listener reports records[k] failed at its first call, then takes everything.
      local function failing_once_at(k)
        return function(records, call) if call == 1 then return { failed = records[k].dynamodb.SequenceNumber } end end
      end

      for _, case in ipairs({ { "first", 1 }, { "middle", 3 }, { "last", 5 } }) do
        it("{ failed = seq } of the " .. case[1] .. " record: the position stops before it, delivery resumes at it",
          function()
            local seqs = put(5)
            local s = new_stream()
            local batches = batch_log(s, failing_once_at(case[2]))
            local inserted = {}
            s:on("insert record", function(new) inserted[#inserted + 1] = Fake.pk(new) end)
            local r, err = s:fetch_stream_state()
            assert.is_nil(r)
            assert.equals("BatchItemFailure", err.code)
            assert.equals("batch", err.event)
            assert.equals(seqs[case[2]], err.sequence_number)
            assert.equals(1, err.attempts)
            local st = checkpoint(s)
            assert.equals(seqs[case[2] - 1], st.sequenceNumber)
            assert.same({ type = "AT_SEQUENCE_NUMBER", sequenceNumber = seqs[case[2]] }, st.position)
            assert.equals(case[2] - 1, #inserted)            -- the record listeners got the acknowledged ones
            assert.truthy(s:fetch_stream_state())
            local rest = {}
            for i = case[2], 5 do rest[#rest + 1] = tostring(i) end
            assert.same({ "1,2,3,4,5", table.concat(rest, ",") }, batches)
            assert.same({ "1", "2", "3", "4", "5" }, inserted)
            assert.equals(seqs[5], checkpoint(s).sequenceNumber)
          end)
      end

      it("several failures: delivery resumes at the lowest (Lambda checkpoints there)", function()
        local seqs = put(6)
        local s = new_stream()
        local batches = batch_log(s, function(_, call)
          if call == 1 then return { failed = { seqs[5], seqs[3] } } end
        end)
        assert.is_nil(s:fetch_stream_state())
        assert.equals(seqs[2], checkpoint(s).sequenceNumber)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "1,2,3,4,5,6", "3,4,5,6" }, batches)
      end)

      it("answers that mean success: nothing, {}, { failed = {} }", function()
        for _, answer in ipairs({ false, {}, { failed = {} } }) do
          local f = Fake.new({ parallel = parallel })
          f:add_shard("A")
          local last = f:insert("A", { pk = "1" })
          local s = Stream.new(f, f.stream_arn, { start_at = "TRIM_HORIZON" })
          s:on("batch", function() return answer or nil end)
          assert.truthy(s:fetch_stream_state())
          assert.equals(last, s:get_shard_state().A.sequenceNumber)
        end
      end)

      -- Lambda: an empty, null or non-string itemIdentifier, or a wrong key, fails
      -- the whole batch; an identifier not in the batch is undocumented and
      -- emulators fail the whole batch: so do we (the message says why).
      it("an unusable answer fails the whole batch, retried from its first record", function()
        local cases = {
          { function() return { failed = "" } end, "failed = ''" },
          { function() return { failed = 123 } end, "failed = number" },
          { function() return { failed = "999" } end, "failed = '999', not a record of the batch" },
          { function(records) return { failed = { records[2].dynamodb.SequenceNumber, "" } } end, "failed = ''" },
          { function() return { batchItemFailures = { { itemIdentifier = "1" } } } end, "the key 'batchItemFailures'" },
          { function() return true end, "a boolean" },
          { function(records) return records[2].dynamodb.SequenceNumber end, "a string" },
        }
        for _, case in ipairs(cases) do
          local f = Fake.new({ parallel = parallel })
          f:add_shard("A")
          f:insert("A", { pk = "1" })
          f:insert("A", { pk = "2" })
          local s = Stream.new(f, f.stream_arn, { start_at = "TRIM_HORIZON" })
          local calls = 0
          s:on("batch", function(records) calls = calls + 1 if calls == 1 then return case[1](records) end end)
          local r, err = s:fetch_stream_state()
          assert.is_nil(r)
          assert.equals("BadBatchResponse", err.code)
          assert.truthy(err.message:find(case[2], 1, true), err.message)
          assert.equals(1, err.attempts)
          assert.is_nil(s:get_shard_state().A.sequenceNumber)
          assert.equals(2, #assert(s:fetch_stream_state()))    -- the whole batch again
        end
      end)
    end)

    describe("raise", function()
      it("retries the whole batch; each record of it counts an attempt, and goes to on_failure at the limit",
        function()
          local seqs = put(3)
          local failed = {}
          local s = new_stream({ max_record_attempts = 2, on_failure = function(record, err)
            failed[#failed + 1] = Fake.pk(record.dynamodb.Keys) .. "@" .. err.attempts .. ":" .. err.code
          end })
          -- record 1 is poison: every batch holding it raises (no bisect: nobody knows which record)
          local batches = batch_log(s, function(records)
            if Fake.pk(records[1].dynamodb.Keys) == "1" then error("boom") end
          end)
          local r, err = s:fetch_stream_state()
          assert.is_nil(r)
          assert.equals("ListenerError", err.code)
          assert.equals("batch", err.event)
          assert.equals(seqs[1], err.sequence_number)
          assert.same({ type = "AT_SEQUENCE_NUMBER", sequenceNumber = seqs[1] }, checkpoint(s).position)
          local four = put(1, 4)[1]
          -- records 1-3 reach 2 attempts and are handed over; 4 has failed once: the shard waits at it
          r, err = s:fetch_stream_state()
          assert.is_nil(r)
          assert.same({ four, 1 }, { err.sequence_number, err.attempts })
          assert.same({ "1@2:ListenerError", "2@2:ListenerError", "3@2:ListenerError" }, failed)
          assert.equals(seqs[3], checkpoint(s).sequenceNumber)
          assert.truthy(s:fetch_stream_state())
          assert.same({ "1,2,3", "1,2,3,4", "4" }, batches)
          assert.equals(four, checkpoint(s).sequenceNumber)
          local stats = s:stats()
          assert.same({ 1, 3, 7, 4 }, { stats.delivered, stats.failed_over, stats.failed_attempts, stats.retries })
        end)
    end)

    describe("poison limits per record", function()
      -- Records 1..3, the second of them poison; log lines "batch pks" and "failed pk code".
      local function poisoned(opts)
        local log = {}
        opts.on_failure = function(record, err)
          log[#log + 1] = "failed " .. Fake.pk(record.dynamodb.Keys) .. " " .. err.code
        end
        local s = new_stream(opts)
        s:on("batch", function(records) log[#log + 1] = "batch " .. pks(records) end)
        return s, log
      end

      it("a record past max_record_age goes to on_failure after the batch before it, then the rest", function()
        local seqs = put(3)
        fake.by_id.A.records[2].dynamodb.ApproximateCreationDateTime = fake:wall() - 1000
        local s, log = poisoned({ max_record_age = 60 })
        assert.truthy(s:fetch_stream_state())
        assert.same({ "batch 1", "failed 2 RecordAgeExceeded", "batch 3" }, log)
        assert.equals(seqs[3], checkpoint(s).sequenceNumber)
      end)

      it("a record whose images do not unmarshall fails alone; the batch before it is delivered first", function()
        local seqs = put(3)
        local s, log = poisoned({ max_record_attempts = 2, unmarshall = function(av)
          if av.pk.S == "2" then error("bad image") end
          return ds.unmarshall(av)
        end })
        local r, err = s:fetch_stream_state()
        assert.is_nil(r)
        assert.same({ "UnmarshallError", seqs[2], 1 }, { err.code, err.sequence_number, err.attempts })
        assert.equals(seqs[1], checkpoint(s).sequenceNumber)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "batch 1", "failed 2 UnmarshallError", "batch 3" }, log)
        assert.equals(seqs[3], checkpoint(s).sequenceNumber)
      end)
    end)

    describe("bisect", function()
      it("finds the bad record in log2 steps, delivers the good ones, hands the bad one over at max_record_attempts",
        function()
          local seqs = put(8)
          local failed = {}
          local s = new_stream({ bisect = true, max_record_attempts = 2, on_failure = function(record, err)
            failed[#failed + 1] = Fake.pk(record.dynamodb.Keys) .. "@" .. err.attempts
          end })
          local batches = batch_log(s, function(records)
            for _, r in ipairs(records) do
              if Fake.pk(r.dynamodb.Keys) == "5" then error("poison") end
            end
          end)
          local inserted = {}
          s:on("insert record", function(new) inserted[#inserted + 1] = Fake.pk(new) end)
          local r, err = s:fetch_stream_state()
          assert.is_nil(r)
          assert.equals(seqs[5], err.sequence_number)
          assert.equals(1, err.attempts)
          -- 1 + 2 * log2(8) offers at most; the good half delivered
          assert.same({ "1,2,3,4,5,6,7,8", "1,2,3,4", "5,6,7,8", "5,6", "5" }, batches)
          assert.same({ "1", "2", "3", "4" }, inserted)
          assert.equals(seqs[4], checkpoint(s).sequenceNumber)
          assert.truthy(s:fetch_stream_state())
          assert.same({ "5@2" }, failed)
          assert.same({ "5,6,7,8", "5,6", "5", "6,7,8" }, { batches[6], batches[7], batches[8], batches[9] })
          assert.equals(9, #batches)
          assert.same({ "1", "2", "3", "4", "6", "7", "8" }, inserted)
          assert.equals(seqs[8], checkpoint(s).sequenceNumber)
        end)

      it("a partial answer is not bisected: delivery resumes at the record reported", function()
        local seqs = put(4)
        local s = new_stream({ bisect = true })
        local batches = batch_log(s, function(_, call) if call == 1 then return { failed = seqs[3] } end end)
        assert.is_nil(s:fetch_stream_state())
        assert.truthy(s:fetch_stream_state())
        assert.same({ "1,2,3,4", "3,4" }, batches)
      end)
    end)

    describe("with the record events", function()
      it("a batch first, then each record it acknowledged to the record listeners, in one pass", function()
        put(3)
        local s = new_stream()
        local log = {}
        s:on("batch", function(records) log[#log + 1] = "batch " .. pks(records) end)
        s:on("insert record", function(new) log[#log + 1] = "insert " .. Fake.pk(new) end)
        assert.truthy(s:fetch_stream_state())
        assert.same({ "batch 1,2,3", "insert 1", "insert 2", "insert 3" }, log)
      end)

      it("a record listener that raises stops the position before its record; the batch comes again from it",
        function()
          local seqs = put(3)
          local s = new_stream({ unmarshall = ds.unmarshall })
          local log, raised = {}, false
          s:on("batch", function(records) log[#log + 1] = "batch " .. pks(records) end)
          s:on("insert record", function(new)
            if new.pk == "2" and not raised then raised = true error("record listener") end
            log[#log + 1] = "insert " .. new.pk
          end)
          local r, err = s:fetch_stream_state()
          assert.is_nil(r)
          assert.equals("ListenerError", err.code)
          assert.equals(seqs[1], checkpoint(s).sequenceNumber)
          assert.truthy(s:fetch_stream_state())
          assert.same({ "batch 1,2,3", "insert 1", "batch 2,3", "insert 2", "insert 3" }, log)
        end)
    end)

    describe("restarts", function()
      -- A shard of n records read by streams that are replaced after every
      -- fetch (the state saved as JSON, restored into a new stream after the
      -- iterators expired, or not); the batch listener fails at random, by
      -- partial answers and by raising; a record listener too. At every save,
      -- every record up to the checkpoint was processed by both listeners; at
      -- the end every record was.
      local function run_restarts(opts, expire, restart_every)
        local n = 60
        local seqs = put(n)
        local index = {}
        for i, seq in ipairs(seqs) do index[seq] = i end
        local by_batch, by_record = {}, {}
        local seed = 7
        local function roll() seed = (seed * 16807) % 2147483647 return seed % 100 end
        local s
        local function restart(state)
          local o = {}
          for k, v in pairs(opts) do o[k] = v end
          s = new_stream(o)
          if state then s:set_shard_state(ds.json_decode(ds.json_encode(state))) end
          s:on("batch", function(records)
            if roll() < 10 then error("batch raised") end
            for _, rec in ipairs(records) do
              if roll() < 8 then return { failed = rec.dynamodb.SequenceNumber } end
              by_batch[index[rec.dynamodb.SequenceNumber]] = true
            end
          end)
          s:on("record", function(rec)
            if roll() < 5 then error("record raised") end
            by_record[index[rec.dynamodb.SequenceNumber]] = true
          end)
        end
        restart(nil)
        local state, restarts = nil, 0
        for fetches = 1, 300 do
          s:fetch_stream_state()
          fake:advance(2)
          state = s:get_shard_state()
          local cp = state.A.sequenceNumber
          for i = 1, cp and index[cp] or 0 do
            assert.is_true(by_batch[i] and by_record[i], "record " .. i .. " acknowledged, not processed")
          end
          if cp == seqs[n] then break end
          if fetches % restart_every == 0 then
            if expire then fake:advance(901) end
            restart(state)
            restarts = restarts + 1
          end
        end
        assert.equals(seqs[n], state.A.sequenceNumber)
        assert.is_true(restarts >= 3)
        for i = 1, n do assert.is_true(by_batch[i] and by_record[i], "record " .. i .. " lost") end
      end

      it("nothing lost, nothing acknowledged that was not processed (iterators kept)", function()
        run_restarts({ batch_size = 7 }, false, 1)
      end)

      it("nothing lost, nothing acknowledged that was not processed (iterators expired, bisect)", function()
        run_restarts({ batch_size = 7, bisect = true }, true, 1)
      end)

      it("nothing lost when a restart comes while a batch is still collecting", function()
        run_restarts({ batch_size = 50, batch_window = 3 }, false, 3)
      end)
    end)
  end)
end
