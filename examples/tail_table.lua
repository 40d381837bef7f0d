-- Tails a table's stream and prints each change as it arrives.
--   lua5.4 examples/tail_table.lua TABLE [MAX_CHANGES]
-- Configuration comes from the usual AWS variables (AWS_REGION, AWS_PROFILE or
-- AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for DynamoDB Local).
-- Stops after MAX_CHANGES changes when given, otherwise runs until interrupted.
local ds = require("dynamodb_stream")

local table_name = assert(arg[1], "usage: tail_table.lua TABLE [MAX_CHANGES]")
local max_changes = tonumber(arg[2])

local ddb = ds.dynamodb()
local described = assert(ddb:describe_table({ TableName = table_name }))
local stream_arn = assert(described.Table.LatestStreamArn, table_name .. " has no stream")

local stream = ds.new(ds.client(), stream_arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })

local function show(value)
  return ds.json_encode(value)
end

local changes = 0
local function count()
  changes = changes + 1
  io.stdout:flush()
  if max_changes and changes >= max_changes then stream:stop() end
end

stream:on("insert record", function(new, keys)
  print("INSERT " .. show(keys) .. " " .. show(new))
  count()
end)
stream:on("modify record", function(new, old, keys)
  print("MODIFY " .. show(keys) .. " " .. show(old) .. " -> " .. show(new))
  count()
end)
stream:on("remove record", function(old, keys)
  print("REMOVE " .. show(keys) .. " " .. show(old))
  count()
end)
stream:on("error", function(err)
  io.stderr:write("stream error: ", tostring(err), "\n")
end)

print("tailing " .. stream_arn)
io.stdout:flush()
stream:run()
print(("stopped after %d changes"):format(changes))
