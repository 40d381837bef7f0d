-- The DynamoDB and DynamoDB Streams clients against DynamoDB Local over real
-- HTTP, and their error values against real failures.
local ds = require("dynamodb_stream")
local helper = require("helper")

local SECRET = "local-secret"
local TOKEN = "session-token-value"

local create_table = helper.create_stream_table

describe("clients against DynamoDB Local", function()
  local ddb, streams

  setup(function()
    ddb = ds.dynamodb(helper.local_opts("client-spec"))
    streams = ds.client(helper.local_opts("client-spec"))
  end)

  it("write items and read every change back from the stream, unmarshalled", function()
    local arn = create_table(ddb, "client_changes")
    assert.matches("^arn:aws:dynamodb:ddblocal:000000000000:table/client_changes/stream/", arn)

    local item = {
      pk = "k1", n = 42, f = 3.14159, big = ds.decimal("12345678901234567890.123456789"),
      flag = true, nothing = ds.null, list = { 1, "two", { three = 3 } }, empty_list = ds.empty_list(),
      map = { nested = { deeper = "yes" } }, empty_map = {}, tags = ds.set("SS", { "a", "b" }),
      nums = ds.set("NS", { 1, 2.5 }), blob = ds.binary("\0\1\2\255"),
    }
    assert(ddb:put_item({ TableName = "client_changes", Item = ds.marshall(item) }))
    assert(ddb:update_item({
      TableName = "client_changes", Key = ds.marshall({ pk = "k1" }),
      UpdateExpression = "SET n = n + :d", ExpressionAttributeValues = ds.marshall({ [":d"] = 1 }),
    }))
    assert(ddb:delete_item({ TableName = "client_changes", Key = ds.marshall({ pk = "k1" }) }))

    local description = assert(streams:describe_stream({ StreamArn = arn })).StreamDescription
    assert.equals("ENABLED", description.StreamStatus)
    assert.equals("NEW_AND_OLD_IMAGES", description.StreamViewType)
    assert.equals(1, #description.Shards)
    local shard = description.Shards[1]
    assert.matches("^%d+$", shard.SequenceNumberRange.StartingSequenceNumber)

    local iterator = assert(streams:get_shard_iterator({
      StreamArn = arn, ShardId = shard.ShardId, ShardIteratorType = "TRIM_HORIZON",
    })).ShardIterator
    local page = assert(streams:get_records({ ShardIterator = iterator }))
    local records = page.Records
    assert.equals(3, #records)
    assert.same({ "INSERT", "MODIFY", "REMOVE" },
      { records[1].eventName, records[2].eventName, records[3].eventName })
    assert.is_string(page.NextShardIterator)

    local inserted = ds.unmarshall(records[1].dynamodb.NewImage)
    assert.equals(42, inserted.n)
    assert.equals("integer", require("helper").math_type(inserted.n))
    assert.equals(3.14159, inserted.f)
    assert.equals("12345678901234567890.123456789", tostring(inserted.big))
    assert.is_true(inserted.flag)
    assert.equals(ds.null, inserted.nothing)
    assert.same({ 1, "two", { three = 3 } }, inserted.list)
    assert.equals(0, #inserted.empty_list)
    assert.equals(ds.list_mt, getmetatable(inserted.empty_list))
    assert.equals("yes", inserted.map.nested.deeper)
    assert.is_nil(next(inserted.empty_map))
    assert.equals("\0\1\2\255", inserted.blob)
    local tags = { inserted.tags[1], inserted.tags[2] }
    table.sort(tags)
    assert.same({ "a", "b" }, tags)
    assert.same({ pk = "k1" }, ds.unmarshall(records[1].dynamodb.Keys))

    local modified_new = ds.unmarshall(records[2].dynamodb.NewImage)
    local modified_old = ds.unmarshall(records[2].dynamodb.OldImage)
    assert.equals(43, modified_new.n)
    assert.equals(42, modified_old.n)
    assert.equals("k1", ds.unmarshall(records[3].dynamodb.OldImage).pk)
    assert.is_nil(records[3].dynamodb.NewImage)

    -- What went in comes back out exactly, B and sets included.
    assert.same(ds.marshall(item), records[1].dynamodb.NewImage)
    for _, r in ipairs(records) do
      assert.matches("^%d+$", r.dynamodb.SequenceNumber)
      assert.is_number(r.dynamodb.ApproximateCreationDateTime)
    end
  end)

  it("answer the camelCase names the original package calls", function()
    local arn = create_table(ddb, "client_camel", "KEYS_ONLY")
    local description = assert(streams:describeStream({ StreamArn = arn })).StreamDescription
    local iterator = assert(streams:getShardIterator({
      StreamArn = arn, ShardId = description.Shards[1].ShardId, ShardIteratorType = "LATEST",
    })).ShardIterator
    local page = assert(streams:getRecords({ ShardIterator = iterator }))
    assert.equals(0, #page.Records)
    local listed = assert(streams:listStreams({ TableName = "client_camel" }))
    assert.equals(arn, listed.Streams[1].StreamArn)
  end)

  it("scan_all follows LastEvaluatedKey across pages", function()
    create_table(ddb, "client_scan")
    local requests = {}
    for i = 1, 30 do
      requests[#requests + 1] = { PutRequest = { Item = ds.marshall({ pk = ("item%02d"):format(i), i = i }) } }
      if #requests == 25 or i == 30 then
        assert(ddb:batch_write_item({ RequestItems = { client_scan = requests } }))
        requests = {}
      end
    end
    local all = assert(ddb:scan_all({ TableName = "client_scan", Limit = 7 }))
    assert.equals(30, #all.Items)
    assert.equals(30, all.Count)
    local seen = {}
    for _, item in ipairs(all.Items) do seen[ds.unmarshall(item).i] = true end
    for i = 1, 30 do assert.is_true(seen[i], "item " .. i) end
    local one = assert(ddb:get_item({ TableName = "client_scan", Key = ds.marshall({ pk = "item07" }) }))
    assert.equals(7, ds.unmarshall(one.Item).i)
    local queried = assert(ddb:query({
      TableName = "client_scan", KeyConditionExpression = "pk = :k",
      ExpressionAttributeValues = ds.marshall({ [":k"] = "item09" }),
    }))
    assert.equals(1, queried.Count)
    assert(ddb:delete_table({ TableName = "client_scan" }))
  end)

  it("returns AWS errors with the namespace stripped from the code", function()
    local answer, err = streams:get_records({ ShardIterator = "not-an-iterator" })
    assert.is_nil(answer)
    assert.equals("ValidationException", err.code)
    assert.equals(400, err.status)
    assert.is_false(err.retryable)
    assert.equals("GetRecords", err.operation)
    assert.is_true(#err.message > 0)
    assert.matches("^GetRecords: ValidationException: .+ %(HTTP 400%)$", tostring(err))

    local _, missing = ddb:describe_table({ TableName = "no_such_table" })
    assert.equals("ResourceNotFoundException", missing.code)
  end)

  it("sends the session token and never shows it or the secret", function()
    local opts = helper.local_opts("client-token")
    opts.credentials.session_token = TOKEN
    local client = ds.dynamodb(opts)
    assert(client:call("ListTables", {}))
    local _, err = client:describe_table({ TableName = "absent" })
    assert.not_matches(SECRET, tostring(err), 1, true)
    assert.not_matches(TOKEN, tostring(err), 1, true)
    assert.not_matches(SECRET, tostring(client), 1, true)
  end)

  it("raise on bad arguments", function()
    assert.has_error(function() streams:get_records("iterator") end, "GetRecords: params must be a table")
    assert.has_error(function() ddb:call("bad op", {}) end)
    assert.has_error(function() ddb:scan_all() end, "scan_all: params must be a table")
    assert.has_error(function() ds.client({ region = "us-east-1", endpoint = "ftp://x" }) end)
  end)
end)

describe("client errors", function()
  local ports, stop

  setup(function()
    ports, stop = helper.start_http_server()
  end)

  teardown(function()
    stop()
  end)

  local function client_at(path, extra)
    local opts = {
      endpoint = "http://127.0.0.1:" .. ports.http .. path,
      region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = SECRET, session_token = TOKEN },
      timeout = 0.5,
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return ds.client(opts)
  end

  local function assert_clean(err)
    local text = tostring(err)
    assert.not_matches(SECRET, text, 1, true)
    assert.not_matches(TOKEN, text, 1, true)
    assert.not_matches("Signature=", text, 1, true)
    assert.not_matches("\n", text, 1, true)
  end

  it("an HTML page from a proxy", function()
    local answer, err = client_at("/html"):get_records({ ShardIterator = "x" })
    assert.is_nil(answer)
    assert.equals("InternalServerError", err.code)
    assert.equals(502, err.status)
    assert.is_true(err.retryable)
    assert.matches("HTTP 502 without an AWS error body", err.message)
    assert_clean(err)
  end)

  it("a 200 with a body that is not JSON, or empty", function()
    local _, err = client_at("/status/200"):describe_stream({ StreamArn = "arn" })
    assert.equals("InvalidResponse", err.code)
    assert.equals(200, err.status)
    assert.is_true(err.retryable)
    local _, empty = client_at("/big/0"):describe_stream({ StreamArn = "arn" })
    assert.equals("InvalidResponse", empty.code)
    assert_clean(empty)
  end)

  it("a 503 without an AWS error body", function()
    local _, err = client_at("/status/503"):get_records({ ShardIterator = "x" })
    assert.equals("ServiceUnavailable", err.code)
    assert.equals(503, err.status)
    assert.is_true(err.retryable)
  end)

  it("a truncated body", function()
    local _, err = client_at("/truncated"):get_records({ ShardIterator = "x" })
    assert.equals("ConnectionReset", err.code)
    assert.is_true(err.retryable)
    assert_clean(err)
  end)

  it("a refused connection", function()
    local client = ds.client({
      endpoint = "http://127.0.0.1:" .. ports.refused, region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = SECRET },
    })
    local _, err = client:get_records({ ShardIterator = "x" })
    assert.equals("ConnectionRefused", err.code)
    assert.is_nil(err.status)
    assert.is_true(err.retryable)
    assert.matches("^GetRecords: ConnectionRefused: ", tostring(err))
    assert_clean(err)
  end)

  it("an unknown host", function()
    local client = ds.client({
      endpoint = "http://no-such-host.invalid", region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = SECRET },
    })
    local _, err = client:describe_stream({ StreamArn = "arn" })
    assert.equals("UnknownHost", err.code)
    assert_clean(err)
  end)

  it("a timeout", function()
    local started = os.time()
    local _, err = client_at("/slow/3000", { timeout = 0.3 }):get_records({ ShardIterator = "x" })
    assert.equals("Timeout", err.code)
    assert.is_true(err.retryable)
    assert.is_true(os.time() - started <= 2)
    assert_clean(err)
  end)

  it("a server that hangs up without answering", function()
    local _, err = client_at("/reset"):get_records({ ShardIterator = "x" })
    assert.equals("ConnectionReset", err.code)
    assert_clean(err)
  end)
end)

describe("request headers", function()
  -- A transport that records what the service hands it.
  local function recording_client(credentials)
    local sent = {}
    local transport = {
      post = function(_, url, lines, body)
        sent[#sent + 1] = { url = url, lines = lines, body = body }
        return 200, "{}", {}
      end,
      post_many = function() error("not used") end,
      close = function() end,
    }
    local client = ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", transport = transport,
      credentials = credentials })
    return client, sent
  end

  local function by_name(lines)
    local out = {}
    for _, line in ipairs(lines) do
      local name, value = line:match("^([^:]+): (.*)$")
      out[name:lower()] = value
    end
    return out
  end

  it("sends content-type, x-amz-date, x-amz-target and the session token, all signed", function()
    local client, sent = recording_client({ access_key_id = "AKID", secret_access_key = "secretsecret",
      session_token = "the-session-token" })
    assert(client:describe_stream({ StreamArn = "arn" }))
    assert(client:describe_stream({ StreamArn = "arn" }))
    assert(client:get_records({ ShardIterator = "it" }))
    assert.equals(3, #sent)
    for i, want in ipairs({ "DescribeStream", "DescribeStream", "GetRecords" }) do
      local h = by_name(sent[i].lines)
      assert.equals(5, #sent[i].lines)
      assert.equals("application/x-amz-json-1.0", h["content-type"])
      assert.equals("DynamoDBStreams_20120810." .. want, h["x-amz-target"])
      assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$", h["x-amz-date"])
      assert.equals("the-session-token", h["x-amz-security-token"])
      assert.matches("SignedHeaders=content%-type;host;x%-amz%-date;x%-amz%-security%-token;x%-amz%-target,",
        h.authorization)
    end
  end)

  it("sends no token line without a session token", function()
    local client, sent = recording_client({ access_key_id = "AKID", secret_access_key = "secretsecret" })
    assert(client:get_records({ ShardIterator = "it" }))
    assert.equals(4, #sent[1].lines)
    assert.is_nil(by_name(sent[1].lines)["x-amz-security-token"])
    assert.matches("SignedHeaders=content%-type;host;x%-amz%-date;x%-amz%-target,", by_name(sent[1].lines).authorization)
  end)
end)

-- The client asks core.http for body objects (issue 12): each answer's body
-- is closed once read, on every path; any decode but unmarshalled_records is
-- given a string.
describe("answer bodies", function()
  local ports, stop
  setup(function() ports, stop = helper.start_http_server() end)
  teardown(function() stop() end)

  -- A client on core.http{ body = "buffer" } that keeps every body it got.
  local function watched_client(path)
    local real = require("dynamodb_stream.core").http({ body = "buffer", timeout = 2 })
    local bodies = {}
    local transport = {
      post = function(_, ...)
        local status, body, headers = real:post(...)
        bodies[#bodies + 1] = body
        return status, body, headers
      end,
      post_many = function(_, ...)
        local results = real:post_many(...)
        for _, r in ipairs(results) do bodies[#bodies + 1] = r[2] end
        return results
      end,
      close = function() real:close() end,
    }
    local client = ds.client({ endpoint = "http://127.0.0.1:" .. ports.http .. path, region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = SECRET }, transport = transport,
      max_attempts = 3, retry_base = 0.001 })
    return client, bodies
  end

  local function assert_all_closed(bodies, n)
    assert.equals(n, #bodies)
    for i, b in ipairs(bodies) do
      assert.equals("userdata", type(b), "body " .. i)
      assert.has_error(function() return #b end, "body is closed")
    end
  end

  it("are closed after a success, an AWS error, a retry and an invalid answer", function()
    local client, bodies = watched_client("/fail/503/1/bodies-a")
    local answer = assert(client:describe_stream({ StreamArn = "arn" })) -- a 503, then {"ok":true}
    assert.is_true(answer.ok)
    assert_all_closed(bodies, 2)

    client, bodies = watched_client("/fail/400/9/bodies-b")
    local _, err = client:describe_stream({ StreamArn = "arn" })
    assert.equals("400", err.code)
    assert_all_closed(bodies, 1)

    client, bodies = watched_client("/reflect/200") -- the request itself: not a GetRecords page
    answer = assert(client:get_records_unmarshalled({ ShardIterator = "it" }))
    assert.same({ ShardIterator = "it" }, answer)
    local answers = client:get_records_many({ { ShardIterator = "a" }, { ShardIterator = "b" } }, true)
    assert.same({ { ShardIterator = "a" }, { ShardIterator = "b" } }, answers)
    assert_all_closed(bodies, 3)
    client, bodies = watched_client("/html")
    _, err = client:get_records({ ShardIterator = "it" })
    assert.matches("HTTP 502 without an AWS error body: .*Bad Gateway", err.message)
    assert_all_closed(bodies, 3) -- retried twice
  end)

  it("reach a caller's decode as strings", function()
    local client = watched_client("/reflect/200")
    local seen
    local answer = assert(client:call("GetRecords", { ShardIterator = "it" }, function(body)
      seen = type(body)
      return { text = body }
    end))
    assert.equals("string", seen)
    assert.equals('{"ShardIterator":"it"}', answer.text)
  end)
end)
