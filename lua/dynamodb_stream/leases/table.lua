--- The lease table: one item per shard in DynamoDB, every write conditional.
--
-- `require("dynamodb_stream.leases.table").new(ddb, table_name)` over a `ds.dynamodb()`
-- client (anything with `call(operation, params)`). Every method returns its result or
-- `nil, err`; a failed condition is `err.code == "LeaseConflict"`, any other failure keeps
-- the service's code. Bad arguments raise. A lease is
-- `{ shard_id, owner, counter, checkpoint, position, parents, owner_switches }`.
-- Every update's condition names an existing attribute, so that it fails on a missing
-- item instead of creating one (leases.md 7, race 20).
-- @module dynamodb_stream.leases.table

local core = require("dynamodb_stream.core")
local compat = require("dynamodb_stream.compat")
local errors = require("dynamodb_stream.errors")
local runtime = require("dynamodb_stream.runtime")

local LeaseTable = {}
LeaseTable.__index = LeaseTable

local SENTINELS = { TRIM_HORIZON = true, LATEST = true, SHARD_END = true }
local MAX_COUNTER = 2 ^ 53 -- what every Lua here holds exactly (see compat)

-- Attribute names, always through ExpressionAttributeNames (some are reserved words).
local NAMES = {
  ["#k"] = "leaseKey", ["#o"] = "leaseOwner", ["#c"] = "leaseCounter",
  ["#cp"] = "checkpoint", ["#pos"] = "position", ["#sw"] = "ownerSwitchesSinceCheckpoint",
  ["#t"] = "leaseWriteToken",
}

