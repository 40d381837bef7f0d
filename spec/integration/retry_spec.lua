-- AWS "standard" retries in the clients, against a loopback server that fails
-- a scripted number of times (spec/support/http_server.py, /fail/...).
local ds = require("dynamodb_stream")
local helper = require("helper")

describe("retries", function()
  local ports, stop, sleeps
  local ids = 0

  setup(function()
    ports, stop = helper.start_http_server()
  end)

  teardown(function()
    stop()
  end)

  before_each(function()
    sleeps = {}
  end)

  -- A client whose endpoint fails the first `failures` calls with `code`.
  local function client_failing(code, failures, extra)
    ids = ids + 1
    local opts = {
      endpoint = ("http://127.0.0.1:%d/fail/%s/%d/c%d"):format(ports.http, code, failures, ids),
      region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = "secretsecret" },
      sleep = function(seconds) sleeps[#sleeps + 1] = seconds end,
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return ds.client(opts)
  end

  it("retries throttling until it succeeds, and counts it", function()
    local client = client_failing("ThrottlingException", 2)
    local answer = assert(client:get_records({ ShardIterator = "it" }))
    assert.equals(3, answer.attempt)
    local stats = client:stats()
    assert.equals(1, stats.calls)
    assert.equals(3, stats.attempts)
    assert.equals(2, stats.retries)
    assert.equals(2, stats.throttles)
    assert.equals(0, stats.failures)
    assert.equals(2, #sleeps)
  end)

  it("gives up after max_attempts (3 by default) with the last error", function()
    local client = client_failing("500", 10)
    local answer, err = client:describe_stream({ StreamArn = "arn" })
    assert.is_nil(answer)
    assert.equals("InternalServerError", err.code)
    assert.equals(500, err.status)
    assert.equals(3, err.attempts)
    assert.same({ calls = 1, attempts = 3, retries = 2, throttles = 0, failures = 1 },
      { calls = client:stats().calls, attempts = client:stats().attempts, retries = client:stats().retries,
        throttles = client:stats().throttles, failures = client:stats().failures })
  end)

  it("takes max_attempts from the options or AWS_MAX_ATTEMPTS", function()
    local client = client_failing("503", 10, { max_attempts = 5 })
    local _, err = client:get_records({ ShardIterator = "it" })
    assert.equals("ServiceUnavailable", err.code)
    assert.equals(5, err.attempts)
    local out = helper.run_lua({ AWS_MAX_ATTEMPTS = "7", AWS_REGION = "us-east-1", AWS_ACCESS_KEY_ID = "K",
      AWS_SECRET_ACCESS_KEY = "S", HOME = "/nonexistent" }, [[
      local cfg = require("dynamodb_stream.config").resolve(
        { name = "client", endpoint_prefix = "streams.dynamodb", env_endpoint = "X" }, nil)
      io.write(cfg.max_attempts)
    ]])
    assert.equals("7", out)
    assert.has_error(function() client_failing("500", 1, { max_attempts = 0 }) end)
  end)

  it("never retries validation errors or bad signatures", function()
    for _, code in ipairs({ "ValidationException", "InvalidSignatureException", "AccessDeniedException" }) do
      local client = client_failing(code, 1)
      local _, err = client:get_records({ ShardIterator = "it" })
      assert.equals(code, err.code)
      assert.equals(1, err.attempts)
      assert.equals(0, client:stats().retries)
    end
    assert.equals(0, #sleeps)
  end)

  it("retries transport failures: a refused connection", function()
    local client = ds.client({
      endpoint = "http://127.0.0.1:" .. ports.refused, region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = "secretsecret" },
      sleep = function(seconds) sleeps[#sleeps + 1] = seconds end,
    })
    local _, err = client:get_records({ ShardIterator = "it" })
    assert.equals("ConnectionRefused", err.code)
    assert.equals(3, err.attempts)
  end)

  it("backs off exponentially with full jitter under a cap", function()
    local client = client_failing("ThrottlingException", 30, { max_attempts = 12 })
    client:get_records({ ShardIterator = "it" })
    assert.equals(11, #sleeps)
    local ceiling = 0.05
    local grew = false
    for i, s in ipairs(sleeps) do
      ceiling = math.min(20, 0.05 * 2 ^ i)
      assert.is_true(s >= 0 and s <= ceiling, ("sleep %d = %g above %g"):format(i, s, ceiling))
      if i > 1 and s > sleeps[1] then grew = true end
    end
    assert.is_true(grew)
    assert.equals(20, ceiling) -- the cap was reached
  end)

  it("stops retrying when the retry quota is spent, and recovers it on success", function()
    local client = client_failing("500", 1000)
    for _ = 1, 60 do client:get_records({ ShardIterator = "it" }) end
    local stats = client:stats()
    assert.equals(100, stats.retries)       -- 500 tokens, 5 per retry
    assert.equals(0, stats.retry_tokens)
    local _, err = client:get_records({ ShardIterator = "it" })
    assert.equals(1, err.attempts)          -- no tokens: one attempt only
    local healthy = client_failing("500", 0)
    assert(healthy:get_records({ ShardIterator = "it" }))
    assert.equals(500, healthy:stats().retry_tokens)
  end)

  it("refuses identifiers with control characters before sending anything", function()
    local client = client_failing("500", 0)
    for _, bad in ipairs({ "arn\r\nX-Injected: 1", "arn\0", "arn\127" }) do
      assert.has_error(function() client:describe_stream({ StreamArn = bad }) end,
        "DescribeStream: StreamArn contains a control character")
    end
    assert.has_error(function() client:get_shard_iterator({ StreamArn = "a", ShardId = "s\n" }) end)
    assert.equals(0, client:stats().calls)
  end)
end)
