--- One worker's lease state machine over a lease table (leases/table.lua or a fake with
-- its contract): sync of shards into lease items and cleanup of finished ones, renewal,
-- expiry measured on this worker's own monotonic clock, take, steal and balance, fencing
-- of checkpoints, the lineage gate, release.
--
-- Times are the injected clock's (monotonic seconds); nothing here reads the wall clock.
-- A held lease is renewed every lease_duration/3; the table is scanned (take, steal)
-- every lease_duration/4; a held lease not written successfully for lease_duration
-- (measured from the moment its last successful write was sent) is dropped: the worker
-- fences itself before any other worker can see the lease expire (leases.md 2.3, 7.4).
--
-- Worker ids: the default is `host:pid:random` (64 random bits), unique per process. A
-- worker starting with the id of a lease's owner takes that lease back at its first scan,
-- without waiting for expiry (leases.md 2.2). Give a fixed `worker_id` only when no two
-- live processes can share it: the newer one takes the leases of the older at once, and
-- both read those shards until the older one's next renewal fails (leases.md 7,
-- invariant 9, race 8).
-- @module dynamodb_stream.leases.coordinator
local core = require("dynamodb_stream.core")
local compat = require("dynamodb_stream.compat")
local errors = require("dynamodb_stream.errors")
local seqnum = require("dynamodb_stream.seqnum")

local Coordinator = {}
Coordinator.__index = Coordinator

local SHARD_END = "SHARD_END"
local TABLE_METHODS = { "list", "get", "create", "renew", "take", "checkpoint", "release", "delete", "stats" }
local WHERE = "leases.coordinator.new: "

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function lost_error(shard_id, why)
  return errors.new({ code = "LeaseLost", retryable = false,
    message = "lease of " .. shard_id .. " lost: " .. why })
end

local function valid_checkpoint(v)
  return type(v) == "string" and (v == "TRIM_HORIZON" or v == "LATEST" or v == SHARD_END or seqnum.valid(v))
end

-- Whether writing new over old moves the checkpoint backwards (invariant 6): a sequence
-- number below the stored one (compared as decimal integers), a start position over a
-- sequence number, anything but SHARD_END over SHARD_END.
local function backwards(old, new)
  if new == SHARD_END then return false end
  if old == SHARD_END then return true end
  if not seqnum.valid(old) then return false end
  return not seqnum.valid(new) or seqnum.lt(new, old)
end

