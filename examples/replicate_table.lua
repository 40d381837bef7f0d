-- Keeps an in-memory replica of a small table: the npm package's "Replicating
-- small tables" example (examples/localReplica.js), in Lua.
--
--   lua5.4 examples/replicate_table.lua TABLE [MAX_CHANGES] [SECONDS]
--
-- 1. fetch_stream_state() bookmarks every shard at LATEST (its events can be ignored);
-- 2. a Scan copies the table;
-- 3. a second fetch applies what changed during the scan (at worst again: the
--    replica is keyed by pk, so applying a change twice is harmless);
-- 4. then stream:run() polls and applies every change as it comes.
-- Prints "READY" after step 3, one line per change, and at the end the replica
-- as JSON ("REPLICA {...}"). Stops after MAX_CHANGES changes or SECONDS seconds
-- when given. Configuration comes from the usual AWS variables (AWS_REGION,
-- AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, AWS_ENDPOINT_URL for
-- DynamoDB Local).
local ds = require("dynamodb_stream")

local table_name = assert(arg[1], "usage: replicate_table.lua TABLE [MAX_CHANGES] [SECONDS]")
local max_changes = tonumber(arg[2])
local seconds = tonumber(arg[3])

local ddb = ds.dynamodb()
local described = assert(ddb:describe_table({ TableName = table_name }))
local stream_arn = assert(described.Table.LatestStreamArn, table_name .. " has no stream")
local stream = ds.new(ds.client(), stream_arn, ds.unmarshall)

local replica = {}

-- 1. the bookmark
assert(stream:fetch_stream_state())

-- 2. the copy
local scanned = assert(ddb:scan_all({ TableName = table_name }))
for _, item in ipairs(scanned.Items) do
  local row = ds.unmarshall(item)
  replica[row.pk] = row
end

-- 3. the changes, from now on
local changes = 0
local function changed(what, pk)
  changes = changes + 1
  print(what .. " " .. tostring(pk))
  io.stdout:flush()
  if max_changes and changes >= max_changes then stream:stop() end
end

stream:on("insert record", function(new) replica[new.pk] = new; changed("INSERT", new.pk) end)
stream:on("modify record", function(new) replica[new.pk] = new; changed("MODIFY", new.pk) end)
-- keys, not the old image: it is there whatever the stream's view type
stream:on("remove record", function(_, keys) replica[keys.pk] = nil; changed("REMOVE", keys.pk) end)
stream:on("new shards", function(ids) io.stderr:write("new shards: ", table.concat(ids, " "), "\n") end)
stream:on("remove shards", function(ids) io.stderr:write("remove shards: ", table.concat(ids, " "), "\n") end)
stream:on("gap", function(info) io.stderr:write("records lost in shard ", info.shard_id, "\n") end)
stream:on("error", function(err) io.stderr:write("stream error: ", tostring(err), "\n") end)

assert(stream:fetch_stream_state())
print("READY")
io.stdout:flush()

-- 4. follow the stream
if not (max_changes and changes >= max_changes) then
  assert(stream:run({ interval = 0.5, max_interval = 2, duration = seconds }))
end
print("REPLICA " .. ds.json_encode(replica))
