--- The record-taking rules: a record is skipped (created before a lost
-- LATEST start), handed to on_failure (a poison record past
-- max_record_attempts or max_record_age), or delivered to the listeners, and
-- counted in the stream's stats.
-- Methods of dynamodb_stream.stream, mixed in by stream/init.lua.
-- @module dynamodb_stream.stream.records
local errors = require("dynamodb_stream.errors")
local compat = require("dynamodb_stream.compat")
local core = require("dynamodb_stream.core")
local checks = require("dynamodb_stream.stream.checks")
local state = require("dynamodb_stream.stream.state")
local NULL = core.null

local new_error, keeping_start, read_until = checks.new_error, state.keeping_start, state.read_until

local M = {}

local EVENT_FOR = { INSERT = "insert record", MODIFY = "modify record", REMOVE = "remove record" }

--- The handler of opts.on_failure: where a record goes when it reaches
-- max_record_attempts or max_record_age (a dead-letter destination, as
-- Lambda's on-failure one): a
-- function(record, err, shard_id) that fails by raising or returning
-- false/nil, err; or a file path, to which each such record is appended as
-- one JSON line { shardId, sequenceNumber, failedAt, error = { code, message,
-- attempts }, record } (opened, appended, flushed and closed each time; a
-- write that fails part-way, a full disk say, can leave a partial line before
-- the retried one). A limit without a destination would drop records
-- silently, and a destination without a limit is never used: both raise.
-- @param on_failure opts.on_failure
-- @param limited whether max_record_attempts or max_record_age is set
-- @tparam function wall_clock epoch seconds (failedAt)
-- @treturn function|nil function(record, err, shard_id) -> true | nil, why
function M.failure_handler(on_failure, limited, wall_clock)
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
function M:_dispatch(record, shard_id, unmarshalled)
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
-- error with the shard stopped at the record. Counts in fetch (the reader's
-- summary) what it moved past, and keeps the delivered record in
-- fetch.records when there is one.
function M:_take(sh, record, seq, unmarshalled, fetch)
  local stats, pos = self._stats, sh.position
  local created = record.dynamodb.ApproximateCreationDateTime
  if type(created) ~= "number" or created ~= created then created = nil end -- absent: never skipped
  if pos.opened_at and pos.type ~= "LATEST" then
    if sh.horizon_check then
      self:_horizon_checked(sh, created ~= nil and created < read_until(pos) - state.LATEST_MARGIN)
    end
    if created ~= nil and created < pos.opened_at - state.LATEST_MARGIN then
      sh.position = keeping_start(pos, "AFTER_SEQUENCE_NUMBER", seq)
      stats.skipped = stats.skipped + 1
      fetch.advanced = fetch.advanced + 1
      return true
    end
  end
  local failing = sh.failing
  if failing and failing.sequence_number ~= seq then failing = nil end
  local age = self._max_age and created and self._wall_clock() - created
  if age and age > self._max_age then
    return self:_fail_over(fetch, sh, record, seq, new_error("RecordAgeExceeded", string.format(
      "record %s is %.0f s old (max_record_age %s)", seq, age, tostring(self._max_age)),
      { age = age, attempts = failing and failing.attempts or 0 }))
  end
  if failing and self._max_attempts and failing.attempts >= self._max_attempts then
    return self:_fail_over(fetch, sh, record, seq, failing.err) -- on_failure failed last time
  end
  if failing then stats.retries = stats.retries + 1 end
  local ok, lerr = compat.xpcall(self._dispatch, trace, self, record, sh.shard_id, unmarshalled)
  if ok then
    passed(sh, seq)
    stats.delivered = stats.delivered + 1
    fetch.advanced = fetch.advanced + 1
    if fetch.records then fetch.records[#fetch.records + 1] = record end
    return true
  end
  stats.failed_attempts = stats.failed_attempts + 1
  local attempts = (failing and failing.attempts or 0) + 1
  lerr.shard_id, lerr.sequence_number, lerr.event_name = sh.shard_id, seq, record.eventName
  lerr.attempts = attempts
  sh.failing = { sequence_number = seq, attempts = attempts, err = lerr }
  if self._max_attempts and attempts >= self._max_attempts then return self:_fail_over(fetch, sh, record, seq, lerr) end
  return stop_at(sh, seq, lerr) -- the next fetch delivers it again
end

-- Hands a record that reached a limit to on_failure. If on_failure fails, the
-- shard stops at the record (handed over to no one, it is not skipped) and the
-- next fetch hands it over again.
function M:_fail_over(fetch, sh, record, seq, err)
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
  fetch.advanced = fetch.advanced + 1
  return true
end

return M
