-- stream:stats() beyond the delivery counters: pages, empty polls, throttles,
-- errors, the lag of the newest record read and whether each shard is caught
-- up, per shard and overall; JSON-serialisable.
local ds = require("dynamodb_stream")
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")

describe("stream:stats() metrics", function()
  local fake, stream

  before_each(function()
    fake = Fake.new()
    fake:add_shard("A")
    fake:add_shard("B")
    stream = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", clock = function() return fake.now end,
      wall_clock = function() return fake:wall() end })
    stream:on("record", function() end)
  end)

  it("starts at zero, with no lag and not caught up", function()
    local s = stream:stats()
    for _, name in ipairs({ "pages", "empty_polls", "throttles", "errors", "delivered" }) do
      assert.equals(0, s[name], name)
    end
    assert.is_nil(s.lag)
    assert.is_false(s.caught_up)
    assert.same({}, s.shards)
  end)

  it("counts pages and empty polls, and the lag of the newest record when its page was read", function()
    fake:insert("A", { pk = "1" })
    fake:advance(30)
    fake:insert("A", { pk = "2" })
    fake:advance(12) -- read 12 s after the newest record was written
    assert(stream:fetch_stream_state())
    local s = stream:stats()
    local a, b = s.shards["shardId-A"] or s.shards.A, s.shards["shardId-B"] or s.shards.B
    assert.equals(2, a.delivered)
    assert.equals(12, a.lag)
    assert.is_true(a.caught_up) -- the fetch read A again, to an empty page
    assert.equals(math.floor(fake:wall()) - 12, a.newest_record_at)
    assert.equals(0, b.delivered)
    assert.is_true(b.caught_up) -- its one page was empty
    assert.equals(12, s.lag)
    assert.is_true(s.caught_up)
    assert.equals(a.pages + b.pages, s.pages)
    assert.equals(a.empty_polls + b.empty_polls, s.empty_polls)
    assert.is_string(ds.json_encode(s))
    -- a page read with the shard's budget spent is not caught up
    for i = 1, 3 do fake:insert("A", { pk = "m" .. i }) end
    local limited = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", limit = 1,
      max_pages_per_shard = 1, wall_clock = function() return fake:wall() end })
    limited:on("record", function() end)
    assert(limited:fetch_stream_state())
    s = limited:stats()
    assert.is_false((s.shards["shardId-A"] or s.shards.A).caught_up)
    assert.is_false(s.caught_up)
    assert.equals(42, s.lag) -- its one page held the first record, written 30 + 12 s before
  end)

  it("counts throttles and other errors per shard", function()
    fake:insert("A", { pk = "1" })
    assert(stream:fetch_stream_state())
    fake:fail("get_records", "ThrottlingException", { shard = "A", times = 1 })
    fake:fail("get_records", "InternalServerError", { shard = "B", times = 1 })
    stream:fetch_stream_state()
    local s = stream:stats()
    local a, b = s.shards["shardId-A"] or s.shards.A, s.shards["shardId-B"] or s.shards.B
    assert.equals(1, a.throttles)
    assert.equals(0, a.errors)
    assert.equals(1, b.errors)
    assert.equals(1, s.throttles)
    assert.equals(1, s.errors)
  end)

  it("counts a malformed page as an error, not as an empty poll", function()
    assert(stream:fetch_stream_state())
    local before = stream:stats()
    fake:tamper("get_records", function(res) res.Records = "x" return res end, { shard = "A" })
    stream:fetch_stream_state()
    local s = stream:stats()
    assert.equals(before.errors + 1, s.errors)
  end)
end)
