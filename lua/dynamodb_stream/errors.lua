--- Error values returned as the second result of a failed call.
-- Fields: code, message, status (HTTP status or nil), retryable, operation.
-- @module dynamodb_stream.errors

local errors = {}

local Error = { __name = "dynamodb_stream.error" }
Error.__index = Error

function Error.__tostring(err)
  local where = err.operation and (err.operation .. ": ") or ""
  local status = err.status and (" (HTTP " .. err.status .. ")") or ""
  return where .. err.code .. ": " .. err.message .. status
end

-- The one table that says what an error means; the error objects
-- (retryable), the client's retries (retry.lua) and the stream's per-shard
-- backoff and run() (stream/reader.lua, stream/init.lua) all ask errors.class:
--   throttling  the service asks us to slow down: retried, the shard backs off
--   transient   network trouble, server faults: retried, the shard backs off
--   position    the iterator is no good (expired, trimmed, invalid): the shard
--               re-opens from its last delivered record
--   fatal       nothing will change without the user: wrong credentials, no
--               permission, no such stream; run() returns nil, err
--   failed      anything else (a listener raised, a malformed answer, another
--               4xx): not retried by the client, reported, tried at the next fetch
local CLASS = {
  ThrottlingException = "throttling",
  Throttling = "throttling",
  ThrottledException = "throttling",
  LimitExceededException = "throttling",
  ProvisionedThroughputExceededException = "throttling",
  RequestLimitExceeded = "throttling",
  RequestThrottled = "throttling",
  RequestThrottledException = "throttling",
  TooManyRequestsException = "throttling",
  SlowDown = "throttling",
  BandwidthLimitExceeded = "throttling",

  InternalServerError = "transient",
  InternalFailure = "transient",
  ServiceUnavailable = "transient",
  ConnectionRefused = "transient",
  ConnectionReset = "transient",
  Timeout = "transient",
  UnknownHost = "transient",
  InvalidResponse = "transient",

  ExpiredIteratorException = "position",
  TrimmedDataAccessException = "position",

  UnrecognizedClientException = "fatal",
  InvalidClientTokenId = "fatal",
  InvalidSignatureException = "fatal",
  SignatureDoesNotMatch = "fatal",
  IncompleteSignature = "fatal",
  IncompleteSignatureException = "fatal",
  MissingAuthenticationToken = "fatal",
  MissingAuthenticationTokenException = "fatal",
  AccessDeniedException = "fatal",
  AccessDenied = "fatal",
  NotAuthorized = "fatal",
  -- Still refused after the provider fetched new credentials (service.lua
  -- fetches them once when the service says so), or fixed keys.
  ExpiredTokenException = "fatal",
  ExpiredToken = "fatal",
  -- The stream, or a shard: the consumer retires a shard that is not found
  -- before it asks, so what reaches run() is the stream.
  ResourceNotFoundException = "fatal",
  -- The lease table (leases/table.lua): not a lease table, or an item in it that does not
  -- parse; a person must look at it.
  BadLeaseTable = "fatal",
  BadLeaseItem = "fatal",
}

-- The redactors of the live clients (service.lua), weakly keyed by client:
-- every error message goes through all of them, so that no error made anywhere
-- (the stream's own InvalidResponse quoting an answer included) shows a
-- credential that a server sent back.
local redactors = setmetatable({}, { __mode = "k" })

--- Registers a client's redactor, which every error message made from now on goes through.
-- @param owner the client (weak key: the redactor goes with it)
-- @tparam function redact `function(text, limit) -> text`
function errors.add_redactor(owner, redact)
  redactors[owner] = redact
end

-- A ValidationException is about the iterator (GetRecords: "Invalid
-- ShardIterator", a constraint on 'shardIterator'), the stream ARN (a
-- constraint on 'streamArn', "Invalid StreamArn") or something else.
local function validation_class(message)
  local m = message:lower()
  if m:find("shard ?iterator") and not m:find("iteratortype") then return "position" end
  if m:find("stream ?arn") then return "fatal" end
  return "failed"
end

--- What an error means: `throttling`, `transient`, `position`, `fatal` or `failed`
-- (the table is documented in the README, Errors).
-- @tparam table err an error (`code`, and maybe `status` and `message`)
-- @treturn string the class
-- err (a table with code, and maybe status and message) ->
-- "throttling" | "transient" | "position" | "fatal" | "failed".
function errors.class(err)
  local class = CLASS[err.code]
  if class then return class end
  if err.code == "ValidationException" then return validation_class(tostring(err.message or "")) end
  if err.status == 429 then return "throttling" end
  if err.status ~= nil and err.status >= 500 then return "transient" end
  return "failed"
end

--- Whether another attempt of the same request may succeed: throttling or transient.
-- @tparam table err an error
-- @treturn boolean
-- Whether another attempt of the same request may succeed.
function errors.retryable(err)
  local class = errors.class(err)
  return class == "throttling" or class == "transient"
end

--- Makes an error value; its message is redacted by every live client's redactor.
-- @tparam table fields `code`, `message`, `status`, `operation`, and `retryable`
-- (default: from `errors.class`)
-- @treturn table the error, with `tostring(err)` giving one line
function errors.new(fields)
  local message = fields.message or ""
  for _, redact in pairs(redactors) do message = redact(message, #message) end
  local err = setmetatable({
    code = fields.code,
    message = message,
    status = fields.status,
    operation = fields.operation,
  }, Error)
  if fields.retryable ~= nil then
    err.retryable = fields.retryable
  else
    err.retryable = errors.retryable(err)
  end
  return err
end

--- Whether value was made by `errors.new`.
-- @param value any value
-- @treturn boolean
function errors.is_error(value)
  return getmetatable(value) == Error
end

--- The bare AWS error code of an error type as a service sends it.
-- @tparam string code e.g. `com.amazon.coral.validate#ValidationException`
-- @treturn string e.g. `ValidationException`
-- The AWS code from an error type such as "com.amazon.coral.validate#ValidationException"
-- or "ThrottlingException:http://internal.amazon.com/...": drop the namespace and any suffix.
function errors.sanitize_code(code)
  code = code:match("#(.*)$") or code
  return code:match("^([^:]*)") or code
end

return errors