local function first_line(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  return line
end

-- host:pid:random, unique per process (64 bits from /dev/urandom when it can be read).
local function default_worker_id()
  local host = first_line("/proc/sys/kernel/hostname") or first_line("/etc/hostname") or os.getenv("HOSTNAME")
  host = (host or ""):gsub("[%c%s|:]", "")
  local pid = (first_line("/proc/self/stat") or ""):match("^(%d+)") or "0"
  local f, bytes = io.open("/dev/urandom", "rb"), nil
  if f then bytes = f:read(8) f:close() end
  local random
  if bytes and #bytes == 8 then
    random = bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  else
    random = string.format("%08x%08x", math.random(0, 0x7fffffff), math.floor(core.monotime() * 1e6) % 0x7fffffff)
  end
  return (host ~= "" and host or "host") .. ":" .. pid .. ":" .. random
end

local function check_options(opts)
  if type(opts) ~= "table" then error(WHERE .. "options table expected", 3) end
  local t = opts.table
  local ok = type(t) == "table"
  for _, m in ipairs(TABLE_METHODS) do ok = ok and type(t[m]) == "function" end
  if not ok then
    error(WHERE .. "opts.table must be a lease table (leases.table.new(...): list, get, create, renew, "
      .. "take, checkpoint, release, delete, stats)", 3)
  end
  local arn = opts.stream_arn
  if type(arn) ~= "string" or arn:find("[%c\127|]")
    or not arn:match("^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/[^/]+/stream/.+$") then
    error(WHERE .. "opts.stream_arn must be a DynamoDB stream ARN (arn:<partition>:dynamodb:<region>:"
      .. "<account>:table/<name>/stream/<label>, no control character or '|')", 3)
  end
  local id = opts.worker_id
  if id ~= nil and (type(id) ~= "string" or id == "" or #id > 256 or id:find("[%c\127]")) then
    error(WHERE .. "opts.worker_id must be a non-empty string of at most 256 bytes without control characters", 3)
  end
  local d = opts.lease_duration
  if d ~= nil and (type(d) ~= "number" or d ~= d or d <= 0 or d == math.huge) then
    error(WHERE .. "opts.lease_duration must be a positive finite number of seconds", 3)
  end
  for _, name in ipairs({ "clock", "random" }) do
    if opts[name] ~= nil and type(opts[name]) ~= "function" then
      error(WHERE .. "opts." .. name .. " must be a function", 3)
    end
  end
  local initial = opts.initial_checkpoint
  if initial ~= nil and initial ~= "TRIM_HORIZON" and initial ~= "LATEST" then
    error(WHERE .. "opts.initial_checkpoint must be \"TRIM_HORIZON\" or \"LATEST\"", 3)
  end
  local max = opts.max_leases
  if max ~= nil and (not compat.is_integer(max) or max < 1) then
    error(WHERE .. "opts.max_leases must be a positive integer (or nil: no cap)", 3)
  end
end

--- Makes a worker's coordinator (nothing is sent).
-- @tparam table opts `table` (a lease table), `stream_arn`, `worker_id` (default
-- `host:pid:random`), `lease_duration` (seconds, default 10), `clock` (monotonic seconds,
-- default `core.monotime`), `initial_checkpoint` (`"TRIM_HORIZON"`, the default, or
-- `"LATEST"`: for new leases of root shards), `max_leases` (a cap per worker, default none),
-- `random` (`function(n) -> 1..n`, default `math.random`: the shuffles)
-- @return the coordinator; raises on a bad option
function Coordinator.new(opts)
  check_options(opts)
  local clock = opts.clock or core.monotime
  local d = opts.lease_duration or 10
  local now = clock()
  return setmetatable({
    _table = opts.table,
    _arn = opts.stream_arn,
    _me = opts.worker_id or default_worker_id(),
    _d = d,
    _clock = clock,
    _random = opts.random or math.random,
    _initial = opts.initial_checkpoint or "TRIM_HORIZON",
    _max = opts.max_leases,
    _held = {},        -- [shard_id] = { lease, counter, written, unsure, unsure_at, busy }
    _view = {},        -- [shard_id] = lease, as last listed (or written by us)
    _since = {},       -- [shard_id] = { counter, at }: when this worker first saw that counter
    _gone = {},        -- [shard_id] = true: lease known deleted (never recreated)
    _pending_lost = {},-- lost outside tick (a refused checkpoint): reported by the next tick
    _scanned = false,  -- the first scan takes back this worker id's own leases
    _next_renew = now + d / 3,
    _next_scan = now,
    _last_steal = nil,
    _stats = { renewals = 0, takes = 0, steals = 0, checkpoints = 0, releases = 0, creates = 0,
      deletes = 0, conflicts = 0, lost = 0 },
  }, Coordinator)
end

--- This worker's id.
-- @treturn string
function Coordinator:worker_id() return self._me end

-- Whether a held lease is past its local expiry (invariant 4).
function Coordinator:_fenced(h, now)
  return now - h.written >= self._d
end

function Coordinator:_drop(shard_id, into)
  self._held[shard_id] = nil
  self._stats.lost = self._stats.lost + 1
  into[#into + 1] = shard_id
end

-- A list (sync or scan) observed at `now`: the view, and for each counter the time this
-- worker first saw it (leases.md 2.3; an unowned lease seen for the first time counts as
-- expired long ago).
function Coordinator:_observe(leases, now)
  local view, since = {}, {}
  for _, lease in ipairs(leases) do
    local id = lease.shard_id
    view[id] = lease
    local old = self._since[id]
    if old and old.counter == lease.counter then
      since[id] = old
    else
      since[id] = { counter = lease.counter, at = (old == nil and lease.owner == nil) and -math.huge or now }
    end
  end
  self._view, self._since = view, since
end

function Coordinator:_expired(shard_id, now)
  local s = self._since[shard_id]
  return s ~= nil and now - s.at >= self._d
end

-- Settles the outcome of a write that failed without an answer (a timeout: it may have
-- been applied). -> true (settled; the lease is still ours), false (lost), nil, err.
function Coordinator:_resolve(shard_id, h)
  if not h.unsure then return true end
  local stored, err = self._table:get(self._arn, shard_id)
  if stored == nil then return nil, err end
  if not stored or stored.owner ~= self._me then return false end
  if stored.counter == h.counter + 1 then -- our write was applied
    h.counter, h.lease, h.written = stored.counter, stored, h.unsure_at
  elseif stored.counter ~= h.counter then
    return false
  end
  h.unsure = nil
  return true
end

-- A fenced write (renew or checkpoint) of a held lease. -> new counter, or nil, err
-- (LeaseLost / LeaseConflict: the lease is gone; anything else: it may have been applied).
function Coordinator:_held_write(shard_id, h, method, ...)
  local settled, err = self:_resolve(shard_id, h)
  if settled == nil then return nil, err end
  if not settled then return nil, lost_error(shard_id, "another worker wrote it") end
  h.busy = true
  local sent = self._clock()
  local counter
  counter, err = self._table[method](self._table, self._arn, shard_id, self._me, h.counter, ...)
  h.busy = false
  if counter then
    h.counter, h.written, h.lease.counter = counter, sent, counter
    return counter
  end
  if err.code == "LeaseConflict" then
    self._stats.conflicts = self._stats.conflicts + 1
  else
    h.unsure, h.unsure_at = true, sent
  end
  return nil, err
end

local function gone_error(err)
  return err.code == "LeaseConflict" or err.code == "LeaseLost"
end

function Coordinator:_renew_all(now, result)
  local first_err
  for _, id in ipairs(sorted_keys(self._held)) do
    local h = self._held[id]
    if h and not h.busy and not self:_fenced(h, now) then
      local ok, err = self:_held_write(id, h, "renew")
      if ok then
        self._stats.renewals = self._stats.renewals + 1
      elseif gone_error(err) then
        self:_drop(id, result.lost)
      else -- throttled, timed out: kept until its local expiry
        first_err = first_err or err
      end
    end
  end
  return first_err
end

-- Takes one lease as listed. -> true, false (someone else moved it), nil, err.
function Coordinator:_take(lease, stolen, result)
  local sent = self._clock()
  local counter, err = self._table:take(self._arn, lease.shard_id, self._me, lease.counter, lease.owner)
  if not counter then
    if err.code ~= "LeaseConflict" then return nil, err end
    self._stats.conflicts = self._stats.conflicts + 1
    return false
  end
  local mine = copy(lease)
  if lease.owner ~= self._me then mine.owner_switches = mine.owner_switches + 1 end
  mine.owner, mine.counter = self._me, counter
  self._held[lease.shard_id] = { lease = mine, counter = counter, written = sent }
  self._view[lease.shard_id] = copy(mine)
  self._stats.takes = self._stats.takes + 1
  if stolen then
    self._stats.steals = self._stats.steals + 1
    self._last_steal = sent
  end
  result.acquired[#result.acquired + 1] = lease.shard_id
  return true
end

function Coordinator:_shuffle(list)
  for i = #list, 2, -1 do
    local j = self._random(i)
    list[i], list[j] = list[j], list[i]
  end
  return list
end

-- A worker is counted live while one of its counters moved within this part of the
-- lease duration (it renews every third): a dead worker stops holding the targets of the
-- others down before its leases expire, so that, when several die one after another,
-- the leases of the first are not left waiting for the expiry of the last one's.
local LIVE = 0.7

-- What to take at this scan (the balance rules): -> list of { lease, stolen }.
function Coordinator:_choose(now)
  local me, counts, total = self._me, { [self._me] = 0 }, 0
  local available, own, by_owner, live = {}, {}, {}, { [self._me] = true }
  for _, id in ipairs(sorted_keys(self._view)) do
    local lease = self._view[id]
    if lease.checkpoint ~= SHARD_END then -- finished leases are not balanced (nor read)
      total = total + 1
      if self._held[id] then
        counts[me] = counts[me] + 1
      elseif lease.owner == nil or self:_expired(id, now) then
        available[#available + 1] = lease
      elseif lease.owner == me and not self._scanned then
        own[#own + 1] = lease -- a restart under the same id (leases.md 2.2)
      else
        counts[lease.owner] = (counts[lease.owner] or 0) + 1
        if now - self._since[id].at < LIVE * self._d then live[lease.owner] = true end
        if lease.owner ~= me then -- ours but not held (a lost take answer): it expires
          by_owner[lease.owner] = by_owner[lease.owner] or {}
          table.insert(by_owner[lease.owner], lease)
        end
      end
    end
  end
  local workers = 0
  for _ in pairs(live) do workers = workers + 1 end
  local target = total == 0 and 0 or (workers >= total and 1 or math.ceil(total / workers))
  if self._max and target > self._max then target = self._max end
  local room = (self._max or math.huge) - counts[me]
  local chosen = {}
  for _, lease in ipairs(own) do
    if #chosen < room then chosen[#chosen + 1] = { lease = lease } end
  end
  local needed = math.min(target - counts[me] - #chosen, room - #chosen)
  if needed <= 0 then return chosen end
  if #available > 0 then
    self:_shuffle(available)
    for i = 1, math.min(needed, #available) do chosen[#chosen + 1] = { lease = available[i] } end
    return chosen
  end
  -- Steal: at most one per lease_duration, from the most loaded worker, only when it holds
  -- more than the target, or the target while we need more than one (the KCL rule).
  if self._last_steal and now - self._last_steal < self._d then return chosen end
  local victim, most = nil, -1
  for _, owner in ipairs(sorted_keys(by_owner)) do
    if counts[owner] > most then victim, most = owner, counts[owner] end
  end
  if victim and (most > target or (most == target and needed > 1)) then
    local leases = by_owner[victim]
    chosen[#chosen + 1] = { lease = leases[self._random(#leases)], stolen = true }
  end
  return chosen
end

-- A parent missing from the list may only be missing from a scan that raced with its
-- creation (a Scan is not atomic): confirm by a consistent read before the gate opens.
function Coordinator:_confirm_parents()
  for _, id in ipairs(sorted_keys(self._held)) do
    for _, parent in ipairs(self._held[id].lease.parents or {}) do
      if not self._view[parent] and not self._gone[parent] then
        local stored, err = self._table:get(self._arn, parent)
        if stored == nil then return err end
        if stored then self._view[parent] = stored else self._gone[parent] = true end
      end
    end
  end
end

function Coordinator:_scan(result)
  local leases, err = self._table:list(self._arn)
  if not leases then return err end
  local now = self._clock()
  self:_observe(leases, now)
  for _, id in ipairs(sorted_keys(self._held)) do
    local lease = self._view[id]
    if lease and lease.owner ~= self._me then self:_drop(id, result.lost) end -- taken from us
  end
  local chosen = self:_choose(now)
  self._scanned = true -- later, a lease of ours we do not hold (a lost take answer) expires first
  for _, choice in ipairs(chosen) do
    local ok, take_err = self:_take(choice.lease, choice.stolen, result)
    if ok == nil then return take_err end
  end
  return self:_confirm_parents()
end

local function advance(due, now, step)
  due = due + step
  if due <= now then due = now + step end
  return due
end

--- The periodic work, due-driven on the clock: renewal of held leases every
-- lease_duration/3, scan and take/steal every lease_duration/4, self-fencing of leases not
-- renewed for lease_duration. Call it at `next_due()` (earlier calls do only what is due).
-- @treturn table `{ acquired = { shard ids }, lost = { shard ids } }`, and as a second
-- result the first table error of this tick if any; or `nil, err` when a table call
-- failed and there is nothing to report (held leases stay held until their local expiry).
-- A list is never dropped: when a call failed alongside, both come back.
function Coordinator:tick()
  local now = self._clock()
  local result = { acquired = {}, lost = self._pending_lost }
  self._pending_lost = {}
  for _, id in ipairs(sorted_keys(self._held)) do
    if self:_fenced(self._held[id], now) then self:_drop(id, result.lost) end
  end
  local err
  if now >= self._next_renew then
    self._next_renew = advance(self._next_renew, now, self._d / 3)
    err = self:_renew_all(now, result)
  end
  if now >= self._next_scan then
    self._next_scan = advance(self._next_scan, now, self._d / 4)
    err = self:_scan(result) or err
  end
  if err and #result.acquired == 0 and #result.lost == 0 then return nil, err end
  return result, err
end

--- The clock time of the next renewal, scan or local expiry (a caller's sleep must not pass it).
-- @treturn number
function Coordinator:next_due()
  local due = self._next_scan
  for _, h in pairs(self._held) do
    due = math.min(due, self._next_renew, h.written + self._d)
  end
  return due
end

local function check_shard_id(method, shard_id)
  if type(shard_id) ~= "string" or shard_id == "" then error(method .. ": shard_id (a string) expected", 3) end
end

--- Whether this worker holds the shard's lease and it has not expired locally.
-- @tparam string shard_id
-- @treturn boolean
function Coordinator:holds(shard_id)
  check_shard_id("holds", shard_id)
  local h = self._held[shard_id]
  return h ~= nil and not self:_fenced(h, self._clock())
end

--- Whether the shard may be read: held, and every parent's lease is at SHARD_END or gone
-- (invariant 7).
-- @tparam string shard_id
-- @treturn boolean
function Coordinator:readable(shard_id)
  if not self:holds(shard_id) then return false end
  for _, parent in ipairs(self._held[shard_id].lease.parents or {}) do
    local lease = self._view[parent]
    if not (self._gone[parent] or (lease and lease.checkpoint == SHARD_END)) then return false end
  end
  return true
end

--- The shard's lease as this worker last read or wrote it (a copy), or nil.
-- @tparam string shard_id
-- @treturn table|nil `{ shard_id, owner, counter, checkpoint, position, parents, owner_switches }`
function Coordinator:lease(shard_id)
  check_shard_id("lease", shard_id)
  local h = self._held[shard_id]
  return copy(h and h.lease or self._view[shard_id])
end

--- A fenced checkpoint of a held lease (condition: owner and counter). It never moves
-- backwards; a SHARD_END checkpoint also releases the lease (nothing is left to read).
-- @tparam string shard_id
-- @tparam string checkpoint a sequence number (digits), `TRIM_HORIZON`, `LATEST` or `SHARD_END`
-- @tparam[opt] table position the stream's saved state of the shard
-- @return true, or `nil, err`: `LeaseLost` (not held, expired locally, or the condition
-- failed: the lease is dropped and reported lost by the next tick), `LeaseBusy` (a renewal
-- of it is in flight: try again), `CheckpointBackwards`, or the table's error (the lease
-- is kept; the write may have been applied and is settled before the next one)
function Coordinator:checkpoint(shard_id, checkpoint, position)
  check_shard_id("checkpoint", shard_id)
  if not valid_checkpoint(checkpoint) then
    error("checkpoint: checkpoint must be a sequence number (digits), TRIM_HORIZON, LATEST or SHARD_END", 2)
  end
  if position ~= nil and type(position) ~= "table" then error("checkpoint: position must be nil or a table", 2) end
  local h = self._held[shard_id]
  if not h then return nil, lost_error(shard_id, "this worker does not hold it") end
  if h.busy then
    return nil, errors.new({ code = "LeaseBusy", retryable = true,
      message = "lease of " .. shard_id .. " is being renewed" })
  end
  if self:_fenced(h, self._clock()) then
    self:_drop(shard_id, self._pending_lost)
    return nil, lost_error(shard_id, "not renewed for lease_duration (fenced locally)")
  end
  local settled, err = self:_resolve(shard_id, h)
  if settled == nil then return nil, err end
  if settled and backwards(h.lease.checkpoint, checkpoint) then
    return nil, errors.new({ code = "CheckpointBackwards", retryable = false,
      message = "checkpoint of " .. shard_id .. ": " .. checkpoint .. " is before " .. h.lease.checkpoint })
  end
  local counter
  if settled then counter, err = self:_held_write(shard_id, h, "checkpoint", checkpoint, position) end
  if not counter then
    if settled and not gone_error(err) then return nil, err end
    self:_drop(shard_id, self._pending_lost)
    return nil, lost_error(shard_id, err and err.message or "another worker wrote it")
  end
  local lease = h.lease
  lease.checkpoint, lease.position, lease.owner_switches = checkpoint, copy(position), 0
  self._view[shard_id] = copy(lease)
  self._stats.checkpoints = self._stats.checkpoints + 1
  if checkpoint == SHARD_END then
    -- Finished: no reader needs it, so no renewal should pay for it until cleanup. A failed
    -- release leaves an owner on a finished lease, which nobody takes or counts.
    self._held[shard_id] = nil
    if self._table:release(self._arn, shard_id, self._me, counter) then
      self._stats.releases = self._stats.releases + 1
      self._view[shard_id].owner, self._view[shard_id].counter = nil, counter + 1
    end
  end
  return true
end

--- Graceful stop: releases every held lease (after the caller's final checkpoints), so
-- that other workers take them at their next scan. Every lease is dropped locally.
-- @return true, or `nil, err` (the first failure other than a lost condition)
function Coordinator:release_all()
  local first_err
  for _, id in ipairs(sorted_keys(self._held)) do
    local h = self._held[id]
    self._held[id] = nil
    local settled, err = self:_resolve(id, h)
    local ok
    if settled then ok, err = self._table:release(self._arn, id, self._me, h.counter) end
    if ok then
      self._stats.releases = self._stats.releases + 1
    elseif err and err.code == "LeaseConflict" then
      self._stats.conflicts = self._stats.conflicts + 1
    elseif err then
      first_err = first_err or err
    end
  end
  if first_err then return nil, first_err end
  return true
end

local function check_shards(shards)
  if type(shards) ~= "table" then error("sync: shards (a list) expected", 3) end
  for i, s in ipairs(shards) do
    if type(s) ~= "table" or type(s.id) ~= "string" or s.id == "" then
      error("sync: shards[" .. i .. "].id must be a non-empty string", 3)
    end
    if s.parent ~= nil and (type(s.parent) ~= "string" or s.parent == "") then
      error("sync: shards[" .. i .. "].parent must be nil or a non-empty string", 3)
    end
    if s.closed ~= nil and type(s.closed) ~= "boolean" then error("sync: shards[" .. i .. "].closed must be a boolean", 3) end
  end
end

-- Whether a finished lease may be deleted (leases.md 2.10, invariant 7): no longer listed,
-- its own parents' leases gone, and every child (leased or listed) started past its start
-- position, or itself gone.
local function deletable(lease, leased, listed, children)
  if listed[lease.shard_id] then return false end
  for _, parent in ipairs(lease.parents or {}) do
    if leased[parent] then return false end
  end
  for _, child in ipairs(children[lease.shard_id] or {}) do
    local c = leased[child]
    if c and not (c.checkpoint == SHARD_END or seqnum.valid(c.checkpoint)) then return false end
  end
  return true
end

--- Brings the lease items in line with DescribeStream's shards: creates the missing ones,
-- parents first (a shard whose parent has a lease or is listed starts at TRIM_HORIZON, a
-- root at initial_checkpoint; a shard that some lease names as parent is never created
-- again: its lease was deleted once finished), then deletes finished leases that are no
-- longer needed (not listed, parents gone, every child started).
-- @tparam table shards `{ { id, parent (id or nil), closed (bool) }, ... }`
-- @return true, or `nil, err`
function Coordinator:sync(shards)
  check_shards(shards)
  local leases, err = self._table:list(self._arn)
  if not leases then return nil, err end
  self:_observe(leases, self._clock())
  local listed, leased, named = {}, {}, {}
  for _, s in ipairs(shards) do listed[s.id] = s end
  for _, lease in ipairs(leases) do
    leased[lease.shard_id] = lease
    for _, p in ipairs(lease.parents or {}) do named[p] = true end
  end
  local order, seen = {}, {}
  local function visit(s)
    if seen[s.id] then return end
    seen[s.id] = true
    if s.parent and listed[s.parent] then visit(listed[s.parent]) end
    order[#order + 1] = s
  end
  for _, s in ipairs(shards) do visit(s) end
  local created_now = {}
  for _, s in ipairs(order) do
    if not leased[s.id] and not named[s.id] and not self._gone[s.id] then
      -- A child reads its whole shard (nothing between parent and child is lost), except
      -- under a parent that starts at LATEST in this same sync: then "from now" holds for
      -- the child too, not the hours of records it already has.
      local checkpoint = self._initial
      if s.parent and (leased[s.parent] or listed[s.parent]) then
        local parent_new = created_now[s.parent]
        checkpoint = (parent_new and parent_new.checkpoint == "LATEST") and "LATEST" or "TRIM_HORIZON"
      end
      local lease = { shard_id = s.id, checkpoint = checkpoint,
        parents = { s.parent }, counter = 0, owner_switches = 0 }
      local created
      created, err = self._table:create(self._arn, lease)
      if created == nil then return nil, err end
      if created then
        self._stats.creates = self._stats.creates + 1
        created_now[s.id] = lease
      end
      leased[s.id] = lease
    end
  end
  local children = {}
  local function add_child(parent, child)
    children[parent] = children[parent] or {}
    table.insert(children[parent], child)
  end
  for id, lease in pairs(leased) do
    for _, p in ipairs(lease.parents or {}) do add_child(p, id) end
  end
  for _, s in ipairs(shards) do if s.parent and not leased[s.id] then add_child(s.parent, s.id) end end
  repeat -- parents before children: a deletion may free a child in the next pass
    local deleted = false
    for _, id in ipairs(sorted_keys(leased)) do
      local lease = leased[id]
      if lease.checkpoint == SHARD_END and deletable(lease, leased, listed, children) then
        local ok
        ok, err = self._table:delete(self._arn, id)
        if not ok and err.code ~= "LeaseConflict" then return nil, err end
        if ok then
          self._stats.deletes = self._stats.deletes + 1
          leased[id], self._view[id], self._gone[id], deleted = nil, nil, true, true
        else
          self._stats.conflicts = self._stats.conflicts + 1
        end
      end
    end
  until not deleted
  return true
end

--- Counters since the coordinator was made, and the table's capacity units.
-- @treturn table `{ held, renewals, takes, steals, checkpoints, releases, creates, deletes,
-- conflicts, lost, read_units, write_units }`
function Coordinator:stats()
  local out = copy(self._stats)
  out.held = 0
  for _ in pairs(self._held) do out.held = out.held + 1 end
  local t = self._table:stats() or {}
  out.read_units, out.write_units = t.read_units or 0, t.write_units or 0
  return out
end

return Coordinator
