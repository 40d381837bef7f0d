--- The stream's side of the lease table (opts.leases): only the shards this
-- worker holds are read, each from its lease's position; progress is
-- checkpointed into the lease (fenced by the coordinator); a lease lost stops
-- delivery of its shard at once. The lease state machine itself is
-- dynamodb_stream.leases.coordinator, over dynamodb_stream.leases.table.
-- Methods of dynamodb_stream.stream, mixed in by stream/init.lua.
-- @module dynamodb_stream.stream.leases
local errors = require("dynamodb_stream.errors")
local seqnum = require("dynamodb_stream.seqnum")
local checks = require("dynamodb_stream.stream.checks")

local new_error, has_control = checks.new_error, checks.has_control

local M = {}

local function is_client(v)
  local t = type(v)
  if t ~= "table" and t ~= "userdata" then return false end
  local ok, call = pcall(function() return v.call end)
  return ok and type(call) == "function"
end

local function seconds(v, default, lo, open)
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v == math.huge or v < lo or (open and v == lo) then return nil end
  return v
end

--- opts.leases checked: raises (error level 0: the caller re-raises at its
-- own caller) with a message naming the option.
-- @param l opts.leases
-- @treturn table { dynamodb, table, worker_id (nil: the coordinator's default,
-- host:pid:random), lease_duration, checkpoint_interval }
function M.options(l)
  if type(l) ~= "table" then error("opts.leases must be a table", 0) end
  if not is_client(l.dynamodb) then
    error("opts.leases.dynamodb must be a DynamoDB client (ds.dynamodb())", 0)
  end
  local name = l.table
  if type(name) ~= "string" or #name < 3 or #name > 255 or name:find("[^%w_%.%-]") then
    error("opts.leases.table must be a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)", 0)
  end
  local id = l.worker_id
  if id ~= nil and (type(id) ~= "string" or id == "" or #id > 256 or has_control(id)) then
    error("opts.leases.worker_id must be a non-empty string of at most 256 bytes without control characters", 0)
  end
  local duration = seconds(l.lease_duration, 10, 0, true)
  if not duration then error("opts.leases.lease_duration must be a number of seconds > 0", 0) end
  local interval = seconds(l.checkpoint_interval, 1, 0, false)
  if not interval then error("opts.leases.checkpoint_interval must be a number of seconds >= 0", 0) end
  return { dynamodb = l.dynamodb, table = name, worker_id = id, lease_duration = duration,
    checkpoint_interval = interval }
end

-- Sets up the lease table and this worker's coordinator from checked options
-- (M.options); the stream's clock and start position feed the coordinator.
function M:_lease_setup(o)
  self._lease_table = require("dynamodb_stream.leases.table").new(o.dynamodb, o.table)
  self._coordinator = require("dynamodb_stream.leases.coordinator").new({
    table = self._lease_table, stream_arn = self.stream_arn, worker_id = o.worker_id,
    lease_duration = o.lease_duration, clock = function() return self._clock() end,
    initial_checkpoint = self._start_type,
  })
  self.worker_id = self._coordinator:worker_id()
  self._checkpoint_interval = o.checkpoint_interval
  self._lease_ensured = false
  self._lease_due = -math.huge  -- the coordinator's next_due after the last tick
  self._unsaved_ends = {}  -- shard ids read to their end whose SHARD_END is not written yet
end

-- A lease-table failure in a fetch: a fatal one (no permission, say) ends the
-- fetch; any other is reported and the fetch goes on with the leases held
-- (they stay held until their own local expiry).
function M:_lease_failure(err)
  if errors.class(err) == "fatal" then return nil, err end
  self:_fail(err)
  return true
end

-- The lease table, made ready (created when absent) once, by the first fetch.
function M:_lease_ensure()
  if self._lease_ensured then return true end
  local ok, err = self._lease_table:ensure()
  if not ok then return nil, err end
  self._lease_ensured = true
  return true
end

-- After DescribeStream (listing: { { id, parent, closed }, ... }): shards are
-- tracked only when acquired, so the listing updates the ones held and is
-- handed to the coordinator, which makes the lease items.
function M:_lease_listed(listing)
  self:_listed_now(listing)
  local ok, err = self._coordinator:sync(listing)
  if not ok then return self:_lease_failure(err) end
  return true
end

local CHECKPOINT_TYPES = { TRIM_HORIZON = true, LATEST = true }

-- The lease's saved position as a tracked shard (or the summary of a shard
-- read to its end); nil when there is none, when it does not parse
-- (reported: the checkpoint, written with it, loses nothing), or when it is
-- behind a sequence-number checkpoint (an item this library did not write:
-- the checkpoint is the committed progress).
local function from_position(self, id, lease)
  local cp = lease.checkpoint
  if type(lease.position) ~= "table" or cp == "SHARD_END" then return nil end
  local ok, sh, finished = pcall(self._shard_from_entry, self, id, lease.position)
  if not ok then
    self:_fail(new_error("BadLeaseItem", "lease of shard " .. id .. ": bad position (" .. tostring(sh)
      .. "); starting from its checkpoint " .. tostring(cp), { shard_id = id }))
    return nil
  end
  if sh and seqnum.valid(cp) and (sh.sequence_number == nil or seqnum.lt(sh.sequence_number, cp)) then
    return nil
  end
  if sh then sh.iterator, sh.horizon_check = nil, nil end -- another worker's iterator: re-open
  return sh, finished