-- Every update also SETs leaseWriteToken to a value unique to that call (kept by the
-- client's retries, which resend the same body). When a retried write is refused, a re-read
-- showing our token proves the refusal was of our own applied write, whose answer was lost
-- (leases.md 2.1, races 4 and 5); owner and counter alone cannot tell it from a stale call.
local written = 0
local function write_token()
  written = written + 1
  return string.format("%.6f:%d:%d", core.monotime(), written, math.random(1, 1e9))
end

-- ensure's wait for ACTIVE: first pause, cap of one pause, and the default bound of all.
local FIRST_PAUSE, MAX_PAUSE, WAIT_TIMEOUT = 0.1, 5, 120

-- Argument checks: they raise at the caller of the public method.

local function is_name(value)
  return type(value) == "string" and value ~= "" and not value:find("[%c\127]")
end

local function check_name(method, what, value)
  if not is_name(value) then
    error(method .. ": " .. what .. " must be a non-empty string without control characters", 3)
  end
end

-- A stream ARN or a shard id: the key joins them with "|", so neither may hold one.
local function check_key_part(method, what, value)
  if not is_name(value) or value:find("|", 1, true) then
    error(method .. ": " .. what .. " must be a non-empty string without control characters or '|'", 3)
  end
end

local function check_counter(method, value)
  if not compat.is_integer(value) or value < 0 or value >= MAX_COUNTER then
    error(method .. ": counter must be a non-negative integer below 2^53", 3)
  end
end

local function valid_checkpoint(value)
  return type(value) == "string" and (SENTINELS[value] or value:match("^%d+$") ~= nil)
end

local function check_checkpoint(method, value)
  if not valid_checkpoint(value) then
    error(method .. ": checkpoint must be a sequence number (digits), TRIM_HORIZON, LATEST or SHARD_END", 3)
  end
end

-- position (a table or nil) -> its JSON text or nil; raises when it is neither.
local function position_text(method, position)
  if position == nil then return nil end
  local ok, text = false, nil
  if type(position) == "table" and getmetatable(position) ~= core.list_mt then
    ok, text = pcall(core.json_encode, position)
  end
  if not ok or type(text) ~= "string" or text:sub(1, 1) ~= "{" then
    error(method .. ": position must be nil or a table that encodes as a JSON object", 3)
  end
  return text
end

local function lease_key(stream_arn, shard_id)
  return stream_arn .. "|" .. shard_id
end

--- Makes the lease table object (nothing is sent: `ensure` checks or creates the table).
-- @param ddb a DynamoDB client (`ds.dynamodb()`, or anything with `call(operation, params)`)
-- @tparam string table_name the lease table's name (3 to 255 of `A-Za-z0-9_.-`)
-- @tparam[opt] table opts `sleep` (function(seconds), default `ds.sleep`) and `wait_timeout`
-- (seconds `ensure` waits for ACTIVE in all, default 120)
-- @return the object; raises on a bad argument
function LeaseTable.new(ddb, table_name, opts)
  local call = (type(ddb) == "table" or type(ddb) == "userdata") and ddb.call
  if type(call) ~= "function" then
    error("leases.table.new: ddb must be a DynamoDB client (ds.dynamodb())", 2)
  end
  if type(table_name) ~= "string" or not table_name:match("^[%w_.%-]+$") or #table_name < 3
    or #table_name > 255 then
    error("leases.table.new: table_name must be 3 to 255 characters of A-Z a-z 0-9 _ . -", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then error("leases.table.new: opts must be a table", 2) end
  opts = opts or {}
  if opts.sleep ~= nil and type(opts.sleep) ~= "function" then
    error("leases.table.new: opts.sleep must be a function", 2)
  end
  local wait = opts.wait_timeout
  if wait ~= nil and (type(wait) ~= "number" or wait ~= wait or wait < 0 or wait == math.huge) then
    error("leases.table.new: opts.wait_timeout must be a finite number of seconds >= 0", 2)
  end
  return setmetatable({
    _ddb = ddb,
    _name = table_name,
    _sleep = opts.sleep or runtime.sleep,
    _wait_timeout = wait or WAIT_TIMEOUT,
    _stats = { reads = 0, writes = 0, conflicts = 0, recovered = 0, read_units = 0, write_units = 0 },
  }, LeaseTable)
end

-- Billing. Units come from ConsumedCapacity.CapacityUnits (ReturnConsumedCapacity =
-- TOTAL) when the answer carries it. An answer without it (a refused condition is still
-- billed, and its error answer carries none) is estimated as DynamoDB bills an item
-- under 1 KB / 4 KB: 1 write unit per write, 1 read unit per consistent read or Scan page.
local function bill(self, kind, answer)
  local stats = self._stats
  stats[kind .. "s"] = stats[kind .. "s"] + 1
  local consumed = type(answer) == "table" and answer.ConsumedCapacity
  local units = type(consumed) == "table" and tonumber(consumed.CapacityUnits) or 1
  stats[kind .. "_units"] = stats[kind .. "_units"] + units
end

-- One item call (kind "read" or "write"), counted and billed: the answer, or nil, err
-- where err.code is "LeaseConflict" for a failed condition (what = the message).
function LeaseTable:_call(kind, operation, params, what)
  params.TableName = self._name
  params.ReturnConsumedCapacity = "TOTAL"
  local answer, err = self._ddb:call(operation, params)
  if answer or (err and err.code == "ConditionalCheckFailedException") then bill(self, kind, answer) end
  if answer then return answer end
  if err and err.code == "ConditionalCheckFailedException" then
    return nil, errors.new({ code = "LeaseConflict", message = what, operation = operation, retryable = false })
  end
  return nil, err
end

-- Strict parsing of a stored item (raw AttributeValues).

local function bad_item(key, field, why)
  return nil, errors.new({
    code = "BadLeaseItem",
    message = 'lease item "' .. (key:gsub("[%c\127]", "?")) .. '": ' .. field .. " " .. why,
    retryable = false,
  })
end

local function string_attr(item, name)
  local av = item[name]
  if type(av) == "table" and type(av.S) == "string" then return av.S end
  return nil
end

-- An N attribute holding a non-negative integer -> the number, or nil.
local function counter_attr(av)
  if type(av) ~= "table" or type(av.N) ~= "string" or not av.N:match("^%d+$") then return nil end
  local n = tonumber(av.N)
  if n >= MAX_COUNTER then return nil end
  return n
end

-- item (AttributeValues) and the stream it must belong to -> the lease, or nil, err.
local function parse_item(item, stream_arn)
  local key = string_attr(item, "leaseKey")
  if not key then return bad_item(item.leaseKey and "?" or "(none)", "leaseKey", "is not a string") end
  if string_attr(item, "streamArn") ~= stream_arn then
    return bad_item(key, "streamArn", "is not the string " .. stream_arn)
  end
  local shard_id = string_attr(item, "shardId")
  if not shard_id or key ~= lease_key(stream_arn, shard_id) then
    return bad_item(key, "shardId", "is not a string naming the key's shard")
  end
  local owner
  if item.leaseOwner ~= nil then
    owner = string_attr(item, "leaseOwner")
    if not owner or owner == "" then return bad_item(key, "leaseOwner", "is not a non-empty string") end
  end
  local counter = counter_attr(item.leaseCounter)
  if not counter then return bad_item(key, "leaseCounter", "is not a non-negative integer number (N)") end
  local checkpoint = string_attr(item, "checkpoint")
  if not valid_checkpoint(checkpoint) then
    return bad_item(key, "checkpoint", "is not a sequence number (digits) or a sentinel string")
  end
  local position
  if item.position ~= nil then
    local text = string_attr(item, "position")
    position = text and core.json_decode(text)
    if type(position) ~= "table" or getmetatable(position) == core.list_mt then
      return bad_item(key, "position", "is not a JSON object in a string")
    end
  end
  local parents = {}
  if item.parentShardIds ~= nil then
    local set = type(item.parentShardIds) == "table" and item.parentShardIds.SS
    if type(set) ~= "table" then return bad_item(key, "parentShardIds", "is not a string set (SS)") end
    for i, id in ipairs(set) do
      if type(id) ~= "string" or id == "" then
        return bad_item(key, "parentShardIds", "holds something other than shard ids")
      end
      parents[i] = id
    end
    table.sort(parents)
  end
  -- Absent on items written by others; every write of ours sets or ADDs it.
  local switches = 0
  if item.ownerSwitchesSinceCheckpoint ~= nil then
    switches = counter_attr(item.ownerSwitchesSinceCheckpoint)
    if not switches then
      return bad_item(key, "ownerSwitchesSinceCheckpoint", "is not a non-negative integer number (N)")
    end
  end
  local token
  if item.leaseWriteToken ~= nil then
    token = string_attr(item, "leaseWriteToken")
    if not token then return bad_item(key, "leaseWriteToken", "is not a string") end
  end
  return {
    shard_id = shard_id, owner = owner, counter = counter, checkpoint = checkpoint,
    position = position, parents = parents, owner_switches = switches, _token = token,
  }
end

local function public(lease)
  lease._token = nil
  return lease
end

-- The stored item, parsed: the lease, false when absent, or nil, err.
function LeaseTable:_get(stream_arn, shard_id)
  local answer, err = self:_call("read", "GetItem", {
    Key = { leaseKey = { S = lease_key(stream_arn, shard_id) } },
    ConsistentRead = true,
  })
  if not answer then return nil, err end
  if type(answer.Item) ~= "table" then return false end
  return parse_item(answer.Item, stream_arn)
end

--- Makes sure the table exists with the right key, creating it (PAY_PER_REQUEST) when absent,
-- and waits until it is ACTIVE (bounded by `wait_timeout`).
-- @treturn boolean true, or `nil, err`: code `BadLeaseTable` when its key schema is not
-- exactly HASH `leaseKey` (S), `LeaseTableNotReady` when it did not become ACTIVE in time
-- or is being deleted, else the service's code
function LeaseTable:ensure()
  local ddb, name = self._ddb, self._name
  local described, err = ddb:call("DescribeTable", { TableName = name })
  if not described and err and err.code == "ResourceNotFoundException" then
    local created
    created, err = ddb:call("CreateTable", {
      TableName = name,
      AttributeDefinitions = { { AttributeName = "leaseKey", AttributeType = "S" } },
      KeySchema = { { AttributeName = "leaseKey", KeyType = "HASH" } },
      BillingMode = "PAY_PER_REQUEST",
    })
    -- ResourceInUse: another worker created it meanwhile; wait for it like for ours.
    if not created and err.code ~= "ResourceInUseException" then return nil, err end
    described, err = ddb:call("DescribeTable", { TableName = name })
  end
  local pause, waited = FIRST_PAUSE, 0
  while true do
    if not described then return nil, err end
    local desc = type(described.Table) == "table" and described.Table or {}
    local keys, defs = desc.KeySchema, desc.AttributeDefinitions
    local key_type
    for _, def in ipairs(type(defs) == "table" and defs or {}) do
      if type(def) == "table" and def.AttributeName == "leaseKey" then key_type = def.AttributeType end
    end
    if type(keys) ~= "table" or #keys ~= 1 or type(keys[1]) ~= "table" or keys[1].AttributeName ~= "leaseKey"
      or keys[1].KeyType ~= "HASH" or key_type ~= "S" then
      return nil, errors.new({ code = "BadLeaseTable", operation = "DescribeTable", retryable = false,
        message = "table " .. name .. " is not a lease table: its key must be exactly HASH leaseKey (S)" })
    end
    local status = desc.TableStatus
    if status == "ACTIVE" or status == "UPDATING" then return true end
    if status ~= "CREATING" or waited + pause > self._wait_timeout then
      return nil, errors.new({ code = "LeaseTableNotReady", operation = "DescribeTable",
        message = "table " .. name .. " is " .. tostring(status)
          .. (status == "CREATING" and (" after " .. waited .. " s") or "") })
    end
    self._sleep(pause)
    waited = waited + pause
    pause = math.min(pause * 2, MAX_PAUSE)
    described, err = ddb:call("DescribeTable", { TableName = name })
  end
end

--- Every lease of one stream: a consistent Scan, every page.
-- @tparam string stream_arn the stream
-- @treturn table `{ lease, ... }`, or `nil, err` (code `BadLeaseItem`, naming the key and
-- the field, when an item of that stream does not parse)
function LeaseTable:list(stream_arn)
  check_key_part("list", "stream_arn", stream_arn)
  local leases = {}
  local params = {
    ConsistentRead = true,
    FilterExpression = "streamArn = :arn",
    ExpressionAttributeValues = { [":arn"] = { S = stream_arn } },
  }
  repeat
    local answer, err = self:_call("read", "Scan", params)
    if not answer then return nil, err end
    for _, item in ipairs(answer.Items or {}) do
      local lease, bad = parse_item(item, stream_arn)
      if not lease then return nil, bad end
      leases[#leases + 1] = public(lease)
    end
    params.ExclusiveStartKey = answer.LastEvaluatedKey
  until params.ExclusiveStartKey == nil
  return leases
end

--- One lease, read consistently.
-- @tparam string stream_arn the stream
-- @tparam string shard_id the shard
-- @return the lease, `false` when there is none, or `nil, err`
function LeaseTable:get(stream_arn, shard_id)
  check_key_part("get", "stream_arn", stream_arn)
  check_key_part("get", "shard_id", shard_id)
  local lease, err = self:_get(stream_arn, shard_id)
  if lease then return public(lease) end
  return lease, err
end

--- Creates a lease item unless one exists (`attribute_not_exists(leaseKey)`).
-- @tparam string stream_arn the stream
-- @tparam table lease `shard_id`, `checkpoint`, and optionally `parents` (shard ids),
-- `position`, `owner`, `counter` (default 0), `owner_switches` (default 0)
-- @treturn boolean true when created, false when it was already there, or `nil, err`
function LeaseTable:create(stream_arn, lease)
  check_key_part("create", "stream_arn", stream_arn)
  if type(lease) ~= "table" then error("create: lease must be a table", 2) end
  check_key_part("create", "lease.shard_id", lease.shard_id)
  check_checkpoint("create", lease.checkpoint)
  local item = {
    leaseKey = { S = lease_key(stream_arn, lease.shard_id) },
    streamArn = { S = stream_arn },
    shardId = { S = lease.shard_id },
    checkpoint = { S = lease.checkpoint },
  }
  if lease.owner ~= nil then
    check_name("create", "lease.owner", lease.owner)
    item.leaseOwner = { S = lease.owner }
  end
  local counter, switches = lease.counter or 0, lease.owner_switches or 0
  check_counter("create", counter)
  if not compat.is_integer(switches) or switches < 0 or switches >= MAX_COUNTER then
    error("create: lease.owner_switches must be a non-negative integer", 2)
  end
  item.leaseCounter = { N = string.format("%d", counter) }
  item.ownerSwitchesSinceCheckpoint = { N = string.format("%d", switches) }
  local text = position_text("create", lease.position)
  if text then item.position = { S = text } end
  if lease.parents ~= nil then
    if type(lease.parents) ~= "table" then error("create: lease.parents must be a list of shard ids", 2) end
    local set, seen = {}, {}
    for _, id in ipairs(lease.parents) do
      check_key_part("create", "each of lease.parents", id)
      if not seen[id] then set[#set + 1], seen[id] = id, true end
    end
    if #set > 0 then item.parentShardIds = { SS = set } end
  end
  local answer, err = self:_call("write", "PutItem", {
    Item = item,
    ConditionExpression = "attribute_not_exists(#k)",
    ExpressionAttributeNames = { ["#k"] = NAMES["#k"] },
  }, "lease of " .. lease.shard_id .. " exists")
  if answer then return true end
  if err.code == "LeaseConflict" then return false end
  return nil, err
end

-- The names an expression uses, out of NAMES.
local function names(...)
  local used = {}
  for i = 1, select("#", ...) do
    local n = select(i, ...)
    used[n] = NAMES[n]
  end
  return used
end

local function number(n) return { N = string.format("%d", n) } end

-- A conditional UpdateItem on the lease that moves the counter from counter to counter + 1
-- (params.UpdateExpression SETs #t = :t). On a failed condition the stored item is read
-- again: our token and counter + 1 there mean our own write was applied and its answer
-- lost. -> true, or nil, err (LeaseConflict describing what is stored).
function LeaseTable:_update(method, stream_arn, shard_id, counter, params)
  local token = write_token()
  params.Key = { leaseKey = { S = lease_key(stream_arn, shard_id) } }
  params.ExpressionAttributeNames["#t"] = NAMES["#t"]
  params.ExpressionAttributeValues[":t"] = { S = token }
  local answer, err = self:_call("write", "UpdateItem", params)
  if answer then return true end
  if err.code ~= "LeaseConflict" then return nil, err end
  local stored, read_err = self:_get(stream_arn, shard_id)
  if stored == nil then return nil, read_err end
  if stored and stored._token == token and stored.counter == counter + 1 then
    self._stats.recovered = self._stats.recovered + 1
    return true
  end
  self._stats.conflicts = self._stats.conflicts + 1
  local now = not stored and "there is no lease item"
    or ("stored: owner " .. tostring(stored.owner) .. ", counter " .. stored.counter
      .. ", checkpoint " .. stored.checkpoint)
  return nil, errors.new({ code = "LeaseConflict", operation = "UpdateItem", retryable = false,
    message = method .. " of " .. shard_id .. " refused: " .. now })
end

--- Renews a held lease: condition owner = me and counter = counter; ADD 1 to the counter.
-- A refused write whose re-read shows our own write applied (its answer lost, the call
-- retried) counts as success.
-- @tparam string stream_arn the stream
-- @tparam string shard_id the shard
-- @tparam string owner this worker's id
-- @tparam integer counter the counter this worker last wrote or read
-- @treturn integer the new counter, or `nil, err` (`LeaseConflict`: the lease is lost)
function LeaseTable:renew(stream_arn, shard_id, owner, counter)
  check_key_part("renew", "stream_arn", stream_arn)
  check_key_part("renew", "shard_id", shard_id)
  check_name("renew", "owner", owner)
  check_counter("renew", counter)
  local ok, err = self:_update("renew", stream_arn, shard_id, counter, {
    ConditionExpression = "#o = :me AND #c = :c",
    UpdateExpression = "SET #t = :t ADD #c :one",
    ExpressionAttributeNames = names("#o", "#c"),
    ExpressionAttributeValues = { [":me"] = { S = owner }, [":c"] = number(counter), [":one"] = number(1) },
  })
  if not ok then return nil, err end
  return counter + 1
end

--- Takes a lease (expired, unowned, or stolen): condition counter = counter (as scanned);
-- SET owner, ADD 1 to the counter, and to the owner switches when previous_owner is not owner.
-- A refused write whose re-read shows our own write applied counts as success.
-- @tparam string stream_arn the stream
-- @tparam string shard_id the shard
-- @tparam string owner this worker's id
-- @tparam integer counter the counter as scanned
-- @tparam[opt] string previous_owner the owner as scanned (nil: none)
-- @treturn integer the new counter, or `nil, err` (`LeaseConflict`: someone else moved it)
function LeaseTable:take(stream_arn, shard_id, owner, counter, previous_owner)
  check_key_part("take", "stream_arn", stream_arn)
  check_key_part("take", "shard_id", shard_id)
  check_name("take", "owner", owner)
  check_counter("take", counter)
  if previous_owner ~= nil then check_name("take", "previous_owner", previous_owner) end
  local switch = previous_owner ~= owner
  local ok, err = self:_update("take", stream_arn, shard_id, counter, {
    ConditionExpression = "#c = :c",
    UpdateExpression = "SET #o = :me, #t = :t ADD #c :one" .. (switch and ", #sw :one" or ""),
    ExpressionAttributeNames = switch and names("#o", "#c", "#sw") or names("#o", "#c"),
    ExpressionAttributeValues = { [":me"] = { S = owner }, [":c"] = number(counter), [":one"] = number(1) },
  })
  if not ok then return nil, err end
  return counter + 1
end

--- Writes a checkpoint, fenced: condition owner = me and counter = counter; SET checkpoint,
-- position (JSON text; REMOVE when nil), owner switches = 0; ADD 1 to the counter.
-- A refused write whose re-read shows our own write applied counts as success.
-- @tparam string stream_arn the stream
-- @tparam string shard_id the shard
-- @tparam string owner this worker's id
-- @tparam integer counter the counter this worker last wrote or read
-- @tparam string checkpoint a sequence number (digits), `TRIM_HORIZON`, `LATEST` or `SHARD_END`
-- @tparam[opt] table position the stream's saved state of the shard
-- @treturn integer the new counter, or `nil, err` (`LeaseConflict`: the lease is lost)
function LeaseTable:checkpoint(stream_arn, shard_id, owner, counter, checkpoint, position)
  check_key_part("checkpoint", "stream_arn", stream_arn)
  check_key_part("checkpoint", "shard_id", shard_id)
  check_name("checkpoint", "owner", owner)
  check_counter("checkpoint", counter)
  check_checkpoint("checkpoint", checkpoint)
  local text = position_text("checkpoint", position)
  local values = { [":me"] = { S = owner }, [":c"] = number(counter), [":one"] = number(1),
    [":cp"] = { S = checkpoint }, [":zero"] = number(0) }
  local update
  if text then
    values[":pos"] = { S = text }
    update = "SET #cp = :cp, #sw = :zero, #pos = :pos, #t = :t ADD #c :one"
  else
    update = "SET #cp = :cp, #sw = :zero, #t = :t REMOVE #pos ADD #c :one"
  end
  local ok, err = self:_update("checkpoint", stream_arn, shard_id, counter, {
    ConditionExpression = "#o = :me AND #c = :c",
    UpdateExpression = update,
    ExpressionAttributeNames = names("#o", "#c", "#cp", "#sw", "#pos"),
    ExpressionAttributeValues = values,
  })
  if not ok then return nil, err end
  return counter + 1
end

--- Releases a held lease (graceful stop): condition owner = me and counter = counter;
-- REMOVE the owner, ADD 1 to the counter. A refused write whose re-read shows our own
-- write applied counts as success.
-- @tparam string stream_arn the stream
-- @tparam string shard_id the shard
-- @tparam string owner this worker's id
-- @tparam integer counter the counter this worker last wrote or read
-- @treturn boolean true, or `nil, err` (`LeaseConflict`: not ours any more)
function LeaseTable:release(stream_arn, shard_id, owner, counter)
  check_key_part("release", "stream_arn", stream_arn)
  check_key_part("release", "shard_id", shard_id)
  check_name("release", "owner", owner)
  check_counter("release", counter)
  return self:_update("release", stream_arn, shard_id, counter, {
    ConditionExpression = "#o = :me AND #c = :c",
    UpdateExpression = "SET #t = :t REMOVE #o ADD #c :one",
    ExpressionAttributeNames = names("#o", "#c"),
    ExpressionAttributeValues = { [":me"] = { S = owner }, [":c"] = number(counter), [":one"] = number(1) },
  })
end

--- Deletes a finished lease: condition checkpoint = SHARD_END. An item already gone
-- (deleted by another worker, or by our own retried call) counts as deleted.
-- @tparam string stream_arn the stream
-- @tparam string shard_id the shard
-- @treturn boolean true, or `nil, err` (`LeaseConflict`: the lease is not at SHARD_END)
function LeaseTable:delete(stream_arn, shard_id)
  check_key_part("delete", "stream_arn", stream_arn)
  check_key_part("delete", "shard_id", shard_id)
  local answer, err = self:_call("write", "DeleteItem", {
    Key = { leaseKey = { S = lease_key(stream_arn, shard_id) } },
    ConditionExpression = "#cp = :end",
    ExpressionAttributeNames = names("#cp"),
    ExpressionAttributeValues = { [":end"] = { S = "SHARD_END" } },
  }, "delete of " .. shard_id .. " refused: its checkpoint is not SHARD_END")
  if answer then return true end
  if err.code ~= "LeaseConflict" then return nil, err end
  local stored, read_err = self:_get(stream_arn, shard_id)
  if stored == false then return true end
  if stored == nil then return nil, read_err end
  self._stats.conflicts = self._stats.conflicts + 1
  return nil, err
end

--- The counters since the object was made.
-- @treturn table `{ reads, writes, conflicts, recovered, read_units, write_units }`: item
-- calls made, conditions refused for good, refused writes found to be our own (lost
-- answers), and capacity units (as DynamoDB reports them, else estimated: see `bill`)
function LeaseTable:stats()
  local copy = {}
  for k, v in pairs(self._stats) do copy[k] = v end
  return copy
end

return LeaseTable
