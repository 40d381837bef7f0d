-- spec/support/fake_streams_server.py as a live stream (the rig of
-- spec/robustness/lease_chaos_spec.lua): changes appended while a consumer
-- reads, routed to shards by the key's hash; a split and a rollover close
-- shards and open children that take over their keys; DescribeStream,
-- GetShardIterator and GetRecords keep their semantics throughout.
local ds = require("dynamodb_stream")
local live = require("live_streams")

local function iterator(c, arn, shard_id, kind)
  return assert(c:get_shard_iterator({ StreamArn = arn, ShardId = shard_id, ShardIteratorType = kind })).ShardIterator
end

-- Reads a shard from TRIM_HORIZON to its current end: its records and the
-- last NextShardIterator (nil when the shard is closed and read to its end).
local function read_shard(c, arn, shard_id)
  local it, records = iterator(c, arn, shard_id, "TRIM_HORIZON"), {}
  while it do
    local page = assert(c:get_records({ ShardIterator = it }))
    for _, r in ipairs(page.Records) do records[#records + 1] = r end
    it = page.NextShardIterator
    if #page.Records == 0 then break end
  end
  return records, it
end

local function by_id(shards)
  local out = {}
  for _, s in ipairs(shards) do out[s.ShardId] = s end
  return out
end

describe("fake_streams_server.py, live", function()
  local srv, c

  before_each(function()
    srv = live.start({ "--shards", "16", "--records", "0" })
    c = live.client(srv, { max_attempts = 1 })
  end)

  after_each(function()
    if c then c:close() end
    if srv then srv.stop() end
  end)

  it("routes each key to one open shard and appends while a reader holds an iterator", function()
    local shards = live.describe_all(c, srv.arn)
    assert.equals(16, #shards)
    -- An open shard read to its end: no records, an iterator that sees later puts.
    local first = shards[1].ShardId
    local records, it = read_shard(c, srv.arn, first)
    assert.equals(0, #records)
    assert.is_string(it)

    local written = {}
    for v = 1, 3 do
      for k = 1, 40 do written[#written + 1] = srv.put("key-" .. k) end
    end
    local home, used = {}, {}
    for _, w in ipairs(written) do
      home[w.key] = home[w.key] or w.shard
      assert.equals(home[w.key], w.shard, "a key moved between open shards")
      used[w.shard] = true
    end
    local nused = 0
    for _ in pairs(used) do nused = nused + 1 end
    assert.is_true(nused >= 10, "40 keys should spread over most of 16 shards, got " .. nused)
    assert.equals(3, written[#written].version)
    assert.equals("key-40", written[#written].key)

    -- The iterator taken before the puts now returns them.
    local page = assert(c:get_records({ ShardIterator = it }))
    local want = 0
    for _, w in ipairs(written) do if w.shard == first then want = want + 1 end end
    assert.equals(want, #page.Records)
    assert.is_string(page.NextShardIterator)

    -- Every shard holds its keys' changes in version order, INSERT then MODIFYs.
    local got = 0
    for _, s in ipairs(shards) do
      local last = {}
      for _, r in ipairs((read_shard(c, srv.arn, s.ShardId))) do
        got = got + 1
        local key, v = r.dynamodb.Keys.pk.S, tonumber(r.dynamodb.NewImage.v.N)
        assert.equals(home[key], s.ShardId)
        assert.equals((last[key] or 0) + 1, v)
        assert.equals(v == 1 and "INSERT" or "MODIFY", r.eventName)
        if v > 1 then assert.equals(tostring(v - 1), r.dynamodb.OldImage.v.N) end
        last[key] = v
      end
    end
    assert.equals(#written, got)
    local changes = srv.changes()
    assert.equals(#written, #changes)
    assert.same({ key = written[5].key, version = written[5].version, shard = written[5].shard, seq = written[5].seq },
      changes[5])
  end)

  it("splits a shard: the parent closes at its last record, two children take its keys", function()
    local keys = {}
    for k = 1, 200 do keys[#keys + 1] = { key = "key-" .. k } end
    local written = srv.put_many(keys)
    local parent = written[1].shard
    local before = {}
    for _, w in ipairs(written) do if w.shard == parent then before[#before + 1] = w end end
    local _, open_it = read_shard(c, srv.arn, parent) -- an iterator at the open shard's end

    local res = srv.split(parent)
    assert.equals(parent, res.parent)
    assert.equals(2, #res.children)
    local shards, pages = live.describe_all(c, srv.arn, 5)
    assert.equals(18, #shards)
    assert.equals(4, pages)
    local index = by_id(shards)
    assert.equals(before[#before].seq, index[parent].SequenceNumberRange.EndingSequenceNumber)
    for _, child in ipairs(res.children) do
      assert.equals(parent, index[child].ParentShardId)
      assert.is_nil(index[child].SequenceNumberRange.EndingSequenceNumber)
      assert.is_true(child > parent) -- a later generation lists after
    end
    -- The parent's iterator at its end now ends the shard.
    local page = assert(c:get_records({ ShardIterator = open_it }))
    assert.equals(0, #page.Records)
    assert.is_nil(page.NextShardIterator)
    local records, it = read_shard(c, srv.arn, parent)
    assert.equals(#before, #records)
    assert.is_nil(it)

    -- The parent's keys now go to the children (both used), the others stay home.
    local again = srv.put_many(keys)
    local to_child = {}
    for i, w in ipairs(again) do
      if written[i].shard == parent then
        assert(w.shard == res.children[1] or w.shard == res.children[2], w.key .. " went to " .. w.shard)
        to_child[w.shard] = true
      else
        assert.equals(written[i].shard, w.shard)
      end
    end
    assert.is_true(to_child[res.children[1]] and to_child[res.children[2]])
    -- A closed shard cannot be split again.
    local _, status = srv.control("POST", "split", { shard = parent })
    assert.equals(400, status)
  end)

  it("rolls over: every open shard closes and gets one child with its keys", function()
    local keys = {}
    for k = 1, 100 do keys[#keys + 1] = { key = "key-" .. k } end
    local written = srv.put_many(keys)
    local res = srv.rollover()
    assert.equals(16, #res.closed)
    assert.equals(16, #res.opened)
    local index = by_id(live.describe_all(c, srv.arn))
    local child_of = {}
    for _, id in ipairs(res.opened) do
      local s = index[id]
      assert.is_nil(s.SequenceNumberRange.EndingSequenceNumber)
      assert.matches("^%d+$", index[s.ParentShardId].SequenceNumberRange.EndingSequenceNumber)
      child_of[s.ParentShardId] = id
    end
    for i, w in ipairs(srv.put_many(keys)) do
      assert.equals(child_of[written[i].shard], w.shard)
      assert.equals(2, w.version)
    end
    -- A shard that never got a record closes at its starting sequence number.
    local res2 = srv.rollover()
    assert.equals(16, #res2.closed)
    assert.equals(48, #live.describe_all(c, srv.arn))
  end)

  it("refuses bad control requests", function()
    local cases = {
      { "put", { key = "" }, "key must be a non%-empty string" },
      { "put", { key = "k", version = 0 }, "version must be a positive integer" },
      { "put", { changes = "x" }, "changes must be a list of objects" },
      { "split", { shard = "shardId-nope" }, "no open shard" },
      { "writer", { changes = 10, keys = 0, rate = 1 }, "positive numbers" },
    }
    for _, case in ipairs(cases) do
      local res, status = srv.control("POST", case[1], case[2])
      assert.equals(400, status, case[1])
      assert.matches(case[3], res.error)
    end
    local res, status = srv.control("POST", "nothing", {})
    assert.equals(404, status)
    assert.equals("not found", res.error)
  end)

  it("serves the consumer while a writer appends, through a split and a rollover", function()
    local consumer = live.client(srv)
    finally(function() consumer:close() end)
    local stream = ds.new(consumer, srv.arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
    local delivered, last, disorder = 0, {}, {}
    stream:on("insert record", function(new) delivered = delivered + 1 last[new.pk] = new.v end)
    stream:on("modify record", function(new)
      delivered = delivered + 1
      if last[new.pk] ~= new.v - 1 then disorder[#disorder + 1] = new.pk .. " " .. tostring(last[new.pk]) .. "->" .. new.v end
      last[new.pk] = new.v
    end)
    srv.start_writer(3000, 50, 3000, 7)
    local _, status = srv.control("POST", "writer", { changes = 1, keys = 1, rate = 1 })
    assert.equals(409, status) -- one writer at a time
    local split_done, rolled = false, false
    local deadline = require("dynamodb_stream.core").monotime() + 30
    stream:run({
      interval = 0.02, max_interval = 0.05, describe_interval = 0.2,
      sleep = function(s)
        local w = srv.writer()
        if not split_done and w.written >= 1000 then srv.split() split_done = true end
        if not rolled and w.written >= 2000 then srv.rollover() rolled = true end
        if (not w.running and delivered >= w.written) or require("dynamodb_stream.core").monotime() > deadline then
          stream:stop()
        end
        ds.sleep(s)
      end,
    })
    local w = srv.writer()
    assert.same({ written = 3000, target = 3000, running = false }, w)
    assert.is_true(split_done and rolled)
    assert.equals(3000, delivered)
    assert.same({}, disorder)
    assert.equals(16 + 2 + 17, #live.describe_all(c, srv.arn))
  end)

  it("stops a writer on POST writer/stop: it writes nothing more, and another may start", function()
    local before = #srv.changes()
    srv.start_writer(1000000, 10, 500, 3)
    local monotime = require("dynamodb_stream.core").monotime
    local deadline = monotime() + 10
    while srv.writer().written < 50 and monotime() < deadline do ds.sleep(0.02) end
    local stopped = srv.stop_writer().written
    assert.is_true(stopped >= 50, "the writer wrote " .. stopped)
    ds.sleep(0.1)
    assert.same({ written = stopped, target = 1000000, running = false }, srv.writer())
    assert.equals(before + stopped, #srv.changes())
    srv.start_writer(1, 1, 1)
    srv.stop_writer()
  end)
end)
