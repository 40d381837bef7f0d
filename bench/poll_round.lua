-- Benchmark item 5: the time of one poll round (one GetRecords per shard)
-- over 1, 16 and 64 shards against spec/support/fake_streams_server.py with
-- a per-GetRecords latency (a network round trip), serially (one core.http
-- post after the other) and in parallel (client:call_many over core.http
-- post_many). Pages are decoded as the consumer decodes them: in one pass in C
-- (Service.unmarshalled_records, core.decode_records) when the core has it,
-- else core.json_decode.
--
--   lua5.4 bench/poll_round.lua [--latency-ms 20] [--records 10] [--rounds 7]
--                               [--shards 1,16,64] [--in-flight 64] [--raw]
--
-- From the repository root after `make` (LUA_PATH/LUA_CPATH as in HACKING.md).
-- Prints a table; with --raw, also lines "POLL <serial|parallel> <shards>
-- <median s> <min s> <max s>" for bench/report.lua. Every round reads the same
-- page of --records records per shard (iterators are reused: the fake's
-- encode a position and stay valid for 15 minutes).
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local Service = require("dynamodb_stream.service")

-- The consumer's decode of a GetRecords body (nil: the client's default).
local DECODE = core.decode_records and Service.unmarshalled_records or nil

local opts = { latency_ms = 20, records = 10, rounds = 7, shards = "1,16,64", in_flight = 64 }
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
        io.stderr:write("usage: poll_round.lua [--latency-ms N] [--records N] [--rounds N] ",
          "[--shards 1,16,64] [--in-flight N] [--raw]\n")
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

local function start_fake(shards)
  local cmd = ("exec /usr/bin/python3 %s --shards %d --records %d --latency-ms %s --lifetime 600")
    :format(SERVER, shards, opts.records, opts.latency_ms)
  local pipe = assert(io.popen(cmd))
  local line = pipe:read("l") or ""
  local port, arn, pid = line:match("port=(%d+)"), line:match("arn=(%S+)"), line:match("pid=(%d+)")
  assert(port and arn, "fake_streams_server.py did not start: " .. line)
  return "http://127.0.0.1:" .. port, arn, pid, function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
  end
end

