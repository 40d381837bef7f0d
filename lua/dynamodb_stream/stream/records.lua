--- The record-taking rules: a record is skipped (created before a lost
-- LATEST start), handed to on_failure (a poison record past
-- max_record_attempts or max_record_age), or delivered to the listeners, and
-- counted in the stream's stats. With 'batch' listeners, records are
-- collected per shard into a batch (batch_size, batch_window) that the batch
-- listeners acknowledge in full or up to a failed record (bisect finds it);
-- the acknowledged records then go to the record listeners, and only then
-- does the shard's position move past them.
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

--- opts.filter compiled (core.compile_filter), or nil without one. Raises
-- on a bad value (at the given level, as error does), with the engine's
-- message naming the filter, the place in the pattern and the reason.
-- @param criteria Lambda's FilterCriteria ({ Filters = { { Pattern = json }, ... } }),
-- one pattern as a JSON string or a Lua table, or nil
-- @tparam integer level where the error points (3: the caller of the caller)
-- @return the compiled filter, or nil
function M.compile_filter(criteria, level)
  if criteria == nil then return nil end
  local ct = type(criteria)
  if ct ~= "table" and ct ~= "string" then
    error("opts.filter must be FilterCriteria ({ Filters = { { Pattern = json }, ... } }) "
      .. "or a pattern (a JSON string or a table), not a " .. ct, level)
  end
  local ok, compiled = pcall(core.compile_filter, criteria)
  if not ok then error("opts.filter: " .. tostring(compiled):gsub("^compile_filter: ", ""), level) end
  return compiled
end

-- An image as the listeners get it: nil for an absent one.
local function present(av)
  if av == NULL then return nil end
  return av
end

local function unmarshalled_image(av, unmarshall)
  if av == nil or av == NULL then return nil end
  local ok, v = pcall(unmarshall, av)
  if not ok then error(new_error("UnmarshallError", tostring(v), { cause = v }), 0) end
  return v
end

-- Unmarshalls the record's images in place with the stream's function (the
-- one-pass C path delivers them so). Raises an UnmarshallError.
function M:_unmarshall_images(record)
  local unmarshall, event = self._unmarshall, EVENT_FOR[record.eventName]
  if not event then return end
  local ddb = record.dynamodb
  local keys = unmarshalled_image(ddb.Keys, unmarshall)
  local new = event ~= "remove record" and unmarshalled_image(ddb.NewImage, unmarshall) or nil
  local old = event ~= "insert record" and unmarshalled_image(ddb.OldImage, unmarshall) or nil
  ddb.Keys, ddb.NewImage, ddb.OldImage = keys, new or ddb.NewImage, old or ddb.OldImage
end

-- Whether opts.filter passes a record of a page not filtered in C (a raw
-- record, as the client answered it): it matches the record's JSON, so that it
-- answers as in C. Returns a boolean, or nil and why.
function M:_passes(record)
  local ok, text = pcall(core.json_encode, record)
  if not ok then return nil, "cannot be filtered: " .. tostring(text) end
  local pass, err = self._filter:match(text)
  if pass == nil then return nil, "cannot be filtered: " .. tostring(err) end
  return pass
end

-- Calls the record listeners for one record (images already unmarshalled).
function M:_dispatch(record, shard_id)
  local event = EVENT_FOR[record.eventName]
  local ddb = record.dynamodb
  local keys, new, old = present(ddb.Keys), present(ddb.NewImage), present(ddb.OldImage)
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

local function seq_of(record) return record.dynamodb.SequenceNumber end

-- Stops sh at a record it could not hand over: the next fetch re-opens there.
local function stop_at(sh, seq, err)
  sh.iterator = nil
  sh.position = { type = "AT_SEQUENCE_NUMBER", sequence_number = seq }
  return nil, err
end

