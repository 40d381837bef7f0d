-- Hostile answers and hostile caller input for the consumer (stream.lua), on the
-- scripted fake: every field the consumer reads, with the wrong JSON type,
-- core.null, control characters. Each case must give nil, err (code
-- InvalidResponse, a message naming the field) and an 'error' event, never a
-- Lua error out of fetch/run; the well-formed records are delivered once each
-- when the answers are good again.
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local core = require("dynamodb_stream.core")
local NULL = core.null

local function inserted(log)
  local out = {}
  for _, line in ipairs(Fake.only(log, "insert")) do out[#out + 1] = line:sub(8) end
  return out
end

-- A fake with shard A holding records 1, 2, 3 and a stream reading it from
-- TRIM_HORIZON (unmarshalled when opts.unmarshall).
local function setup(opts)
  local fake = Fake.new()
  fake:add_shard("A")
  local seqs = {}
  for i = 1, 3 do seqs[i] = fake:insert("A", { pk = tostring(i) }) end
  local s = Stream.new(fake, fake.stream_arn,
    { start_at = "TRIM_HORIZON", unmarshall = opts and opts.unmarshall })
  return fake, s, Fake.recorder(s), seqs
end

-- Expects fetch_stream_state to fail with code and a message holding fragment.
local function expect_failure(s, log, code, fragment)
  local ok, r, err = pcall(s.fetch_stream_state, s)
  assert.is_true(ok, "fetch raised: " .. tostring(r))
  assert.is_nil(r)
  assert.equals(code, err.code)
  assert.is_truthy(err.message:find(fragment, 1, true),
    "message '" .. err.message .. "' lacks '" .. fragment .. "'")
  assert.same({ "error " .. code }, Fake.only(log, "error"))
  return err
end

local function set(path_fn, value)
  return function(res)
    path_fn(res, value)
    return res
  end
end

local function shard1(res, v) res.StreamDescription.Shards[1].ShardId = v end

describe("hostile answers", function()
  describe("DescribeStream", function()
    local cases = {
      { "the answer is a string", function() return "x" end, "describe_stream returned 'x', not an object" },
      { "the answer is a number", function() return 5 end, "describe_stream returned number, not an object" },
      { "the answer is null", function() return NULL end, "describe_stream returned null, not an object" },
      { "StreamDescription is a string", set(function(r, v) r.StreamDescription = v end, "x"), "no StreamDescription" },
      { "StreamDescription is null", set(function(r, v) r.StreamDescription = v end, NULL), "no StreamDescription" },
      { "StreamDescription is missing", set(function(r, v) r.StreamDescription = v end, nil), "no StreamDescription" },
      { "Shards is a string", set(function(r, v) r.StreamDescription.Shards = v end, "x"), "Shards is 'x', not an array" },
      { "Shards is a number", set(function(r, v) r.StreamDescription.Shards = v end, 5), "Shards is number, not an array" },
      { "Shards is an object", set(function(r, v) r.StreamDescription.Shards = v end, { A = {} }),
        "Shards is table, not an array" },
      { "a shard is a string", set(function(r, v) r.StreamDescription.Shards[1] = v end, "A"), "a shard is 'A', not an object" },
      { "a shard is null", set(function(r, v) r.StreamDescription.Shards[1] = v end, NULL), "a shard is null, not an object" },
      { "ShardId is a number", set(shard1, 5), "bad ShardId number" },
      { "ShardId is null", set(shard1, NULL), "bad ShardId null" },
      { "ShardId is a table", set(shard1, {}), "bad ShardId table" },
      { "ShardId is empty", set(shard1, ""), "bad ShardId ''" },
      { "ShardId is missing", set(shard1, nil), "bad ShardId nil" },
    }
    for _, field_case in ipairs({
      { "SequenceNumberRange is a string", "SequenceNumberRange", "x", "SequenceNumberRange is 'x' for shard A" },
      { "SequenceNumberRange is a number", "SequenceNumberRange", 5, "SequenceNumberRange is number for shard A" },
      { "ParentShardId is a table", "ParentShardId", {}, "bad ParentShardId table for shard A" },
      { "ParentShardId is a number", "ParentShardId", 7, "bad ParentShardId number for shard A" },
      { "ParentShardId holds a LF", "ParentShardId", "P\nX", "bad ParentShardId 'P\\10X' (control character)" },
    }) do
      cases[#cases + 1] = { field_case[1], function(res)
        res.StreamDescription.Shards[1][field_case[2]] = field_case[3]
        return res
      end, field_case[4] }
    end
    for _, v in ipairs({ { 5, "number" }, { "12x", "'12x'" }, { true, "boolean" } }) do
      cases[#cases + 1] = { "EndingSequenceNumber is " .. v[2], function(res)
        res.StreamDescription.Shards[1].SequenceNumberRange.EndingSequenceNumber = v[1]
        return res
      end, "bad EndingSequenceNumber " .. v[2] .. " for shard A" }
    end
    for _, v in ipairs({ { 5, "number" }, { {}, "table" }, { true, "boolean" }, { "A\0", "'A\\0' (control character)" } }) do
      cases[#cases + 1] = { "LastEvaluatedShardId is " .. v[2], function(res)
        res.StreamDescription.LastEvaluatedShardId = v[1]
        return res
      end, "bad LastEvaluatedShardId " .. v[2] }
    end
    for _, c in ipairs({ "\r", "\n", "\0", "\1", "\31", "\127", "\r\nX-Amz-Target: DynamoDB_20120810.DeleteTable" }) do
      cases[#cases + 1] = { ("ShardId holds byte %d"):format(c:byte()), set(shard1, "A" .. c),
        "(control character)" }
    end

    for _, case in ipairs(cases) do
      it(case[1] .. ": InvalidResponse, nothing requested, then the good answer is read in full", function()
        local fake, s, log = setup()
        fake:tamper("describe_stream", case[2])
        expect_failure(s, log, "InvalidResponse", case[3])
        assert.equals(0, fake:count("get_shard_iterator"))
        assert.equals(0, fake:count("get_records"))
        assert.same({}, Fake.only(log, "new"))
        assert.is_table(s:fetch_stream_state())
        assert.same({ "1", "2", "3" }, inserted(log))
      end)
    end

    for _, case in ipairs({
      { "ParentShardId null", function(res) res.StreamDescription.Shards[1].ParentShardId = NULL return res end },
      { "ParentShardId empty", function(res) res.StreamDescription.Shards[1].ParentShardId = "" return res end },
      { "SequenceNumberRange null", function(res) res.StreamDescription.Shards[1].SequenceNumberRange = NULL return res end },
      { "EndingSequenceNumber null", function(res)
        res.StreamDescription.Shards[1].SequenceNumberRange.EndingSequenceNumber = NULL return res end },
      { "LastEvaluatedShardId null", function(res) res.StreamDescription.LastEvaluatedShardId = NULL return res end },
      { "Shards null (an empty page)", function(res) res.StreamDescription.Shards = NULL return res end },
      { "StreamStatus a number", function(res) res.StreamDescription.StreamStatus = 5 return res end },
      { "a shard id with bytes >= 0x80 (not control characters)", function(res)
        res.StreamDescription.Shards[2] = { ShardId = "\195\169\255" } return res end },
    }) do
      it("accepts " .. case[1], function()
        local fake, s, log = setup()
        fake:tamper("describe_stream", case[2])
        assert.is_table(s:fetch_stream_state())
        assert.same({}, Fake.only(log, "error"))
      end)
    end

    it("a shard id listed twice is read once", function()
      local fake, s, log = setup()
      fake:tamper("describe_stream", function(res)
        res.StreamDescription.Shards[2] = res.StreamDescription.Shards[1]
        return res
      end)
      assert.equals(3, #s:fetch_stream_state())
      assert.same({ "new A", "insert 1", "insert 2", "insert 3" }, log)
    end)

    it("a LastEvaluatedShardId that never ends stops after 10000 pages", function()
      local fake, s, log = setup()
      local n = 0
      fake:tamper("describe_stream", function(res)
        n = n + 1
        res.StreamDescription.LastEvaluatedShardId = "next-" .. n
        return res
      end, { times = math.huge })
      expect_failure(s, log, "InvalidResponse", "DescribeStream did not end")
      assert.equals(10000, fake:count("describe_stream"))
      assert.equals(0, fake:count("get_shard_iterator"))
    end)

    it("a LastEvaluatedShardId repeated is an error, not a loop", function()
      local fake, s, log = setup()
      fake:tamper("describe_stream", function(res)
        res.StreamDescription.LastEvaluatedShardId = "same"
        return res
      end, { times = math.huge })
      expect_failure(s, log, "InvalidResponse", "DescribeStream repeated LastEvaluatedShardId same")
      assert.equals(2, fake:count("describe_stream"))
    end)
  end)

  describe("GetShardIterator", function()
    for _, case in ipairs({
      { "the answer is a string", function() return "it" end, "get_shard_iterator returned 'it', not an object" },
      { "the answer is null", function() return NULL end, "get_shard_iterator returned null, not an object" },
      { "ShardIterator is missing", function(res) res.ShardIterator = nil return res end, "returned no ShardIterator" },
      { "ShardIterator is a number", function(res) res.ShardIterator = 5 return res end, "a bad ShardIterator number" },
      { "ShardIterator is a table", function(res) res.ShardIterator = {} return res end, "a bad ShardIterator table" },
      { "ShardIterator is null", function(res) res.ShardIterator = NULL return res end, "a bad ShardIterator null" },
      { "ShardIterator is empty", function(res) res.ShardIterator = "" return res end, "a bad ShardIterator ''" },
      { "ShardIterator holds CR LF", function(res) res.ShardIterator = res.ShardIterator .. "\r\n" return res end,
        "(control character)" },
      { "ShardIterator holds NUL", function(res) res.ShardIterator = "\0" .. res.ShardIterator return res end,
        "(control character)" },
    }) do
      it(case[1] .. ": InvalidResponse with the shard id, no GetRecords, then read in full", function()
        local fake, s, log = setup()
        fake:tamper("get_shard_iterator", case[2])
        local err = expect_failure(s, log, "InvalidResponse", case[3])
        assert.equals("A", err.shard_id)
        assert.equals(0, fake:count("get_records"))
        assert.is_table(s:fetch_stream_state())
        assert.same({ "1", "2", "3" }, inserted(log))
      end)
    end
  end)

  describe("GetRecords pages", function()
    for _, case in ipairs({
      { "the answer is a string", function() return "x" end, "get_records returned 'x', not an object" },
      { "the answer is a boolean", function() return true end, "get_records returned boolean, not an object" },
      { "Records is a string", function(res) res.Records = "[]" return res end, "Records is '[]', not an array" },
      { "Records is a number", function(res) res.Records = 3 return res end, "Records is number, not an array" },
      { "Records is null", function(res) res.Records = NULL return res end, "Records is null, not an array" },
      { "Records is missing", function(res) res.Records = nil return res end, "Records is nil, not an array" },
      { "Records is an object", function(res) res.Records = { first = res.Records[1] } return res end,
        "Records is table, not an array" },
      { "Records has a hole", function(res) res.Records[5] = res.Records[1] return res end,
        "Records is table, not an array" },
      { "NextShardIterator is a number", function(res) res.NextShardIterator = 5 return res end,
        "bad NextShardIterator number" },
      { "NextShardIterator is a table", function(res) res.NextShardIterator = {} return res end,
        "bad NextShardIterator table" },
      { "NextShardIterator holds LF", function(res) res.NextShardIterator = "it\nX: y" return res end,
        "bad NextShardIterator 'it\\10X: y' (control character)" },
    }) do
      it(case[1] .. ": InvalidResponse, nothing of the page delivered, then all of it once", function()
        local fake, s, log = setup()
        fake:tamper("get_records", case[2])
        local err = expect_failure(s, log, "InvalidResponse", case[3])
        assert.equals("A", err.shard_id)
        assert.same({}, inserted(log))
        assert.is_table(s:fetch_stream_state())
        assert.same({ "1", "2", "3" }, inserted(log))
        assert.same({}, Fake.only(log, "removed")) -- an open shard, not taken for ended
      end)
    end

    it("NextShardIterator null on an open shard's page means the shard ended (as AWS says)", function()
      local fake, s, log = setup()
      fake:tamper("get_records", function(res) res.NextShardIterator = NULL return res end)
      assert.equals(3, #s:fetch_stream_state())
      assert.same({ "removed A" }, Fake.only(log, "removed"))
      assert.same({}, Fake.only(log, "error"))
    end)
  end)

  describe("a malformed record in the middle of a page", function()
    local function rec2(mutate)
      return function(res)
        mutate(res.Records[2])
        return res
      end
    end
    local cases = {
      { "a string record", function(res) res.Records[2] = "INSERT" return res end, "a record is 'INSERT', not an object" },
      { "a null record", function(res) res.Records[2] = NULL return res end, "a record is null, not an object" },
      { "eventName a number", rec2(function(r) r.eventName = 1 end), "eventName is number" },
      { "eventName null", rec2(function(r) r.eventName = NULL end), "eventName is null" },
      { "eventName missing", rec2(function(r) r.eventName = nil end), "eventName is nil" },
      { "dynamodb a string", rec2(function(r) r.dynamodb = "{}" end), "dynamodb is '{}', not an object" },
      { "dynamodb null", rec2(function(r) r.dynamodb = NULL end), "dynamodb is null, not an object" },
      { "dynamodb missing", rec2(function(r) r.dynamodb = nil end), "dynamodb is nil, not an object" },
      { "SequenceNumber missing", rec2(function(r) r.dynamodb.SequenceNumber = nil end), "bad SequenceNumber nil" },
      { "SequenceNumber a number", rec2(function(r) r.dynamodb.SequenceNumber = 100000000000000000002 end),
        "bad SequenceNumber number" },
      { "SequenceNumber null", rec2(function(r) r.dynamodb.SequenceNumber = NULL end), "bad SequenceNumber null" },
      { "SequenceNumber not digits", rec2(function(r) r.dynamodb.SequenceNumber = "1000000000000000000002x" end),
        "bad SequenceNumber '1000000000000000000002x'" },
      { "SequenceNumber negative", rec2(function(r) r.dynamodb.SequenceNumber = "-1" end), "bad SequenceNumber '-1'" },
      { "SequenceNumber empty", rec2(function(r) r.dynamodb.SequenceNumber = "" end), "bad SequenceNumber ''" },
      { "SequenceNumber of 129 digits", rec2(function(r) r.dynamodb.SequenceNumber = string.rep("9", 129) end),
        "bad SequenceNumber '999999999999" },
      { "Keys missing", rec2(function(r) r.dynamodb.Keys = nil end), "Keys is nil in record " },
      { "Keys a string", rec2(function(r) r.dynamodb.Keys = "pk" end), "Keys is 'pk' in record " },
      { "Keys null", rec2(function(r) r.dynamodb.Keys = NULL end), "Keys is null in record " },
      { "NewImage a string", rec2(function(r) r.dynamodb.NewImage = "{}" end), "NewImage is '{}' in record " },
      { "NewImage a number", rec2(function(r) r.dynamodb.NewImage = 0 end), "NewImage is number in record " },
      { "OldImage a boolean", rec2(function(r) r.dynamodb.OldImage = false end), "OldImage is boolean in record " },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. ": records before it delivered, an error, the rest once when the answer is good", function()
        local fake, s, log, seqs = setup()
        fake:tamper("get_records", case[2])
        local err = expect_failure(s, log, "InvalidResponse", case[3])
        assert.equals("A", err.shard_id)
        assert.equals(seqs[1], err.last_sequence_number)
        assert.same({ "1" }, inserted(log))
        local state = s:get_shard_state().A
        assert.same({ type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = seqs[1] }, state.position)
        assert.same({ "1", "2", "3" }, (function()
          assert.equals(2, #s:fetch_stream_state())
          return inserted(log)
        end)())
      end)
    end

    it("the same malformed record every time: the shard stays there, never skips it", function()
      local fake, s, log, seqs = setup()
      fake:tamper("get_records", function(res)
        for _, r in ipairs(res.Records) do
          if r.dynamodb.SequenceNumber == seqs[2] then r.dynamodb.SequenceNumber = "x" end
        end
        return res
      end, { times = math.huge })
      for _ = 1, 5 do
        local r, err = s:fetch_stream_state()
        assert.is_nil(r)
        assert.equals("InvalidResponse", err.code)
      end
      assert.same({ "1" }, inserted(log))
      assert.equals(seqs[1], s:get_shard_state().A.sequenceNumber)
      fake.tampers = {}
      assert.equals(2, #s:fetch_stream_state())
      assert.same({ "1", "2", "3" }, inserted(log))
    end)

    it("an unknown eventName (a string) is delivered as 'record' only, not an error", function()
      local fake, s, log = setup()
      fake:tamper("get_records", rec2(function(r) r.eventName = "TRUNCATE" end))
      local names = {}
      s:on("record", function(r) names[#names + 1] = r.eventName end)
      assert.equals(3, #s:fetch_stream_state())
      assert.same({ "INSERT", "TRUNCATE", "INSERT" }, names)
      assert.same({ "1", "3" }, inserted(log))
      assert.same({}, Fake.only(log, "error"))
    end)

    it("NewImage/OldImage null are absent images", function()
      local fake, s, log = setup()
      fake:tamper("get_records", rec2(function(r) r.dynamodb.NewImage = NULL; r.dynamodb.OldImage = NULL end))
      assert.equals(3, #s:fetch_stream_state())
      assert.same({ "1", "2", "3" }, inserted(log)) -- the recorder falls back to the keys
    end)

    for _, case in ipairs({
      { "N a number", function(r) r.dynamodb.NewImage.pk = { N = 5 } end, "unmarshall: N value must be a string, got number at pk" },
      { "BOOL a string", function(r) r.dynamodb.NewImage.pk = { BOOL = "true" } end,
        "unmarshall: BOOL value must be a boolean, got string at pk" },
      { "two type keys", function(r) r.dynamodb.Keys.pk = { S = "2", N = "2" } end,
        "unmarshall: AttributeValue must be a table with exactly one type key, got several keys at pk" },
      { "an AttributeValue null", function(r) r.dynamodb.NewImage = { pk = NULL } end,
        "unmarshall: AttributeValue must be a table with exactly one type key, got userdata at pk" },
    }) do
      it("with unmarshall, " .. case[1] .. " is an UnmarshallError at that record", function()
        local fake, s, log, seqs = setup({ unmarshall = core.unmarshall })
        fake:tamper("get_records", rec2(case[2]))
        local err = expect_failure(s, log, "UnmarshallError", case[3])
        assert.equals(seqs[2], err.sequence_number)
        assert.same({ "1" }, inserted(log))
        assert.equals(2, #s:fetch_stream_state())
        assert.same({ "1", "2", "3" }, inserted(log))
      end)
    end
  end)

  describe("clients that misbehave", function()
    local function client(fns)
      return {
        describe_stream = fns.describe_stream or function() return { StreamDescription = {
          Shards = { { ShardId = "A", SequenceNumberRange = { StartingSequenceNumber = "1" } } } } } end,
        get_shard_iterator = fns.get_shard_iterator or function() return { ShardIterator = "it" } end,
        get_records = fns.get_records or function() return { Records = {}, NextShardIterator = "it" } end,
      }
    end
    for _, case in ipairs({
      { "returns nothing", { get_records = function() end }, "ClientError", "nil" },
      { "returns nil and a string", { get_records = function() return nil, "boom" end }, "ClientError", "boom" },
      { "returns nil and a table without code", { get_records = function() return nil, { message = "m" } end },
        "ClientError", "table" },
      { "raises a table", { get_shard_iterator = function() error({ code = 1 }) end }, "ClientError", "table" },
      { "raises a string", { describe_stream = function() error("kaput", 0) end }, "ClientError", "kaput" },
      { "returns a function", { describe_stream = function() return print end }, "InvalidResponse",
        "describe_stream returned function, not an object" },
    }) do
      it(case[1] .. ": " .. case[3], function()
        local s = Stream.new(client(case[2]), "arn:x")
        local log = Fake.recorder(s)
        expect_failure(s, log, case[3], case[4])
      end)
    end
  end)

  it("run survives a stream of garbage and reads on once the answers are good", function()
    local fake, s, log = setup()
    local garbage = { function() return "x" end, function(res) res.Records = 1 return res end,
      function(res) res.Records[1] = 7 return res end, function(res) res.NextShardIterator = {} return res end }
    local i = 0
    fake:tamper("get_records", function(res)
      i = i + 1
      return garbage[(i - 1) % #garbage + 1](res)
    end, { times = 8 })
    local sleeps = 0
    local ok, r = pcall(s.run, s, { interval = 0.01, max_interval = 0.01, sleep = function()
      sleeps = sleeps + 1
      if sleeps == 10 then s:stop() end
    end })
    assert.is_true(ok)
    assert.is_true(r)
    assert.equals(8, #Fake.only(log, "error InvalidResponse"))
    assert.same({ "1", "2", "3" }, inserted(log))
  end)
end)

describe("control characters in caller input", function()
  local fake
  before_each(function()
    fake = Fake.new()
    fake:add_shard("A")
  end)
  local bad = { "\r", "\n", "\0", "\1", "\t", "\31", "\127", "\r\nX-Amz-Target: x" }

  for _, c in ipairs(bad) do
    local label = ("byte %d"):format(c:byte())
    it("ds.new raises on a stream ARN holding " .. label .. ", before any request", function()
      assert.has_error(function() Stream.new(fake, fake.stream_arn .. c) end,
        "stream_arn contains a control character")
      assert.has_error(function() require("dynamodb_stream").new(fake, c .. fake.stream_arn) end,
        "stream_arn contains a control character")
      assert.equals(0, #fake.calls)
    end)

    it("start_at raises on a shard id holding " .. label, function()
      assert.has_error(function()
        Stream.new(fake, fake.stream_arn, { start_at = { ["A" .. c] = { type = "AT_SEQUENCE_NUMBER",
          sequence_number = "1" } } })
      end, "opts.start_at: a shard id contains a control character")
    end)

    it("set_shard_state raises on a shard id, parentShardId or nextShardIterator holding " .. label
      .. " and keeps the state it had", function()
      local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON" })
      s:fetch_stream_state()
      local before = s:get_shard_state()
      assert.has_error(function() s:set_shard_state({ ["A" .. c] = { shardId = "A" .. c } }) end,
        "shard state: a shard id contains a control character")
      assert.has_error(function() s:set_shard_state({ A = { shardId = "A", parentShardId = "P" .. c } }) end,
        "shard state: parentShardId of A contains a control character")
      assert.has_error(function() s:set_shard_state({ A = { shardId = "A", nextShardIterator = c .. "it" } }) end,
        "shard state: nextShardIterator of A contains a control character")
      assert.same(before, s:get_shard_state())
      local calls = #fake.calls
      assert.is_table(s:fetch_stream_state())
      for i = calls + 1, #fake.calls do
        for _, v in pairs(fake.calls[i].params) do
          assert.is_falsy(type(v) == "string" and v:find("[%c\127]"), "a request carried a control character")
        end
      end
    end)
  end

  it("bytes >= 0x80 are not control characters", function()
    local s = Stream.new(fake, fake.stream_arn .. "\195\169\128\255")
    assert.is_true(s:set_shard_state({ ["sh\195\169"] = { shardId = "sh\195\169" } }))
  end)

  it("the checkpoint of run is checked the same way (BadCheckpoint, nothing requested)", function()
    local s = Stream.new(fake, fake.stream_arn)
    local errs = {}
    s:on("error", function(e) errs[#errs + 1] = e end)
    local r, err = s:run({ checkpoint = { load = function() return { ["A\n"] = { shardId = "A\n" } } end,
      save = function() return true end }, sleep = function() error("not reached") end })
    assert.is_nil(r)
    assert.equals("BadCheckpoint", err.code)
    assert.matches("a shard id contains a control character", err.message, 1, true)
    assert.equals(0, #fake.calls)
  end)
end)
