-- A client for an AWS JSON 1.0 service (DynamoDB, DynamoDB Streams):
-- builds and signs the request, posts it, decodes the answer or the error.

local core = require("dynamodb_stream.core")
local config = require("dynamodb_stream.config")
local errors = require("dynamodb_stream.errors")
local retry = require("dynamodb_stream.retry")
local ngx_http = require("dynamodb_stream.ngx_http")

local Service = {}
Service.__index = Service

local EMPTY_OBJECT = "{}"
local MAX_SNIPPET = 200

function Service.__tostring(self)
  return "dynamodb_stream." .. self._def.name .. " (" .. self._endpoint.url .. ", " .. self.region .. ")"
end

-- def: { name, target_prefix, endpoint_prefix, env_endpoint }; every AWS JSON
-- service here signs with the scope "dynamodb" (DynamoDB Streams included).
function Service.new(def, opts)
  local cfg = config.resolve(def, opts, "dynamodb_stream." .. def.name)
  local self = setmetatable({
    region = cfg.region,
    _def = def,
    _endpoint = cfg.endpoint,
    _target = def.target_prefix .. ".",
    _targets = {}, -- per operation: { X-Amz-Target value, its header line }
    -- opts.transport (anything with post, post_many and close), else nginx
    -- cosockets inside OpenResty (dynamodb_stream.ngx_http), else libcurl.
    _http = (opts or {}).transport or (ngx_http.in_nginx() and ngx_http or core).http({
      connect_timeout = cfg.connect_timeout,
      timeout = cfg.timeout,
      verify_tls = cfg.verify_tls,
      ca_file = cfg.ca_file,
    }),
    _retry = retry.policy({ max_attempts = cfg.max_attempts, sleep = cfg.sleep, base = cfg.retry_base }),
    _stats = { calls = 0, attempts = 0, retries = 0, throttles = 0, failures = 0 },
    _signer = core.signer({
      access_key_id = cfg.credentials.access_key_id,
      secret_access_key = cfg.credentials.secret_access_key,
      session_token = cfg.credentials.session_token,
      region = cfg.region,
      service = "dynamodb",
    }),
  }, Service)
  -- Kept in a closure, not a field, so that dumping the client shows no secret.
  -- Secrets shorter than 8 bytes (never real AWS ones) would mangle ordinary words.
  local secrets = {}
  for _, secret in ipairs({ cfg.credentials.secret_access_key, cfg.credentials.session_token or "" }) do
    if #secret >= 8 then secrets[#secrets + 1] = secret end
  end
  self._redact = function(text)
    for _, secret in ipairs(secrets) do
      local from, to = text:find(secret, 1, true)
      while from do
        text = text:sub(1, from - 1) .. "<redacted>" .. text:sub(to + 1)
        from, to = text:find(secret, from + 10, true)
      end
    end
    return text
  end
  return self
end

-- A short printable excerpt of a body for error messages.
local function snippet(body)
  local s = body:sub(1, MAX_SNIPPET):gsub("[%c\128-\255]+", " ")
  if #body > MAX_SNIPPET then s = s .. "..." end
  return s
end

local function field(tbl, ...)
  if type(tbl) ~= "table" then return nil end
  for i = 1, select("#", ...) do
    local v = tbl[select(i, ...)]
    if type(v) == "string" then return v end
  end
  return nil
end

-- The error value of a non-2xx answer, following the AWS JSON protocol:
-- the code from X-Amzn-ErrorType, else __type or code in the body.
local function service_error(self, operation, status, body, headers)
  local decoded = core.json_decode(body)
  local code = headers["x-amzn-errortype"] or field(decoded, "__type", "code")
  local message = field(decoded, "message", "Message", "errorMessage")
  if code == nil then
    code = status == 503 and "ServiceUnavailable" or status >= 500 and "InternalServerError"
      or "UnexpectedResponse"
    message = "HTTP " .. status .. " without an AWS error body"
      .. (body ~= "" and (": " .. snippet(body)) or "")
  end
  return errors.new({
    code = errors.sanitize_code(code),
    message = self._redact(message or ""),
    status = status,
    operation = operation,
  })
end

