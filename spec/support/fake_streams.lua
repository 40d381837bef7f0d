-- A scripted, in-process fake of the DynamoDB Streams API for the consumer specs.
--
-- It follows the AWS semantics in shared/reference/streams-and-consumers.md:
-- DescribeStream pages of at most 100 shards (ExclusiveStartShardId /
-- LastEvaluatedShardId); iterators that encode (shard, position) and expire
-- after 900 s of fake time; LATEST points after the last record; GetRecords on
-- a closed shard that reaches its end returns no NextShardIterator; reads before
-- the trim horizon raise TrimmedDataAccessException; vanished shards raise
-- ResourceNotFoundException. Failures can be injected per call, empty pages can
-- be put in front of data, and every call is logged.
--
--   local fake = require("fake_streams").new()
--   fake:add_shard("A")                       -- open shard
--   fake:add_shard("B", { parent = "A" })     -- child of A
--   fake:insert("A", { pk = "1" })            -- INSERT record, returns its sequence number
--   fake:close("A")                           -- sets EndingSequenceNumber
--   fake:fail("get_records", "ThrottlingException", { shard = "A", times = 1 })
--   fake:fail("get_records", "ThrottlingException", { shard = "A", until_time = 60 })
--                                             -- every call on A fails while fake.now < 60
--   fake:tamper("get_records", function(res, params) res.Records = "x" return res end,
--     { shard = "A", times = 1 })             -- rewrites the next answer(s) for A
--   fake:count("get_records")                 -- calls made so far
--   fake:calls_on("A", "get_records")         -- the calls on shard A ({ op, params, at = fake.now })
local Fake = {}
Fake.__index = Fake

local ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/fake/stream/2024-01-01T00:00:00.000"

local err_mt = { __tostring = function(e) return e.code .. ": " .. e.message end }

local function api_error(code, message)
  local retryable = code == "ThrottlingException" or code == "LimitExceededException"
    or code == "InternalServerError"
  return setmetatable({ code = code, message = message or code, status = 400, retryable = retryable }, err_mt)
end

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return out
end

-- A flat Lua table of strings/numbers/booleans as an AttributeValue map.
local function av_map(item)
  if item == nil then return nil end
  local out = {}
  for k, v in pairs(item) do
    if type(v) == "number" then out[k] = { N = tostring(v) }
    elseif type(v) == "boolean" then out[k] = { BOOL = v }
    else out[k] = { S = tostring(v) } end
  end
  return out
end

function Fake.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Fake)
  self.stream_arn = opts.stream_arn or ARN
  self.expiry = opts.expiry or 900            -- iterator lifetime, fake seconds
  self.page_size = opts.page_size or 1000     -- most records per GetRecords page
  self.ddb_local_quirk = opts.ddb_local_quirk -- TRIM_HORIZON taken on an empty shard goes Trimmed
  self.seq_digits = opts.seq_digits or 21
  self.now = 0
  self.epoch = opts.epoch or 1700000000       -- wall clock at now = 0 (fake:wall())
  self.seq = 0
  self.shards, self.by_id = {}, {}
  self.iterators, self.next_iterator = {}, 0
  self.failures = {}
  self.calls = {}
  -- Like ds.client(), answer many GetRecords at once (the stream then reads
  -- in parallel rounds); Fake.parallel sets the default for a whole spec run.
  if opts.parallel or (opts.parallel == nil and Fake.parallel) then self.get_records_many = Fake._get_records_many end
  return self
end

-- GetRecords for every params table -> answers, errs (as Service:call_many).
function Fake:_get_records_many(list)
  local answers, errs = {}, {}
  for i, params in ipairs(list) do answers[i], errs[i] = self:get_records(params) end
  return answers, errs
end