end

-- Where a shard acquired starts: its lease's position, else its checkpoint.
-- Returns the tracked shard; or nil and the summary of a shard already read
-- to its end; or nil, nil and a BadLeaseItem error.
function M:_lease_start(id, lease)
  local listed = self._listed[id]
  local parent = (lease.parents or {})[1] or (listed and listed.parent)
  local cp = lease.checkpoint
  local from, finished = from_position(self, id, lease)
  if from or finished then return from, finished end
  if cp == "SHARD_END" then return nil, { shard_id = id, parent_shard_id = parent } end
  local sh = { shard_id = id, parent_shard_id = parent }
  if CHECKPOINT_TYPES[cp] then
    sh.position = { type = cp }
  elseif seqnum.valid(cp) then
    sh.sequence_number, sh.position = cp, { type = "AFTER_SEQUENCE_NUMBER", sequence_number = cp }
  else
    return nil, nil, new_error("BadLeaseItem", "lease of shard " .. id .. ": bad checkpoint " .. checks.show(cp),
      { shard_id = id })
  end
  return sh
end

-- Forgets a shard whose lease is gone: nothing more of it is delivered.
function M:_lease_drop(id)
  self._shards[id], self._retired[id], self._unsaved_ends[id] = nil, nil, nil
end

local function in_order(order, id)
  for _, x in ipairs(order) do
    if x == id then return true end
  end
  return false
end

