-- The consumer process spec/robustness/crash_spec.lua kills with SIGKILL and restarts:
-- stream:run with a file checkpoint, starting at TRIM_HORIZON when there is
-- no checkpoint yet.
--
--   lua5.4|luajit spec/support/crash_consumer.lua endpoint=URL namespace=NS arn=ARN \
--     checkpoint=PATH log=PATH [stop_file=PATH] [delay=S] [limit=N] [max_pages=N]
--
-- Appends to the log, flushed line by line:
--   R <sequence number> <eventID> <event> <key> <ord>   for each delivered change
--   C <sequence number | ->                               after each checkpoint save,
--                                                         with the saved sequence number
--   E <code>                                              for each 'error' event
--   X                                                     when run returned (stopped)
-- <key> <ord> identify the change as spec/support/soak_writer.lua journals it
-- (ord = 2*v for a put of version v, 2*v+1 for the delete of version v).
--
-- Without stop_file it runs until killed; with it, it stops at the first idle
-- pause once that file exists, then exits 0.
--
-- delay (seconds of "work" per record, default 0), limit (GetRecords Limit) and
-- max_pages (max_pages_per_shard) make fetches last long enough for a kill to
-- land between a delivery and the checkpoint saved after its fetch, so that
-- restarts really deliver some changes again.
local ds = require("dynamodb_stream")
local checkpoint = require("dynamodb_stream.checkpoint")
local tointeger = math.tointeger or function(x) return x and x == math.floor(x) and x or nil end

local args = {}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k then io.stderr:write("crash_consumer: bad argument " .. a .. "\n") os.exit(2) end
  args[k] = v
end

local log = assert(io.open(assert(args.log, "log= is required"), "a"))
log:setvbuf("full")
local function line(...)
  log:write(...)
  log:write("\n")
  log:flush() -- one write(2) per line: a kill leaves whole lines
end

local client = ds.client({
  endpoint = assert(args.endpoint, "endpoint= is required"), region = "us-east-1",
  credentials = { access_key_id = assert(args.namespace, "namespace= is required"),
                  secret_access_key = "local-secret" },
})
local stream = ds.new(client, assert(args.arn, "arn= is required"), {
  unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON",
  limit = tointeger(tonumber(args.limit or "")),
  max_pages_per_shard = tointeger(tonumber(args.max_pages or "")),
})
local delay = tonumber(args.delay or "0")

local function change(event, image, record)
  local ord = event == "REMOVE" and 2 * image.v + 1 or 2 * image.v
  line("R ", record.dynamodb.SequenceNumber, " ", record.eventID, " ", event, " ", image.pk, " ", ord)
  if delay > 0 then ds.sleep(delay) end
end
stream:on("insert record", function(new, _, record) change("INSERT", new, record) end)
stream:on("modify record", function(new, _, _, record) change("MODIFY", new, record) end)
stream:on("remove record", function(old, _, record) change("REMOVE", old, record) end)
stream:on("error", function(err) line("E ", tostring(type(err) == "table" and err.code or err)) end)

-- The file store, wrapped so that each save is followed by a C line naming
-- what was saved (DynamoDB Local has one shard per stream).
local file_store = checkpoint.file(assert(args.checkpoint, "checkpoint= is required"))
local store = {
  load = function() return file_store:load() end,
  save = function(_, state)
    local ok, err = file_store:save(state)
    if ok then
      local seq
      for _, entry in pairs(state) do seq = entry.sequenceNumber or seq end
      line("C ", seq or "-")
    end
    return ok, err
  end,
}

local stop_file = args.stop_file
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local ok, err = stream:run({
  checkpoint = store, interval = 0.05, max_interval = 0.2,
  sleep = function(s)
    if stop_file and exists(stop_file) then stream:stop() return end
    ds.sleep(s)
  end,
})
line("X ", tostring(ok), " ", tostring(err))
os.exit(ok and 0 or 1)
