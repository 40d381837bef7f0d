-- One worker of a fleet sharing a stream through a lease table, as
-- spec/robustness/lease_chaos_spec.lua runs, kills and stops it:
--
--   lua5.4|luajit spec/support/lease_worker.lua endpoint=URL arn=ARN ddb=URL \
--     namespace=NS table=NAME lease_duration=S id=WORKER log=PATH
--
-- endpoint: the Streams endpoint (spec/support/fake_streams_server.py, whose
-- default credentials it uses); ddb: DynamoDB Local for the lease table, with
-- namespace as its access key id. It reads from TRIM_HORIZON with the leases
-- option and appends to the log, flushed line by line so that a SIGKILL loses
-- no whole line (t: core.monotime(), CLOCK_MONOTONIC, comparable between
-- processes of one machine):
--   S <id> <t>                                  started
--   A <id> <t> <shard> ...                      'lease acquired'
--   L <id> <t> <shard> ...                      'lease lost'
--   D <id> <shard> <key> <version> <seq> <t>    each delivered change
--   E <id> <t> <code> <message>                 each 'error' event
--   X <id> <t> <ok> <err>                       run returned (after stop: final
--                                               checkpoints and leases released)
-- SIGTERM stops it gracefully (run{ stop_on_signals = true }: at the end of the
-- fetch in progress, or at once in an idle pause); then it exits 0 (1 when run
-- failed).
local ds = require("dynamodb_stream")
local monotime = require("dynamodb_stream.core").monotime

local args = {}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k then io.stderr:write("lease_worker: bad argument " .. a .. "\n") os.exit(2) end
  args[k] = v
end
local function need(name)
  local v = args[name]
  if not v then error(name .. "= is required", 2) end
  return v
end

local id = need("id")
local log = assert(io.open(need("log"), "a"))
log:setvbuf("full")
local function line(...)
  log:write(table.concat({ ... }, " "), "\n")
  log:flush() -- one write(2) per line: a kill leaves whole lines
end
local function now() return string.format("%.6f", monotime()) end

local streams = ds.client({
  endpoint = need("endpoint"), region = "us-east-1",
  credentials = { access_key_id = "AKID", secret_access_key = "fake-streams-secret-0123456789" },
})
local lease_ddb = ds.dynamodb({
  endpoint = need("ddb"), region = "us-east-1",
  credentials = { access_key_id = need("namespace"), secret_access_key = "local-secret" },
})
local stream = ds.new(streams, need("arn"), {
  unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON",
  leases = { dynamodb = lease_ddb, table = need("table"), worker_id = id,
             lease_duration = assert(tonumber(need("lease_duration")), "lease_duration must be a number") },
})

stream:on("record", function(record, shard_id)
  local ddb = record.dynamodb
  line("D", id, shard_id, ddb.Keys.pk, string.format("%d", tonumber(tostring(ddb.NewImage.v))),
    ddb.SequenceNumber, now())
end)
stream:on("lease acquired", function(shard_ids) line("A", id, now(), table.concat(shard_ids, " ")) end)
stream:on("lease lost", function(shard_ids) line("L", id, now(), table.concat(shard_ids, " ")) end)
stream:on("error", function(err)
  local text = type(err) == "table" and tostring(err.code) .. " " .. tostring(err.message) or tostring(err)
  line("E", id, now(), (text:gsub("%s+", " ")))
end)

line("S", id, now())
local ok, err = stream:run({ interval = 0.05, max_interval = 0.2, describe_interval = 1, stop_on_signals = true })
line("X", id, now(), tostring(ok), (tostring(err and (err.code or err)):gsub("%s", "_")))
log:close()
os.exit(ok and 0 or 1)
