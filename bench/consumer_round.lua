-- Benchmark item 5, the consumer itself: the time of one
-- stream:fetch_stream_records() round over 1, 16 and 64 shards against
-- spec/support/fake_streams_server.py with a per-GetRecords latency, as a user
-- runs it:
--   ds.new(ds.client{endpoint = fake, ...}, arn, {unmarshall = ds.unmarshall,
--          start_at = 'TRIM_HORIZON', max_pages_per_shard = 1, limit = 10})
-- limit = 10 so that every round reads one page of 10 records from every
-- shard (the same page size as bench/poll_round.lua) instead of draining the
-- shard in the first round and reading empty pages after it. The first fetch
-- (DescribeStream, GetShardIterator on each shard, then the first pages) is
-- timed apart; then --rounds rounds, each checked to deliver 10 records per
-- shard (decoded, unmarshalled, emitted as events).
--
--   lua5.4 bench/consumer_round.lua [--latency-ms 20] [--rounds 7] [--shards 1,16,64] [--raw]
--
-- Prints a table; with --raw, also lines
--   CONSUMER <shards> <median s> <min s> <max s> <first fetch s>
-- for bench/report.lua.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")

local opts = { latency_ms = 20, rounds = 7, shards = "1,16,64" }
local PAGE = 10
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--raw" then
      opts.raw = true
    else
      local key = a:match("^%-%-([%w-]+)$")
      local k = key and key:gsub("-", "_")
      if not k or opts[k] == nil or arg[i + 1] == nil then
        io.stderr:write("usage: consumer_round.lua [--latency-ms N] [--rounds N] [--shards 1,16,64] [--raw]\n")
        os.exit(2)
      end
      opts[k] = k == "shards" and arg[i + 1] or assert(tonumber(arg[i + 1]), a .. " takes a number")
      i = i + 1
    end
    i = i + 1
  end
end

local SECRET = "fake-streams-secret-0123456789"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench"
local SERVER = here .. "/../spec/support/fake_streams_server.py"

local function start_fake(shards, records)
  local cmd = ("exec /usr/bin/python3 %s --shards %d --records %d --latency-ms %s --lifetime 600")
    :format(SERVER, shards, records, opts.latency_ms)
  local pipe = assert(io.popen(cmd))
  local line = pipe:read("l") or ""
  local port, arn, pid = line:match("port=(%d+)"), line:match("arn=(%S+)"), line:match("pid=(%d+)")
  assert(port and arn, "fake_streams_server.py did not start: " .. line)
  return "http://127.0.0.1:" .. port, arn, function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
  end
end

local function measure(shards)
  -- The first fetch reads a page too: rounds + 1 pages per shard.
  local endpoint, arn, stop = start_fake(shards, PAGE * (opts.rounds + 1))
  local client = assert(ds.client({
    endpoint = endpoint, region = "us-east-1",
    credentials = { access_key_id = "AKID", secret_access_key = SECRET },
  }))
  local stream = ds.new(client, arn, {
    unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON", max_pages_per_shard = 1, limit = PAGE,
  })
  local events = 0
  local function count() events = events + 1 end
  stream:on("insert record", count)
  stream:on("modify record", count)
  stream:on("remove record", count)
  local function round()
    local before = events
    local t0 = core.monotime()
    local records, err = stream:fetch_stream_records()
    local dt = core.monotime() - t0
    assert(records, tostring(err))
    assert(#records == PAGE * shards and events - before == PAGE * shards,
      ("round over %d shards delivered %d records, %d events"):format(shards, #records, events - before))
    return dt
  end
  local first = round()
  local times = {}
  for r = 1, opts.rounds do times[r] = round() end
  client:close()
  stop()
  table.sort(times)
  return { times[(#times + 1) // 2], times[1], times[#times], first = first }
end

local sizes = {}
for n in opts.shards:gmatch("%d+") do sizes[#sizes + 1] = tonumber(n) end
local results = {}
for _, n in ipairs(sizes) do results[n] = measure(n) end

print(("stream:fetch_stream_records() rounds (max_pages_per_shard = 1, limit = %d: one page of %d records"
  .. " per shard, unmarshalled, emitted) against the fake endpoint with %s ms per GetRecords; median of %d"
  .. " rounds (min-max); first fetch = DescribeStream + GetShardIterator on each shard + first pages")
  :format(PAGE, PAGE, opts.latency_ms, opts.rounds))
print(("%8s  %27s  %12s"):format("shards", "round", "first fetch"))
for _, n in ipairs(sizes) do
  local r = results[n]
  print(("%8d  %9.1f ms (%6.1f-%6.1f)  %9.1f ms"):format(n, r[1] * 1e3, r[2] * 1e3, r[3] * 1e3, r.first * 1e3))
end
local a, b = sizes[1], sizes[#sizes]
if a ~= b then
  print(("ratio %d/%d shards: round %.2fx (target <= 3x), first fetch %.2fx"):format(b, a,
    results[b][1] / results[a][1], results[b].first / results[a].first))
end
if opts.raw then
  for _, n in ipairs(sizes) do
    local r = results[n]
    print(("CONSUMER %d %.6f %.6f %.6f %.6f"):format(n, r[1], r[2], r[3], r.first))
  end
end
