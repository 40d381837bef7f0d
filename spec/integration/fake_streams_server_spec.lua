-- spec/support/fake_streams_server.py driven by our real client (SigV4 over
-- core.http) and by the consumer: pagination, iterators, shard ends, expiry,
-- authentication, and a split lineage read parents first.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")

local SERVER = "spec/support/fake_streams_server.py"
local SECRET = "fake-streams-secret-0123456789" -- the server's default for AKID

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Starts the fake with the given command-line arguments; returns
-- { port, arn, endpoint, stop = function }.
local function start(args)
  local cmd = { "exec /usr/bin/python3", sh_quote(SERVER), "--lifetime 120" }
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = sh_quote(a) end
  local pipe = assert(io.popen(table.concat(cmd, " ")))
  local line = pipe:read("*l") or ""
  local srv = { pid = line:match("pid=(%d+)"), port = tonumber(line:match("port=(%d+)")), arn = line:match("arn=(%S+)") }
  assert(srv.port and srv.arn, "fake_streams_server.py did not start: " .. line)
  srv.endpoint = "http://127.0.0.1:" .. srv.port
  function srv.stop()
    os.execute("kill " .. srv.pid .. " 2>/dev/null")
    pipe:close()
  end
  return srv
end

local function client(srv, secret, access_key)
  return ds.client({
    endpoint = srv.endpoint,
    region = "us-east-1",
    credentials = { access_key_id = access_key or "AKID", secret_access_key = secret or SECRET },
    max_attempts = 1,
  })
end

local describe_all = require("live_streams").describe_all

local function iterator(c, arn, shard_id, kind, seq)
  local res, err = c:get_shard_iterator({
    StreamArn = arn, ShardId = shard_id, ShardIteratorType = kind, SequenceNumber = seq,
  })
  if not res then return nil, err end
  return res.ShardIterator
end

