-- Creates a table keyed by "pk" (string) with a NEW_AND_OLD_IMAGES stream and
-- waits until it is active; prints the stream ARN.
--   lua5.4 examples/create_table.lua TABLE
local ds = require("dynamodb_stream")

local table_name = assert(arg[1], "usage: create_table.lua TABLE")
local ddb = ds.dynamodb()

local created, err = ddb:create_table({
  TableName = table_name,
  AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
  KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
  BillingMode = "PAY_PER_REQUEST",
  StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" },
})
if not created and err.code ~= "ResourceInUseException" then error(tostring(err)) end

for _ = 1, 100 do
  local described = assert(ddb:describe_table({ TableName = table_name }))
  if described.Table.TableStatus == "ACTIVE" then
    print(described.Table.LatestStreamArn)
    return
  end
  ds.sleep(0.1)
end
error(table_name .. " did not become active")
