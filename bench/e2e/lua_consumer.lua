-- End-to-end: this module consuming N pre-written changes from DynamoDB Local
-- from TRIM_HORIZON with the consumer (ds.new), in one of two ways:
--   BENCH_MODE=run (default): stream:run() with its defaults, stopped from the
--     listener at the N-th event (run keeps no records);
--   BENCH_MODE=fetch: fetch_stream_state() in a loop, as the npm package is
--     driven (each fetch returns, so holds, the records it delivered).
--
--   lua5.4 bench/e2e/lua_consumer.lua ENDPOINT STREAM_ARN N      (or luajit)
-- N = 0 only starts up (creates the client and the stream) and exits: the
-- startup cost that run.sh subtracts for the marginal CPU per record.
-- Env BENCH_MAX_PAGES: the consumer's max_pages_per_shard (default: its own).
-- Prints: EVENTS <n> POLLS <polls> WALL <seconds>

local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")

-- An integer from text, or nil (math.tointeger is Lua 5.3+; this runs under LuaJIT too).
local function int(text)
  local n = tonumber(text or "")
  return n and n == math.floor(n) and n or nil
end

local endpoint, arn, want = arg[1], arg[2], int(arg[3])
if not (endpoint and arn and want) then
  io.stderr:write("usage: lua_consumer.lua ENDPOINT STREAM_ARN N\n")
  os.exit(2)
end

local t0 = core.monotime()
local client = assert(ds.client({
  endpoint = endpoint,
  region = "us-east-1",
  credentials = {
    access_key_id = os.getenv("BENCH_ACCESS_KEY_ID") or "benchkey",
    secret_access_key = os.getenv("BENCH_SECRET_ACCESS_KEY") or "benchsecret",
  },
}))
local stream = ds.new(client, arn, {
  unmarshall = ds.unmarshall,
  start_at = "TRIM_HORIZON",
  max_pages_per_shard = int(os.getenv("BENCH_MAX_PAGES")),
})
local mode = os.getenv("BENCH_MODE") or "run"
local events, polls = 0, 0
local function count()
  events = events + 1
  if mode == "run" and events >= want then stream:stop() end
end
stream:on("insert record", count)
stream:on("modify record", count)
stream:on("remove record", count)

if want == 0 then
  -- startup only
elseif mode == "run" then
  -- run's polls: each is one call of the stream's internal _fetch
  local fetch = stream._fetch
  stream._fetch = function(...) polls = polls + 1 return fetch(...) end
  local ok, err = stream:run({ duration = 60 })
  if not ok then error("run: " .. tostring(err)) end
  if events < want then error(string.format("run stopped at %d of %d events", events, want)) end
else
  local idle = 0
  while events < want do
    local before = events
    local records, err = stream:fetch_stream_state()
    polls = polls + 1
    if not records then
      io.stderr:write("lua_consumer: fetch_stream_state: ", tostring(err), "\n")
    end
    if events == before then
      idle = idle + 1
      if idle > 50 then error(string.format("stalled at %d of %d events", events, want)) end
      core.sleep(0.1)
    else
      idle = 0
    end
  end
end
print(string.format("EVENTS %d POLLS %d WALL %.2f", events, polls, core.monotime() - t0))
