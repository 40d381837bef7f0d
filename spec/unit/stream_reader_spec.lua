-- The consumer's one reader (lua/dynamodb_stream/stream/reader.lua): the
-- get_records_many made of a client's get_records, rounds of one shard for
-- such a client, and the summary a fetch returns to run.
local Stream = require("dynamodb_stream.stream")
local reader = require("dynamodb_stream.stream.reader")
local core = require("dynamodb_stream.core")
local Fake = require("fake_streams")

-- The shard ids of the GetRecords calls made so far, in order.
local function read_order(fake)
  local out = {}
  for _, call in ipairs(fake.calls) do
    if call.op == "get_records" then
      local it = fake.iterators[call.params.ShardIterator]
      out[#out + 1] = it and it.shard.id or "?"
    end
  end
  return out
end

local function fake_with(parallel, shards, per_shard)
  local fake = Fake.new({ parallel = parallel })
  for _, id in ipairs(shards) do
    fake:add_shard(id)
    for i = 1, per_shard do fake:insert(id, { pk = id .. i }) end
  end
  return fake
end

describe("reader.get_records_many_from", function()
  it("calls get_records once per params, in order, with the client, and keeps answers and errors aligned", function()
    local client, seen = {}, {}
    local many = reader.get_records_many_from(function(self, params)
      seen[#seen + 1] = { self = self, n = params.n }
      if params.n == 2 then return nil, "no page" end
      return { n = params.n }
    end)
    local answers, errs = many(client, { { n = 1 }, { n = 2 }, { n = 3 } })
    assert.equals(3, #seen)
    for i, call in ipairs(seen) do
      assert.equals(client, call.self)
      assert.equals(i, call.n)
    end
    assert.same({ n = 1 }, answers[1])
    assert.is_nil(answers[2])
    assert.equals("no page", errs[2])
    assert.same({ n = 3 }, answers[3])
    assert.is_nil(errs[1])
    assert.is_nil(errs[3])
  end)

  it("returns empty lists for an empty list, calling nothing", function()
    local many = reader.get_records_many_from(function() error("not called") end)
    local answers, errs = many({}, {})
    assert.same({}, answers)
    assert.same({}, errs)
  end)
end)

describe("the stream's one reader", function()
  it("reads a client without get_records_many one shard at a time, each to its end, in order", function()
    local fake = fake_with(false, { "A", "B" }, 3)
    local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", limit = 1 })
    local got = {}
    s:on("insert record", function(new) got[#got + 1] = new.pk.S end)
    assert.equals(6, #s:fetch_stream_state())
    assert.same({ "A1", "A2", "A3", "B1", "B2", "B3" }, got)
    assert.same({ "A", "A", "A", "A", "B", "B", "B", "B" }, read_order(fake))
  end)

  it("reads a client with get_records_many in rounds of every readable shard", function()
    local fake = fake_with(true, { "A", "B" }, 3)
    local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", limit = 1 })
    local got = {}
    s:on("insert record", function(new) got[#got + 1] = new.pk.S end)
    assert.equals(6, #s:fetch_stream_state())
    assert.same({ "A1", "B1", "A2", "B2", "A3", "B3" }, got)
    assert.same({ "A", "B", "A", "B", "A", "B", "A", "B" }, read_order(fake))
  end)

  it("asks get_records_unmarshalled, not get_records, for pages unmarshalled in C (ds.unmarshall)", function()
    local fake = fake_with(false, { "A" }, 2)
    local plain, one_pass = 0, 0
    local client = {
      describe_stream = function(_, p) return fake:describe_stream(p) end,
      get_shard_iterator = function(_, p) return fake:get_shard_iterator(p) end,
      get_records = function(_, p) plain = plain + 1 return fake:get_records(p) end,
      get_records_unmarshalled = function(_, p) one_pass = one_pass + 1 return fake:get_records(p) end,
    }
    local s = Stream.new(client, fake.stream_arn, { start_at = "TRIM_HORIZON", unmarshall = core.unmarshall })
    local got = {}
    s:on("insert record", function(new) got[#got + 1] = new.pk end)
    assert.equals(2, #s:fetch_stream_state())
    assert.same({ "A1", "A2" }, got) -- the page was not marked unmarshalled: the stream unmarshalled it
    assert.equals(0, plain)
    assert.is_true(one_pass > 0)
  end)
end)

describe("a fetch's summary", function()
  it("counts the records it moved past and keeps them outside run", function()
    local fake = fake_with(false, { "A", "B" }, 2)
    local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON" })
    local summary = assert(s:_fetch("state"))
    assert.equals(4, summary.advanced)
    assert.equals(4, #summary.records)
    assert.is_false(summary.more)
    assert.is_false(summary.shards_changed)
    summary = assert(s:_fetch("records"))
    assert.equals(0, summary.advanced)
    assert.same({}, summary.records)
  end)

  it("says when a shard has more than its page budget", function()
    local fake = fake_with(true, { "A", "B" }, 3)
    fake:insert("B", { pk = "B4" })
    local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", limit = 1, max_pages_per_shard = 3 })
    local summary = assert(s:_fetch("state"))
    assert.equals(6, summary.advanced)
    assert.is_true(summary.more) -- B4 is left for the next fetch
    summary = assert(s:_fetch("records"))
    assert.equals(1, summary.advanced)
    assert.is_false(summary.more)
  end)

  it("says when the shard set changed (a shard read to its end)", function()
    local fake = fake_with(false, { "A" }, 1)
    fake:close("A")
    local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON" })
    local summary = assert(s:_fetch("state"))
    assert.equals(1, summary.advanced)
    assert.is_true(summary.shards_changed)
  end)

  it("comes with the error, counting what the other shards took", function()
    for _, parallel in ipairs({ false, true }) do
      local fake = fake_with(parallel, { "A", "B" }, 2)
      fake:fail("get_records", "ThrottlingException", { shard = "A", times = 1 })
      local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON" })
      local summary, err, done = s:_fetch("state")
      assert.is_nil(summary)
      assert.equals("ThrottlingException", err.code)
      assert.equals(2, done.advanced) -- B's records
    end
  end)
end)