function Fake:next_seq()
  self.seq = self.seq + 1
  local tail = string.format("%018d", self.seq)
  return "1" .. string.rep("0", self.seq_digits - 1 - #tail) .. tail
end

-------------------------------------------------------------------- scripting

function Fake:add_shard(id, opts)
  opts = opts or {}
  assert(not self.by_id[id], "duplicate shard " .. id)
  local shard = {
    id = id, parent = opts.parent, records = {}, trim = 0, empty_pages = 0,
    starting = self:next_seq(),
  }
  self.shards[#self.shards + 1] = shard
  self.by_id[id] = shard
  if opts.closed then self:close(id) end
  return shard
end

function Fake:shard(id) return assert(self.by_id[id], "no shard " .. tostring(id)) end

function Fake:close(id)
  local shard = self:shard(id)
  shard.closed = true
  local last = shard.records[#shard.records]
  shard.ending = last and last.dynamodb.SequenceNumber or shard.starting
end

-- The shard ages out: no longer listed, every call on it is ResourceNotFound.
function Fake:delete_shard(id) self:shard(id).deleted = true end

-- Trims the first n records of a shard (they are older than 24 h).
function Fake:trim(id, n) local s = self:shard(id); s.trim = math.min(n, #s.records) end

-- The next n GetRecords calls on the shard return [] without moving.
function Fake:empty_pages(id, n) self:shard(id).empty_pages = n end

function Fake:advance(seconds) self.now = self.now + seconds end

-- The fake's wall clock in epoch seconds; records are stamped with it, rounded
-- down to the second as DynamoDB Streams does.
function Fake:wall() return self.epoch + self.now end

function Fake:put(id, event_name, keys, new_image, old_image, extra)
  local shard = self:shard(id)
  assert(not shard.closed, "shard " .. id .. " is closed")
  local seq = self:next_seq()
  local record = {
    eventID = "ev-" .. seq, eventName = event_name, eventVersion = "1.1",
    eventSource = "aws:dynamodb", awsRegion = "us-east-1",
    dynamodb = {
      ApproximateCreationDateTime = math.floor(self:wall()),
      Keys = av_map(keys), NewImage = av_map(new_image), OldImage = av_map(old_image),
      SequenceNumber = seq, SizeBytes = 42, StreamViewType = "NEW_AND_OLD_IMAGES",
    },
  }
  for k, v in pairs(extra or {}) do record[k] = v end
  shard.records[#shard.records + 1] = record
  return seq
end

function Fake:insert(id, item) return self:put(id, "INSERT", { pk = item.pk }, item, nil) end
function Fake:modify(id, new, old) return self:put(id, "MODIFY", { pk = new.pk }, new, old) end
function Fake:remove(id, old) return self:put(id, "REMOVE", { pk = old.pk }, nil, old) end

-- Queues a failure: the next `times` calls of op (on `shard` if given) fail with
-- code; with until_time, every such call fails while fake.now < until_time.
function Fake:fail(op, code, opts)
  opts = opts or {}
  self.failures[#self.failures + 1] = {
    op = op, code = code, shard = opts.shard, times = opts.times or 1, message = opts.message,
    until_time = opts.until_time,
  }
end

-- Queues a rewrite of successful answers: the next `times` (default 1; math.huge
-- for all) answers of op (on `shard` if given) are replaced by fn(answer, params),
-- whatever it returns (any Lua value: the fake does not check it). fn may also
-- be a plain value, returned as is.
function Fake:tamper(op, fn, opts)
  opts = opts or {}
  self.tampers = self.tampers or {}
  self.tampers[#self.tampers + 1] = { op = op, fn = fn, shard = opts.shard, times = opts.times or 1 }
end

function Fake:count(op, pred)
  local n = 0
  for _, call in ipairs(self.calls) do
    if (op == nil or call.op == op) and (pred == nil or pred(call.params)) then n = n + 1 end
  end
  return n
end

-- The calls of op (every op if nil) that concern shard id (by ShardId, or by
-- the shard its ShardIterator belongs to), in order.
function Fake:calls_on(id, op)
  local out = {}
  for _, call in ipairs(self.calls) do
    local p = call.params
    local it = self.iterators[p.ShardIterator or ""]
    if (op == nil or call.op == op) and (p.ShardId == id or (it and it.shard.id == id)) then
      out[#out + 1] = call
    end
  end
  return out
end

-- The same fake seen through the camelCase method names only.
function Fake:camel()
  local fake = self
  return {
    describeStream = function(_, p) return fake:describe_stream(p) end,
    getShardIterator = function(_, p) return fake:get_shard_iterator(p) end,
    getRecords = function(_, p) return fake:get_records(p) end,
  }
end

-------------------------------------------------------------------- the API

local function injected(self, op, shard_id)
  for i, f in ipairs(self.failures) do
    if f.op == op and (f.shard == nil or f.shard == shard_id) then
      if f.until_time then
        if self.now < f.until_time then return api_error(f.code, f.message) end
        table.remove(self.failures, i)
        return injected(self, op, shard_id)
      end
      f.times = f.times - 1
      if f.times <= 0 then table.remove(self.failures, i) end
      return api_error(f.code, f.message)
    end
  end
end

-- Applies the first matching tamper to a successful answer.
local function tampered(self, op, shard_id, params, res, err)
  if res == nil then return res, err end
  for i, t in ipairs(self.tampers or {}) do
    if t.op == op and (t.shard == nil or t.shard == shard_id) then
      t.times = t.times - 1
      if t.times <= 0 then table.remove(self.tampers, i) end
      if type(t.fn) == "function" then return t.fn(res, params) end
      return t.fn
    end
  end
  return res
end

function Fake:_log(op, params)
  self.calls[#self.calls + 1] = { op = op, params = deep_copy(params), at = self.now }
end

function Fake:describe_stream(params)
  return tampered(self, "describe_stream", nil, params, self:_describe_stream(params))
end

function Fake:get_shard_iterator(params)
  return tampered(self, "get_shard_iterator", params.ShardId, params, self:_get_shard_iterator(params))
end

function Fake:get_records(params)
  local it = self.iterators[params.ShardIterator or ""]
  return tampered(self, "get_records", it and it.shard.id, params, self:_get_records(params))
end

function Fake:_describe_stream(params)
  self:_log("describe_stream", params)
  if params.StreamArn ~= self.stream_arn or self.stream_deleted then
    return nil, api_error("ResourceNotFoundException", "Requested resource not found: Stream")
  end
  local e = injected(self, "describe_stream") if e then return nil, e end
  local limit = params.Limit or 100
  if limit > 100 then return nil, api_error("ValidationException", "Limit must be <= 100") end
  local listed = {}
  for _, s in ipairs(self.shards) do if not s.deleted then listed[#listed + 1] = s end end
  local first = 1
  if params.ExclusiveStartShardId then
    for i, s in ipairs(listed) do
      if s.id == params.ExclusiveStartShardId then first = i + 1 end
    end
  end
  local shards = {}
  for i = first, math.min(#listed, first + limit - 1) do
    local s = listed[i]
    shards[#shards + 1] = {
      ShardId = s.id, ParentShardId = s.parent,
      SequenceNumberRange = { StartingSequenceNumber = s.starting, EndingSequenceNumber = s.ending },
    }
  end
  local last = first + limit - 1 < #listed and listed[first + limit - 1].id or nil
  return { StreamDescription = {
    StreamArn = self.stream_arn, StreamStatus = "ENABLED", StreamViewType = "NEW_AND_OLD_IMAGES",
    Shards = shards, LastEvaluatedShardId = last,
  } }
end

function Fake:_iterator(shard, pos, horizon_empty)
  self.next_iterator = self.next_iterator + 1
  local it = string.format("it-%s-%d-%d", shard.id, pos, self.next_iterator)
  self.iterators[it] = { shard = shard, pos = pos, issued = self.now, horizon_empty = horizon_empty }
  return it
end

local function index_of(shard, seq, after)
  local seqnum = require("dynamodb_stream.seqnum")
  for i, r in ipairs(shard.records) do
    local c = seqnum.compare(r.dynamodb.SequenceNumber, seq)
    if c > 0 or (c == 0 and not after) then return i end
  end
  return #shard.records + 1
end

function Fake:_get_shard_iterator(params)
  self:_log("get_shard_iterator", params)
  local shard = self.by_id[params.ShardId]
  if params.StreamArn ~= self.stream_arn or self.stream_deleted or not shard or shard.deleted then
    return nil, api_error("ResourceNotFoundException", "Requested resource not found: Shard does not exist")
  end
  local e = injected(self, "get_shard_iterator", shard.id) if e then return nil, e end
  local t, pos = params.ShardIteratorType, nil
  if t == "TRIM_HORIZON" then
    return { ShardIterator = self:_iterator(shard, shard.trim + 1,
      self.ddb_local_quirk and #shard.records == 0) }
  elseif t == "LATEST" then
    pos = #shard.records + 1
  elseif t == "AT_SEQUENCE_NUMBER" or t == "AFTER_SEQUENCE_NUMBER" then
    if not params.SequenceNumber then
      return nil, api_error("ValidationException", "SequenceNumber is required for " .. t)
    end
    pos = index_of(shard, params.SequenceNumber, t == "AFTER_SEQUENCE_NUMBER")
    if pos <= shard.trim then
      return nil, api_error("TrimmedDataAccessException", "sequence number is beyond the trim horizon")
    end
  else
    return nil, api_error("ValidationException", "bad ShardIteratorType " .. tostring(t))
  end
  return { ShardIterator = self:_iterator(shard, pos) }
end

function Fake:_get_records(params)
  self:_log("get_records", params)
  local it = self.iterators[params.ShardIterator or ""]
  if not it then return nil, api_error("ValidationException", "Invalid ShardIterator") end
  local shard = it.shard
  if self.stream_deleted or shard.deleted then
    return nil, api_error("ResourceNotFoundException", "Requested resource not found: Shard does not exist")
  end
  local e = injected(self, "get_records", shard.id) if e then return nil, e end
  if self.now - it.issued >= self.expiry then
    return nil, api_error("ExpiredIteratorException", "Iterator expired")
  end
  if it.horizon_empty and #shard.records > 0 then
    return nil, api_error("TrimmedDataAccessException",
      "The operation attempted to read past the oldest stream record in a shard.")
  end
  if it.pos <= shard.trim then
    return nil, api_error("TrimmedDataAccessException", "records were trimmed")
  end
  if params.Limit and (params.Limit < 1 or params.Limit > 1000) then
    return nil, api_error("ValidationException", "Limit must be 1..1000")
  end
  local records, pos = {}, it.pos
  if shard.empty_pages > 0 then
    shard.empty_pages = shard.empty_pages - 1
  else
    local limit = math.min(params.Limit or 1000, self.page_size)
    while #records < limit and shard.records[pos] do
      records[#records + 1] = deep_copy(shard.records[pos])
      pos = pos + 1
    end
  end
  local next_it
  if not (shard.closed and pos > #shard.records) then
    next_it = self:_iterator(shard, pos, it.horizon_empty and #records == 0)
  end
  return { Records = records, NextShardIterator = next_it }
end

-------------------------------------------------------------------- spec helpers

-- The value of an AttributeValue map's pk (raw) or of an unmarshalled table.
local function pk(x)
  if type(x) ~= "table" then return tostring(x) end
  local v = x.pk
  if type(v) == "table" then return v.S or v.N end
  return tostring(v)
end
Fake.pk = pk

-- Attaches listeners to a stream and returns a log of compact lines:
-- "insert 1", "modify 2<1", "remove A", "new A,B", "removed A", "gap A@<seq>", "error Code".
function Fake.recorder(stream)
  local log = {}
  local function add(line) log[#log + 1] = line end
  stream:on("insert record", function(new, keys) add("insert " .. pk(new or keys)) end)
  stream:on("modify record", function(new, old, keys)
    add("modify " .. pk(new or keys) .. "<" .. (old and pk(old) or "?"))
  end)
  stream:on("remove record", function(old, keys) add("remove " .. pk(old or keys)) end)
  stream:on("new shards", function(ids) add("new " .. table.concat(ids, ",")) end)
  stream:on("remove shards", function(ids) add("removed " .. table.concat(ids, ",")) end)
  stream:on("gap", function(info) add("gap " .. info.shard_id .. "@" .. tostring(info.last_sequence_number)) end)
  stream:on("error", function(err) add("error " .. tostring(err.code)) end)
  return log
end

-- Only the lines of a log that start with one of the prefixes.
function Fake.only(log, ...)
  local out = {}
  for _, line in ipairs(log) do
    for i = 1, select("#", ...) do
      local p = select(i, ...)
      if line:sub(1, #p) == p then out[#out + 1] = line break end
    end
  end
  return out
end

return Fake
