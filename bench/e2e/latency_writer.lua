-- Writer for bench/e2e/latency.lua: WRITES PutItems, INTERVAL_MS apart, each
-- stamped with core.monotime() taken just before the call.
--   lua5.4 bench/e2e/latency_writer.lua ENDPOINT TABLE WRITES INTERVAL_MS
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local endpoint, tname = arg[1], arg[2]
local writes, interval = math.tointeger(tonumber(arg[3])), tonumber(arg[4]) / 1000
local db = assert(ds.dynamodb({
  endpoint = endpoint,
  region = "us-east-1",
  credentials = {
    access_key_id = os.getenv("BENCH_ACCESS_KEY_ID") or "benchkey",
    secret_access_key = os.getenv("BENCH_SECRET_ACCESS_KEY") or "benchsecret",
  },
}))
math.randomseed(11, 0)
local next_at = core.monotime()
for i = 1, writes do
  local t = core.monotime()
  assert(db:put_item({
    TableName = tname,
    Item = { pk = { S = "w" .. i }, t = { N = string.format("%.6f", t) }, v = { S = string.rep("x", 200) } },
  }))
  -- Jittered spacing (0.5x..1.5x) so writes do not lock step with the poll loop.
  next_at = next_at + interval * (0.5 + math.random())
  local pause = next_at - core.monotime()
  if pause > 0 then core.sleep(pause) end
end
