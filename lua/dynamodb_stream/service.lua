--- What both clients are: `call`, `call_many`, `stats`, `close`.
-- A client for an AWS JSON 1.0 service (DynamoDB, DynamoDB Streams):
-- builds and signs the request, posts it, decodes the answer or the error.
-- @module dynamodb_stream.service

local core = require("dynamodb_stream.core")
local config = require("dynamodb_stream.config")
local errors = require("dynamodb_stream.errors")
local retry = require("dynamodb_stream.retry")
local runtime = require("dynamodb_stream.runtime")

local Service = {}
Service.__index = Service

local EMPTY_OBJECT = "{}"
local MAX_SNIPPET = 200

function Service.__tostring(self)
  return "dynamodb_stream." .. self._def.name .. " (" .. self._endpoint.url .. ", " .. self.region .. ")"
end

-- Error text shown to users must never carry a credential, whatever a server
-- echoes back: these are cut out before any text is shortened for display.
local MAX_MESSAGE = 2000
local REDACTED = "<redacted>"
local WINDOW = 8 -- any 8 bytes of a secret are redacted, so a cut one is too

-- A Lua pattern matching word case-insensitively.
local function caseless(word)
  return (word:gsub("%a", function(c) return "[" .. c:upper() .. c:lower() .. "]" end))
end