-- Request fields that name things; a control character in one is a caller
-- bug (or an injection attempt) and is refused before anything is built.
local IDENTIFIERS = {
  "TableName", "StreamArn", "ShardId", "ExclusiveStartShardId", "ExclusiveStartStreamArn",
  "ExclusiveStartTableName", "IndexName", "ShardIterator",
}

-- The answer body as a JSON object, or nil and why not.
local function json_object(body)
  local decoded, why = core.json_decode(body)
  if type(decoded) ~= "table" or getmetatable(decoded) == core.list_mt then
    return nil, why or "answer is not a JSON object"
  end
  return decoded
end

local CONTENT_TYPE = "application/x-amz-json-1.0"

-- The URL, header lines and body of one attempt, signed anew each time
-- (X-Amz-Date moves on). The lines that never change for an operation are
-- built once.
function Service:_request(operation, body)
  local target = self._targets[operation]
  if not target then
    local value = self._target .. operation
    target = { value, "x-amz-target: " .. value }
    self._targets[operation] = target
  end
  local date = os.date("!%Y%m%dT%H%M%SZ")
  local headers = { host = self._endpoint.host, ["content-type"] = CONTENT_TYPE, ["x-amz-date"] = date,
    ["x-amz-target"] = target[1] }
  local authorization = self._signer:sign({
    method = "POST", path = self._endpoint.path, query = "",
    headers = headers, body = body, amz_date = date,
  })
  local lines = { "Authorization: " .. authorization, "content-type: " .. CONTENT_TYPE,
    "x-amz-date: " .. date, target[2] }
  local token = headers["x-amz-security-token"] -- set by the signer when it has one
  if token then lines[5] = "x-amz-security-token: " .. token end
  return self._endpoint.url, lines, body
end

-- What core.http returned for one attempt (status, body, headers; or nil,
-- "Code: message", "Code") -> the answer decoded by decode (json_object by
-- default), or nil, err.
function Service:_answer(operation, decode, status, answer, answer_headers)
  if not status then
    local code = answer_headers
    local message = answer:gsub("^%w+: ", "", 1)
    return nil, errors.new({ code = code, message = self._redact(message), operation = operation })
  end
  if status < 200 or status > 299 then
    return nil, service_error(self, operation, status, answer, answer_headers)
  end
  local decoded, why = (decode or json_object)(answer)
  if not decoded then
    return nil, errors.new({
      code = "InvalidResponse",
      message = why .. " (" .. #answer .. " bytes: " .. snippet(answer) .. ")",
      status = status,
      operation = operation,
    })
  end
  return decoded
end

-- One HTTP exchange: the decoded answer, or nil, err.
function Service:_attempt(operation, body, decode)
  return self:_answer(operation, decode, self._http:post(self:_request(operation, body)))
end

-- The JSON body of a call after the checks every call makes (raising at
-- level, for error()).
local function request_body(operation, params, level)
  if type(operation) ~= "string" or not operation:match("^%a+$") then
    error("operation must be an AWS operation name such as 'GetRecords'", level + 1)
  end
  if params ~= nil and type(params) ~= "table" then
    error(operation .. ": params must be a table", level + 1)
  end
  for _, field in ipairs(IDENTIFIERS) do
    local v = params and params[field]
    if type(v) == "string" and v:find("[%c\127]") then
      error(operation .. ": " .. field .. " contains a control character", level + 1)
    end
  end
  return params and next(params) ~= nil and core.json_encode(params) or EMPTY_OBJECT
end

-- After a failed attempt: the retry cost to take (another attempt follows),
-- or nil (the call fails; err.attempts is set). Counts what happened.
local function retry_cost(self, err, attempt)
  local stats = self._stats
  if retry.is_throttling(err) then stats.throttles = stats.throttles + 1 end
  local cost = self._retry:acquire(err, attempt)
  if not cost then
    stats.failures = stats.failures + 1
    err.attempts = attempt
    return nil
  end
  stats.retries = stats.retries + 1
  return cost
end