describe("fake_streams_server.py", function()
  describe("with 300 shards", function()
    local srv, c

    setup(function()
      srv = start({ "--shards", "300", "--records", "2" })
      c = client(srv)
    end)

    teardown(function()
      if c then c:close() end
      if srv then srv.stop() end
    end)

    it("pages DescribeStream by 100 with LastEvaluatedShardId", function()
      local shards, pages = describe_all(c, srv.arn)
      assert.equals(300, #shards)
      assert.equals(3, pages)
      local seen = {}
      for i, s in ipairs(shards) do
        assert.is_nil(seen[s.ShardId], "shard listed twice")
        seen[s.ShardId] = true
        if i > 1 then assert.is_true(shards[i - 1].ShardId < s.ShardId) end
        assert.matches("^shardId%-%d+%-%x+$", s.ShardId)
        assert.matches("^%d+$", s.SequenceNumberRange.StartingSequenceNumber)
        assert.equals(21, #s.SequenceNumberRange.StartingSequenceNumber)
        assert.is_nil(s.SequenceNumberRange.EndingSequenceNumber) -- open
        assert.is_nil(s.ParentShardId)
      end
      local small, small_pages = describe_all(c, srv.arn, 7)
      assert.equals(300, #small)
      assert.equals(43, small_pages)
    end)

    it("rejects a Limit over 100 and an unknown stream", function()
      local res, err = c:describe_stream({ StreamArn = srv.arn, Limit = 101 })
      assert.is_nil(res)
      assert.equals("ValidationException", err.code)
      res, err = c:describe_stream({ StreamArn = srv.arn .. "x" })
      assert.is_nil(res)
      assert.equals("ResourceNotFoundException", err.code)
      assert.equals(400, err.status)
    end)

    it("lists its stream", function()
      local res = assert(c:list_streams({}))
      assert.equals(1, #res.Streams)
      assert.equals(srv.arn, res.Streams[1].StreamArn)
      assert.equals("fake", res.Streams[1].TableName)
      assert.equals(0, #assert(c:list_streams({ TableName = "other" })).Streams)
    end)
  end)

  describe("iterators and shard ends", function()
    local srv, c, closed, open

    setup(function()
      srv = start({ "--shards", "1", "--records", "10", "--lineage", "split" })
      c = client(srv)
      local shards = describe_all(c, srv.arn)
      assert.equals(3, #shards)
      closed, open = shards[1], shards[2]
    end)

    teardown(function()
      if c then c:close() end
      if srv then srv.stop() end
    end)

    local function read(it, limit)
      return assert(c:get_records({ ShardIterator = it, Limit = limit }))
    end

    it("describes the lineage: a closed parent and two children", function()
      local shards = describe_all(c, srv.arn)
      local range = shards[1].SequenceNumberRange
      assert.matches("^%d+$", range.EndingSequenceNumber)
      for i = 2, 3 do
        assert.equals(shards[1].ShardId, shards[i].ParentShardId)
        assert.is_nil(shards[i].SequenceNumberRange.EndingSequenceNumber)
        -- A child's records come after its parent's.
        assert.is_true(shards[i].SequenceNumberRange.StartingSequenceNumber > range.EndingSequenceNumber)
      end
    end)

    it("TRIM_HORIZON reads a closed shard to its end, then no NextShardIterator", function()
      local it = assert(iterator(c, srv.arn, closed.ShardId, "TRIM_HORIZON"))
      local all, pages = {}, 0
      while it do
        local page = read(it, 3)
        pages = pages + 1
        for _, r in ipairs(page.Records) do all[#all + 1] = r end
        it = page.NextShardIterator
      end
      assert.equals(4, pages)
      assert.equals(10, #all)
      for i, r in ipairs(all) do
        assert.equals(21, #r.dynamodb.SequenceNumber)
        if i > 1 then assert.is_true(all[i - 1].dynamodb.SequenceNumber < r.dynamodb.SequenceNumber) end
        assert.equals("item-0-" .. (i - 1), r.dynamodb.Keys.pk.S)
        assert.equals("NEW_AND_OLD_IMAGES", r.dynamodb.StreamViewType)
        assert.is_true(r.eventName == "INSERT" or r.eventName == "MODIFY" or r.eventName == "REMOVE")
        if r.eventName ~= "REMOVE" then assert.equals("table", type(r.dynamodb.NewImage.profile.M)) end
        if r.eventName ~= "INSERT" then assert.equals("table", type(r.dynamodb.OldImage.tags.SS)) end
      end
      assert.equals(closed.SequenceNumberRange.EndingSequenceNumber, all[10].dynamodb.SequenceNumber)
    end)

    it("AT_ and AFTER_SEQUENCE_NUMBER start at and after a record", function()
      local page = read(assert(iterator(c, srv.arn, closed.ShardId, "TRIM_HORIZON")))
      local seq4 = page.Records[4].dynamodb.SequenceNumber
      local at = read(assert(iterator(c, srv.arn, closed.ShardId, "AT_SEQUENCE_NUMBER", seq4)))
      assert.equals(seq4, at.Records[1].dynamodb.SequenceNumber)
      assert.equals(7, #at.Records)
      local after = read(assert(iterator(c, srv.arn, closed.ShardId, "AFTER_SEQUENCE_NUMBER", seq4)))
      assert.equals(page.Records[5].dynamodb.SequenceNumber, after.Records[1].dynamodb.SequenceNumber)
      local last = page.Records[10].dynamodb.SequenceNumber
      local done = read(assert(iterator(c, srv.arn, closed.ShardId, "AFTER_SEQUENCE_NUMBER", last)))
      assert.equals(0, #done.Records)
      assert.is_nil(done.NextShardIterator)
      local _, err = iterator(c, srv.arn, closed.ShardId, "AT_SEQUENCE_NUMBER")
      assert.equals("ValidationException", err.code)
      _, err = iterator(c, srv.arn, closed.ShardId, "NOW")
      assert.equals("ValidationException", err.code)
      _, err = iterator(c, srv.arn, "shardId-nope", "TRIM_HORIZON")
      assert.equals("ResourceNotFoundException", err.code)
    end)

    it("LATEST on an open shard returns empty pages with an iterator", function()
      local page = read(assert(iterator(c, srv.arn, open.ShardId, "LATEST")))
      assert.equals(0, #page.Records)
      assert.is_string(page.NextShardIterator)
      page = read(page.NextShardIterator)
      assert.equals(0, #page.Records)
      assert.is_string(page.NextShardIterator)
      -- Read to its end, an open shard keeps answering with an iterator.
      page = read(assert(iterator(c, srv.arn, open.ShardId, "TRIM_HORIZON")), 1000)
      assert.equals(10, #page.Records)
      assert.is_string(page.NextShardIterator)
    end)

    it("rejects a bad iterator and a bad Limit", function()
      local res, err = c:get_records({ ShardIterator = "not-an-iterator" })
      assert.is_nil(res)
      assert.equals("ValidationException", err.code)
      local it = assert(iterator(c, srv.arn, open.ShardId, "TRIM_HORIZON"))
      res, err = c:get_records({ ShardIterator = it, Limit = 1001 })
      assert.is_nil(res)
      assert.equals("ValidationException", err.code)
    end)
  end)

  describe("iterator expiry, config file, latency", function()
    local srv, c, dir

    setup(function()
      dir = assert(io.popen("mktemp -d /tmp/ds-spec.XXXXXX")):read("*l")
      local f = assert(io.open(dir .. "/fake.json", "w"))
      f:write([[{"iterator_ttl": 0.5, "latency_ms": 50, "shards": [
        {"id": "shardId-00000000000000000001-aaaa", "records": 6, "closed": true, "trimmed": 2},
        {"id": "shardId-00000000000000000002-bbbb", "parent": "shardId-00000000000000000001-aaaa", "records": 1}
      ]}]])
      f:close()
      srv = start({ "--config", dir .. "/fake.json" })
      c = client(srv)
    end)

    teardown(function()
      if c then c:close() end
      if srv then srv.stop() end
      if dir then os.execute("rm -rf " .. sh_quote(dir)) end
    end)

    it("expires iterators after iterator_ttl", function()
      local it = assert(iterator(c, srv.arn, "shardId-00000000000000000002-bbbb", "TRIM_HORIZON"))
      core.sleep(0.7)
      local res, err = c:get_records({ ShardIterator = it })
      assert.is_nil(res)
      assert.equals("ExpiredIteratorException", err.code)
      assert.is_false(err.retryable)
    end)

    it("starts TRIM_HORIZON after trimmed records and refuses to read before it", function()
      local shard = "shardId-00000000000000000001-aaaa"
      local page = assert(c:get_records({ ShardIterator = assert(iterator(c, srv.arn, shard, "TRIM_HORIZON")) }))
      assert.equals(4, #page.Records)
      assert.equals("item-0-2", page.Records[1].dynamodb.Keys.pk.S)
      local start = assert(c:describe_stream({ StreamArn = srv.arn })).StreamDescription.Shards[1]
        .SequenceNumberRange.StartingSequenceNumber
      local _, err = iterator(c, srv.arn, shard, "AFTER_SEQUENCE_NUMBER", start)
      assert.equals("TrimmedDataAccessException", err.code)
    end)

    it("sleeps latency_ms in each GetRecords", function()
      local it = assert(iterator(c, srv.arn, "shardId-00000000000000000002-bbbb", "LATEST"))
      local t0 = core.monotime()
      assert(c:get_records({ ShardIterator = it }))
      assert.is_true(core.monotime() - t0 >= 0.05)
    end)
  end)

  describe("authentication", function()
    local srv

    setup(function() srv = start({}) end)
    teardown(function() if srv then srv.stop() end end)

    it("accepts our signature and rejects a wrong secret or an unknown key", function()
      local good = client(srv)
      assert(good:describe_stream({ StreamArn = srv.arn }))
      good:close()
      local bad = client(srv, "not-the-secret-0123456789")
      local res, err = bad:describe_stream({ StreamArn = srv.arn })
      bad:close()
      assert.is_nil(res)
      assert.equals("InvalidSignatureException", err.code)
      assert.is_nil(tostring(err):find("not-the-secret", 1, true))
      local stranger = client(srv, SECRET, "AKIDSTRANGER")
      res, err = stranger:describe_stream({ StreamArn = srv.arn })
      stranger:close()
      assert.is_nil(res)
      assert.equals("UnrecognizedClientException", err.code)
    end)

    it("rejects a request without Authorization, or scoped to another service", function()
      local http = core.http()
      finally(function() http:close() end)
      local headers = { "Content-Type: application/x-amz-json-1.0",
                        "X-Amz-Target: DynamoDBStreams_20120810.ListStreams",
                        "X-Amz-Date: 20240101T000000Z" }
      local status, body = http:post(srv.endpoint .. "/", headers, "{}")
      assert.equals(400, status)
      assert.matches("MissingAuthenticationTokenException", body, 1, true)
      headers[#headers + 1] = "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/"
        .. "streams.dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
      status, body = http:post(srv.endpoint .. "/", headers, "{}")
      assert.equals(400, status)
      assert.matches("InvalidSignatureException", body, 1, true)
      assert.matches("scoped to correct service: 'dynamodb'", body, 1, true)
    end)
  end)

  describe("with the consumer", function()
    local srv, c

    setup(function()
      srv = start({ "--shards", "1", "--records", "25", "--lineage", "split" })
      c = client(srv)
    end)

    teardown(function()
      if c then c:close() end
      if srv then srv.stop() end
    end)

    it("delivers every record of a split lineage once, the parent's first", function()
      local stream = ds.new(c, srv.arn, { start_at = "TRIM_HORIZON", unmarshall = ds.unmarshall, limit = 7 })
      local order, seen, errors = {}, {}, {}
      stream:on("record", function(record, shard_id)
        local ddb = record.dynamodb
        local pk = ddb.Keys.pk
        assert.equals("string", type(pk)) -- unmarshalled
        assert.is_nil(seen[pk], "delivered twice: " .. pk)
        seen[pk] = true
        order[#order + 1] = { pk = pk, shard = shard_id, seq = ddb.SequenceNumber }
        local image = ddb.NewImage or ddb.OldImage
        assert.equals(pk, image.pk)
        assert.equals("number", type(image.price))
        assert.equals("table", type(image.profile.address))
        assert.equals(core.null, image.nothing)
      end)
      stream:on("error", function(err) errors[#errors + 1] = tostring(err) end)
      for _ = 1, 20 do
        assert(stream:fetch_stream_state())
        if #order >= 75 then break end
      end
      assert.same({}, errors)
      assert.equals(75, #order)
      -- The parent (shard index 0) entirely before either child.
      local last_parent, first_child = 0, math.huge
      for i, o in ipairs(order) do
        if o.pk:match("^item%-0%-") then last_parent = i else first_child = math.min(first_child, i) end
      end
      assert.equals(25, last_parent)
      assert.equals(26, first_child)
      -- Per shard, in sequence-number order.
      local prev = {}
      for _, o in ipairs(order) do
        if prev[o.shard] then assert.is_true(prev[o.shard] < o.seq) end
        prev[o.shard] = o.seq
      end
    end)
  end)
end)
