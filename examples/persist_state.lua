-- Picks up where it left off after a restart or a crash: the npm package's
-- "shards / iterator persistence" example (examples/statePersistence.js), in Lua.
--
--   lua5.4 examples/persist_state.lua TABLE STATE_FILE [MAX_CHANGES] [SECONDS]
--
-- stream:run{ checkpoint = STATE_FILE } loads the saved position at the start
-- and saves it (atomically) after every fetch. The position holds the last
-- delivered sequence number of each shard, so it still works after the saved
-- iterators expired (15 minutes), for as long as the stream keeps the records
-- (24 hours). With no state file yet, the first run reads everything the
-- stream still holds (start_at = 'TRIM_HORIZON').
--
-- Prints one line per change; stops after MAX_CHANGES changes or SECONDS
-- seconds when given. Configuration comes from the usual AWS variables.
local ds = require("dynamodb_stream")

local table_name = assert(arg[1], "usage: persist_state.lua TABLE STATE_FILE [MAX_CHANGES] [SECONDS]")
local state_file = assert(arg[2], "usage: persist_state.lua TABLE STATE_FILE [MAX_CHANGES] [SECONDS]")
local max_changes = tonumber(arg[3])
local seconds = tonumber(arg[4])

local described = assert(ds.dynamodb():describe_table({ TableName = table_name }))
local stream_arn = assert(described.Table.LatestStreamArn, table_name .. " has no stream")
local stream = ds.new(ds.client(), stream_arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })

local changes = 0
local function changed(line)
  changes = changes + 1
  print(line)
  io.stdout:flush()
  if max_changes and changes >= max_changes then stream:stop() end
end

stream:on("insert record", function(new) changed("INSERT " .. new.pk .. " " .. tostring(new.data)) end)
stream:on("modify record", function(new, old)
  changed("MODIFY " .. new.pk .. " " .. tostring(old and old.data) .. " -> " .. tostring(new.data))
end)
stream:on("remove record", function(_, keys) changed("REMOVE " .. keys.pk) end)
stream:on("gap", function(info) io.stderr:write("records lost in shard ", info.shard_id, "\n") end)
stream:on("error", function(err) io.stderr:write("stream error: ", tostring(err), "\n") end)

local ok, err = stream:run({ checkpoint = state_file, interval = 0.5, max_interval = 2, duration = seconds })
if not ok then error(tostring(err)) end
print(("stopped after %d changes"):format(changes))