-- Calls one operation: params (a table in AWS shape, or nil) -> decoded answer,
-- or nil, err. Throttling, server faults and transport failures are retried
-- (AWS's standard mode); err.attempts says how many attempts were made.
-- decode (optional) turns the answer body into the result: nil, why when it
-- cannot.
function Service:call(operation, params, decode)
  local body = request_body(operation, params, 2)
  local stats, policy = self._stats, self._retry
  stats.calls = stats.calls + 1
  local attempt, cost = 0, nil
  while true do
    attempt = attempt + 1
    stats.attempts = stats.attempts + 1
    local answer, err = self:_attempt(operation, body, decode)
    if answer then
      policy:release(cost)
      return answer
    end
    cost = retry_cost(self, err, attempt)
    if not cost then return nil, err end
    policy.sleep(policy:backoff(attempt))
  end
end

-- Calls one operation once per params table in list, in parallel over the
-- client's connections (at most max_in_flight at once, default 16; see
-- core.http post_many) -> answers, errs: for each i in 1..#list, answers[i]
-- is what call(operation, list[i], decode) would return, or errs[i] its error
-- (both tables have holes). Each call is retried as call() would; the calls
-- that failed in a round are retried together after one backoff. Raises,
-- before sending anything, on a bad operation or params.
function Service:call_many(operation, list, decode, max_in_flight)
  if type(list) ~= "table" then error("call_many: a list of params tables expected", 2) end
  local n = #list
  local bodies = {}
  for i = 1, n do bodies[i] = request_body(operation, list[i], 2) end
  local stats, policy = self._stats, self._retry
  stats.calls = stats.calls + n
  local answers, errs, costs = {}, {}, {}
  -- GetRecords pages to decode in one pass: the C transport can do it on
  -- its own buffer (see core.http post_many); others return the body.
  local records = decode == Service.unmarshalled_records or nil
  local pending = {}
  for i = 1, n do pending[i] = i end
  local attempt = 0
  while #pending > 0 do
    attempt = attempt + 1
    stats.attempts = stats.attempts + #pending
    local requests = {}
    for k, i in ipairs(pending) do
      local url, lines, body = self:_request(operation, bodies[i])
      requests[k] = { url, lines, body, records }
    end
    local results = self._http:post_many(requests, max_in_flight)
    local again = {}
    for k, i in ipairs(pending) do
      local r = results[k]
      local answer, err
      if r[2] == false then
        answer = { Records = r[4], NextShardIterator = r[5], _unmarshalled = true }
      else
        answer, err = self:_answer(operation, decode, r[1], r[2], r[3])
      end
      if answer then
        policy:release(costs[i])
        answers[i] = answer
      else
        costs[i] = retry_cost(self, err, attempt)
        if costs[i] then again[#again + 1] = i else errs[i] = err end
      end
    end
    pending = again
    if #pending > 0 then policy.sleep(policy:backoff(attempt)) end
  end
  return answers, errs
end

-- A GetRecords answer with Keys, NewImage and OldImage unmarshalled in C as
-- the body is parsed (core.decode_records), marked _unmarshalled = true. A
-- page holding an AttributeValue that does not unmarshall comes back as plain
-- JSON instead, so that the caller can stop at the bad record itself.
function Service.unmarshalled_records(body)
  local records, next_iterator, code = core.decode_records(body)
  if records then
    return { Records = records, NextShardIterator = next_iterator, _unmarshalled = true }
  end
  if code == "InvalidResponse" then return json_object(body) end
  return nil, (next_iterator:gsub("^%w+: ", "", 1))
end

-- Counters since the client was made: calls, attempts, retries, throttles
-- (throttling answers seen) and failures (calls that returned an error).
function Service:stats()
  local copy = {}
  for k, v in pairs(self._stats) do copy[k] = v end
  copy.retry_tokens = self._retry.tokens
  return copy
end

function Service:close()
  self._http:close()
end

-- Adds a method per operation, snake_case and camelCase ("GetRecords" ->
-- get_records, getRecords), to a client class.
function Service.define_operations(class, operations)
  for _, operation in ipairs(operations) do
    local method = function(self, params) return self:call(operation, params) end
    local snake = operation:gsub("(%l)(%u)", "%1_%2"):lower()
    local camel = operation:sub(1, 1):lower() .. operation:sub(2)
    class[snake] = method
    class[camel] = method
  end
end

-- A class whose instances are Service objects with the given operations.
function Service.class(def, operations)
  local class = setmetatable({}, { __index = Service })
  class.__index = class
  class.__tostring = Service.__tostring
  Service.define_operations(class, operations)
  function class.new(opts)
    return setmetatable(Service.new(def, opts), class)
  end
  return class
end

return Service
