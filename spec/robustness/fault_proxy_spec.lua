-- spec/support/fault_proxy.py itself: faithful forwarding, every fault kind as
-- our clients report it, operation filters, counters, reproducibility, and
-- that the proxy never outlives its spec. Runs against DynamoDB Local.
local ds = require("dynamodb_stream")
local helper = require("helper")
local fault_proxy = require("fault_proxy")
local socket = require("socket")

local NAMESPACE = "proxyspec" -- DynamoDB Local refuses a "-" in an access key id
local TABLE = "proxy_items"
local SECRET = "local-secret"

-- Client options through the proxy; max_attempts = 1 keeps one client call
-- equal to one request once the clients retry on their own.
local function opts_via(proxy, extra)
  local opts = helper.local_opts(NAMESPACE)
  opts.endpoint = proxy.endpoint
  opts.max_attempts = 1
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- One raw HTTP/1.1 exchange on an open LuaSocket connection: status, headers
-- (a sequence of {name, value}), body.
local function exchange(conn, path, headers, body)
  local lines = { "POST " .. path .. " HTTP/1.1" }
  for _, h in ipairs(headers) do lines[#lines + 1] = h[1] .. ": " .. h[2] end
  lines[#lines + 1] = "Content-Length: " .. #body
  assert(conn:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body))
  local status = tonumber(assert(conn:receive("*l")):match("^HTTP/1%.1 (%d+)"))
  local got, length = {}, 0
  while true do
    local line = assert(conn:receive("*l"))
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s?(.*)$")
    got[#got + 1] = { name, value }
    if name:lower() == "content-length" then length = tonumber(value) end
  end
  return status, got, length > 0 and assert(conn:receive(length)) or ""
end

local alive = helper.alive

local function count(tbl, key)
  return tbl and tbl[key] or 0
end

describe("fault_proxy.py", function()
  local proxy, ddb, streams, stderr_file, tmp

  setup(function()
    tmp = helper.tmpdir()
    stderr_file = tmp .. "/proxy.stderr"
    proxy = fault_proxy.start({ upstream = helper.ddb_local_endpoint(), seed = 1, rate = 0,
                                stderr = stderr_file })
    ddb = ds.dynamodb(opts_via(proxy))
    streams = ds.client(opts_via(proxy))
    assert(ddb:create_table({
      TableName = TABLE,
      AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
      KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
      BillingMode = "PAY_PER_REQUEST",
      StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_IMAGE" },
    }))
  end)

  teardown(function()
    if proxy then proxy:stop() end
    -- Nothing the clients sent (the signature, the secret) reached the proxy's output.
    local f = io.open(stderr_file)
    local text = f and f:read("*a") or ""
    if f then f:close() end
    helper.rmdir(tmp)
    assert.equals("", text)
  end)

  before_each(function()
    proxy:configure({ rate = 0, kinds = {}, operations = {}, slow_ms = 1000, seed = 1 })
    proxy:reset()
  end)

  it("at rate 0 forwards everything: create, put, get, the stream", function()
    assert(ddb:put_item({ TableName = TABLE, Item = ds.marshall({ pk = "a", n = 1, b = ds.binary("\0\255") }) }))
    local got = assert(ddb:get_item({ TableName = TABLE, Key = ds.marshall({ pk = "a" }) }))
    assert.same({ pk = "a", n = 1, b = "\0\255" }, (ds.unmarshall(got.Item)))
    local arn = assert(ddb:describe_table({ TableName = TABLE })).Table.LatestStreamArn
    local shard = assert(streams:describe_stream({ StreamArn = arn })).StreamDescription.Shards[1]
    assert.is_string(shard.ShardId)
    -- Upstream errors come back unchanged too.
    local _, err = ddb:describe_table({ TableName = "no_such_table" })
    assert.equals("ResourceNotFoundException", err.code)
    assert.equals(400, err.status)

    local stats = proxy:stats()
    assert.equals(5, stats.total)
    assert.equals(5, stats.forwarded)
    assert.same({}, stats.faults)
    assert.same({ PutItem = 1, GetItem = 1, DescribeTable = 2, DescribeStream = 1 }, stats.requests)
  end)

  it("forwards the request line, headers and body unchanged, and the answer likewise, on one upstream connection", function()
    local ports, stop_server = helper.start_http_server()
    local echo = fault_proxy.start({ upstream = "http://127.0.0.1:" .. ports.http, stderr = stderr_file .. "2" })
    local conn = assert(socket.connect("127.0.0.1", echo.port))
    conn:settimeout(5)
    local body = "binary \0\1\255 body"
    local status, _, answer = exchange(conn, "/echo", {
      { "Host", "example.invalid:1234" },
      { "X-Amz-Target", "DynamoDB_20120810.PutItem" },
      { "Authorization", "AWS4-HMAC-SHA256 Credential=x/y, Signature=feedface" },
      { "X-Repeated", "one" }, { "X-Repeated", "two" },
    }, body)
    assert.equals(200, status)
    assert.equals("method POST\n"
      .. "header Host: example.invalid:1234\n"
      .. "header X-Amz-Target: DynamoDB_20120810.PutItem\n"
      .. "header Authorization: AWS4-HMAC-SHA256 Credential=x/y, Signature=feedface\n"
      .. "header X-Repeated: one\nheader X-Repeated: two\n"
      .. "header Content-Length: " .. #body .. "\n"
      .. "body-length " .. #body .. "\n\n" .. body, answer)

    local headers
    status, headers = exchange(conn, "/headers", { { "Host", "h" } }, "")
    assert.equals(200, status)
    local multi = {}
    for _, h in ipairs(headers) do
      if h[1] == "X-Multi" then multi[#multi + 1] = h[2] end
    end
    assert.same({ "a", "b" }, multi)

    -- Keep-alive on both sides: the same client connection, the same upstream one.
    local _, _, port1 = exchange(conn, "/conn", { { "Host", "h" } }, "")
    local _, _, port2 = exchange(conn, "/conn", { { "Host", "h" } }, "")
    assert.equals(port1, port2)
    status = exchange(conn, "/status/503", { { "Host", "h" } }, "")
    assert.equals(503, status)
    conn:close()
    assert.equals(5, echo:stats().forwarded)
    echo:stop()
    stop_server()
  end)

  -- kind -> what our client reports for a DescribeTable hit by it.
  local EXPECTED = {
    throttle = { code = "ThrottlingException", status = 400, retryable = true },
    limit_exceeded = { code = "LimitExceededException", status = 400, retryable = true },
    provisioned = { code = "ProvisionedThroughputExceededException", status = 400, retryable = true },
    ["500"] = { code = "InternalServerError", status = 500, retryable = true },
    ["503"] = { code = "ServiceUnavailable", status = 503, retryable = true },
    -- No AWS error type in an HTML body: the client names it by the status.
    ["503_html"] = { status = 503, retryable = true },
    reset = { code = "ConnectionReset", retryable = true },
    reset_after = { code = "ConnectionReset", retryable = true },
    truncate = { code = "ConnectionReset", retryable = true },
    slow = { code = "Timeout", retryable = true },
    slow_drop = { code = "Timeout", retryable = true },
  }
  local FORWARDED = { reset_after = true, truncate = true, slow = true, slow_drop = true }

  for kind, expected in pairs(EXPECTED) do
    it("at rate 1, kind " .. kind .. " gives " .. (expected.code or "HTTP " .. expected.status), function()
      -- A fresh client, so a fresh connection: on a reused one libcurl itself
      -- resends a request whose connection dies before any answer byte, and
      -- reset / reset_after would then reach the proxy twice.
      local client = ds.dynamodb(opts_via(proxy, { timeout = 0.3 }))
      proxy:configure({ rate = 1, kinds = { kind }, slow_ms = 1000 })
      local started = socket.gettime()
      local result, err = client:describe_table({ TableName = TABLE })
      assert.is_nil(result)
      if expected.code then assert.equals(expected.code, err.code) end
      assert.equals(expected.status, err.status)
      assert.equals(expected.retryable, err.retryable)
      assert.equals("DescribeTable", err.operation)
      assert.is_true(socket.gettime() - started < 0.9, "answered within the client timeout")
      -- Exactly one request reached the proxy: no hidden retry underneath.
      local stats = proxy:stats()
      assert.equals(1, stats.total)
      assert.same({ [kind] = 1 }, stats.faults)
      assert.same({ DescribeTable = { [kind] = 1 } }, stats.faults_by_operation)
      assert.equals(FORWARDED[kind] and 1 or 0, stats.forwarded)
      -- The client recovers once the faults stop.
      proxy:configure({ rate = 0 })
      assert(client:describe_table({ TableName = TABLE }))
      client:close()
    end)
  end

  it("expired hits GetRecords only, with ExpiredIteratorException", function()
    local arn = assert(ddb:describe_table({ TableName = TABLE })).Table.LatestStreamArn
    local shard = assert(streams:describe_stream({ StreamArn = arn })).StreamDescription.Shards[1]
    local iterator = assert(streams:get_shard_iterator({
      StreamArn = arn, ShardId = shard.ShardId, ShardIteratorType = "LATEST",
    })).ShardIterator
    proxy:configure({ rate = 1, kinds = { expired = 1 } })
    proxy:reset()
    -- Other operations pass untouched: expired is never drawn for them.
    assert(streams:describe_stream({ StreamArn = arn }))
    assert(streams:get_shard_iterator({ StreamArn = arn, ShardId = shard.ShardId, ShardIteratorType = "LATEST" }))
    assert(ddb:put_item({ TableName = TABLE, Item = ds.marshall({ pk = "expired" }) }))
    local result, err = streams:get_records({ ShardIterator = iterator })
    assert.is_nil(result)
    assert.equals("ExpiredIteratorException", err.code)
    assert.equals("Iterator expired", err.message)
    assert.equals(400, err.status)
    assert.is_false(err.retryable)
    local stats = proxy:stats()
    assert.same({ expired = 1 }, stats.faults)
    assert.equals(3, stats.forwarded)
    -- The iterator itself was never used: it still reads the change.
    proxy:configure({ rate = 0 })
    local page = assert(streams:get_records({ ShardIterator = iterator }))
    assert.equals(1, #page.Records)
  end)

  it("reset_after applies a PutItem the client saw fail; reset does not", function()
    -- Fresh clients (fresh connections): see the note on libcurl's resend above.
    proxy:configure({ rate = 1, kinds = { "reset_after" } })
    local client = ds.dynamodb(opts_via(proxy))
    local _, err = client:put_item({ TableName = TABLE, Item = ds.marshall({ pk = "after", v = 1 }) })
    assert.equals("ConnectionReset", err.code)
    client:close()
    proxy:configure({ kinds = { "reset" } })
    client = ds.dynamodb(opts_via(proxy))
    _, err = client:put_item({ TableName = TABLE, Item = ds.marshall({ pk = "before", v = 1 }) })
    assert.equals("ConnectionReset", err.code)
    client:close()

    proxy:configure({ rate = 0 })
    local after = assert(ddb:get_item({ TableName = TABLE, Key = ds.marshall({ pk = "after" }) }))
    assert.same({ pk = "after", v = 1 }, (ds.unmarshall(after.Item)))
    local before = assert(ddb:get_item({ TableName = TABLE, Key = ds.marshall({ pk = "before" }) }))
    assert.is_nil(before.Item)
    local stats = proxy:stats()
    assert.same({ reset_after = 1, reset = 1 }, stats.faults)
    assert.equals(3, stats.forwarded)
  end)

  it("filters by operation name, by full target and by pattern", function()
    local arn = assert(ddb:describe_table({ TableName = TABLE })).Table.LatestStreamArn
    local shard_id = assert(streams:describe_stream({ StreamArn = arn })).StreamDescription.Shards[1].ShardId
    local iterator = assert(streams:get_shard_iterator({
      StreamArn = arn, ShardId = shard_id, ShardIteratorType = "LATEST",
    })).ShardIterator

    proxy:configure({ rate = 1, kinds = { "throttle" }, operations = { "GetRecords" } })
    assert(streams:describe_stream({ StreamArn = arn }))
    assert(ddb:describe_table({ TableName = TABLE }))
    local _, err = streams:get_records({ ShardIterator = iterator })
    assert.equals("ThrottlingException", err.code)

    proxy:configure({ operations = { "DynamoDBStreams_20120810.*" } })
    assert(ddb:get_item({ TableName = TABLE, Key = ds.marshall({ pk = "x" }) }))
    _, err = streams:describe_stream({ StreamArn = arn })
    assert.equals("ThrottlingException", err.code)

    proxy:configure({ operations = { "DynamoDB_20120810.PutItem", "Describe*" } })
    assert(ddb:get_item({ TableName = TABLE, Key = ds.marshall({ pk = "x" }) }))
    _, err = ddb:put_item({ TableName = TABLE, Item = ds.marshall({ pk = "x" }) })
    assert.equals("ThrottlingException", err.code)
    _, err = streams:describe_stream({ StreamArn = arn })
    assert.equals("ThrottlingException", err.code)
    _, err = ddb:describe_table({ TableName = TABLE })
    assert.equals("ThrottlingException", err.code)

    proxy:configure({ operations = {} }) -- empty: every operation
    _, err = ddb:get_item({ TableName = TABLE, Key = ds.marshall({ pk = "x" }) })
    assert.equals("ThrottlingException", err.code)

    local stats = proxy:stats()
    assert.same({ GetRecords = { throttle = 1 }, DescribeStream = { throttle = 2 },
                  PutItem = { throttle = 1 }, DescribeTable = { throttle = 1 }, GetItem = { throttle = 1 } },
                stats.faults_by_operation)
    assert.same({ throttle = 6 }, stats.faults)
  end)

  -- Runs n DescribeTable calls; returns the sequence of outcomes ("ok" or a code).
  local function run_calls(n)
    local client = ds.dynamodb(opts_via(proxy))
    local seen = {}
    for i = 1, n do
      local result, err = client:describe_table({ TableName = TABLE })
      seen[i] = result and "ok" or err.code
    end
    client:close()
    return seen
  end

  it("counts requests, faults per kind and per operation, and forwards", function()
    proxy:configure({ rate = 0.5, kinds = { throttle = 2, ["500"] = 1, truncate = 1 }, seed = 3 })
    local seen = run_calls(60)
    local by_code = {}
    for _, code in ipairs(seen) do by_code[code] = (by_code[code] or 0) + 1 end
    local stats = proxy:stats()
    assert.equals(60, stats.total)
    assert.same({ DescribeTable = 60 }, stats.requests)
    assert.equals(count(by_code, "ThrottlingException"), count(stats.faults, "throttle"))
    assert.equals(count(by_code, "InternalServerError"), count(stats.faults, "500"))
    assert.equals(count(by_code, "ConnectionReset"), count(stats.faults, "truncate"))
    assert.same(stats.faults, stats.faults_by_operation.DescribeTable)
    assert.equals(count(by_code, "ok") + count(by_code, "ConnectionReset"), stats.forwarded)
    -- Roughly the configured mix (fixed seed, so this is deterministic).
    assert.is_true(count(by_code, "ok") > 15 and count(by_code, "ok") < 45)
    assert.is_true(count(stats.faults, "throttle") > count(stats.faults, "500"))
    -- The log holds every decision in order.
    local log = proxy:log()
    assert.equals(60, #log)
    for i, entry in ipairs(log) do
      assert.equals("DescribeTable", entry[1])
      local kind = ({ ok = "", ThrottlingException = "throttle", InternalServerError = "500",
                      ConnectionReset = "truncate" })[seen[i]]
      assert.equals(kind, entry[2])
    end
    proxy:reset()
    assert.equals(0, proxy:stats().total)
    assert.equals(0, #proxy:log())
  end)

  it("a seed gives the same fault sequence every time", function()
    local mix = { rate = 0.4, kinds = { throttle = 1, ["500"] = 1, ["503"] = 1, reset = 1 } }
    local function run(seed)
      mix.seed = seed
      proxy:configure(mix)
      proxy:reset()
      return run_calls(40), proxy:log()
    end
    local seen1, log1 = run(42)
    local seen2, log2 = run(42)
    local seen3 = run(43)
    assert.same(seen1, seen2)
    assert.same(log1, log2)
    assert.are_not.same(seen1, seen3)
    -- A fresh proxy started with that seed draws the same sequence too.
    local other = fault_proxy.start({ upstream = helper.ddb_local_endpoint(), seed = 42,
                                      rate = mix.rate, kinds = mix.kinds })
    local client = ds.dynamodb(opts_via(other))
    local seen4 = {}
    for i = 1, 40 do
      local result, err = client:describe_table({ TableName = TABLE })
      seen4[i] = result and "ok" or err.code
    end
    client:close()
    other:stop()
    assert.same(seen1, seen4)
  end)

  it("rejects a bad configuration and changes nothing", function()
    local before = proxy:config()
    assert.has_error(function() proxy:configure({ kinds = { "nonsense" } }) end)
    assert.has_error(function() proxy:configure({ rate = 1.5 }) end)
    assert.has_error(function() proxy:configure({ rate = 1, bogus = true }) end)
    assert.same(before, proxy:config())
  end)

  it("refuses an upstream that is not a loopback http address", function()
    for _, upstream in ipairs({ "http://10.1.2.3:8000", "http://example.com:80",
                                "https://127.0.0.1:8000", "http://127.0.0.1:1/path" }) do
      assert.has_error(function()
        fault_proxy.start({ upstream = upstream, stderr = "/dev/null" })
      end)
    end
  end)

  it("never outlives its parent or its lifetime", function()
    -- The parent exits at once (no finalizers, so no pclose): the proxy follows.
    local started = socket.gettime()
    local out = helper.run_lua({ DDB_LOCAL_ENDPOINT = helper.ddb_local_endpoint() }, [[
      package.path = "spec/support/?.lua;" .. package.path
      local p = require("fault_proxy").start({ upstream = os.getenv("DDB_LOCAL_ENDPOINT"), lifetime = 60 })
      io.stdout:write(p.pid, "\n")
      io.stdout:flush()
      os.exit(0, false)
    ]])
    -- run_lua returns once every writer of its pipe, the proxy included, is gone.
    local pid = assert(tonumber(out:match("^(%d+)")), out)
    assert.is_true(socket.gettime() - started < 5)
    assert.is_false(alive(pid))

    local short = fault_proxy.start({ upstream = helper.ddb_local_endpoint(), lifetime = 0.3 })
    socket.sleep(0.8)
    assert.is_false(alive(short.pid))
    short:stop()
  end)
end)
