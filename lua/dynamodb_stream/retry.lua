--- The AWS SDKs' "standard" retry mode: which failures to retry, how long to
-- wait (exponential backoff with full jitter, capped), and a retry quota that
-- stops retry storms when a service is down.
-- @module dynamodb_stream.retry

local errors = require("dynamodb_stream.errors")

local retry = {}

local QUOTA = 500           -- retry tokens of a fresh client
local RETRY_COST = 5
local TIMEOUT_RETRY_COST = 10
local MAX_BACKOFF = 20      -- seconds

--- Whether err is throttling: the service asks the client to slow down.
-- What to retry is errors.class's table, shared with the error objects and
-- the stream.
-- @tparam table err an error
-- @treturn boolean whether its class is `throttling`
function retry.is_throttling(err)
  return errors.class(err) == "throttling"
end

-- Whether err is worth another attempt: throttling, server faults, transport
-- trouble. Never validation errors or bad signatures (4xx that are not throttling).
retry.is_retryable = errors.retryable

local Policy = {}
Policy.__index = Policy

--- A retry policy for one client, with a full retry quota.
-- opts: max_attempts (>= 1), base (seconds, the first backoff's ceiling),
-- sleep (function), random (function returning [0, 1)).
-- @tparam table opts `max_attempts`, `base` (default 0.05), `sleep`, `random`
-- @treturn Policy a policy with a full retry quota
function retry.policy(opts)
  return setmetatable({
    max_attempts = opts.max_attempts,
    base = opts.base or 0.05,
    sleep = opts.sleep,
    random = opts.random or math.random,
    tokens = QUOTA,
  }, Policy)
end

--- The retry state of one client: its options and what is left of its quota.
-- @type Policy

--- Seconds to wait before attempt number attempt + 1 (attempt >= 1).
-- @tparam integer attempt the attempt that failed
-- @treturn number seconds
function Policy:backoff(attempt)
  return self.random() * math.min(MAX_BACKOFF, self.base * 2 ^ attempt)
end

--- After a failed attempt: the retry cost taken from the quota when another
-- attempt should follow, or nil when the call should give up.
-- @tparam table err the attempt's error
-- @tparam integer attempt its number
-- @treturn integer|nil the cost, or nil to give up
function Policy:acquire(err, attempt)
  if attempt >= self.max_attempts or not retry.is_retryable(err) then return nil end
  local cost = (err.code == "Timeout" or err.code == "ConnectionReset") and TIMEOUT_RETRY_COST or RETRY_COST
  if self.tokens < cost then return nil end
  self.tokens = self.tokens - cost
  return cost
end

--- After a successful attempt: a retry that worked gives its cost back, a first
-- attempt that worked gives back one token.
-- @tparam[opt] integer cost what `acquire` took for the retry that worked
function Policy:release(cost)
  self.tokens = math.min(QUOTA, self.tokens + (cost or 1))
end

return retry
