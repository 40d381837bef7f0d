-- errors.class: the one table of what an error means, and everything that
-- asks it (err.retryable, the client's retries) agreeing with it.
local errors = require("dynamodb_stream.errors")
local retry = require("dynamodb_stream.retry")

local CASES = {
  -- throttling
  { { code = "ThrottlingException", status = 400 }, "throttling" },
  { { code = "Throttling", status = 400 }, "throttling" },
  { { code = "ThrottledException", status = 400 }, "throttling" },
  { { code = "TooManyRequestsException", status = 400 }, "throttling" },
  { { code = "SlowDown", status = 503 }, "throttling" },
  { { code = "LimitExceededException", status = 400 }, "throttling" },
  { { code = "ProvisionedThroughputExceededException", status = 400 }, "throttling" },
  { { code = "RequestLimitExceeded", status = 400 }, "throttling" },
  { { code = "UnexpectedResponse", status = 429 }, "throttling" },
  -- transient
  { { code = "InternalServerError", status = 500 }, "transient" },
  { { code = "ServiceUnavailable", status = 503 }, "transient" },
  { { code = "SomethingNew", status = 502 }, "transient" },
  { { code = "ConnectionRefused" }, "transient" },
  { { code = "ConnectionReset" }, "transient" },
  { { code = "Timeout" }, "transient" },
  { { code = "UnknownHost" }, "transient" },
  { { code = "InvalidResponse", status = 200 }, "transient" },
  -- position
  { { code = "ExpiredIteratorException", status = 400 }, "position" },
  { { code = "TrimmedDataAccessException", status = 400 }, "position" },
  { { code = "ValidationException", status = 400, message = "Invalid ShardIterator" }, "position" },
  { { code = "ValidationException", status = 400, message = "1 validation error detected: Value 'x' at "
    .. "'shardIterator' failed to satisfy constraint: Member must have length greater than or equal to 1" },
    "position" },
  -- fatal
  { { code = "UnrecognizedClientException", status = 400 }, "fatal" },
  { { code = "InvalidSignatureException", status = 400 }, "fatal" },
  { { code = "AccessDeniedException", status = 400 }, "fatal" },
  { { code = "MissingAuthenticationToken", status = 403 }, "fatal" },
  { { code = "MissingAuthenticationTokenException", status = 400 }, "fatal" },
  { { code = "IncompleteSignature", status = 400 }, "fatal" },
  { { code = "ExpiredTokenException", status = 400 }, "fatal" },
  { { code = "ResourceNotFoundException", status = 400 }, "fatal" },
  { { code = "ValidationException", status = 400, message = "Invalid StreamArn" }, "fatal" },
  { { code = "ValidationException", status = 400, message = "1 validation error detected: Value 'bogus' at "
    .. "'streamArn' failed to satisfy constraint: Member must have length greater than or equal to 37" }, "fatal" },
  -- anything else
  { { code = "ValidationException", status = 400, message = "Limit must be <= 100" }, "failed" },
  { { code = "ValidationException", status = 400, message = "bad ShardIteratorType NOW" }, "failed" },
  { { code = "ValidationException", status = 400 }, "failed" },
  { { code = "UnexpectedResponse", status = 404 }, "failed" },
  { { code = "ListenerError" }, "failed" },
  { { code = "TlsError" }, "failed" },
  { { code = "ResponseTooLarge" }, "failed" },
}

local function name(fields)
  return fields.code .. (fields.status and ("/" .. fields.status) or "") .. (fields.message and (" '" .. fields.message:sub(1, 40) .. "'") or "")
end

describe("errors.class", function()
  for _, case in ipairs(CASES) do
    local fields, class = case[1], case[2]
    it(name(fields) .. " is " .. class, function()
      assert.equals(class, errors.class(fields))
      assert.equals(class, errors.class(errors.new(fields)))
    end)
  end

  it("derives err.retryable, and the client's retry policy, from the class", function()
    for _, case in ipairs(CASES) do
      local err = errors.new(case[1])
      local expected = case[2] == "throttling" or case[2] == "transient"
      assert.equals(expected, err.retryable, name(case[1]))
      assert.equals(expected, retry.is_retryable(err), name(case[1]))
      assert.equals(case[2] == "throttling", retry.is_throttling(err), name(case[1]))
    end
  end)

  it("is what the client retries: SlowDown, ThrottledException and 429 say retryable = true", function()
    for _, fields in ipairs({ { code = "SlowDown", status = 503 }, { code = "ThrottledException", status = 400 },
        { code = "Whatever", status = 429 } }) do
      local err = errors.new(fields)
      assert.is_true(err.retryable)
      assert.is_truthy(retry.policy({ max_attempts = 3 }):acquire(err, 1))
    end
    assert.is_nil(retry.policy({ max_attempts = 3 }):acquire(errors.new({ code = "AccessDeniedException", status = 400 }), 1))
  end)

  it("keeps an explicit retryable", function()
    assert.is_false(errors.new({ code = "ThrottlingException", retryable = false }).retryable)
  end)
end)