-- The coordinator's periodic work (renew, take, steal), then the shards
-- acquired start and the ones lost are dropped, with their events. A tick
-- may return its lists with an error of the table (a call that failed
-- alongside): both are handled.
function M:_lease_tick()
  local c = self._coordinator
  local res, err = c:tick()
  if not res then return self:_lease_failure(err) end
  for _, id in ipairs(res.lost or {}) do self:_lease_drop(id) end
  local started = {}
  for _, id in ipairs(res.acquired or {}) do
    local lease = c:lease(id)
    self:_lease_drop(id)
    local sh, finished, bad
    if lease then sh, finished, bad = self:_lease_start(id, lease) end
    if bad then self:_fail(bad) end
    if sh then
      sh.closed = self._listed[id] and self._listed[id].closed or false
      sh.lease_saved = { position = sh.position, at = -math.huge }
      self._shards[id] = sh
      if not in_order(self._order, id) then self._order[#self._order + 1] = id end
      started[#started + 1] = id
    elseif finished then
      self._retired[id] = finished
      -- read to its end by a holder that did not get SHARD_END written
      if lease.checkpoint ~= "SHARD_END" then self._unsaved_ends[id] = true end
    end
  end
  self:_notify("lease lost", res.lost or {})
  self:_notify("lease acquired", res.acquired or {})
  self:_notify("new shards", started)
  if err then return self:_lease_failure(err) end
  return true
end

-- The tick when the coordinator is due (or now, forced).
function M:_lease_tick_due(force)
  if not force and self._clock() < self._lease_due then return true end
  local ok, err = self:_lease_tick()
  self._lease_due = self._coordinator:next_due()
  return ok, err
end

-- Whether the shard's lease is still held (always true without leases): the
-- reader asks before each record it delivers. A long fetch (slow listeners,
-- full pages) ticks here when due, so that its leases are renewed on time and
-- a lease lost is noticed within one renewal interval.
function M:_lease_holds(sh)
  local c = self._coordinator
  if not c then return true end
  if self._clock() >= self._lease_due then
    local ok, err = self:_lease_tick_due(true)
    if not ok then self:_fail(err) end
  end
  -- (lost and taken back by that tick: sh is no longer the shard read)
  if self._shards[sh.shard_id] == sh and c:holds(sh.shard_id) then return true end
  if self._shards[sh.shard_id] == sh then self:_lease_drop(sh.shard_id) end
  return false
end

-- One fenced checkpoint; a lease lost drops the shard (the coordinator's next
-- tick reports it); LeaseBusy (a renewal of that lease in flight, inside
-- nginx) is tried again by the next fetch; any other failure is reported and
-- tried again too.
function M:_lease_write(id, checkpoint, position)
  local ok, err = self._coordinator:checkpoint(id, checkpoint, position)
  if ok then return true end
  if err and err.code == "LeaseLost" then
    self:_lease_drop(id)
  elseif not (err and err.code == "LeaseBusy") then
    self:_fail(err)
  end
  return false
end

-- The saved entry of a shard without its iterator (another worker cannot use
-- it for long, and it would make the item bigger than 1 KB).
local function saved_entry(entry)
  entry.nextShardIterator = nil
  return entry
end

-- A shard read to its end: SHARD_END at once (its children wait for it).
function M:_lease_finished(id)
  self._unsaved_ends[id] = true
  local entry = self:get_shard_state()[id]
  if self:_lease_write(id, "SHARD_END", entry and saved_entry(entry)) then self._unsaved_ends[id] = nil end
end

-- The SHARD_ENDs that failed, tried again (by the next fetch, before it reads).
function M:_lease_retry_ends()
  for id in pairs(self._unsaved_ends) do self:_lease_finished(id) end
end

-- Checkpoints every held shard whose position moved since its last
-- checkpoint, at most once per checkpoint_interval each (final: now, whatever
-- the interval).
function M:_lease_checkpoints(final)
  local now = self._clock()
  local state
  for _, id in ipairs(self._order) do
    local sh = self._shards[id]
    local saved = sh and sh.lease_saved
    if saved and sh.position ~= saved.position and (final or now - saved.at >= self._checkpoint_interval) then
      state = state or self:get_shard_state()
      local checkpoint = sh.sequence_number or (sh.position.type == "LATEST" and "LATEST" or "TRIM_HORIZON")
      local position = sh.position
      if self:_lease_write(id, checkpoint, saved_entry(state[id])) then
        sh.lease_saved = { position = position, at = now }
      end
    end
  end
end

-- The end of run: final checkpoints, then every lease released, so that the
-- other workers take them at their next scan; nothing is held any more.
function M:_lease_release()
  self:_lease_retry_ends()
  self:_lease_checkpoints(true)
  local ok, err = self._coordinator:release_all()
  if not ok and err then self:_fail(err) end
  self._shards, self._retired, self._order, self._unsaved_ends = {}, {}, {}, {}
end

return M
