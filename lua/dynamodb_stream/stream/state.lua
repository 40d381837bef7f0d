--- The state of a stream that is saved and restored: per shard, the iterator,
-- the last delivered sequence number and the position to re-open at when the
-- iterator is lost (expired, trimmed, a listener failed, a restart); and the
-- rules of a LATEST start (opened_at, read_at) that keep it lossless.
-- Methods of dynamodb_stream.stream, mixed in by stream/init.lua.
-- @module dynamodb_stream.stream.state
local seqnum = require("dynamodb_stream.seqnum")
local checks = require("dynamodb_stream.stream.checks")

local has_control, new_error = checks.has_control, checks.new_error

local M = {}

local ITERATOR_TYPES = {
  TRIM_HORIZON = true, LATEST = true, AT_SEQUENCE_NUMBER = true, AFTER_SEQUENCE_NUMBER = true,
}

-- A shard opened at LATEST records when (position.opened_at, epoch seconds
-- by the wall clock, read before the call) and, while nothing is delivered,
-- when it was last read to its tip (read_at: the start of the fetch that got
-- an empty page; an empty page in the middle of a shard, which GetRecords may
-- return, can only make a later 'gap' be missed, never a record). If
-- that iterator is lost before anything was delivered (expired after 15
-- minutes, a restart, a stop), the shard is read again from TRIM_HORIZON and
-- the records created before opened_at - LATEST_MARGIN are skipped (see the
-- reader's _open and records.lua's _take). The margin covers
-- ApproximateCreationDateTime being rounded down to the second, the skew
-- between this host's clock and AWS's, and the time a write takes to reach
-- the stream: records up to a minute older than the LATEST start may be
-- delivered, none after it is lost. The stream keeps 24 hours of records:
-- what was written after read_at may have been trimmed unread if that is
-- older (see _horizon_checked).
M.LATEST_MARGIN = 60
local RETENTION = 24 * 3600

--- A position given by the user (opts.start_at, a saved state), checked and
-- copied; raises (at the caller of the caller) when it is malformed.
-- @tparam table pos { type, sequence_number | sequenceNumber, opened_at | openedAt, read_at | readAt }
-- @tparam string where for the message
-- @treturn table { type, sequence_number, opened_at, read_at }
function M.check_position(pos, where)
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

--- A position of type t (at seq) that keeps pos's LATEST start and last read.
-- @tparam table pos
-- @tparam string t
-- @tparam[opt] string seq
-- @treturn table
function M.keeping_start(pos, t, seq)
  return { type = t, sequence_number = seq, opened_at = pos.opened_at, read_at = pos.read_at }
end

--- Until when a shard opened at LATEST was read through that iterator.
-- @tparam table pos
-- @treturn number epoch seconds
function M.read_until(pos) return pos.read_at or pos.opened_at end

local keeping_start, read_until = M.keeping_start, M.read_until

-- Whether records written since t may have been trimmed by now.
function M:_beyond_retention(t)
  return self._wall_clock() - t >= RETENTION - M.LATEST_MARGIN
end

-- Emits 'gap'; a raising listener is reported, not fatal.
function M:_gap(info)
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
function M:_trimmed(sh, reason)
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
function M:_horizon_checked(sh, older)
  sh.horizon_check = nil
  if not older then
    self:_gap({ shard_id = sh.shard_id, reason = "RetentionExceeded", since = read_until(sh.position) })
  end
end

local function position_state(pos)
  if not pos then return nil end
  return { type = pos.type, sequenceNumber = pos.sequence_number, openedAt = pos.opened_at, readAt = pos.read_at }
end

--- A JSON-serialisable copy of the consumer's position, keyed by shard id.
-- Each entry: { shardId, nextShardIterator, sequenceNumber (last delivered),
-- parentShardId, position = { type, sequenceNumber, openedAt, readAt } (where
-- to re-open without an iterator; openedAt and readAt, epoch seconds, when the
-- shard was opened at LATEST and last read through that iterator, with nothing
-- delivered since: { type = "LATEST", openedAt, readAt } while that iterator
-- lives, then "TRIM_HORIZON" or "AFTER_SEQUENCE_NUMBER" (after a skipped
-- record) while records from before openedAt are skipped), finished = true
-- (read to its end, kept while DescribeStream lists it) }.
-- @treturn table
function M:get_shard_state()
  local state = {}
  for id, sh in pairs(self._shards) do
    state[id] = {
      -- no iterator past a collected batch: a restart reads it again from the position
      shardId = id, nextShardIterator = not sh.batch and sh.iterator or nil, sequenceNumber = sh.sequence_number,
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

-- One entry of a saved state (see get_shard_state) as a tracked shard, or
-- (nil, summary) for a shard read to its end. Raises at the caller of its
-- caller on a malformed entry.
function M:_shard_from_entry(id, entry)
  local seq = str(entry.sequenceNumber or entry.sequence_number)
  if seq and not seqnum.valid(seq) then error("shard state: bad sequenceNumber for " .. id, 3) end
  local parent = str(entry.parentShardId or entry.parent_shard_id)
  if parent and has_control(parent) then
    error("shard state: parentShardId of " .. id .. " contains a control character", 3)
  end
  if entry.finished == true then
    return nil, { shard_id = id, parent_shard_id = parent, sequence_number = seq }
  end
  local pos = entry.position
  if type(pos) == "table" then
    pos = M.check_position(pos, "shard state " .. id)
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
  if it and has_control(it) then
    error("shard state: nextShardIterator of " .. id .. " contains a control character", 3)
  end
  return {
    shard_id = id, parent_shard_id = parent, sequence_number = seq, position = pos, iterator = it,
    -- a restored read from the trim horizon after a lost LATEST start (see the reader's _open)
    horizon_check = it and pos.type == "TRIM_HORIZON" and pos.opened_at
      and self:_beyond_retention(read_until(pos)) or nil,
  }
end

--- Replaces the position with a state from get_shard_state (or one saved by
-- the npm package: { [id] = { shardId, nextShardIterator } }). Copies; keeps
-- no reference to the caller's tables. Raises on a malformed state.
-- @tparam table state
-- @return true, or nil and a FetchInProgress error during a fetch
function M:set_shard_state(state)
  if type(state) ~= "table" then error("shard state table expected", 2) end
  if self._coordinator then error("set_shard_state: with opts.leases the lease table holds the positions", 2) end
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
    local sh, finished = self:_shard_from_entry(id, state[id])
    if finished then
      retired[id] = finished
    else
      shards[id] = sh
      order[#order + 1] = id
    end
  end
  self._shards, self._retired, self._order, self._listed = shards, retired, order, {}
  self._initial, self._restored = true, #ids > 0
  self._described = false
  return true
end

return M