-- Header-like text, as sent or echoed ("Authorization: v", "authorization=v",
-- a JSON `"X-Amz-Security-Token":"v"`, escaped or not): the value goes, up to
-- the end of its line or string (a control byte, a quote, or a JSON \r \n
-- \t \" escape).
local HEADERS = {}
for i, name in ipairs({ "authorization", "x-amz-security-token" }) do
  HEADERS[i] = caseless(name):gsub("%-", "%%-") .. '[\\"]*%s*[:=][%s\\"]*'
end
-- Parts of a signature that are sent outside a header too (a presigned query).
local PARAMS = { caseless("credential") .. "=", caseless("signature") .. "=" }

local function redact_headers(text)
  for _, pattern in ipairs(HEADERS) do
    local from = 1
    while true do
      local _, value_start = text:find(pattern, from)
      if not value_start then break end
      value_start = value_start + 1
      local stop = text:find('[%c"]', value_start) or #text + 1
      local escape = text:find('\\[rnt"]', value_start)
      if escape and escape < stop then stop = escape end
      text = text:sub(1, value_start - 1) .. REDACTED .. text:sub(stop)
      from = value_start + #REDACTED
    end
  end
  for _, pattern in ipairs(PARAMS) do
    text = text:gsub("(" .. pattern .. ")[%w+/=_.%%%-]+", "%1" .. REDACTED)
  end
  return text
end

-- A function(text[, limit]) -> text with every run of bytes that holds 8 bytes
-- of a secret (as is, JSON-escaped or percent-encoded) and every header-like
-- credential replaced, then, when text was longer than limit bytes
-- (MAX_MESSAGE by default), cut to that length.
-- Secrets shorter than 8 bytes (never real AWS ones) are left alone: they
-- would mangle ordinary words.
local function redactor(secrets)
  local pieces, longest = {}, 0
  for _, secret in pairs(secrets) do
    if #secret >= WINDOW then
      local forms = { secret, (secret:gsub("/", "\\/")),
        (secret:gsub("[^%w%-_.~]", function(c) return ("%%%02X"):format(c:byte()) end)) }
      for _, form in ipairs(forms) do
        longest = math.max(longest, #form)
        for i = 1, #form - WINDOW + 1 do pieces[form:sub(i, i + WINDOW - 1)] = true end
      end
    end
  end
  return function(text, limit)
    limit = limit or MAX_MESSAGE
    -- Only the part that can show (and what may belong to a secret crossing
    -- its end) is looked at, so a huge body costs no more than a short one.
    local cut = #text > limit
    text = redact_headers(text:sub(1, limit + longest + 64))
    if longest > 0 then
      local out, i, last, n = {}, 1, 1, #text
      while i <= n - WINDOW + 1 do
        if pieces[text:sub(i, i + WINDOW - 1)] then
          local j = i + 1
          while j <= n - WINDOW + 1 and pieces[text:sub(j, j + WINDOW - 1)] do j = j + 1 end
          out[#out + 1] = text:sub(last, i - 1)
          out[#out + 1] = REDACTED
          last = j + WINDOW - 1
          i = last
        else
          i = i + 1
        end
      end
      out[#out + 1] = text:sub(last)
      text = table.concat(out)
    end
    if cut then text = text:sub(1, limit) .. "..." end
    return text
  end
end

-- opts.transport (anything with post, post_many and close), else nginx
-- cosockets inside OpenResty (dynamodb_stream.ngx_http), else libcurl, asked
-- for bodies as body objects: a GetRecords page then reaches decode_records
-- from libcurl's buffer, never copied into a Lua string, and its memory is
-- freed as soon as it is decoded (_answer closes it), not at a collection.
local function transport(cfg, opts)
  if opts and opts.transport then return opts.transport end
  local topts = {
    connect_timeout = cfg.connect_timeout,
    timeout = cfg.timeout,
    verify_tls = cfg.verify_tls,
    ca_file = cfg.ca_file,
  }
  if runtime.in_nginx() then return require("dynamodb_stream.ngx_http").http(topts) end
  topts.body = "buffer"
  return core.http(topts)
end

--- Makes a client of one service (use `ds.client` or `ds.dynamodb`).
-- @tparam table def the service
-- @tparam[opt] table opts the options of `dynamodb_stream.config.resolve`
-- @return the client; raises on a bad option
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
    _http = transport(cfg, opts),
    _retry = retry.policy({ max_attempts = cfg.max_attempts, sleep = cfg.sleep, base = cfg.retry_base }),
    _stats = { calls = 0, attempts = 0, retries = 0, throttles = 0, failures = 0, credential_refreshes = 0 },
    _credentials = cfg.credentials, -- a provider (dynamodb_stream.credentials)
    _signed_with = nil,             -- the credentials _signer holds
    _signer = nil,
    _secrets = {},                  -- the secrets of the last few credentials, for _redact
  }, Service)
  -- Kept in closures, not fields, so that dumping the client shows no secret.
  local redact = redactor({})
  self._set_redactor = function(secrets) redact = redactor(secrets) end
  self._redact = function(text, limit) return redact(text, limit) end
  errors.add_redactor(self, self._redact)
  -- Fixed keys cost nothing to get: their secrets are redacted from the start.
  if self._credentials.refreshable == false then self:_current_signer() end
  return self
end

-- How many sets of credentials stay redacted after a rotation: an answer to a
-- request signed with older ones may still echo them.
local KEPT_SECRETS = 4

-- The signer of the current credentials, made anew when the provider hands out
-- new ones; or nil, err when it has none.
function Service:_current_signer()
  local creds, err = self._credentials:get()
  if not creds then return nil, err end
  if creds ~= self._signed_with then
    local secrets = self._secrets
    table.insert(secrets, 1, creds.session_token)
    table.insert(secrets, 1, creds.secret_access_key)
    for i = #secrets, 2 * KEPT_SECRETS + 1, -1 do secrets[i] = nil end
    self._set_redactor(secrets)
    self._signer = core.signer({
      access_key_id = creds.access_key_id,
      secret_access_key = creds.secret_access_key,
      session_token = creds.session_token,
      region = self.region,
      service = "dynamodb",
    })
    self._signed_with = creds
  end
  return self._signer
end

-- A short printable excerpt of a body for error messages, redacted.
local function snippet(self, body)
  return (self._redact(body, MAX_SNIPPET):gsub("[%c\128-\255]+", " "))
end

-- Any other text from the other end (a message, a code, a transport error),
-- redacted and on one line.
local function clean(self, text, limit)
  return (self._redact(text, limit):gsub("%c+", " "))
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
      .. (body ~= "" and (": " .. snippet(self, body)) or "")
  end
  return errors.new({
    code = clean(self, errors.sanitize_code(code), MAX_SNIPPET),
    message = clean(self, message or ""),
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
-- (X-Amz-Date moves on), or nil, err when there are no credentials to sign
-- with. The lines that never change for an operation are built once.
function Service:_request(operation, body)
  local signer, err = self:_current_signer()
  if not signer then
    err.operation = operation
    return nil, err
  end
  local target = self._targets[operation]
  if not target then
    local value = self._target .. operation
    target = { value, "x-amz-target: " .. value }
    self._targets[operation] = target
  end
  local date = os.date("!%Y%m%dT%H%M%SZ")
  local headers = { host = self._endpoint.host, ["content-type"] = CONTENT_TYPE, ["x-amz-date"] = date,
    ["x-amz-target"] = target[1] }
  local authorization = signer:sign({
    method = "POST", path = self._endpoint.path, query = "",
    headers = headers, body = body, amz_date = date,
  })
  local lines = { "Authorization: " .. authorization, "content-type: " .. CONTENT_TYPE,
    "x-amz-date: " .. date, target[2] }
  local token = headers["x-amz-security-token"] -- set by the signer when it has one
  if token then lines[5] = "x-amz-security-token: " .. token end
  return self._endpoint.url, lines, body
end

-- The body of an answer (status, body, headers) -> the answer decoded by
-- decode (json_object by default), or nil, err. body is a string or a body
-- object (core.http{ body = "buffer" }): the decodes of records_decoder read
-- either, any other decode gets a string, as it always has.
local function decode_body(self, operation, decode, status, body, headers)
  if status < 200 or status > 299 then
    return nil, service_error(self, operation, status, tostring(body), headers)
  end
  local decoded, why
  if Service.reads_body[decode] then
    decoded, why = decode(body)
  else
    decoded, why = (decode or json_object)(tostring(body))
  end
  if not decoded then
    local text = tostring(body)
    return nil, errors.new({
      code = "InvalidResponse",
      message = clean(self, why) .. " (" .. #text .. " bytes: " .. snippet(self, text) .. ")",
      status = status,
      operation = operation,
    })
  end
  return decoded
end

-- What the transport returned for one attempt (status, body, headers; or
-- nil, "Code: message", "Code") -> the answer decoded by decode, or nil, err.
-- The one place an answer body is decoded, whichever the transport (core.http
-- or ngx_http) and however many calls at once; a body object is closed here,
-- once read.
function Service:_answer(operation, decode, status, answer, answer_headers)
  if not status then
    local code = answer_headers
    local message = answer:gsub("^%w+: ", "", 1)
    return nil, errors.new({ code = code, message = clean(self, message), operation = operation })
  end
  if type(answer) == "string" then
    return decode_body(self, operation, decode, status, answer, answer_headers)
  end
  local decoded, err = decode_body(self, operation, decode, status, answer, answer_headers)
  answer:close()
  return decoded, err
end

-- One HTTP exchange: the decoded answer, or nil, err.
function Service:_attempt(operation, body, decode)
  local url, lines, err = self:_request(operation, body)
  if not url then return nil, lines end
  return self:_answer(operation, decode, self._http:post(url, lines, err))
end

-- The answers that say the credentials are no longer good: with a provider
-- that can fetch new ones, they are fetched at once and the request sent once
-- more (not counted as a retry).
local EXPIRED = { ExpiredTokenException = true, ExpiredToken = true, InvalidClientTokenId = true }

-- After err: whether new credentials were fetched, so that the request may go again.
function Service:_renewed_after(err)
  if not EXPIRED[err.code] or not self._credentials.refreshable then return false end
  if not self._credentials:refresh(true) then return false end
  self._stats.credential_refreshes = self._stats.credential_refreshes + 1
  return true
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

--- Calls one operation, with retries.
-- @tparam string operation e.g. `"GetRecords"`
-- @tparam[opt] table params the request in AWS shape
-- @tparam[opt] function decode `function(body) -> answer | nil, why`
-- @return the decoded answer, or `nil, err` (`err.attempts` set)
-- Calls one operation: params (a table in AWS shape, or nil) -> decoded answer,
-- or nil, err. Throttling, server faults and transport failures are retried
-- (AWS's standard mode); err.attempts says how many attempts were made.
-- decode (optional) turns the answer body into the result: nil, why when it
-- cannot.
function Service:call(operation, params, decode)
  local body = request_body(operation, params, 2)
  local stats, policy = self._stats, self._retry
  stats.calls = stats.calls + 1
  local attempt, cost, renewed = 0, nil, false
  while true do
    attempt = attempt + 1
    stats.attempts = stats.attempts + 1
    local answer, err = self:_attempt(operation, body, decode)
    if not answer and not renewed and self:_renewed_after(err) then
      renewed = true
      stats.attempts = stats.attempts + 1
      answer, err = self:_attempt(operation, body, decode)
    end
    if answer then
      policy:release(cost)
      return answer
    end
    cost = retry_cost(self, err, attempt)
    if not cost then return nil, err end
    policy.sleep(policy:backoff(attempt))
  end
end

--- Calls one operation for each params table of a list, in parallel.
-- @tparam string operation e.g. `"GetRecords"`
-- @tparam {table,...} list one params table per call
-- @tparam[opt] function decode as for `call`
-- @tparam[opt=16] integer max_in_flight calls sent at once
-- @treturn table answers, by position in list (with holes)
-- @treturn table errs, by position in list (with holes)
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
  local pending = {}
  for i = 1, n do pending[i] = i end
  local attempt, renewed = 0, false
  while #pending > 0 do
    attempt = attempt + 1
    stats.attempts = stats.attempts + #pending
    local requests, unsigned = {}, nil
    for k, i in ipairs(pending) do
      local url, lines, body = self:_request(operation, bodies[i])
      if not url then unsigned = lines break end
      requests[k] = { url, lines, body }
    end
    local results = unsigned == nil and self._http:post_many(requests, max_in_flight) or {}
    local again, backoff, expired = {}, false, {}
    local function failed(i, err)
      costs[i] = retry_cost(self, err, attempt)
      if costs[i] then
        again[#again + 1] = i
        backoff = true
      else
        errs[i] = err
      end
    end
    for k, i in ipairs(pending) do
      local answer, err
      if unsigned then
        err = unsigned
      else
        local r = results[k]
        answer, err = self:_answer(operation, decode, r[1], r[2], r[3])
      end
      if answer then
        policy:release(costs[i])
        answers[i] = answer
      elseif not renewed and EXPIRED[err.code] then
        expired[#expired + 1] = { i, err }
      else
        failed(i, err)
      end
    end
    if #expired > 0 then
      renewed = true
      local ok = self:_renewed_after(expired[1][2])
      for _, e in ipairs(expired) do
        if ok then again[#again + 1] = e[1] else failed(e[1], e[2]) end
      end
    end
    pending = again
    if backoff then policy.sleep(policy:backoff(attempt)) end
  end
  return answers, errs
end

--- Decodes a GetRecords body with its images unmarshalled (a `decode` for `call`).
-- @param body the answer body: a string, or a body object of `core.http{ body = "buffer" }`
-- @tparam[opt] table opts `{ filter = f }`, a filter from `core.compile_filter`
-- @return the answer, or `nil, why`
-- A GetRecords answer with Keys, NewImage and OldImage unmarshalled in C as
-- the body is parsed (core.decode_records), marked _unmarshalled = true (the
-- only place that mark is made; the stream reads it). With a filter, only the
-- records it passes, and the page says _filtered (how many it dropped) and
-- _last_sequence_number (of its last record, dropped or not). A page holding
-- an AttributeValue that does not unmarshall comes back as plain JSON instead
-- (the body read a second time, only then), so that the caller can stop at
-- the bad record itself (and filter it).
function Service.unmarshalled_records(body, opts)
  local filter = opts and opts.filter
  local records, next_iterator, code, last = core.decode_records(body, filter and opts or nil)
  if records then
    return { Records = records, NextShardIterator = next_iterator, _unmarshalled = true,
      _filtered = filter and code or nil, _last_sequence_number = last }
  end
  if code == "InvalidResponse" then return json_object(tostring(body)) end
  return nil, (next_iterator:gsub("^%w+: ", "", 1))
end

-- The decodes that read an answer's body object in place (see decode_body);
-- weak keys: a filtered page's decode lives as long as its call.
Service.reads_body = setmetatable({ [Service.unmarshalled_records] = true }, { __mode = "k" })

--- The `decode` of GetRecords pages unmarshalled in C: `unmarshalled_records`,
-- or with opts.filter one that passes it on.
-- @param[opt] opts true, nil, or `{ filter = f }`
-- @treturn function function(body) -> answer | nil, why
function Service.records_decoder(opts)
  if type(opts) ~= "table" or opts.filter == nil then return Service.unmarshalled_records end
  local decode = function(body) return Service.unmarshalled_records(body, opts) end
  Service.reads_body[decode] = true
  return decode
end

--- Fetches new credentials if they are due soon, and reports a refresh that failed.
-- `stream:run` calls it between fetches, so that calls rarely wait for a refresh; a
-- failed refresh keeps the old credentials while they are valid.
-- @treturn boolean true, or `nil, err` (reported by run through `'error'`)
function Service:refresh_credentials()
  return self._credentials:refresh()
end

--- The client's counters.
-- @treturn table `{ calls, attempts, retries, throttles, failures, credential_refreshes,
-- retry_tokens }`
-- Counters since the client was made: calls, attempts, retries, throttles
-- (throttling answers seen), failures (calls that returned an error) and
-- credential_refreshes (new credentials fetched after the service refused them).
function Service:stats()
  local copy = {}
  for k, v in pairs(self._stats) do copy[k] = v end
  copy.retry_tokens = self._retry.tokens
  return copy
end

--- Closes the client's connections; a later call opens new ones.
function Service:close()
  self._http:close()
end

--- Adds the methods of some operations to a class.
-- @tparam table class the class
-- @tparam {string,...} operations e.g. `{ "GetRecords" }`
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

--- Makes a client class (as `dynamodb_stream.client` and `dynamodb_stream.dynamodb` are).
-- @tparam table def `{ name, target_prefix, endpoint_prefix, env_endpoint }`
-- @tparam {string,...} operations the operations that get a method
-- @treturn table the class, with `class.new(opts)`
-- A class whose instances are Service objects with the given operations.
function Service.class(def, operations)
  local class = setmetatable({}, { __index = Service })
  class.__index = class
  class.__tostring = Service.__tostring
  Service.define_operations(class, operations)
  --- A client of this class.
  -- @tparam[opt] table opts the options of `dynamodb_stream.config.resolve`
  -- @local
  function class.new(opts)
    return setmetatable(Service.new(def, opts), class)
  end
  return class
end

return Service
