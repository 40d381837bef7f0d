--- The reader: opens shard iterators and reads pages, in rounds. A round
-- sends one GetRecords for each readable shard at once (a client with
-- get_records_many, such as ds.client()), or for the first one only (a
-- client with get_records alone, adapted by get_records_many_from): reading
-- one shard serially is a round with one member. Pages are delivered shard
-- by shard in reading order; a child joins after its parent was read to its
-- end; a throttled shard is backed off on its own (see _throttled) while the
-- others keep being read.
-- Methods of dynamodb_stream.stream, mixed in by stream/init.lua.
-- @module dynamodb_stream.stream.reader
local errors = require("dynamodb_stream.errors")
local seqnum = require("dynamodb_stream.seqnum")
local checks = require("dynamodb_stream.stream.checks")
local state = require("dynamodb_stream.stream.state")

local new_error, as_error, invalid, show, good_name =
  checks.new_error, checks.as_error, checks.invalid, checks.show, checks.good_name
local keeping_start, read_until = state.keeping_start, state.read_until

local M = {}

-- Per-shard backoff after a throttled (or transient: errors.retryable) call,
-- the client having already retried, and after position errors that
-- re-opening did not cure: BASE, 2*BASE, ... up to CAP seconds, each scaled
-- by a random factor in [0.5, 1).
local THROTTLE_BASE, THROTTLE_CAP = 0.5, 30
-- Pages with nothing new read through at once in a closed shard (one has
-- more ahead until GetRecords drops NextShardIterator); then one per fetch.
local MAX_EMPTY_READ_THROUGH = 3
-- Calls per shard and fetch that only recover its position (see budget_left).
local MAX_RECOVERIES = 3

--- A get_records_many made of a client's get_records: the calls one after
-- the other, in order.
-- @tparam function get_records function(client, params) -> answer | nil, err
-- @treturn function function(client, list) -> answers, errs (as Service:call_many)
function M.get_records_many_from(get_records)
  return function(client, list)
    local answers, errs = {}, {}
    for i = 1, #list do answers[i], errs[i] = get_records(client, list[i]) end
    return answers, errs
  end
end

-- Calls one client method (describe_stream, get_shard_iterator) ->
-- the answer (a table), or nil and an error value.
function M:_client(op, params)
  local ok, res, err = pcall(self._call[op], self.client, params)
  if not ok then return nil, new_error("ClientError", tostring(res), { operation = op }) end
  if res == nil then return nil, as_error(err, op) end
  if type(res) ~= "table" then
    return nil, invalid(op .. " returned " .. show(res) .. ", not an object", { operation = op })
  end
  return res
end

-- GetRecords for every params table at once -> answers, errs (see
-- Service:call_many), with errors shaped as _client shapes them. Pages are
-- asked unmarshalled (and filtered) in C when the stream decided so
-- (_decode_opts).
function M:_client_many(params)
  local ok, answers, errs = pcall(self._call.get_records_many, self.client, params, self._decode_opts,
    self._max_in_flight)
  if not ok or type(answers) ~= "table" then
    local err = new_error("ClientError", ok and "get_records_many returned " .. show(answers) .. ", not a list"
      or tostring(answers), { operation = "get_records" })
    answers, errs = {}, {}
    for k = 1, #params do errs[k] = err end
  end
  if type(errs) ~= "table" then errs = {} end
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

-- Seconds of the k-th backoff in a row (k >= 1).
local function backoff_delay(k)
  return math.min(THROTTLE_CAP, THROTTLE_BASE * 2 ^ math.min(k - 1, 16)) * (0.5 + 0.5 * math.random())
end

