-- The DynamoDB Streams consumer: the API and events of the npm package
-- dynamodb-stream 1.1.4, without its defects (see README, "Coming from npm").
--
--   local stream = Stream.new(client, stream_arn[, unmarshall | opts])
--   stream:on('insert record', function(new, keys, record) ... end)
--   local records, err = stream:fetch_stream_state()
--   stream:run{ checkpoint = 'state.json' }     -- polls until stream:stop()
--
-- Per shard we keep the iterator, the last delivered sequence number and the
-- position to re-open at when the iterator is lost (expired, trimmed, a
-- listener failed, a restart). Within a shard records are delivered in order;
-- a child shard is read only after its parent was read to its end.
--
-- Answers are checked field by field before use: a field of the wrong type,
-- a shard id or iterator with a control character, a record that is not a
-- record make the fetch fail with InvalidResponse (nothing is requested for a
-- bad shard; a bad record stops the shard there, like a failing listener, so
-- nothing after it is skipped). A throttled shard is backed off on its own
-- (see _throttled); the others keep being read.
local Emitter = require("dynamodb_stream.emitter")
local seqnum = require("dynamodb_stream.seqnum")
local compat = require("dynamodb_stream.compat")

local core = require("dynamodb_stream.core")
local NULL = core.null

local Stream = setmetatable({}, { __index = Emitter })
Stream.__index = Stream

local EVENT_FOR = { INSERT = "insert record", MODIFY = "modify record", REMOVE = "remove record" }
local ITERATOR_TYPES = {
  TRIM_HORIZON = true, LATEST = true, AT_SEQUENCE_NUMBER = true, AFTER_SEQUENCE_NUMBER = true,
}
local CLIENT_METHODS = {
  { "describe_stream", "describeStream" },
  { "get_shard_iterator", "getShardIterator" },
  { "get_records", "getRecords" },
}
local MAX_DESCRIBE_PAGES = 10000

-- Per-shard backoff after a throttled (or transient: errors.class) call, the
-- client having already retried, and after position errors that re-opening
-- did not cure: BASE, 2*BASE, ... up to CAP seconds, each scaled by a random
-- factor in [0.5, 1).
local BACK_OFF = { throttling = true, transient = true }
local THROTTLE_BASE, THROTTLE_CAP = 0.5, 30
-- Pages with nothing new read through at once in a closed shard (one has
-- more ahead until GetRecords drops NextShardIterator); then one per fetch.
local MAX_EMPTY_READ_THROUGH = 3
-- Seconds between two lines about the same error repeating (see _report).
local REPORT_EVERY = 60
-- Calls per shard and fetch that only recover its position (see _budget_left).
local MAX_RECOVERIES = 3

---------------------------------------------------------------------- errors

local errors = require("dynamodb_stream.errors")

local function new_error(code, message, fields)
  local e = errors.new({ code = code, message = message, retryable = fields and fields.retryable })
  for k, v in pairs(fields or {}) do
    if e[k] == nil then e[k] = v end
  end
  return e
end

-- Client errors are tables with a code; anything else is wrapped.
local function as_error(err, operation)
  if type(err) == "table" and type(err.code) == "string" then return err end
  return new_error("ClientError", tostring(err), { operation = operation, retryable = true })
end

local function absent(v) return v == nil or v == NULL or v == "" end

-- Stream ARNs, shard ids and iterators end up in request bodies: a control
-- character (CR, LF, NUL, any byte < 0x20, DEL) in one is refused.
local function has_control(s) return s:find("[%z\1-\31\127]") ~= nil end

local function invalid(message, fields)
  return new_error("InvalidResponse", message, fields)
end

