-- Memory over a long run: stream:run (default options) consumes N records
-- from the fake endpoint (bench/mem/fake_many.py) with ds.client() and
-- ds.unmarshall, samples its own RSS every N/SAMPLES records, and stops
-- (stream:stop from a listener) at the N-th record.
--
--   lua5.4 bench/mem/consumer.lua ENDPOINT STREAM_ARN N [SAMPLES]
-- Prints "SAMPLE <records> <VmRSS KiB> <Lua heap KiB> <seconds>" lines and
-- "MEMRUN <records> <VmHWM KiB> <seconds>" at the end, then closes
-- the client and returns normally (so that lua_close frees everything: the
-- valgrind leak check runs this same script).
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")

local endpoint, arn = arg[1], arg[2]
local want = math.tointeger(tonumber(arg[3] or ""))
local samples = math.tointeger(tonumber(arg[4] or "20"))
if not (endpoint and arn and want and want > 0 and samples and samples > 0) then
  io.stderr:write("usage: consumer.lua ENDPOINT STREAM_ARN N [SAMPLES]\n")
  os.exit(2)
end

local function status(field)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+) kB"))
end

local client = assert(ds.client({
  endpoint = endpoint,
  region = "us-east-1",
  credentials = { access_key_id = "AKID", secret_access_key = "fake-streams-secret-0123456789" },
}))
local stream = ds.new(client, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })

local t0 = core.monotime()
local every = math.max(1, want // samples)
local count, fetches = 0, 0
local function record()
  count = count + 1
  if count % every == 0 or count == want then
    print(string.format("SAMPLE %d %d %.0f %.2f", count, status("VmRSS"), collectgarbage("count"),
      core.monotime() - t0))
    io.stdout:flush()
  end
  if count >= want then stream:stop() end
end
stream:on("insert record", record)
stream:on("modify record", record)
stream:on("remove record", record)
stream:on("error", function(err) io.stderr:write("consumer: ", tostring(err), "\n") end)

local ok, err = stream:run()
assert(ok, tostring(err))
assert(count >= want, ("stopped at %d of %d records"):format(count, want))
print(string.format("MEMRUN %d %d %.2f", count, status("VmHWM"), core.monotime() - t0))
client:close()