-- client:call_many is the proposed Service:call_many (see the report of the
-- post_many work); until service.lua has it, this stand-in signs like
-- Service:_attempt and posts with post_many, without retries.
local function call_many(client, operation, list, decode, max_in_flight)
  if client.call_many then return client:call_many(operation, list, decode, max_in_flight) end
  local requests = {}
  for i, params in ipairs(list) do
    local body = core.json_encode(params)
    local headers = {
      host = client._endpoint.host,
      ["content-type"] = "application/x-amz-json-1.0",
      ["x-amz-date"] = os.date("!%Y%m%dT%H%M%SZ"),
      ["x-amz-target"] = client._target .. operation,
    }
    local lines = { "Authorization: " .. client._signer:sign({
      method = "POST", path = client._endpoint.path, query = "",
      headers = headers, body = body, amz_date = headers["x-amz-date"] }) }
    for name, value in pairs(headers) do
      if name ~= "host" then lines[#lines + 1] = name .. ": " .. value end
    end
    requests[i] = { client._endpoint.url, lines, body }
  end
  local answers, errs = {}, {}
  for i, r in ipairs(client._http:post_many(requests, max_in_flight)) do
    if r[1] == 200 then answers[i] = (decode or core.json_decode)(r[2]) else errs[i] = r[2] or r[1] end
  end
  return answers, errs
end

-- CPU seconds (user + sys) a process has used so far, from /proc (0 elsewhere).
local TICK = 0.01 -- USER_HZ is 100 on Linux
local function cpu_of(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return 0 end
  local line = f:read("l")
  f:close()
  local rest = line:match("%) (.*)$") -- after the command name
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) * TICK -- utime, stime
end

local function stats(times)
  table.sort(times)
  return times[(#times + 1) // 2], times[1], times[#times]
end

local function measure(shards)
  local endpoint, arn, pid, stop = start_fake(shards)
  local client = ds.client({
    endpoint = endpoint, region = "us-east-1",
    credentials = { access_key_id = "AKID", secret_access_key = SECRET },
  })
  -- Every shard (paginated) and a TRIM_HORIZON iterator on each.
  local ids, start = {}, nil
  repeat
    local res = assert(client:describe_stream({ StreamArn = arn, ExclusiveStartShardId = start }))
    for _, s in ipairs(res.StreamDescription.Shards) do ids[#ids + 1] = s.ShardId end
    start = res.StreamDescription.LastEvaluatedShardId
  until not start
  assert(#ids == shards, "expected " .. shards .. " shards, got " .. #ids)
  local list = {}
  for i, id in ipairs(ids) do
    local it = assert(client:get_shard_iterator({ StreamArn = arn, ShardId = id, ShardIteratorType = "TRIM_HORIZON" }))
    list[i] = { ShardIterator = it.ShardIterator }
  end

  local function serial()
    for _, params in ipairs(list) do
      local res = assert(client:call("GetRecords", params, DECODE))
      assert(#res.Records == opts.records)
    end
  end
  local function parallel()
    local answers, errs = call_many(client, "GetRecords", list, DECODE, opts.in_flight)
    for i = 1, #list do
      assert(answers[i], tostring(errs[i]))
      assert(#answers[i].Records == opts.records)
    end
  end

  serial() -- warm-up: connections open, code paths hot
  parallel()
  local t = { serial = {}, parallel = {} }
  local cpu = { serial = { 0, 0 }, parallel = { 0, 0 } } -- ours, the fake's
  for _ = 1, opts.rounds do
    for _, mode in ipairs({ "serial", "parallel" }) do
      local c0, s0, t0 = os.clock(), cpu_of(pid), core.monotime()
      if mode == "serial" then serial() else parallel() end
      t[mode][#t[mode] + 1] = core.monotime() - t0
      cpu[mode][1] = cpu[mode][1] + os.clock() - c0
      cpu[mode][2] = cpu[mode][2] + cpu_of(pid) - s0
    end
  end
  client:close()
  stop()
  local out = {}
  for mode, times in pairs(t) do
    out[mode] = { stats(times) }
    out[mode].cpu = { cpu[mode][1] / opts.rounds, cpu[mode][2] / opts.rounds }
  end
  return out
end

local sizes = {}
for n in opts.shards:gmatch("%d+") do sizes[#sizes + 1] = tonumber(n) end
local results = {}
for _, n in ipairs(sizes) do results[n] = measure(n) end

print(("One poll round (one GetRecords per shard, %d records per page, decoded with %s) against the"
  .. " fake endpoint with %s ms per GetRecords; median of %d rounds (min-max), max_in_flight %d")
  :format(opts.records, DECODE and "core.decode_records" or "core.json_decode", opts.latency_ms,
    opts.rounds, opts.in_flight))
print("(cpu: CPU ms per round of this process / of the Python fake; the machine's cores are shared)")
print(("%8s  %27s %15s  %27s %15s"):format("shards", "serial (post)", "cpu ours/fake", "parallel (post_many)",
  "cpu ours/fake"))
for _, n in ipairs(sizes) do
  local s, p = results[n].serial, results[n].parallel
  print(("%8d  %9.1f ms (%6.1f-%6.1f) %7.1f/%7.1f  %9.1f ms (%6.1f-%6.1f) %7.1f/%7.1f"):format(n,
    s[1] * 1e3, s[2] * 1e3, s[3] * 1e3, s.cpu[1] * 1e3, s.cpu[2] * 1e3,
    p[1] * 1e3, p[2] * 1e3, p[3] * 1e3, p.cpu[1] * 1e3, p.cpu[2] * 1e3))
end
local first, last = sizes[1], sizes[#sizes]
if first ~= last then
  print(("ratio %d/%d shards: serial %.1fx, parallel %.2fx (target <= 3x)"):format(last, first,
    results[last].serial[1] / results[first].serial[1], results[last].parallel[1] / results[first].parallel[1]))
end
if opts.raw then
  for _, n in ipairs(sizes) do
    for _, mode in ipairs({ "serial", "parallel" }) do
      local r = results[n][mode]
      print(("POLL %s %d %.6f %.6f %.6f"):format(mode, n, r[1], r[2], r[3]))
    end
  end
end
