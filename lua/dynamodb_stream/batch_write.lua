--- Writes a list of puts and deletes to one table, 25 a call, in parallel
-- (`ddb:batch_write_all`), until every one is written or the caller is told
-- exactly which were not.
-- @module dynamodb_stream.batch_write

local compat = require("dynamodb_stream.compat")
local errors = require("dynamodb_stream.errors")
local retry = require("dynamodb_stream.retry")
local runtime = require("dynamodb_stream.runtime")
local table_key = require("dynamodb_stream.table_key")

local batch_write = {}

local CHUNK = 25          -- DynamoDB's limit of requests in one BatchWriteItem
local MAX_IN_FLIGHT = 1024 -- what a transport's post_many takes at once
local DEFAULT_IN_FLIGHT = 8
local DEFAULT_ATTEMPTS = 10
local OPTIONS = { key = true, max_in_flight = true, max_attempts = true }
local SHAPE = " must be { PutRequest = { Item = item } } or { DeleteRequest = { Key = key } }"

local function fail(message, level)
  error("batch_write_all: " .. message, level + 1)
end

-- The attribute map a request writes (a put's Item, a delete's Key), or nil
-- when the request has another shape.
local function attributes_of(request)
  if type(request) ~= "table" or next(request, next(request)) ~= nil then return nil end
  local put, delete = request.PutRequest, request.DeleteRequest
  local map = type(put) == "table" and put.Item or type(delete) == "table" and delete.Key
  return type(map) == "table" and map or nil
end