-- A printable excerpt of a bad value for messages.
local function show(v)
  if type(v) ~= "string" then return v == NULL and "null" or type(v) end
  local s = v:sub(1, 60):gsub("[%c\127-\255]", function(c) return string.format("\\%d", c:byte()) end)
  return "'" .. s .. (#v > 60 and "...'" or "'")
end

-- True for a table whose keys are exactly 1..n (the empty table included).
local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- A shard id or iterator from an answer: a non-empty string without control
-- characters. Returns the value, or nil and why.
local function good_name(v)
  if type(v) ~= "string" or v == "" then return nil, show(v) end
  if has_control(v) then return nil, show(v) .. " (control character)" end
  return v
end

---------------------------------------------------------------------- helpers

local function now()
  return core.monotime()
end

local function check_position(pos, where)
  if type(pos) ~= "table" then error(where .. ": position table expected", 3) end
  local t = pos.type or "AFTER_SEQUENCE_NUMBER"
  if not ITERATOR_TYPES[t] then error(where .. ": bad iterator type " .. tostring(t), 3) end
  local seq = pos.sequence_number or pos.sequenceNumber
  if t == "AT_SEQUENCE_NUMBER" or t == "AFTER_SEQUENCE_NUMBER" then
    if not seqnum.valid(seq) then error(where .. ": sequence number must be a digit string", 3) end
  end
  local times = {}
  for name, key in pairs({ openedAt = "opened_at", readAt = "read_at" }) do
    local v = pos[key] or pos[name]
    if v ~= nil and (type(v) ~= "number" or not (v >= 0 and v < math.huge)) then
      error(where .. ": " .. name .. " must be a time in epoch seconds", 3)
    end
    times[key] = v
  end
  return { type = t, sequence_number = seq, opened_at = times.opened_at, read_at = times.read_at }
end

local function opt_integer(opts, name, lo, hi)
  local v = opts[name]
  if v == nil then return nil end
  if not compat.is_integer(v) or v < lo or v > hi then
    error(string.format("opts.%s must be an integer in %d..%d", name, lo, hi), 3)
  end
  return v
end

-- opts.on_failure: where a record goes when it reaches max_record_attempts or
-- max_record_age (a dead-letter destination, as Lambda's on-failure one): a
-- function(record, err, shard_id) that fails by raising or returning
-- false/nil, err; or a file path, to which each such record is appended as
-- one JSON line { shardId, sequenceNumber, failedAt, error = { code, message,
-- attempts }, record } (opened, appended, flushed and closed each time; a
-- write that fails part-way, a full disk say, can leave a partial line before
-- the retried one). A limit without a destination would drop records
-- silently, and a destination without a limit is never used: both raise.
local function failure_handler(on_failure, limited, wall_clock)
  if on_failure == nil then
    if limited then error("opts.on_failure is required with max_record_attempts or max_record_age", 3) end
    return nil
  end
  local ft = type(on_failure)
  if ft ~= "function" and (ft ~= "string" or on_failure == "" or on_failure:find("%z")) then
    error("opts.on_failure must be a function or a file path (a non-empty string without NUL)", 3)
  end
  if not limited then error("opts.on_failure needs max_record_attempts or max_record_age", 3) end
  if ft == "function" then return on_failure end
  local path = on_failure
  return function(record, err, shard_id)
    local ok, line = pcall(core.json_encode, {
      shardId = shard_id, sequenceNumber = record.dynamodb.SequenceNumber, failedAt = wall_clock(),
      error = { code = err.code, message = err.message, attempts = err.attempts }, record = record,
    })
    if not ok then return nil, "cannot encode the record as JSON: " .. tostring(line) end
    local f, oerr = io.open(path, "ab")
    if not f then return nil, oerr end
    local written, werr = f:write(line, "\n")
    if written then written, werr = f:flush() end
    local closed, cerr = f:close()
    if not written then return nil, path .. ": " .. tostring(werr) end
    if not closed then return nil, path .. ": " .. tostring(cerr) end
    return true
  end
end

---------------------------------------------------------------------- construction

-- Stream.new(client, stream_arn[, unmarshall | opts])
-- opts: unmarshall (function), start_at ('LATEST' | 'TRIM_HORIZON' | { [shard_id] =
-- { sequence_number =, type = 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER' } }),
-- limit (GetRecords Limit, 1..1000), max_pages_per_shard (GetRecords calls per shard
-- per fetch, default 10), clock (function returning seconds, default
-- core.monotime: the throttle backoff and run() use it), wall_clock (function
-- returning epoch seconds, default os.time: when a shard was opened at LATEST,
-- the age of records), max_record_attempts, max_record_age and on_failure
-- (see failure_handler).
function Stream.new(client, stream_arn, opts)
  local ct = type(client)
  if ct ~= "table" and ct ~= "userdata" then error("client (a DynamoDB Streams client) expected", 2) end
  local methods = {}
  for _, names in ipairs(CLIENT_METHODS) do
    local fn = client[names[1]] or client[names[2]]
    if fn == nil then error("client has no " .. names[1] .. " (or " .. names[2] .. ") method", 2) end
    methods[names[1]] = fn
  end
  if type(stream_arn) ~= "string" or stream_arn == "" then error("stream_arn (a string) expected", 2) end
  if has_control(stream_arn) then error("stream_arn contains a control character", 2) end
  if type(opts) == "function" then opts = { unmarshall = opts } end
  if opts ~= nil and type(opts) ~= "table" then error("third argument must be a function or a table", 2) end
  opts = opts or {}
  if opts.unmarshall ~= nil and type(opts.unmarshall) ~= "function" then
    error("opts.unmarshall must be a function", 2)
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then error("opts.clock must be a function", 2) end
  if opts.wall_clock ~= nil and type(opts.wall_clock) ~= "function" then
    error("opts.wall_clock must be a function", 2)
  end
  local max_age = opts.max_record_age
  if max_age ~= nil and (type(max_age) ~= "number" or not (max_age > 0 and max_age < math.huge)) then
    error("opts.max_record_age must be a number of seconds > 0", 2)
  end

  local self = Emitter.new()
  self.client, self.stream_arn = client, stream_arn
  self._call = methods
  -- ds.unmarshall with our own client: the page is parsed and its images
  -- unmarshalled in one pass in C (core.decode_records).
  self._one_pass = opts.unmarshall == core.unmarshall and type(client.get_records_unmarshalled) == "function"
  if self._one_pass then methods.get_records = client.get_records_unmarshalled end
  -- A client that can send many GetRecords at once (ds.client()) polls every
  -- shard in parallel.
  if type(client.get_records_many) == "function" then methods.get_records_many = client.get_records_many end
  self._max_in_flight = opt_integer(opts, "max_in_flight", 1, 1024) or 64
  self._unmarshall = opts.unmarshall
  self._limit = opt_integer(opts, "limit", 1, 1000)
  self._max_pages = opt_integer(opts, "max_pages_per_shard", 1, 1000000) or 10
  self._shards, self._order = {}, {}  -- tracked shards by id; ids in reading order
  self._retired = {}                  -- finished shard ids still listed -> summary
  self._listed = {}                   -- ids in the last DescribeStream
  self._initial = true                -- next describe is the first since new/set_shard_state
  self._start_type = "LATEST"
  self._clock = opts.clock or now
  self._advanced = 0                  -- records the last fetch moved past (see _guarded)
  self._wall_clock = opts.wall_clock or os.time
  self._max_attempts = opt_integer(opts, "max_record_attempts", 1, 1000000000)
  self._max_age = max_age
  self._on_failure = failure_handler(opts.on_failure, self._max_attempts or max_age, self._wall_clock)
  self._stats = { delivered = 0, failed_attempts = 0, retries = 0, failed_over = 0, on_failure_errors = 0,
    skipped = 0, gaps = 0 }
  setmetatable(self, Stream)

  local start = opts.start_at
  if start == nil or start == "LATEST" or start == "TRIM_HORIZON" then
    self._start_type = start or "LATEST"
  elseif type(start) == "table" then
    self._start_type = "TRIM_HORIZON"  -- shards not named in start_at (new since) lose nothing
    local ids = {}
    for id in pairs(start) do
      if type(id) ~= "string" or id == "" then error("opts.start_at keys must be shard ids", 2) end
      if has_control(id) then error("opts.start_at: a shard id contains a control character", 2) end
      ids[#ids + 1] = id
    end
    table.sort(ids)
    for _, id in ipairs(ids) do
      local sh = self:_track(id, nil, check_position(start[id], "opts.start_at." .. id))
      sh.announce = true
    end
    self._restored = #ids > 0
  else
    error("opts.start_at must be 'LATEST', 'TRIM_HORIZON' or a table of shard positions", 2)
  end
  return self
end

-- Starts tracking a shard that will be read from position.
function Stream:_track(id, parent, position)
  local sh = { shard_id = id, parent_shard_id = parent, position = position }
  self._shards[id] = sh
  self._order[#self._order + 1] = id
  return sh
end

---------------------------------------------------------------------- reporting

-- Emits 'error' when someone listens (a raising error listener is ignored);
-- inside run, with no listener, reports it (see _report). Returns nil, err
-- for the caller.
function Stream:_fail(err)
  if self:listener_count("error") > 0 then
    pcall(self.emit, self, "error", err)
  elseif self._running then
    self:_report(err)
  end
  return nil, err
end

-- One line on stderr, or in nginx's error log.
local function write_report(line)
  local ngx = rawget(_G, "ngx")
  if ngx and require("dynamodb_stream.ngx_http").in_nginx() then
    ngx.log(ngx.ERR, line)
  else
    io.stderr:write(line, "\n")
  end
end

local function report_line(err)
  local text = tostring(err)
  if text:find("^table: ") then text = tostring(err.code) .. ": " .. tostring(err.message) end
  if err.shard_id then text = text .. " [shard " .. tostring(err.shard_id) .. "]" end
  return "dynamodb_stream: " .. text
end

local function write_repeats(seen)
  write_report(seen.line .. " repeated " .. seen.count .. (seen.count == 1 and " time" or " times"))
  seen.count = 0
end

-- run() with no 'error' listener is never silent, and never floods the log:
-- an error is written once; the same again (same operation, code and shard:
-- messages may hold an iterator) is counted, and the count is written at most
-- every REPORT_EVERY seconds, and when run returns.
function Stream:_report(err)
  local key = tostring(err.operation) .. "|" .. tostring(err.code) .. "|" .. tostring(err.shard_id)
  local reported, t = self._reported, self._clock()
  local seen = reported[key]
  if seen then
    seen.count = seen.count + 1
    if t - seen.at >= REPORT_EVERY then write_repeats(seen) seen.at = t end
    return
  end
  seen = { line = report_line(err), count = 0, at = t }
  reported[key], reported[#reported + 1] = seen, seen
  write_report(seen.line .. " (no 'error' listener)")
end

-- At the end of run: the counts not written yet, in the order the errors came.
function Stream:_report_repeats()
  for _, seen in ipairs(self._reported) do
    if seen.count > 0 then write_repeats(seen) end
  end
  self._reported = {}
end

-- Emits a shard event; a raising listener is reported, not fatal.
function Stream:_notify(event, ids)
  if #ids == 0 then return end
  local ok, raised = pcall(self.emit, self, event, ids)
  if not ok then
    self:_fail(new_error("ListenerError", tostring(raised), { event = event, cause = raised }))
  end
end

function Stream:_client(op, params)
  local ok, res, err = pcall(self._call[op], self.client, params)
  if not ok then return nil, new_error("ClientError", tostring(res), { operation = op }) end
  if res == nil then return nil, as_error(err, op) end
  if type(res) ~= "table" then
    return nil, invalid(op .. " returned " .. show(res) .. ", not an object", { operation = op })
  end
  return res
end

---------------------------------------------------------------------- shards

-- One shard entry of a DescribeStream page -> { id, parent, closed }, or nil
-- and an InvalidResponse error.
local function shard_entry(s)
  local function bad(what)
    return nil, invalid("DescribeStream: " .. what, { operation = "describe_stream" })
  end
  if type(s) ~= "table" then return bad("a shard is " .. show(s) .. ", not an object") end
  local id, why = good_name(s.ShardId)
  if not id then return bad("bad ShardId " .. why) end
  local parent = s.ParentShardId
  if parent == nil or parent == NULL or parent == "" then
    parent = nil
  else
    parent, why = good_name(parent)
    if not parent then return bad("bad ParentShardId " .. why .. " for shard " .. id) end
  end
  local range = s.SequenceNumberRange
  if range == nil or range == NULL then
    range = {}
  elseif type(range) ~= "table" then
    return bad("SequenceNumberRange is " .. show(range) .. " for shard " .. id)
  end
  local ending = range.EndingSequenceNumber
  if not absent(ending) and not seqnum.valid(ending) then
    return bad("bad EndingSequenceNumber " .. show(ending) .. " for shard " .. id)
  end
  return { id = id, parent = parent, closed = not absent(ending) }
end

-- Lists every shard (all pages of DescribeStream) and updates what we track.
-- A malformed page changes nothing (nil, InvalidResponse).
function Stream:_describe()
  local listing, parent_of, start_id = {}, {}, nil
  local seen = {}
  for _ = 1, MAX_DESCRIBE_PAGES do
    local res, err = self:_client("describe_stream",
      { StreamArn = self.stream_arn, ExclusiveStartShardId = start_id })
    if not res then return nil, err end
    local desc = res.StreamDescription
    if type(desc) ~= "table" then
      return nil, invalid("DescribeStream returned no StreamDescription", { operation = "describe_stream" })
    end
    self.stream_status = type(desc.StreamStatus) == "string" and desc.StreamStatus or nil
    local shards = desc.Shards
    if shards == nil or shards == NULL then
      shards = {}
    elseif not is_list(shards) then
      return nil, invalid("DescribeStream: Shards is " .. show(shards) .. ", not an array",
        { operation = "describe_stream" })
    end
    for _, s in ipairs(shards) do
      local entry, bad = shard_entry(s)
      if not entry then return nil, bad end
      if not seen[entry.id] then -- a shard listed twice is the same shard
        seen[entry.id] = true
        listing[#listing + 1] = entry
        parent_of[entry.id] = entry.parent or false
      end
    end
    local last = desc.LastEvaluatedShardId
    if last == nil or last == NULL or last == "" then start_id = nil break end
    local why
    last, why = good_name(last)
    if not last then
      return nil, invalid("DescribeStream: bad LastEvaluatedShardId " .. why, { operation = "describe_stream" })
    end
    if last == start_id then
      return nil, invalid("DescribeStream repeated LastEvaluatedShardId " .. last, { operation = "describe_stream" })
    end
    start_id = last
  end
  if start_id then return nil, invalid("DescribeStream did not end", { operation = "describe_stream" }) end

  -- After a restore (or start_at positions), shards we do not know that are
  -- ancestors of shards we do know were read before the state was saved.
  local done_before = {}
  if self._initial and self._restored then
    for id, sh in pairs(self._shards) do
      local p = sh.parent_shard_id or parent_of[id]
      local visited = {}
      while p and not visited[p] do
        visited[p] = true
        done_before[p] = true
        p = parent_of[p]
      end
    end
  end

  local listed, new_ids = {}, {}
  for _, s in ipairs(listing) do
    listed[s.id] = true
    local sh = self._shards[s.id]
    if sh then
      sh.parent_shard_id = sh.parent_shard_id or s.parent
      sh.closed = s.closed
      if sh.announce then sh.announce = nil; new_ids[#new_ids + 1] = s.id end
    elseif self._retired[s.id] then -- luacheck: ignore 542
      -- read to its end already
    elseif self._initial and (done_before[s.id]
        or (not self._restored and self._start_type == "LATEST" and s.closed)) then
      -- nothing after "now" in a closed shard; an ancestor of a restored shard
      self._retired[s.id] = { shard_id = s.id, parent_shard_id = s.parent }
    else
      local start_type = self._initial and not self._restored and self._start_type or "TRIM_HORIZON"
      local sh_new = self:_track(s.id, s.parent, { type = start_type })
      sh_new.closed = s.closed
      new_ids[#new_ids + 1] = s.id
    end
  end
  for id in pairs(self._retired) do
    if not listed[id] then self._retired[id] = nil end
  end
  self._listed = listed
  self._initial = false
  self._described = true
  self:_notify("new shards", new_ids)
  return true
end

-- Stops tracking a shard (read to its end, or gone) and reports it once. A
-- finished shard is remembered while DescribeStream lists it, so that it does
-- not come back as new.
function Stream:_retire(sh, gone)
  self._shards[sh.shard_id] = nil
  if not gone or self._listed[sh.shard_id] then
    self._retired[sh.shard_id] = {
      shard_id = sh.shard_id, parent_shard_id = sh.parent_shard_id, sequence_number = sh.sequence_number,
    }
  end
  self._shard_changed = true
  self:_notify("remove shards", { sh.shard_id })
end

-- A child waits until its parent is read to its end; a parent we do not
-- track (finished, aged out of the stream, never seen) does not hold it back.
function Stream:_ready(sh)
  local parent = sh.parent_shard_id and self._shards[sh.parent_shard_id]
  return parent == nil
end

---------------------------------------------------------------------- records

-- An image as the listeners get it: unmarshalled by the stream's function
-- unless the page already was.
local function image(av, unmarshall, unmarshalled)
  if av == nil or av == NULL then return nil end
  if not unmarshall or unmarshalled then return av end
  local ok, v = pcall(unmarshall, av)
  if not ok then error(new_error("UnmarshallError", tostring(v), { cause = v }), 0) end
  return v
end

-- Calls the listeners for one record. Raises if unmarshall or a listener does
-- (an unmarshall failure raises an UnmarshallError before any listener runs).
function Stream:_dispatch(record, shard_id, unmarshalled)
  local event = EVENT_FOR[record.eventName]
  local ddb = type(record.dynamodb) == "table" and record.dynamodb or {}
  local unmarshall = self._unmarshall
  local keys, new, old
  if event then
    keys = image(ddb.Keys, unmarshall, unmarshalled)
    if event ~= "remove record" then new = image(ddb.NewImage, unmarshall, unmarshalled) end
    if event ~= "insert record" then old = image(ddb.OldImage, unmarshall, unmarshalled) end
  end
  -- With an unmarshall function the record carries the unmarshalled images, as
  -- the one-pass C path (core.decode_records) delivers them.
  if event and unmarshall and not unmarshalled then
    ddb.Keys, ddb.NewImage, ddb.OldImage = keys, new or ddb.NewImage, old or ddb.OldImage
  end
  record.shardId = shard_id
  self:emit("record", record, shard_id)
  if event == "insert record" then
    self:emit(event, new, keys, record)
  elseif event == "modify record" then
    self:emit(event, new, old, keys, record)
  elseif event == "remove record" then
    self:emit(event, old, keys, record)
  end
end

-- xpcall handler: keeps our own errors, adds a traceback to the others.
local function trace(e)
  if errors.is_error(e) and e.code == "UnmarshallError" then return e end
  local message = type(e) == "string" and e or tostring(e)
  return new_error("ListenerError", message, { cause = e, traceback = debug.traceback(message, 2) })
end

-- A shard opened at LATEST records when (position.opened_at, epoch seconds
-- by the wall clock, read before the call) and, while nothing is delivered,
-- when it was last read to its tip (read_at: the start of the fetch that got
-- an empty page; an empty page in the middle of a shard, which GetRecords may
-- return, can only make a later 'gap' be missed, never a record). If
-- that iterator is lost before anything was delivered (expired after 15
-- minutes, a restart, a stop), the shard is read again from TRIM_HORIZON and
-- the records created before opened_at - LATEST_MARGIN are skipped (see _open
-- and _take). The margin covers ApproximateCreationDateTime being rounded
-- down to the second, the skew between this host's clock and AWS's, and the
-- time a write takes to reach the stream: records up to a minute older than
-- the LATEST start may be delivered, none after it is lost. The stream keeps
-- 24 hours of records: what was written after read_at may have been trimmed
-- unread if that is older (see _horizon_checked).
local LATEST_MARGIN = 60
local RETENTION = 24 * 3600

-- A position of type t (at seq) that keeps pos's LATEST start and last read.
local function keeping_start(pos, t, seq)
  return { type = t, sequence_number = seq, opened_at = pos.opened_at, read_at = pos.read_at }
end

-- Until when a shard opened at LATEST was read through that iterator.
local function read_until(pos) return pos.read_at or pos.opened_at end

-- Whether records written since t may have been trimmed by now.
function Stream:_beyond_retention(t)
  return self._wall_clock() - t >= RETENTION - LATEST_MARGIN
end

-- Emits 'gap'; a raising listener is reported, not fatal.
function Stream:_gap(info)
  self._stats.gaps = self._stats.gaps + 1
  local ok, raised = pcall(self.emit, self, "gap", info)
  if not ok then
    self:_fail(new_error("ListenerError", tostring(raised), { event = "gap", cause = raised }))
  end
end

-- Data was trimmed away before we read it, unless we were reading from the
-- trim horizon and had delivered nothing since (DynamoDB Local answers Trimmed
-- to a TRIM_HORIZON iterator taken on an empty shard; re-opening loses nothing).
-- A position that keeps a LATEST start's time goes back to the trim horizon
-- with that time, and _horizon_checked judges the gap.
function Stream:_trimmed(sh, reason)
  local pos = sh.position
  if pos.type ~= "TRIM_HORIZON" and not pos.opened_at then
    self:_gap({ shard_id = sh.shard_id, last_sequence_number = sh.sequence_number, reason = reason })
  end
  sh.iterator = nil
  sh.position = keeping_start(pos, "TRIM_HORIZON")
end

-- The first record read from the trim horizon after a lost LATEST iterator
-- (older: created before that iterator's last read), or nil when the shard
-- ended without one. sh.horizon_check is set when that last read is older
-- than the retention: then unless a record from before it is still there
-- (trimming goes in order), what was written since may have been trimmed
-- unread, and that is a 'gap'.
function Stream:_horizon_checked(sh, older)
  sh.horizon_check = nil
  if not older then
    self:_gap({ shard_id = sh.shard_id, reason = "RetentionExceeded", since = read_until(sh.position) })
  end
end

local function bad_record(what) return nil, invalid("GetRecords: " .. what, { operation = "get_records" }) end
local OPTIONAL_IMAGES = { "NewImage", "OldImage" }

-- Checks the fields of a record that the consumer reads. Returns its sequence
-- number, or nil and an InvalidResponse error. An unknown eventName (a string)
-- is allowed: such a record is delivered as 'record' only.
local function check_record(record)
  if type(record) ~= "table" then return bad_record("a record is " .. show(record) .. ", not an object") end
  if type(record.eventName) ~= "string" then return bad_record("eventName is " .. show(record.eventName)) end
  local ddb = record.dynamodb
  if type(ddb) ~= "table" then return bad_record("dynamodb is " .. show(ddb) .. ", not an object") end
  local seq = ddb.SequenceNumber
  if not seqnum.valid(seq) then return bad_record("bad SequenceNumber " .. show(seq)) end
  if type(ddb.Keys) ~= "table" then return bad_record("Keys is " .. show(ddb.Keys) .. " in record " .. seq) end
  for i = 1, 2 do
    local name = OPTIONAL_IMAGES[i]
    local v = ddb[name]
    if v ~= nil and v ~= NULL and type(v) ~= "table" then
      return bad_record(name .. " is " .. show(v) .. " in record " .. seq)
    end
  end
  return seq
end

-- Stops sh at a record it could not hand over: the next fetch re-opens there.
local function stop_at(sh, seq, err)
  sh.iterator = nil
  sh.position = { type = "AT_SEQUENCE_NUMBER", sequence_number = seq }
  return nil, err
end

-- The record was handed over (to the listeners or on_failure): sh moves past it.
local function passed(sh, seq)
  sh.failing = nil
  sh.sequence_number = seq
  sh.position = { type = "AFTER_SEQUENCE_NUMBER", sequence_number = seq }
end

-- A new record of sh: skipped (created before a lost LATEST start, see
-- LATEST_MARGIN), handed to on_failure (max_record_age, or max_record_attempts
-- reached), or delivered. Attempts are counted per record in sh.failing (only
-- the record a shard stopped at can be failing). Returns true, or nil and an
-- error with the shard stopped at the record.
function Stream:_take(sh, record, seq, unmarshalled, out)
  local stats, pos = self._stats, sh.position
  local created = record.dynamodb.ApproximateCreationDateTime
  if type(created) ~= "number" or created ~= created then created = nil end -- absent: never skipped
  if pos.opened_at and pos.type ~= "LATEST" then
    if sh.horizon_check then
      self:_horizon_checked(sh, created ~= nil and created < read_until(pos) - LATEST_MARGIN)
    end
    if created ~= nil and created < pos.opened_at - LATEST_MARGIN then
      sh.position = keeping_start(pos, "AFTER_SEQUENCE_NUMBER", seq)
      stats.skipped = stats.skipped + 1
      self._advanced = self._advanced + 1
      return true
    end
  end
  local failing = sh.failing
  if failing and failing.sequence_number ~= seq then failing = nil end
  local age = self._max_age and created and self._wall_clock() - created
  if age and age > self._max_age then
    return self:_fail_over(sh, record, seq, new_error("RecordAgeExceeded", string.format(
      "record %s is %.0f s old (max_record_age %s)", seq, age, tostring(self._max_age)),
      { age = age, attempts = failing and failing.attempts or 0 }))
  end
  if failing and self._max_attempts and failing.attempts >= self._max_attempts then
    return self:_fail_over(sh, record, seq, failing.err) -- on_failure failed last time
  end
  if failing then stats.retries = stats.retries + 1 end
  local ok, lerr = compat.xpcall(self._dispatch, trace, self, record, sh.shard_id, unmarshalled)
  if ok then
    passed(sh, seq)
    stats.delivered = stats.delivered + 1
    self._advanced = self._advanced + 1
    if not self._running then out[#out + 1] = record end
    return true
  end
  stats.failed_attempts = stats.failed_attempts + 1
  local attempts = (failing and failing.attempts or 0) + 1
  lerr.shard_id, lerr.sequence_number, lerr.event_name = sh.shard_id, seq, record.eventName
  lerr.attempts = attempts
  sh.failing = { sequence_number = seq, attempts = attempts, err = lerr }
  if self._max_attempts and attempts >= self._max_attempts then return self:_fail_over(sh, record, seq, lerr) end
  return stop_at(sh, seq, lerr) -- the next fetch delivers it again
end

-- Hands a record that reached a limit to on_failure. If on_failure fails, the
-- shard stops at the record (handed over to no one, it is not skipped) and the
-- next fetch hands it over again.
function Stream:_fail_over(sh, record, seq, err)
  record.shardId = sh.shard_id
  local ok, res, ferr = pcall(self._on_failure, record, err, sh.shard_id)
  local why
  if not ok then
    why = res
  elseif res == false or (res == nil and ferr ~= nil) then
    why = ferr or "on_failure returned false"
  end
  if why ~= nil then
    self._stats.on_failure_errors = self._stats.on_failure_errors + 1
    return stop_at(sh, seq, new_error("OnFailureError", "on_failure failed: " .. tostring(why), {
      cause = why, record_error = err, shard_id = sh.shard_id, sequence_number = seq,
    }))
  end
  passed(sh, seq)
  self._stats.failed_over = self._stats.failed_over + 1
  self._advanced = self._advanced + 1
  return true
end

-- Seconds of the k-th backoff in a row (k >= 1).
local function backoff_delay(k)
  return math.min(THROTTLE_CAP, THROTTLE_BASE * 2 ^ math.min(k - 1, 16)) * (0.5 + 0.5 * math.random())
end

-- A throttled (or transient) failure on a shard: the shard is skipped until
-- sh.not_before. The first in a row waits for nothing more than the next
-- fetch (the client's own retries have just backed off); the n-th waits
-- THROTTLE_BASE * 2^(n-2) seconds, at most THROTTLE_CAP, times [0.5, 1).
-- err.backoff says the shard backs off (the fetch reads the others).
function Stream:_throttled(sh, err)
  local n = (sh.throttles or 0) + 1
  sh.throttles = n
  local delay = n > 1 and backoff_delay(n - 1) or 0
  sh.not_before = self._clock() + delay
  err.shard_id = err.shard_id or sh.shard_id
  err.throttled, err.backoff = errors.class(err) == "throttling", delay
  return nil, err
end

-- A position error on sh (its iterator expired, was trimmed, or the service
-- calls it invalid); the caller has moved sh back to where it re-opens. The
-- first in a row re-opens at once; when they go on (re-opening does not cure
-- them) the shard backs off as after throttling, so it costs no more than an
-- idle shard. Reported once a row: at once for an invalid iterator, else
-- when they repeat. The row ends when a page is answered.
function Stream:_lost_position(sh, err)
  local n = (sh.position_errors or 0) + 1
  sh.position_errors = n
  err.shard_id = err.shard_id or sh.shard_id
  if n == (err.code == "ValidationException" and 1 or 2) then self:_fail(err) end
  if n == 1 then return "more" end
  sh.not_before = self._clock() + backoff_delay(n - 1)
  return "done"
end

-- The shard answered: no backoff.
local function answered(sh) sh.throttles, sh.not_before = nil, nil end

-- Gets an iterator for sh at sh.position. Returns "ready" (sh.iterator set),
-- "again" (trimmed: re-opened at TRIM_HORIZON, try again), "done" (the shard
-- is gone and retired), or nil and an error.
function Stream:_open(sh)
  local pos = sh.position
  if pos.type == "LATEST" and pos.opened_at then
    -- A LATEST iterator lost before anything was delivered: read what the
    -- stream holds, skipping what came before the LATEST start (see LATEST_MARGIN).
    pos = keeping_start(pos, "TRIM_HORIZON")
    sh.position = pos
  end
  local opened_at = pos.type == "LATEST" and self._wall_clock()
  local res, err = self:_client("get_shard_iterator", {
    StreamArn = self.stream_arn, ShardId = sh.shard_id,
    ShardIteratorType = pos.type, SequenceNumber = pos.sequence_number,
  })
  if not res then
    if err.code == "ResourceNotFoundException" then self:_retire(sh, true) return "done" end
    if BACK_OFF[errors.class(err)] then return self:_throttled(sh, err) end
    if err.code ~= "TrimmedDataAccessException" or pos.type == "TRIM_HORIZON" then
      err.shard_id = err.shard_id or sh.shard_id
      return nil, err
    end
    answered(sh)
    self:_trimmed(sh, err.code)
    return "again"
  end
  answered(sh)
  local it, why = good_name(res.ShardIterator)
  if not it then
    return nil, invalid("GetShardIterator returned " .. (res.ShardIterator == nil and "no ShardIterator"
      or "a bad ShardIterator " .. why), { operation = "get_shard_iterator", shard_id = sh.shard_id })
  end
  sh.iterator = it
  if opened_at then sh.position = { type = "LATEST", opened_at = opened_at } end
  if pos.type == "TRIM_HORIZON" and pos.opened_at then
    sh.horizon_check = self:_beyond_retention(read_until(pos)) or nil
  end
  return "ready"
end

-- Delivers one GetRecords answer (res, or its error err) of sh. Returns
-- "more" (read the shard again), "done" (caught up, read to its end, gone,
-- or stop() was called), or nil and an error. Appends the delivered records
-- to out.
function Stream:_page(sh, res, err, out)
  if not res then
    if err.code == "ExpiredIteratorException" then
      sh.iterator = nil                          -- re-open at sh.position: no gap, no repeat
    elseif err.code == "TrimmedDataAccessException" then
      self:_trimmed(sh, err.code)
    elseif err.code == "ResourceNotFoundException" then
      self:_retire(sh, true)
      return "done"
    elseif errors.class(err) == "position" then  -- an iterator the service calls invalid
      sh.iterator = nil
    elseif BACK_OFF[errors.class(err)] then
      return self:_throttled(sh, err)            -- the iterator stays good
    else
      err.shard_id = err.shard_id or sh.shard_id
      return nil, err
    end
    return self:_lost_position(sh, err)
  end
  answered(sh)
  sh.position_errors = nil
  local advanced_before = self._advanced

  -- The page's shape first: a bad page delivers nothing and re-opens at
  -- sh.position next time.
  local records, next_it = res.Records, res.NextShardIterator
  local bad
  if not is_list(records) then
    bad = "Records is " .. show(records) .. ", not an array"
  elseif next_it == nil or next_it == NULL or next_it == "" then
    next_it = nil
  else
    local why
    next_it, why = good_name(next_it)
    if not next_it then
      bad = "bad NextShardIterator " .. why
    elseif next_it == sh.iterator and #records == 0 and sh.closed then
      -- it would never reach the end; an open shard at its tip may answer so
      -- (DynamoDB Local does): caught up
      bad = "NextShardIterator of a closed shard is the ShardIterator sent, with no records"
    end
  end
  if bad then
    sh.iterator = nil
    return nil, invalid("GetRecords: " .. bad, { operation = "get_records", shard_id = sh.shard_id })
  end

  for _, record in ipairs(records) do
    if self._running and self._stop_requested then
      -- stop() from a listener: keep the rest for the next run
      sh.iterator = nil
      return "done"
    end
    local seq, malformed = check_record(record)
    if not seq then
      -- Like a failing listener: stop here; the next fetch reads this
      -- record again (sh.position is after the last one delivered).
      sh.iterator = nil
      malformed.shard_id = sh.shard_id
      malformed.last_sequence_number = sh.sequence_number
      return nil, malformed
    end
    if sh.sequence_number == nil or seqnum.lt_valid(sh.sequence_number, seq) then
      local ok, terr = self:_take(sh, record, seq, res._unmarshalled, out)
      if not ok then return nil, terr end
    end
  end

  if not next_it then
    if sh.horizon_check then self:_horizon_checked(sh, false) end
    sh.iterator = nil
    self:_retire(sh)                           -- closed and read to its end
    return "done"
  end
  sh.iterator = next_it
  local pos = sh.position
  if #records == 0 and pos.opened_at and not sh.horizon_check then
    -- read to the tip with nothing delivered since the LATEST start (a gap
    -- still to be judged is judged from the read before)
    pos.read_at = math.max(self._read_since, pos.opened_at)
  end
  -- A page with nothing new: an open shard is caught up; a closed one is read
  -- through a few such pages at once, then one a fetch (see
  -- MAX_EMPTY_READ_THROUGH), so a shard that never advances costs no more
  -- than an idle one.
  if self._advanced > advanced_before then sh.empty_pages = nil return "more" end
  if not sh.closed then return "done" end
  sh.empty_pages = (sh.empty_pages or 0) + 1
  return sh.empty_pages <= MAX_EMPTY_READ_THROUGH and "more" or "done"
end

-- Whether sh may be read now: its parent is read to its end and it is not
-- backing off after throttling.
function Stream:_readable(sh, t)
  return self:_ready(sh) and not (sh.not_before and t < sh.not_before)
end

-- Whether sh may have another call in this fetch: max_pages answered pages,
-- plus a few calls that only recover its position (an expired iterator
-- re-opened, a trimmed position moved to TRIM_HORIZON), which deliver nothing.
function Stream:_budget_left(count)
  return count.pages < self._max_pages and count.recoveries <= MAX_RECOVERIES
end

-- Reads one shard until it is caught up, at its end, or its budget is spent.
-- Returns true, or nil and an error.
function Stream:_read_shard(sh, out)
  local count = { pages = 0, recoveries = 0 }
  while self:_budget_left(count) do
    if self._running and self._stop_requested then return true end
    local state, err, answered = "ready", nil, false
    if not sh.iterator then state, err = self:_open(sh) end
    if state == "ready" then
      local res, gerr = self:_client("get_records", { ShardIterator = sh.iterator, Limit = self._limit })
      answered = res ~= nil
      state, err = self:_page(sh, res, gerr, out)
    end
    if state == nil then return nil, err end
    if state == "done" then return true end
    if answered then count.pages = count.pages + 1 else count.recoveries = count.recoveries + 1 end
  end
  return true -- stopped by the budget: the next fetch goes on
end

-- The serial reader: each ready shard in turn, drained before the next; a
-- child becomes ready in the same pass when its parent finishes.
function Stream:_read_serially(out, t)
  local visited, throttled = {}, nil
  local progressed = true
  while progressed do
    progressed = false
    local order = self._order
    for i = 1, #order do
      local sh = self._shards[order[i]]
      if sh and not visited[sh] and self:_ready(sh) then
        visited[sh], progressed = true, true
        if self:_readable(sh, t) then
          local ok, err = self:_read_shard(sh, out)
          if not ok then
            if not err.backoff then return nil, err end
            if throttled then self:_fail(err) else throttled = err end -- the fetch returns the first
          end
          if self._running and self._stop_requested then return true end
        end
      end
    end
  end
  if throttled then return nil, throttled end
  return true
end

-- The parallel reader (a client with get_records_many, such as ds.client()):
-- in rounds, one GetRecords for every readable shard at once, the pages then
-- delivered shard by shard in reading order. A child joins the round after
-- its parent was read to its end. An error other than throttling ends the
-- fetch; the pages of that round not yet delivered are read again next time
-- (their iterators were not advanced).
function Stream:_read_in_rounds(out, t)
  local counts, finished, throttled = {}, {}, nil
  local function count_of(sh)
    local c = counts[sh]
    if not c then c = { pages = 0, recoveries = 0 } counts[sh] = c end
    return c
  end
  local function settle(sh, state, err)
    if state == nil then
      if not err.backoff then return nil, err end
      if throttled then self:_fail(err) else throttled = err end -- the fetch returns the first
      finished[sh] = true
    elseif state == "done" then
      finished[sh] = true
    end
    return true
  end
  local reopened = true
  while reopened do
    local batch, params = {}, {}
    reopened = false -- a shard re-opened at TRIM_HORIZON is tried again next round
    for _, id in ipairs(self._order) do
      local sh = self._shards[id]
      if sh and not finished[sh] and self:_budget_left(count_of(sh)) and self:_readable(sh, t) then
        local state, err = "ready", nil
        if not sh.iterator then state, err = self:_open(sh) end
        if state == "ready" then
          batch[#batch + 1] = sh
          params[#params + 1] = { ShardIterator = sh.iterator, Limit = self._limit }
        else
          if state == "again" then
            local c = count_of(sh)
            c.recoveries, reopened = c.recoveries + 1, true
          end
          local ok, ferr = settle(sh, state, err)
          if not ok then return nil, ferr end
        end
      end
    end
    if #batch > 0 then
      local answers, errs = self:_client_many(params)
      for k, sh in ipairs(batch) do
        local c = count_of(sh)
        if answers[k] ~= nil then c.pages = c.pages + 1 else c.recoveries = c.recoveries + 1 end
        local ok, err = settle(sh, self:_page(sh, answers[k], errs[k], out))
        if not ok then return nil, err end
        if self._running and self._stop_requested then return true end
      end
      reopened = true
    end
  end
  if throttled then return nil, throttled end
  return true
end

-- GetRecords for every params table at once -> answers, errs (see
-- Service:call_many), with errors shaped as _client shapes them.
function Stream:_client_many(params)
  local ok, answers, errs = pcall(self._call.get_records_many, self.client, params, self._one_pass,
    self._max_in_flight)
  if not ok then
    local err = new_error("ClientError", tostring(answers), { operation = "get_records" })
    answers, errs = {}, {}
    for k = 1, #params do errs[k] = err end
  end
  for k = 1, #params do
    local res = answers[k]
    if res == nil then
      errs[k] = as_error(errs[k], "get_records")
    elseif type(res) ~= "table" then
      answers[k] = nil
      errs[k] = invalid("get_records returned " .. show(res) .. ", not an object", { operation = "get_records" })
    end
  end
  return answers, errs
end

-- Reads every ready shard. A shard backed off after throttling is skipped
-- (not an error) until its time; a throttled shard does not stop the others,
-- and the fetch then fails with the throttling error once the rest were read.
-- Any other error ends the fetch at once. Returns the delivered records, or
-- nil, err and the records delivered before it.
function Stream:_read_all()
  local out = {}
  self._read_since = self._wall_clock() -- the pages it gets were asked for after this (see _page)
  local read = self._call.get_records_many and self._read_in_rounds or self._read_serially
  local ok, err = read(self, out, self._clock())
  local compact = {}
  for _, id in ipairs(self._order) do
    if self._shards[id] then compact[#compact + 1] = id end
  end
  self._order = compact
  if not ok then return nil, err, out end
  return out
end

---------------------------------------------------------------------- public API

local WEAK_VALUES = { __mode = "v" }

-- The holder of a fetch or of run: the running coroutine, kept weakly so that
-- a coroutine dropped while suspended in a listener or a sleep can be
-- collected. The main thread never dies.
local function holder()
  local co, main = coroutine.running()
  if co == nil or main then return { main = true } end
  return setmetatable({ co = co }, WEAK_VALUES)
end

local function holder_alive(h)
  return h.main or (h.co ~= nil and coroutine.status(h.co) ~= "dead")
end

-- Releases what a dead coroutine held (it was closed, or dropped and
-- collected, while suspended in a listener or a sleep: the fetch never
-- finished), then tells whether a fetch is running.
function Stream:_fetch_held()
  if self._running and not holder_alive(self._run_holder) then
    self._running, self._stop_requested, self._clock = false, false, self._run_clock
  end
  if self._fetching and not holder_alive(self._fetching) then self._fetching = false end
  return self._fetching ~= false and self._fetching ~= nil
end

function Stream:_guarded(fn, ...)
  if self:_fetch_held() then
    return self:_fail(new_error("FetchInProgress",
      "a fetch is already running on this stream (called from a listener or a timer?)"))
  end
  local hold = holder()
  -- records this fetch moved past: delivered, handed to on_failure or skipped
  self._fetching, self._advanced = hold, 0
  local ok, res, err = pcall(fn, self, ...)
  if self._fetching == hold then self._fetching = false end
  if not ok then return self:_fail(new_error("InternalError", tostring(res))) end
  if res == nil then return self:_fail(err) end
  return res
end

local function fetch_shards(self)
  return self:_describe()
end

local function fetch_records(self)
  if not self._described then
    local ok, err = self:_describe()
    if not ok then return nil, err end
  end
  return self:_read_all()
end

local function fetch_state(self)
  local ok, err = self:_describe()
  if not ok then return nil, err end
  return self:_read_all()
end

-- DescribeStream (every page); emits 'new shards'. Returns true or nil, err.
function Stream:fetch_stream_shards() return self:_guarded(fetch_shards) end

-- Reads every shard until caught up; emits the record events. Returns the raw
-- records delivered (a list, maybe empty) or nil, err.
function Stream:fetch_stream_records() return self:_guarded(fetch_records) end

-- fetch_stream_shards then fetch_stream_records. Returns the records delivered.
function Stream:fetch_stream_state() return self:_guarded(fetch_state) end

-- Counters since the stream was made: records delivered (every listener
-- returned), failed_attempts (a listener or unmarshall raised), retries
-- (attempts at a record that had failed), failed_over (handed to on_failure),
-- on_failure_errors, skipped (created before a lost LATEST start), gaps.
function Stream:stats()
  local copy = {}
  for k, v in pairs(self._stats) do copy[k] = v end
  return copy
end

local function position_state(pos)
  if not pos then return nil end
  return { type = pos.type, sequenceNumber = pos.sequence_number, openedAt = pos.opened_at, readAt = pos.read_at }
end

-- A JSON-serialisable copy of the consumer's position, keyed by shard id.
-- { shardId, nextShardIterator, sequenceNumber (last delivered), parentShardId,
--   position = { type, sequenceNumber, openedAt, readAt } (where to re-open
--     without an iterator; openedAt and readAt, epoch seconds, when the shard
--     was opened at LATEST and last read through that iterator, with nothing
--     delivered since: { type = "LATEST", openedAt, readAt } while that
--     iterator lives, then "TRIM_HORIZON" or "AFTER_SEQUENCE_NUMBER" (after a
--     skipped record) while records from before openedAt are skipped),
--   finished = true (read to its end, kept while DescribeStream lists it) }
function Stream:get_shard_state()
  local state = {}
  for id, sh in pairs(self._shards) do
    state[id] = {
      shardId = id, nextShardIterator = sh.iterator, sequenceNumber = sh.sequence_number,
      parentShardId = sh.parent_shard_id, position = position_state(sh.position),
    }
  end
  for id, r in pairs(self._retired) do
    state[id] = { shardId = id, parentShardId = r.parent_shard_id, sequenceNumber = r.sequence_number,
      finished = true }
  end
  return state
end

local function str(v) return type(v) == "string" and v ~= "" and v or nil end

-- Replaces the position with a state from get_shard_state (or one saved by the
-- npm package: { [id] = { shardId, nextShardIterator } }). Copies; keeps no
-- reference to the caller's tables. Raises on a malformed state.
function Stream:set_shard_state(state)
  if type(state) ~= "table" then error("shard state table expected", 2) end
  if self:_fetch_held() then
    return self:_fail(new_error("FetchInProgress", "cannot set the shard state during a fetch"))
  end
  local shards, retired, order = {}, {}, {}
  local ids = {}
  for id, entry in pairs(state) do
    if type(id) ~= "string" or id == "" or type(entry) ~= "table" then
      error("shard state: entries must be shard id -> table", 2)
    end
    if has_control(id) then error("shard state: a shard id contains a control character", 2) end
    ids[#ids + 1] = id
  end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local entry = state[id]
    local seq = str(entry.sequenceNumber or entry.sequence_number)
    if seq and not seqnum.valid(seq) then error("shard state: bad sequenceNumber for " .. id, 2) end
    local parent = str(entry.parentShardId or entry.parent_shard_id)
    if parent and has_control(parent) then error("shard state: parentShardId of " .. id .. " contains a control character", 2) end
    if entry.finished == true then
      retired[id] = { shard_id = id, parent_shard_id = parent, sequence_number = seq }
    else
      local pos = entry.position
      if type(pos) == "table" then
        pos = check_position(pos, "shard state " .. id)
        -- A LATEST start saved without its time (by an older version): as the
        -- npm package's state below.
        if pos.type == "LATEST" and not pos.opened_at then pos = { type = "TRIM_HORIZON" } end
      elseif seq then
        pos = { type = "AFTER_SEQUENCE_NUMBER", sequence_number = seq }
      else
        -- A state without sequence numbers (the npm package's): if its iterator
        -- has expired, nothing says what was delivered or when it was taken, so
        -- read all that is left (lossless; no gap can be judged).
        pos = { type = "TRIM_HORIZON" }
      end
      local it = str(entry.nextShardIterator or entry.next_shard_iterator)
      if it and has_control(it) then error("shard state: nextShardIterator of " .. id .. " contains a control character", 2) end
      shards[id] = {
        shard_id = id, parent_shard_id = parent, sequence_number = seq, position = pos, iterator = it,
        -- a restored read from the trim horizon after a lost LATEST start (see _open)
        horizon_check = it and pos.type == "TRIM_HORIZON" and pos.opened_at
          and self:_beyond_retention(read_until(pos)) or nil,
      }
      order[#order + 1] = id
    end
  end
  self._shards, self._retired, self._order, self._listed = shards, retired, order, {}
  self._initial, self._restored = true, #ids > 0
  self._described = false
  return true
end

---------------------------------------------------------------------- poll loop

-- A run option that is a finite number of seconds, at least lo (above lo
-- when open), or its default.
local function opt_seconds(opts, name, default, lo, open)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v == math.huge or v < lo or (open and v == lo) then
    error(string.format("run: opts.%s must be a finite number of seconds %s %s", name, open and ">" or ">=", lo), 3)
  end
  return v
end

-- The checkpoint option: a file path, or a store with load and save methods.
local function checkpoint_store(store)
  if store == nil then return nil end
  if type(store) == "string" and store ~= "" then return require("dynamodb_stream.checkpoint").file(store) end
  local ok = (type(store) == "table" or type(store) == "userdata")
    and type(store.load) == "function" and type(store.save) == "function"
  if not ok then
    error("run: opts.checkpoint must be a file path or a store with load() and save(state) methods", 3)
  end
  return store
end

-- Polls until stop(): fetches again at once while records flow, backs off when
-- idle or failing. The fetches inside run count the records they deliver but
-- do not keep them, so memory does not grow with the page size. opts:
--   interval (s, > 0, default 0.1): first idle sleep, doubling while idle up to
--   max_interval (s, default 1), so an idle shard costs about one GetRecords a
--   second while a change that follows activity is seen within ~0.1 s
--   describe_interval (s, default 10): DescribeStream at least this often (and
--     at once when a shard ended or vanished)
--   checkpoint: a file path, or a store with load() and save(state); loaded at
--     the start, saved after every fetch
--   duration (s): stop after this long;  sleep: function(seconds) (default ds.sleep:
--     ngx.sleep inside nginx, else core.sleep)
-- Returns true when stopped (or at the end of duration), or nil, err on a
-- fatal error (errors.class: wrong credentials, no permission, the stream is
-- gone; the checkpoint cannot be read). Errors are emitted as 'error', or with
-- no listener written to stderr (see _report). Bad options raise.
function Stream:run(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("run: options table expected", 2) end
  local interval = opt_seconds(opts, "interval", 0.1, 0, true) -- 0 would poll without a pause
  local max_interval = opt_seconds(opts, "max_interval", math.max(1, interval), interval)
  local describe_interval = opt_seconds(opts, "describe_interval", 10, 0)
  local duration = opt_seconds(opts, "duration", nil, 0)
  local sleep = opts.sleep or require("dynamodb_stream.ngx_http").sleep
  if type(sleep) ~= "function" then error("run: opts.sleep must be a function", 2) end
  if self:_fetch_held() or self._running then
    return self:_fail(new_error("FetchInProgress", "run: the stream is already being read"))
  end

  -- a store made here from a path is closed here (its file lock released)
  local own_store = type(opts.checkpoint) == "string"
  local store = checkpoint_store(opts.checkpoint)
  if store ~= nil then
    local state, err = store:load()
    if err then
      if own_store then store:close() end
      return self:_fail(err)
    end
    if state then
      local ok, bad = pcall(self.set_shard_state, self, state)
      if not ok then
        if own_store then store:close() end
        return self:_fail(new_error("BadCheckpoint", tostring(bad)))
      end
    end
  end

  -- For the throttle backoff, time inside run is the stream's clock but never
  -- less than the time run has slept, so that a sleep function that advances
  -- a virtual time (or returns early) lets backed-off shards come back.
  -- duration and describe_interval follow the stream's clock alone.
  local clock = self._clock
  local now = clock
  local start, slept = clock(), 0
  self._clock = function() return math.max(clock(), start + slept) end
  local deadline = duration and now() + duration
  self._running, self._stop_requested = true, false
  self._run_holder, self._run_clock, self._reported = holder(), clock, {}
  local wait, last_describe = interval, nil
  local result, fatal = true, nil
  while not self._stop_requested do
    local describe = last_describe == nil or self._shard_changed
      or now() - last_describe >= describe_interval or next(self._shards) == nil
    self._shard_changed = false
    local records, err
    if describe then
      last_describe = now()
      records, err = self:fetch_stream_state()
    else
      records, err = self:fetch_stream_records()
    end
    if store then
      local ok, serr = store:save(self:get_shard_state())
      if not ok then self:_fail(serr) end
    end
    if not records and errors.class(err) == "fatal" then
      result, fatal = nil, err  -- wrong credentials, no permission, the stream is gone
      break
    end
    if self._stop_requested then break end
    local pause
    -- Again at once only after a fetch that moved past records: one that
    -- took nothing (idle, or a shard that never advances) pauses. A fetch
    -- that only failed because some shards back off counts by the records the
    -- other shards took.
    if (records or err.backoff) and self._advanced > 0 then
      wait, pause = interval, 0
    else
      pause, wait = wait, math.min(wait * 2, max_interval)
    end
    if deadline then
      local left = deadline - now()
      if left <= 0 then break end
      pause = math.min(pause, left)
    end
    if pause > 0 then
      sleep(pause)
      slept = slept + pause
    end
    if deadline and now() >= deadline then break end -- no extra poll at the deadline
  end
  self:_report_repeats()
  self._running, self._stop_requested = false, false
  self._clock = clock
  if own_store then store:close() end
  return result, fatal
end

-- Ends run() after the record being delivered (callable from a listener).
function Stream:stop()
  if self._running then self._stop_requested = true end
  return true
end

Stream.fetchStreamState = Stream.fetch_stream_state
Stream.fetchStreamShards = Stream.fetch_stream_shards
Stream.fetchStreamRecords = Stream.fetch_stream_records
Stream.getShardState = Stream.get_shard_state
Stream.setShardState = Stream.set_shard_state

return Stream