-- The record was handed over (to the listeners or on_failure): sh moves past it.
local function passed(sh, seq)
  if sh.failing then
    sh.failing[seq] = nil
    if next(sh.failing) == nil then sh.failing = nil end
  end
  sh.sequence_number = seq
  sh.position = { type = "AFTER_SEQUENCE_NUMBER", sequence_number = seq }
end

-- sh moves past seq, a record filtered out: as passed, but keeping a LATEST
-- start's time while nothing was delivered (records from before it are still
-- to be skipped after a lost iterator).
local function acknowledge(sh, seq)
  local pos = sh.position
  sh.sequence_number = seq
  if pos.opened_at then
    sh.position = keeping_start(pos, "AFTER_SEQUENCE_NUMBER", seq)
  else
    sh.position = { type = "AFTER_SEQUENCE_NUMBER", sequence_number = seq }
  end
end

-- A new record of sh: skipped (created before a lost LATEST start, see
-- LATEST_MARGIN), handed to on_failure (max_record_age, or
-- max_record_attempts reached), or delivered (see _deliver): at once, or,
-- with 'batch' listeners, collected into sh.batch until it holds batch_size
-- records or the end of a read finds its batch_window passed (_flush_due). A
-- record handed over (or whose images do not unmarshall) first delivers the
-- batch before it, so the position never passes an unacknowledged record;
-- nothing is skipped after a record collected. Attempts are
-- counted per record in sh.failing (sequence number -> { attempts, err }).
-- Returns true, or nil and an error with the shard stopped at a record.
-- Counts in fetch (the reader's summary) what it moved past, and keeps the
-- delivered records in fetch.records when there is one.
function M:_take(sh, record, seq, unmarshalled, fetch)
  local stats, pos = self._stats, sh.position
  local created = record.dynamodb.ApproximateCreationDateTime
  if type(created) ~= "number" or created ~= created then created = nil end -- absent: never skipped
  if pos.opened_at and pos.type ~= "LATEST" then
    if sh.horizon_check then
      self:_horizon_checked(sh, created ~= nil and created < read_until(pos) - state.LATEST_MARGIN)
    end
    -- (nothing after a record collected, as nothing after one delivered)
    if not sh.batch and created ~= nil and created < pos.opened_at - state.LATEST_MARGIN then
      sh.position = keeping_start(pos, "AFTER_SEQUENCE_NUMBER", seq)
      stats.skipped = stats.skipped + 1
      fetch.advanced = fetch.advanced + 1
      return true
    end
  end
  local failing = sh.failing and sh.failing[seq]
  local age = self._max_age and created and self._wall_clock() - created
  local limit_err
  if age and age > self._max_age then
    limit_err = new_error("RecordAgeExceeded", string.format(
      "record %s is %.0f s old (max_record_age %s)", seq, age, tostring(self._max_age)),
      { age = age, attempts = failing and failing.attempts or 0 })
  elseif failing and self._max_attempts and failing.attempts >= self._max_attempts then
    limit_err = failing.err -- on_failure failed last time
  end
  if failing and not limit_err then stats.retries = stats.retries + 1 end
  record.shardId = sh.shard_id
  local ok, uerr = true, nil
  if not limit_err and self._unmarshall and not unmarshalled then
    ok, uerr = compat.xpcall(self._unmarshall_images, trace, self, record)
  end
  if limit_err or not ok then
    local flushed, ferr = self:_flush(sh, fetch)
    if not flushed then return nil, ferr end
    if limit_err then return self:_fail_over(fetch, sh, record, seq, limit_err) end
    return self:_failed(sh, { record }, 1, 1, uerr, fetch)
  end
  local batching = self:listener_count("batch") > 0
  if not batching and not sh.batch then return self:_deliver(sh, { record }, fetch) end
  local batch = sh.batch
  if not batch then
    batch = { records = {}, since = self._clock() }
    sh.batch = batch
  end
  batch.records[#batch.records + 1] = record
  batch.last_sequence_number = seq
  if not batching or #batch.records >= self._batch_size then return self:_flush(sh, fetch) end
  return true
end

-- Delivers sh's collected batch (see _deliver), if it has one; then moves
-- past the records filtered out after it (see _filtered_out).
function M:_flush(sh, fetch)
  local batch = sh.batch
  if not batch then return true end
  sh.batch = nil
  local ok, err = self:_deliver(sh, batch.records, fetch)
  if not ok then return nil, err end
  if batch.filtered_through then acknowledge(sh, batch.filtered_through) end
  return true
end

-- n records of sh that opts.filter refused, the last of them at seq (nil:
-- no move): acknowledged as Lambda does, so the position moves past them
-- once every record before them was handed over (with a batch collected, when
-- it is: _flush), a page all filtered out included. Counted in stats.filtered
-- and sh.filtered.
function M:_filtered_out(sh, seq, n, fetch)
  self._stats.filtered = self._stats.filtered + n
  sh.filtered = (sh.filtered or 0) + n
  fetch.advanced = fetch.advanced + n
  local batch = sh.batch
  if seq == nil then
    return
  elseif batch then
    -- (a re-read of the page then skips them too, as it skips the batch)
    batch.last_sequence_number, batch.filtered_through = seq, seq
  else
    acknowledge(sh, seq)
  end
end

-- At the end of a read: delivers every collected batch whose batch_window
-- has passed (with 0, every one: a batch is what one fetch read), shard by
-- shard in reading order, unless run is stopping. A shard whose lease was
-- lost is dropped with its batch. Returns true, or nil and the first error
-- (the others are reported).
function M:_flush_due(fetch)
  if self._running and self._stop_requested then return true end
  local now, first_err = self._clock(), nil
  for _, id in ipairs(self._order) do
    local sh = self._shards[id]
    if sh and sh.batch and now - sh.batch.since >= self._batch_window and self:_lease_holds(sh) then
      local ok, err = self:_flush(sh, fetch)
      if not ok then
        if first_err then self:_fail(err) else first_err = err end
      end
    end
  end
  if first_err then return nil, first_err end
  return true
end

-- When run must wake up for the first collected batch's window to end, or
-- nil when no batch waits.
function M:_batch_due()
  local due
  for _, sh in pairs(self._shards) do
    if sh.batch then
      local t = sh.batch.since + self._batch_window
      if not due or t < due then due = t end
    end
  end
  return due
end

local BATCH_ANSWER = "a 'batch' listener returns nothing, or { failed = sequence_number | { sequence_number, ... } }"

-- The index in list[from..to] of the record the 'batch' listeners reported
-- failed (the lowest when several are), nil when none was; or nil and an
-- error for an answer that says nothing usable (a malformed, empty or unknown
-- sequence number: Lambda then fails the whole batch).
local function reported_failure(answers, list, from, to)
  local index_of
  local function bad(what)
    return nil, new_error("BadBatchResponse", "a 'batch' listener returned " .. what .. ": " .. BATCH_ANSWER)
  end
  local failed
  for i = 1, answers.n do
    local answer = answers[i]
    if answer ~= nil then
      if type(answer) ~= "table" then return bad("a " .. type(answer)) end
      for key in pairs(answer) do
        if key ~= "failed" then return bad("a table with the key " .. checks.show(key)) end
      end
      local ids = answer.failed
      if type(ids) ~= "table" then ids = { ids } end
      for _, id in pairs(ids) do
        if type(id) ~= "string" or id == "" then return bad("failed = " .. checks.show(id)) end
        if not index_of then
          index_of = {}
          for k = from, to do index_of[seq_of(list[k])] = k end
        end
        local k = index_of[id]
        if not k then return bad("failed = " .. checks.show(id) .. ", not a record of the batch") end
        if not failed or k < failed then failed = k end
      end
    end
  end
  return failed
end

-- Offers list[from..to] to the 'batch' listeners. Returns the index of the
-- first record not acknowledged (to + 1 when all were), its error, and the
-- last index of the records that count a failed attempt: the one reported
-- failed, or every record offered when a listener raised or gave an unusable
-- answer. With bisect such a batch is split in two and the halves offered in
-- order, down to the one record that fails (splits count no attempt).
local function offer(self, sh, list, from, to)
  if self:listener_count("batch") == 0 then return to + 1 end
  local records = {}
  for k = from, to do records[#records + 1] = list[k] end
  local ok, answers = compat.xpcall(self.emit_results, trace, self, "batch", records, sh.shard_id)
  local failed, err
  if ok then
    failed, err = reported_failure(answers, list, from, to)
    if failed then
      local seq = seq_of(list[failed])
      return failed, new_error("BatchItemFailure", "a 'batch' listener reported record " .. seq .. " failed",
        { event = "batch" }), failed
    end
    if not err then return to + 1 end
  else
    err = answers
  end
  err.event = "batch"
  if self._bisect and to > from then
    local mid = math.floor((from + to) / 2)
    local stop, half_err, last = offer(self, sh, list, from, mid)
    if stop <= mid then return stop, half_err, last end
    return offer(self, sh, list, mid + 1, to)
  end
  return from, err, to
end

-- Delivers records of sh collected in order (images ready): first to the
-- 'batch' listeners (see offer), then each acknowledged record to the record
-- listeners; only a record both took moves the position. A failure (see
-- _failed) stops the shard there, or hands the failed records to on_failure
-- and goes on with the next ones. Returns true, or nil and the error with sh
-- stopped at a record.
function M:_deliver(sh, list, fetch)
  local stats = self._stats
  local from = 1
  while from <= #list do
    local stop, err, last_failed = offer(self, sh, list, from, #list)
    for k = from, stop - 1 do
      local ok, lerr = compat.xpcall(self._dispatch, trace, self, list[k], sh.shard_id)
      if not ok then
        stop, err, last_failed = k, lerr, k
        break
      end
      passed(sh, seq_of(list[k]))
      stats.delivered = stats.delivered + 1
      self:_observe_delivered(sh)
      fetch.advanced = fetch.advanced + 1
      if fetch.records then fetch.records[#fetch.records + 1] = list[k] end
    end
    if stop > #list then return true end
    local ok, ferr = self:_failed(sh, list, stop, last_failed, err, fetch)
    if not ok then return nil, ferr end
    from = last_failed + 1
  end
  return true
end

-- An error of its own for each record of a failed batch (they differ in
-- sequence_number and attempts).
local function copy_error(err)
  local copy = {}
  for k, v in pairs(err) do copy[k] = v end
  return setmetatable(copy, getmetatable(err))
end

-- list[from..to] failed with err (one record, or every record of a batch
-- whose listener raised): each counts an attempt. In order, those that
-- reached max_record_attempts go to on_failure; the shard stops at the first
-- that did not (or whose on_failure failed). Returns true when all were
-- handed over, else nil and that record's error.
function M:_failed(sh, list, from, to, err, fetch)
  local failing = sh.failing or {}
  sh.failing = failing
  for k = from, to do
    local seq = seq_of(list[k])
    local attempts = (failing[seq] and failing[seq].attempts or 0) + 1
    local record_err = k == from and err or copy_error(err)
    record_err.shard_id, record_err.sequence_number, record_err.event_name = sh.shard_id, seq, list[k].eventName
    record_err.attempts = attempts
    failing[seq] = { attempts = attempts, err = record_err }
    self._stats.failed_attempts = self._stats.failed_attempts + 1
  end
  for k = from, to do
    local seq = seq_of(list[k])
    local f = failing[seq]
    if not (self._max_attempts and f.attempts >= self._max_attempts) then return stop_at(sh, seq, f.err) end
    local ok, ferr = self:_fail_over(fetch, sh, list[k], seq, f.err)
    if not ok then return nil, ferr end
  end
  return true
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
