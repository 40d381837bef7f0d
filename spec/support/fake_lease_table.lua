-- An in-memory lease table with exactly the contract of dynamodb_stream.leases.table
-- (see that module and the common brief of issue 14): the same methods, arguments,
-- results and errors (a failed condition is `err.code == "LeaseConflict"`). The real table
-- recognises a lost answer only within one call (its write token survives the client's
-- retries); a call here has no retries, so a lost answer (lose_response) reaches the
-- caller as a Timeout and the caller's next write with the old counter is refused, as
-- there. spec/unit/leases/fake_lease_table_spec.lua runs the real table's contract cases
-- (spec/integration/leases/table_conformance.lua) against it. One object may be shared by
-- several coordinators (the "workers" of a spec); items are keyed by stream ARN and shard id.
--
--   local fake = require("fake_lease_table").new()
--   fake:fail("renew", "ProvisionedThroughputExceededException", { times = 3 })
--   fake:fail("list", "AccessDeniedException", { times = math.huge })  -- until clear_faults
--   fake:lose_response("checkpoint")     -- the next checkpoint is applied, then a Timeout
--   fake:before("renew", function(arn, shard_id, owner, counter) end)  -- interleavings
--   fake:count("take")                   -- calls made so far (failed ones included)
--   fake:item(arn, shard_id) / fake:put(arn, lease) / fake:remove(arn, shard_id)
--                                        -- raw access, no condition (a spec's hand)
local errors = require("dynamodb_stream.errors")
local compat = require("dynamodb_stream.compat")
local helper = require("helper")

local Fake = {}
Fake.__index = Fake

local SENTINELS = { TRIM_HORIZON = true, LATEST = true, SHARD_END = true }

local function copy(v)
  return type(v) == "table" and helper.deep_copy(v) or v
end

-- The argument checks of the real table (they raise at the caller of the method).
local function check_name(method, what, v)
  if type(v) ~= "string" or v == "" or v:find("[%c\127]") then
    error(method .. ": " .. what .. " must be a non-empty string without control characters", 3)
  end
end

local function check_counter(method, v)
  if not compat.is_integer(v) or v < 0 then error(method .. ": counter must be a non-negative integer", 3) end
end

local function check_checkpoint(method, v)
  if type(v) ~= "string" or not (SENTINELS[v] or v:match("^%d+$")) then
    error(method .. ": checkpoint must be a sequence number (digits), TRIM_HORIZON, LATEST or SHARD_END", 3)
  end
end

--- A new, empty table.
function Fake.new()
  return setmetatable({
    _items = {},      -- [stream_arn][shard_id] = lease
    _faults = {},     -- [method] = { { code, times, shard, lose } ... }
    _before = {},     -- [method] = function(...)
    _calls = {},      -- [method] = n
    _stats = { reads = 0, writes = 0, conflicts = 0, recovered = 0, read_units = 0, write_units = 0 },
  }, Fake)
end

--- The next `opts.times` (default 1) calls of method (on `opts.shard` only, when given)
-- fail with code and change nothing.
function Fake:fail(method, code, opts)
  opts = opts or {}
  local list = self._faults[method] or {}
  self._faults[method] = list
  list[#list + 1] = { code = code, times = opts.times or 1, shard = opts.shard }
end

--- The next `opts.times` (default 1) calls of a write method are applied, then answer
-- with a Timeout error (the response was lost).
function Fake:lose_response(method, opts)
  opts = opts or {}
  local list = self._faults[method] or {}
  self._faults[method] = list
  list[#list + 1] = { code = "Timeout", times = opts.times or 1, shard = opts.shard, lose = true }
end

--- Forgets every injected fault.
function Fake:clear_faults() self._faults = {} end

--- fn(...) (the method's arguments) runs at the start of every call of method (nil removes it).
function Fake:before(method, fn) self._before[method] = fn end

--- The number of calls of method so far.
function Fake:count(method) return self._calls[method] or 0 end

--- A copy of the stored lease, or nil.
function Fake:item(stream_arn, shard_id)
  local stream = self._items[stream_arn]
  return stream and copy(stream[shard_id])
end

--- Stores a lease as it is (no condition, no check).
function Fake:put(stream_arn, lease)
  self._items[stream_arn] = self._items[stream_arn] or {}
  local stored = copy(lease)
  stored.counter = stored.counter or 0
  stored.parents = stored.parents or {}
  stored.owner_switches = stored.owner_switches or 0
  self._items[stream_arn][lease.shard_id] = stored
end

--- Removes a lease (no condition).
function Fake:remove(stream_arn, shard_id)
  if self._items[stream_arn] then self._items[stream_arn][shard_id] = nil end
end

-- Counts the call, runs the before hook, and consumes a fault: -> fault or nil.
function Fake:_enter(method, shard_id, ...)
  self._calls[method] = (self._calls[method] or 0) + 1
  local hook = self._before[method]
  if hook then hook(...) end
  for i, f in ipairs(self._faults[method] or {}) do
    if f.shard == nil or f.shard == shard_id then
      f.times = f.times - 1
      if f.times <= 0 then table.remove(self._faults[method], i) end
      return f
    end
  end
end

local function fault_error(method, fault)
  return errors.new({ code = fault.code, message = "injected by the fake lease table (" .. method .. ")" })
end

local function conflict(self, method, shard_id)
  self._stats.conflicts = self._stats.conflicts + 1
  return nil, errors.new({ code = "LeaseConflict", retryable = false,
    message = method .. " of " .. shard_id .. " refused (fake lease table)" })
end

function Fake:_bill(kind)
  local s = self._stats
  s[kind .. "s"] = s[kind .. "s"] + 1
  s[kind .. "_units"] = s[kind .. "_units"] + (kind == "read" and 0.5 or 1)
end

-- One conditional write: cond(stored) -> may it apply; apply(stored) -> result.
function Fake:_write(method, stream_arn, shard_id, fault, cond, apply)
  if fault and not fault.lose then return nil, fault_error(method, fault) end
  self:_bill("write")
  local stream = self._items[stream_arn]
  local stored = stream and stream[shard_id]
  if not (stored and cond(stored)) then return conflict(self, method, shard_id) end
  local result = apply(stored)
  if fault then return nil, fault_error(method, fault) end
  return result
end

--- Like the real table's (no table to make here): true.
function Fake:ensure()
  local fault = self:_enter("ensure")
  if fault then return nil, fault_error("ensure", fault) end
  return true
end

--- Every lease of the stream (copies, sorted by shard id).
function Fake:list(stream_arn)
  check_name("list", "stream_arn", stream_arn)
  local fault = self:_enter("list", nil, stream_arn)
  if fault then return nil, fault_error("list", fault) end
  self:_bill("read")
  local out = {}
  for _, lease in pairs(self._items[stream_arn] or {}) do out[#out + 1] = copy(lease) end
  table.sort(out, function(a, b) return a.shard_id < b.shard_id end)
  return out
end

--- The lease, or false when absent.
function Fake:get(stream_arn, shard_id)
  check_name("get", "stream_arn", stream_arn)
  check_name("get", "shard_id", shard_id)
  local fault = self:_enter("get", shard_id, stream_arn, shard_id)
  if fault then return nil, fault_error("get", fault) end
  self:_bill("read")
  local stream = self._items[stream_arn]
  return stream and stream[shard_id] and copy(stream[shard_id]) or false
end

--- true when created, false when already there.
function Fake:create(stream_arn, lease)
  check_name("create", "stream_arn", stream_arn)
  if type(lease) ~= "table" then error("create: lease must be a table", 2) end
  check_name("create", "lease.shard_id", lease.shard_id)
  check_checkpoint("create", lease.checkpoint)
  local fault = self:_enter("create", lease.shard_id, stream_arn, lease)
  if fault and not fault.lose then return nil, fault_error("create", fault) end
  self:_bill("write")
  local stream = self._items[stream_arn] or {}
  self._items[stream_arn] = stream
  if stream[lease.shard_id] then return false end
  local parents = copy(lease.parents or {})
  table.sort(parents)
  stream[lease.shard_id] = {
    shard_id = lease.shard_id, owner = lease.owner, counter = lease.counter or 0,
    checkpoint = lease.checkpoint, position = copy(lease.position), parents = parents,
    owner_switches = lease.owner_switches or 0,
  }
  if fault then return nil, fault_error("create", fault) end
  return true
end

--- Condition owner = me and counter = c; the counter + 1.
function Fake:renew(stream_arn, shard_id, owner, counter)
  check_name("renew", "owner", owner)
  check_counter("renew", counter)
  local fault = self:_enter("renew", shard_id, stream_arn, shard_id, owner, counter)
  return self:_write("renew", stream_arn, shard_id, fault,
    function(s) return s.owner == owner and s.counter == counter end,
    function(s) s.counter = s.counter + 1 return s.counter end)
end

--- Condition counter = c; owner = me, the counter + 1, owner switches + 1 on a change.
function Fake:take(stream_arn, shard_id, owner, counter, previous_owner)
  check_name("take", "owner", owner)
  check_counter("take", counter)
  local fault = self:_enter("take", shard_id, stream_arn, shard_id, owner, counter, previous_owner)
  return self:_write("take", stream_arn, shard_id, fault,
    function(s) return s.counter == counter end,
    function(s)
      if previous_owner ~= owner then s.owner_switches = s.owner_switches + 1 end
      s.owner, s.counter = owner, s.counter + 1
      return s.counter
    end)
end

--- Condition owner = me and counter = c; checkpoint, position, owner switches = 0, counter + 1.
function Fake:checkpoint(stream_arn, shard_id, owner, counter, checkpoint, position)
  check_name("checkpoint", "owner", owner)
  check_counter("checkpoint", counter)
  check_checkpoint("checkpoint", checkpoint)
  if position ~= nil and type(position) ~= "table" then error("checkpoint: position must be nil or a table", 2) end
  local fault = self:_enter("checkpoint", shard_id, stream_arn, shard_id, owner, counter, checkpoint, position)
  return self:_write("checkpoint", stream_arn, shard_id, fault,
    function(s) return s.owner == owner and s.counter == counter end,
    function(s)
      s.checkpoint, s.position, s.owner_switches = checkpoint, copy(position), 0
      s.counter = s.counter + 1
      return s.counter
    end)
end

--- Condition owner = me and counter = c; no owner, counter + 1. -> true
function Fake:release(stream_arn, shard_id, owner, counter)
  check_name("release", "owner", owner)
  check_counter("release", counter)
  local fault = self:_enter("release", shard_id, stream_arn, shard_id, owner, counter)
  local ok, err = self:_write("release", stream_arn, shard_id, fault,
    function(s) return s.owner == owner and s.counter == counter end,
    function(s) s.owner, s.counter = nil, s.counter + 1 return true end)
  if ok then return true end
  return nil, err
end

--- Condition checkpoint = SHARD_END; an item already gone counts as deleted. -> true
function Fake:delete(stream_arn, shard_id)
  check_name("delete", "shard_id", shard_id)
  local fault = self:_enter("delete", shard_id, stream_arn, shard_id)
  if fault and not fault.lose then return nil, fault_error("delete", fault) end
  self:_bill("write")
  local stream = self._items[stream_arn]
  local stored = stream and stream[shard_id]
  if stored and stored.checkpoint ~= "SHARD_END" then return conflict(self, "delete", shard_id) end
  if stored then stream[shard_id] = nil end
  if fault then return nil, fault_error("delete", fault) end
  return true
end

--- { reads, writes, conflicts, recovered, read_units, write_units } (units: 1 per write,
-- 0.5 per read, as DynamoDB bills items under 1 KB).
function Fake:stats() return copy(self._stats) end

return Fake
