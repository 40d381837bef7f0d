-- Sections 3 and 4 of the benchmark, against DynamoDB Local:
--   idle polling: stream:run with default settings on an idle table for IDLE
--     seconds; counts GetRecords calls per shard per second;
--   latency: then starts a writer process (bench/e2e/latency_writer.lua) that
--     puts WRITES items, each stamped with core.monotime() (CLOCK_MONOTONIC,
--     shared by all processes on the machine) just before its PutItem, and runs
--     stream:run with default settings until every item arrived; latency =
--     monotime at the 'insert record' listener minus the stamp.
--
--   lua5.4 bench/e2e/latency.lua ENDPOINT WRITES INTERVAL_MS IDLE_S
-- Prints: IDLE <GetRecords per shard per s> <shards> <seconds> <calls>
--         IDLE_STEADY <GetRecords per shard per s> <median gap s> <polls> (after the back-off ramp)
--         LATENCY <p50 ms> <p99 ms> <max ms> <events>

local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")

local endpoint = assert(arg[1], "usage: latency.lua ENDPOINT WRITES INTERVAL_MS IDLE_S")
local writes = math.tointeger(tonumber(arg[2] or "300"))
local interval_ms = tonumber(arg[3] or "50")
local idle_s = tonumber(arg[4] or "12")
local tname = "bench_latency"
local opts = {
  endpoint = endpoint,
  region = "us-east-1",
  credentials = {
    access_key_id = os.getenv("BENCH_ACCESS_KEY_ID") or "benchkey",
    secret_access_key = os.getenv("BENCH_SECRET_ACCESS_KEY") or "benchsecret",
  },
}

local db = assert(ds.dynamodb(opts))
local created = assert(db:create_table({
  TableName = tname,
  AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
  KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
  BillingMode = "PAY_PER_REQUEST",
  StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" },
}))
local arn = created.TableDescription.LatestStreamArn

local client = assert(ds.client(opts))
local get_records_calls, call_times = 0, {}
local counting = {
  describe_stream = function(_, p) return client:describe_stream(p) end,
  get_shard_iterator = function(_, p) return client:get_shard_iterator(p) end,
  get_records = function(_, p)
    get_records_calls = get_records_calls + 1
    call_times[get_records_calls] = core.monotime()
    return client:get_records(p)
  end,
}

local stream = ds.new(counting, arn, { unmarshall = ds.unmarshall })  -- default: LATEST
local lat, seen = {}, 0
stream:on("insert record", function(new)
  local t = tonumber(new.t)
  if t then lat[#lat + 1] = (core.monotime() - t) * 1000 end
  seen = seen + 1
  if seen >= writes then stream:stop() end
end)

-- Idle: nothing is written. The first second (first describe, iterator) is skipped.
assert(stream:run({ duration = 1 }))
local calls0, t0 = get_records_calls, core.monotime()
assert(stream:run({ duration = idle_s }))
local idle_time = core.monotime() - t0
local shards = 0
for _ in pairs(stream:get_shard_state()) do shards = shards + 1 end
local idle_calls = get_records_calls - calls0
print(string.format("IDLE %.3f %d %.1f %d", idle_calls / math.max(shards, 1) / idle_time,
  shards, idle_time, idle_calls))
-- The same idle run once the back-off has reached max_interval (0.1 + 0.2 +
-- 0.4 + 0.8 s of sleeps after run() starts, so from 2 s on): GetRecords per
-- shard per second from the median gap between polls (calls less than 50 ms
-- apart are one poll), so that the poll run() makes at its duration deadline
-- (its last sleep is cut short to the deadline, then it polls once more)
-- does not count. Information beside the figure above, which includes the ramp.
local polls, calls_after = {}, 0
for i = calls0 + 1, get_records_calls do
  local t = call_times[i]
  if t >= t0 + 2 then
    calls_after = calls_after + 1
    if #polls == 0 or t - polls[#polls] > 0.05 then polls[#polls + 1] = t end
  end
end
if #polls >= 3 then
  local gaps = {}
  for i = 2, #polls do gaps[#gaps + 1] = polls[i] - polls[i - 1] end
  table.sort(gaps)
  local gap = gaps[(#gaps + 1) // 2]
  print(string.format("IDLE_STEADY %.3f %.3f %d", calls_after / #polls / math.max(shards, 1) / gap, gap, #polls))
end

-- Latency: the writer runs alongside while run() delivers.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local cmd = string.format("%q %q %q %q %d %s >/dev/null 2>&1 &", os.getenv("LUA") or "lua5.4",
  here .. "/latency_writer.lua", endpoint, tname, writes, tostring(interval_ms))
os.execute(cmd)
assert(stream:run({ duration = writes * interval_ms / 1000 * 3 + 30 }))
table.sort(lat)
local function q(p) return lat[math.max(1, math.ceil(#lat * p))] or 0 / 0 end
print(string.format("LATENCY %.1f %.1f %.1f %d", q(0.5), q(0.99), lat[#lat] or 0 / 0, #lat))
