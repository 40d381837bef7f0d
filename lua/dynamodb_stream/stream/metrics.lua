--- What stream:stats() reports beyond the delivery counters: per shard and
-- overall, the GetRecords pages, empty polls, throttles and errors, the lag
-- (as Lambda's IteratorAge: how old the newest record read was when its page
-- was read; kept while nothing newer comes) and whether the last answer was
-- empty (caught up).
-- Methods of dynamodb_stream.stream, mixed in by stream/init.lua.
-- @module dynamodb_stream.stream.metrics
local errors = require("dynamodb_stream.errors")

local M = {}

local SHARD_COUNTERS = { "delivered", "pages", "empty_polls", "throttles", "errors" }

-- The metrics of a tracked shard, made on first use (shards come from
-- DescribeStream, start_at and set_shard_state alike).
function M:_shard_metrics(sh)
  local m = sh.metrics
  if not m then
    m = { delivered = 0, pages = 0, empty_polls = 0, throttles = 0, errors = 0, caught_up = false }
    sh.metrics = m
  end
  return m
end

local function count(self, m, name)
  m[name] = m[name] + 1
  self._stats[name] = self._stats[name] + 1
end

-- One GetRecords answer of sh (res, or its error err), as it came. records:
-- the records it holds after filtering in C; passed_over: how many that took
-- out. The lag is the newest record's age; when the filter took that record
-- out (res._last_sequence_number is not the last kept one's), its time is
-- unknown and the lag stays as it was.
function M:_observe_page(sh, res, err, records, passed_over)
  local m = self:_shard_metrics(sh)
  if not res then
    count(self, m, errors.class(err) == "throttling" and "throttles" or "errors")
    return
  end
  count(self, m, "pages")
  local n = type(records) == "table" and #records or 0
  if n == 0 and (passed_over or 0) == 0 then
    count(self, m, "empty_polls")
    m.caught_up = true
    return
  end
  m.caught_up = false
  local last = records and records[n]
  local d = type(last) == "table" and last.dynamodb
  local created = type(d) == "table" and tonumber(tostring(d.ApproximateCreationDateTime))
  local newest_known = (passed_over or 0) == 0 or (d and d.SequenceNumber == res._last_sequence_number)
  if created and newest_known then
    m.newest_record_at = created
    m.lag = math.max(0, self._wall_clock() - created)
  end
end

-- A record of sh delivered to every listener.
function M:_observe_delivered(sh)
  local m = self:_shard_metrics(sh)
  m.delivered = m.delivered + 1
end

--- The per-shard part of stats(), and the overall lag and caught_up.
-- @treturn table shard id -> { delivered, filtered, pages, empty_polls, throttles,
-- errors, lag, caught_up, newest_record_at }
-- @treturn number|nil the largest lag of a tracked shard (nil before any record)
-- @treturn boolean whether every tracked shard is caught up (false with none)
function M:_shard_stats()
  local shards, lag, all_caught_up, any = {}, nil, true, false
  for id, sh in pairs(self._shards) do
    local m = self:_shard_metrics(sh)
    local copy = { filtered = sh.filtered or 0, lag = m.lag, caught_up = m.caught_up,
      newest_record_at = m.newest_record_at }
    for _, name in ipairs(SHARD_COUNTERS) do copy[name] = m[name] end
    shards[id] = copy
    if m.lag and (lag == nil or m.lag > lag) then lag = m.lag end
    all_caught_up, any = all_caught_up and m.caught_up, true
  end
  return shards, lag, any and all_caught_up
end

return M