-- A throttled (or transient) failure on a shard: the shard is skipped until
-- sh.not_before. The first in a row waits for nothing more than the next
-- fetch (the client's own retries have just backed off); the n-th waits
-- THROTTLE_BASE * 2^(n-2) seconds, at most THROTTLE_CAP, times [0.5, 1).
-- err.backoff says the shard backs off (the fetch reads the others).
function M:_throttled(sh, err)
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
function M:_lost_position(sh, err)
  local n = (sh.position_errors or 0) + 1
  sh.position_errors = n
  err.shard_id = err.shard_id or sh.shard_id
  if n == (err.code == "ValidationException" and 1 or 2) then self:_fail(err) end
  if n == 1 then return "more" end
  sh.not_before = self._clock() + backoff_delay(n - 1)
  return "done"
end

-- sh is read to its end (gone: it vanished): its collected batch is
-- delivered first, then it is retired. Returns "done", or nil and the error
-- of a batch that failed (the shard then stays, stopped at the record).
function M:_end_shard(sh, gone, fetch)
  local ok, err = self:_flush(sh, fetch)
  if not ok then return nil, err end
  self:_retire(sh, gone, fetch)
  return "done"
end

-- The shard answered: no backoff.
local function answered(sh) sh.throttles, sh.not_before = nil, nil end

-- Gets an iterator for sh at sh.position. Returns "ready" (sh.iterator set),
-- "again" (trimmed: re-opened at TRIM_HORIZON, try again), "done" (the shard
-- is gone and retired), or nil and an error.
function M:_open(sh, fetch)
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
    if err.code == "ResourceNotFoundException" then return self:_end_shard(sh, true, fetch) end
    if errors.retryable(err) then return self:_throttled(sh, err) end
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
-- or stop() was called), or nil and an error. What it did goes into fetch
-- (the summary of the fetch, see _read).
function M:_page(sh, res, err, fetch)
  if not res then
    self:_observe_page(sh, nil, err)
    if err.code == "ExpiredIteratorException" then
      sh.iterator = nil                          -- re-open at sh.position: no gap, no repeat
    elseif err.code == "TrimmedDataAccessException" then
      self:_trimmed(sh, err.code)
    elseif err.code == "ResourceNotFoundException" then
      return self:_end_shard(sh, true, fetch)
    elseif errors.class(err) == "position" then  -- an iterator the service calls invalid
      sh.iterator = nil
    elseif errors.retryable(err) then
      return self:_throttled(sh, err)            -- the iterator stays good
    else
      err.shard_id = err.shard_id or sh.shard_id
      return nil, err
    end
    return self:_lost_position(sh, err)
  end
  answered(sh)
  sh.position_errors = nil
  local taken = 0 -- records of this page new to the shard

  -- The page's shape first: a bad page delivers nothing and re-opens at
  -- sh.position next time.
  local records, next_it = checks.page_shape(res, sh.iterator, sh.closed)
  if not records then
    local why = next_it
    sh.iterator = nil
    local bad = invalid("GetRecords: " .. why, { operation = "get_records", shard_id = sh.shard_id })
    self:_observe_page(sh, nil, bad)
    return nil, bad
  end
  self:_observe_page(sh, res, nil, records, res._filtered) -- (records dropped in C: how many)

  -- opts.filter runs here on the records of a page not filtered in C
  local lua_filter = self._filter and not res._filtered
  for _, record in ipairs(records) do
    if not self:_lease_holds(sh) then return "done" end -- lease lost: not one more record
    if self._running and self._stop_requested then
      -- stop() from a listener: keep the rest for the next run
      sh.iterator = nil
      return "done"
    end
    local seq, malformed = checks.check_record(record)
    if not seq then
      -- Like a failing listener: stop here; the next fetch reads this
      -- record again (sh.position is after the last one delivered).
      sh.iterator = nil
      malformed.shard_id = sh.shard_id
      malformed.last_sequence_number = sh.sequence_number
      return nil, malformed
    end
    -- (past those collected into a batch too: a re-opened iterator reads them again)
    local last = sh.batch and sh.batch.last_sequence_number or sh.sequence_number
    if last == nil or seqnum.lt_valid(last, seq) then
      local pass, ferr = true, nil
      if lua_filter then pass, ferr = self:_passes(record) end
      if pass == nil then
        sh.iterator = nil
        return nil, invalid("GetRecords: record " .. seq .. ": " .. ferr,
          { operation = "get_records", shard_id = sh.shard_id, last_sequence_number = sh.sequence_number })
      elseif pass then
        local ok, terr = self:_take(sh, record, seq, res._unmarshalled, fetch)
        if not ok then return nil, terr end
      else
        self:_filtered_out(sh, seq, 1, fetch)
      end
      taken = taken + 1
    end
  end
  if res._filtered and res._filtered > 0 and self:_lease_holds(sh) then
    -- dropped in C: the page's last sequence number moves the position past
    -- a dropped tail (those before it moved with the records after them)
    local tail, last = res._last_sequence_number, sh.batch and sh.batch.last_sequence_number or sh.sequence_number
    if not (seqnum.valid(tail) and (last == nil or seqnum.lt_valid(last, tail))) then tail = nil end
    self:_filtered_out(sh, tail, res._filtered, fetch)
    taken = taken + res._filtered
  end

  if not next_it then
    if not self:_lease_holds(sh) then return "done" end
    if sh.horizon_check then self:_horizon_checked(sh, false) end
    sh.iterator = nil
    return self:_end_shard(sh, false, fetch)   -- closed and read to its end
  end
  sh.iterator = next_it
  local pos = sh.position
  if #records == 0 and not (res._filtered and res._filtered > 0) and pos.opened_at and not sh.horizon_check then
    -- read to the tip with nothing delivered since the LATEST start (a gap
    -- still to be judged is judged from the read before)
    pos.read_at = math.max(fetch.since, pos.opened_at)
  end
  -- A page with nothing new: an open shard is caught up; a closed one is read
  -- through a few such pages at once, then one a fetch (see
  -- MAX_EMPTY_READ_THROUGH), so a shard that never advances costs no more
  -- than an idle one.
  if taken > 0 then sh.empty_pages = nil return "more" end
  if not sh.closed then return "done" end
  sh.empty_pages = (sh.empty_pages or 0) + 1
  return sh.empty_pages <= MAX_EMPTY_READ_THROUGH and "more" or "done"
