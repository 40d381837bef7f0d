-- Hostile bodies through the real client and consumer: ds.client against
-- spec/support/hostile_server.py (loopback), one attempt per call.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")

local ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"

describe("hostile bodies over HTTP", function()
  local proc, pid, base

  setup(function()
    proc = assert(io.popen("exec /usr/bin/python3 spec/support/hostile_server.py"))
    local line = assert(proc:read("*l"), "hostile_server.py did not start")
    pid = assert(line:match("pid=(%d+)"))
    base = "http://127.0.0.1:" .. assert(line:match("http=(%d+)"))
  end)

  teardown(function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    proc:close()
  end)

  local function client(path)
    return ds.client({ endpoint = base .. path, region = "us-east-1", max_attempts = 1,
      credentials = { access_key_id = "AKIDHOSTILE", secret_access_key = "hostile-secret-key" } })
  end

  local function fails(path, code, fragment)
    local r, err = client(path):get_records({ ShardIterator = "it" })
    assert.is_nil(r)
    assert.equals(code, err.code)
    assert.is_truthy(err.message:find(fragment, 1, true), err.message)
    return err
  end

  it("a body over max_body (64 MiB by default) is ResponseTooLarge, before it is read", function()
    local t0 = core.monotime()
    fails("/bytes/" .. (64 * 1024 * 1024 + 1), "ResponseTooLarge", "response body larger than max_body")
    assert.is_true(core.monotime() - t0 < 1)
    -- (a body of exactly max_body is accepted: spec/integration/core/http_spec.lua)
  end)

  it("a 50 MB GetRecords page is delivered in full by the consumer", function()
    local s = ds.new(client("/stream/5000/10000"), ARN, { start_at = "TRIM_HORIZON", unmarshall = ds.unmarshall })
    local n, last, ended = 0, nil, nil
    s:on("insert record", function(new, keys)
      n = n + 1
      assert.equals("k" .. n, keys.pk)
      assert.equals(n, new.n)
      last = new
    end)
    s:on("remove shards", function(ids) ended = ids end)
    local records = assert(s:fetch_stream_state())
    assert.equals(5000, #records)
    assert.equals(5000, n)
    assert.equals(10000, #last.pad)
    assert.same({ "shardId-1" }, ended) -- no NextShardIterator: the closed shard was read to its end
  end)

  for _, case in ipairs({
    { "deep-arrays", "InvalidJSON: nesting deeper than 1000 levels (20000 bytes: [[[" },
    { "deep-objects", "InvalidJSON: nesting deeper than 1000 levels (60001 bytes: {\"a\":{" },
    { "truncated", "InvalidJSON: unexpected end of input after 53 bytes (truncated?)" },
    { "empty", "InvalidJSON: empty input (0 bytes: )" },
    { "not-json", "InvalidJSON: syntax error at offset 0 near '<html>oops</html>'" },
    { "trailing", "InvalidJSON: unexpected data after the value at offset 15" },
    { "null", "answer is not a JSON object (4 bytes: null)" },
    { "string", "answer is not a JSON object (9 bytes: \"Records\")" },
    { "array", "answer is not a JSON object (2 bytes: [])" },
  }) do
    it("/raw/" .. case[1] .. ": InvalidResponse from the client", function()
      fails("/raw/" .. case[1], "InvalidResponse", case[2])
    end)
  end

  it("invalid UTF-8 and \\u0000 in a string come through as bytes", function()
    local r = assert(client("/raw/bad-utf8"):get_records({ ShardIterator = "it" }))
    assert.equals("it\128\192\175\237\160\128\226\130", r.NextShardIterator)
    assert.equals(1, r["k\255"])
    r = assert(client("/raw/nul-escape"):get_records({ ShardIterator = "it" }))
    assert.equals("it\0x", r.NextShardIterator)
  end)

  it("a NextShardIterator holding NUL is refused by the consumer, not sent back", function()
    -- the iterator of /raw/nul-escape: a consumer fed it must not build a request with it
    local c = client("/raw/nul-escape")
    local calls = 0
    local s = ds.new({
      describe_stream = function() return { StreamDescription = { Shards = { { ShardId = "s1" } } } } end,
      get_shard_iterator = function() return { ShardIterator = "it" } end,
      get_records = function(_, p) calls = calls + 1; return c:get_records(p) end,
    }, ARN, { start_at = "TRIM_HORIZON" })
    local r, err = s:fetch_stream_state()
    assert.is_nil(r)
    assert.equals("InvalidResponse", err.code)
    assert.equals("GetRecords: bad NextShardIterator 'it\\0x' (control character)", err.message)
    assert.equals(1, calls)
  end)
end)
