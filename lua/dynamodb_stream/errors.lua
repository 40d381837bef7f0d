-- Error values returned as the second result of a failed call.
-- Fields: code, message, status (HTTP status or nil), retryable, operation.

local errors = {}

local Error = { __name = "dynamodb_stream.error" }
Error.__index = Error

function Error.__tostring(err)
  local where = err.operation and (err.operation .. ": ") or ""
  local status = err.status and (" (HTTP " .. err.status .. ")") or ""
  return where .. err.code .. ": " .. err.message .. status
end

-- Error codes a later attempt may clear: throttling, server faults, transport trouble.
local RETRYABLE = {
  ThrottlingException = true,
  Throttling = true,
  LimitExceededException = true,
  ProvisionedThroughputExceededException = true,
  RequestLimitExceeded = true,
  TooManyRequestsException = true,
  InternalServerError = true,
  InternalFailure = true,
  ServiceUnavailable = true,
  ConnectionRefused = true,
  ConnectionReset = true,
  Timeout = true,
  InvalidResponse = true,
}

-- The redactors of the live clients (service.lua), weakly keyed by client:
-- every error message goes through all of them, so that no error made anywhere
-- (the stream's own InvalidResponse quoting an answer included) shows a
-- credential that a server sent back.
local redactors = setmetatable({}, { __mode = "k" })

function errors.add_redactor(owner, redact)
  redactors[owner] = redact
end

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
    err.retryable = RETRYABLE[err.code] == true or (err.status ~= nil and err.status >= 500)
  end
  return err
end

function errors.is_error(value)
  return getmetatable(value) == Error
end

-- The AWS code from an error type such as "com.amazon.coral.validate#ValidationException"
-- or "ThrottlingException:http://internal.amazon.com/...": drop the namespace and any suffix.
function errors.sanitize_code(code)
  code = code:match("#(.*)$") or code
  return code:match("^([^:]*)") or code
end

return errors