end

-- Whether sh may have another call in this fetch: max_pages answered pages,
-- plus a few calls that only recover its position (an expired iterator
-- re-opened, a trimmed position moved to TRIM_HORIZON), which deliver nothing.
local function budget_left(self, count)
  return count.pages < self._max_pages and count.recoveries <= MAX_RECOVERIES
end

-- Reads every ready shard (read_rounds), then delivers the collected batches
-- that are due (records.lua's _flush_due), also after a read that failed.
-- Returns true, or nil and the first error.
function M:_read(fetch)
  local ok, err = self:_read_rounds(fetch)
  local flushed, ferr = self:_flush_due(fetch)
  if not ok then
    if not flushed then self:_fail(ferr) end
    return nil, err
  end
  return flushed, ferr
end

-- Reads every ready shard, in rounds of at most _round_width shards (see the
-- module's summary), each shard until it is caught up, at its end, or its
-- budget (max_pages_per_shard) is spent. A shard backed off after throttling
-- is skipped (not an error) until its time; a throttled shard does not stop
-- the others, and the fetch then fails with the throttling error once the
-- rest were read (later ones are emitted). Any other error ends the fetch at
-- once; the pages of that round not yet delivered are read again next time
-- (their iterators were not advanced). fetch is the summary the fetch returns:
-- this sets fetch.more when a shard stopped with its budget spent. Returns
-- true, or nil and an error.
function M:_read_rounds(fetch)
  local t = self._clock()
  local counts, finished, throttled = {}, {}, nil
  local function count_of(sh)
    local c = counts[sh]
    if not c then c = { pages = 0, recoveries = 0 } counts[sh] = c end
    return c
  end
  local function settle(sh, status, err)
    if status == nil then
      if not err.backoff then return nil, err end
      if throttled then self:_fail(err) else throttled = err end -- the fetch returns the first
      finished[sh] = true
    elseif status == "done" then
      finished[sh] = true
    end
    return true
  end
  local stopping = function() return self._running and self._stop_requested end
  while not stopping() do
    -- A round: open what needs opening, then one GetRecords per shard. A shard
    -- re-opened at TRIM_HORIZON ("again") takes its place in the round and is
    -- tried again in the next one.
    local batch, params, members = {}, {}, 0
    for _, id in ipairs(self._order) do
      if members >= self._round_width then break end
      local sh = self._shards[id]
      if sh and not finished[sh] and budget_left(self, count_of(sh)) and self:_readable(sh, t) then
        members = members + 1
        local status, err = "ready", nil
        if not sh.iterator then status, err = self:_open(sh, fetch) end
        if status == "ready" then
          batch[#batch + 1] = sh
          params[#params + 1] = { ShardIterator = sh.iterator, Limit = self._limit }
        else
          if status == "again" then
            local c = count_of(sh)
            c.recoveries = c.recoveries + 1
          end
          local ok, ferr = settle(sh, status, err)
          if not ok then return nil, ferr end
        end
      end
    end
    if members == 0 then break end
    if #batch > 0 then
      local answers, errs = self:_client_many(params)
      for k, sh in ipairs(batch) do
        local c = count_of(sh)
        if answers[k] ~= nil then c.pages = c.pages + 1 else c.recoveries = c.recoveries + 1 end
        local ok, err = settle(sh, self:_page(sh, answers[k], errs[k], fetch))
        if not ok then return nil, err end
        if stopping() then break end
      end
    end
  end
  for sh, c in pairs(counts) do
    if not finished[sh] and self._shards[sh.shard_id] == sh and not budget_left(self, c) then fetch.more = true end
  end
  if throttled then return nil, throttled end
  return true
end

return M