--- The one text of a DynamoDB number: "1", "1.0" and "10E-1" are one key (and one
-- value), so they give one text.
-- @tparam string text an `N` value
-- @treturn string the digits without leading or trailing zeros and the place of the
-- point (e.g. `.1e1`); text that is no number comes back as it is (the service
-- refuses it)
function batch_write.canonical_number(text)
  local sign, rest = text:match("^([-+]?)(.*)$")
  local mantissa, exponent = rest:match("^([^eE]*)[eE]([-+]?%d+)$")
  mantissa, exponent = mantissa or rest, tonumber(exponent or "0")
  local int, frac = mantissa:match("^(%d*)%.(%d*)$")
  if not int then int, frac = mantissa, "" end
  local digits = int .. frac
  if not digits:match("^%d+$") then return text end
  local zeros = #digits:match("^0*")
  digits = digits:sub(zeros + 1):gsub("0+$", "")
  if digits == "" then return "0" end
  return (sign == "-" and "-" or "") .. "." .. digits .. "e" .. (#int - zeros + exponent)
end

--- The identity of an item's key: its key attributes' types and values, numbers in
-- their `canonical_number` text (lengths keep it unambiguous); two keys are one
-- key when their identities are equal.
-- @tparam table map an attribute map in wire shape (an item, or its key)
-- @tparam {string,...} key_names the key attribute names, hash first
-- @treturn string the identity, or `nil, why` when a key attribute is not an S, N or B
function batch_write.identity(map, key_names)
  local parts = {}
  for k, name in ipairs(key_names) do
    local av = map[name]
    local kind, value
    if type(av) == "table" then kind, value = next(av) end
    if kind == nil or next(av, kind) ~= nil or type(value) ~= "string"
        or (kind ~= "S" and kind ~= "N" and kind ~= "B") then
      return nil, "key attribute '" .. name .. "' must be a marshalled S, N or B value"
    end
    if kind == "N" then value = batch_write.canonical_number(value) end
    parts[k] = kind .. #value .. ":" .. value
  end
  return table.concat(parts, "|")
end
local identity = batch_write.identity

-- opts checked (raising at level) -> max_in_flight, max_attempts, key names or nil.
local function checked_options(opts, level)
  level = level + 1
  if opts == nil then return DEFAULT_IN_FLIGHT, DEFAULT_ATTEMPTS, nil end
  if type(opts) ~= "table" then fail("opts must be a table", level) end
  for name in pairs(opts) do
    if not OPTIONS[name] then fail("unknown option " .. tostring(name), level) end
  end
  local max_in_flight = opts.max_in_flight or DEFAULT_IN_FLIGHT
  if not compat.is_integer(max_in_flight) or max_in_flight < 1 or max_in_flight > MAX_IN_FLIGHT then
    fail("opts.max_in_flight must be an integer from 1 to " .. MAX_IN_FLIGHT, level)
  end
  local max_attempts = opts.max_attempts or DEFAULT_ATTEMPTS
  if not compat.is_integer(max_attempts) or max_attempts < 1 then
    fail("opts.max_attempts must be an integer >= 1", level)
  end
  local key = opts.key
  if key ~= nil then
    local bad = type(key) ~= "table" or #key < 1 or #key > 2
    for k, name in pairs(bad and {} or key) do
      bad = bad or (k ~= 1 and k ~= #key) or type(name) ~= "string" or name == ""
    end
    bad = bad or key[1] == key[2]
    if bad then fail("opts.key must be a list of one or two attribute names, such as { \"pk\", \"sk\" }", level) end
  end
  return max_in_flight, max_attempts, key
end

-- err, completed with what the caller needs to carry on: err.unprocessed
-- (the requests of entries, in the caller's order) and err.summary.
local function not_written(err, entries, summary)
  table.sort(entries, function(a, b) return a.index < b.index end)
  local unprocessed = {}
  for k, entry in ipairs(entries) do unprocessed[k] = entry.request end
  err.unprocessed, err.summary = unprocessed, summary
  return nil, err
end

-- The requests to write, as entries { index, request, id, attempts }: one
-- BatchWriteItem may not hold two requests for one key, and the last request
-- for a key is what writing them in order would leave, so it is the one kept.
-- Raises (at level) on a request without its key attributes.
local function last_per_key(requests, key_names, level)
  local ids, last = {}, {}
  for i = 1, #requests do
    local id, why = identity(attributes_of(requests[i]), key_names)
    if not id then fail("requests[" .. i .. "]: " .. why, level + 1) end
    ids[i], last[id] = id, i
  end
  local entries = {}
  for i = 1, #requests do
    if last[ids[i]] == i then entries[#entries + 1] = { index = i, request = requests[i], id = ids[i], attempts = 0 } end
  end
  return entries
end

-- The calls of one round: up to max_in_flight chunks of CHUNK entries, those
-- sent again (resend) first, then new ones from entries[next_fresh] on ->
-- chunks, their bodies, the entries of resend left for a later round, and
-- the new next_fresh.
local function next_round(table_name, resend, entries, next_fresh, max_in_flight)
  local r, chunks, bodies = 1, {}, {}
  while #chunks < max_in_flight and (r <= #resend or next_fresh <= #entries) do
    local chunk, list = {}, {}
    while #chunk < CHUNK do
      local entry
      if r <= #resend then
        entry, r = resend[r], r + 1
      elseif next_fresh <= #entries then
        entry, next_fresh = entries[next_fresh], next_fresh + 1
      else
        break
      end
      chunk[#chunk + 1], list[#list + 1] = entry, entry.request
    end
    chunks[#chunks + 1], bodies[#bodies + 1] = chunk, { RequestItems = { [table_name] = list } }
  end
  local left = {}
  for k = r, #resend do left[#left + 1] = resend[k] end
  return chunks, bodies, left, next_fresh
end

--- Writes every request (see `dynamodb_stream.dynamodb:batch_write_all`).
-- @param client a DynamoDB client
-- @tparam string table_name the table
-- @tparam {table,...} requests PutRequest and DeleteRequest tables in AWS shape
-- @tparam[opt] table opts `key`, `max_in_flight`, `max_attempts`
-- @treturn table `{ written, batches, retries, superseded }`, or `nil, err`
function batch_write.all(client, table_name, requests, opts)
  if type(table_name) ~= "string" or table_name == "" then fail("table_name must be a non-empty string", 2) end
  if type(requests) ~= "table" then fail("requests must be a list of write requests", 2) end
  local max_in_flight, max_attempts, key_names = checked_options(opts, 2)
  local n, count = #requests, 0
  for _ in pairs(requests) do count = count + 1 end
  if count ~= n then fail("requests must be a list (keys 1 to n)", 2) end
  for i = 1, n do
    if not attributes_of(requests[i]) then fail("requests[" .. i .. "]" .. SHAPE, 2) end
  end
  local summary = { written = 0, batches = 0, retries = 0, superseded = 0 }
  if n == 0 then return summary end

  if not key_names then
    local key, err = table_key.read(client, table_name)
    key_names = key and key.names
    if not key_names then
      local all = {}
      for i = 1, n do all[i] = { index = i, request = requests[i] } end
      return not_written(err, all, summary)
    end
  end
  local entries = last_per_key(requests, key_names, 2)
  summary.superseded = n - #entries

  -- (a client of another kind, e.g. a test's wrapper, gets the default policy)
  local policy = client._retry or retry.policy({ sleep = runtime.sleep })
  local next_fresh = 1   -- the first entry never sent
  local waiting = {}     -- entries that came back in UnprocessedItems, to send again
  local given_up = {}    -- entries not written, for err.unprocessed
  local failure, exhausted = nil, false
  while not failure and not exhausted and (#waiting > 0 or next_fresh <= #entries) do
    if #waiting > 0 then
      local attempt = 0
      for _, entry in ipairs(waiting) do attempt = math.max(attempt, entry.attempts) end
      policy.sleep(policy:backoff(attempt))
    end
    local chunks, bodies
    chunks, bodies, waiting, next_fresh = next_round(table_name, waiting, entries, next_fresh, max_in_flight)
    local answers, errs = client:call_many("BatchWriteItem", bodies, nil, #bodies)
    summary.batches = summary.batches + #bodies
    for k, chunk in ipairs(chunks) do
      local answer = answers[k]
      if not answer then
        failure = failure or errs[k]
        for _, entry in ipairs(chunk) do given_up[#given_up + 1] = entry end
      else
        local sent = {}
        for _, entry in ipairs(chunk) do sent[entry.id] = entry end
        local returned = type(answer.UnprocessedItems) == "table" and answer.UnprocessedItems[table_name]
        local back = 0
        for _, request in ipairs(type(returned) == "table" and returned or {}) do
          local map = attributes_of(request)
          local id = map and identity(map, key_names)
          -- A request the chunk did not hold (only a broken service returns
          -- one) is sent again as it came, not dropped.
          local entry = id and sent[id] or { index = n + 1, request = request, id = {}, attempts = 0 }
          if id then sent[id] = nil end
          back = back + 1
          entry.attempts = entry.attempts + 1
          if entry.attempts >= max_attempts then
            exhausted = true
            given_up[#given_up + 1] = entry
          else
            summary.retries = summary.retries + 1
            waiting[#waiting + 1] = entry
          end
        end
        summary.written = summary.written + math.max(0, #chunk - back)
      end
    end
  end
  if not failure and not exhausted then return summary end

  for _, entry in ipairs(waiting) do given_up[#given_up + 1] = entry end
  for i = next_fresh, #entries do given_up[#given_up + 1] = entries[i] end
  failure = failure or errors.new({
    code = "UnprocessedItems", operation = "BatchWriteItem", retryable = true,
    message = ("%d of %d requests for table %s not written: still unprocessed after %d attempts"):format(
      #given_up, n, table_name, max_attempts),
  })
  return not_written(failure, given_up, summary)
end

return batch_write
