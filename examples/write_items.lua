-- Writes a short series of changes to a table whose key is "pk" (string):
-- inserts, updates and deletes, one every DELAY seconds.
--   lua5.4 examples/write_items.lua TABLE [DELAY]
local ds = require("dynamodb_stream")

local table_name = assert(arg[1], "usage: write_items.lua TABLE [DELAY]")
local delay = tonumber(arg[2]) or 0.3
local ddb = ds.dynamodb()

local function check(answer, err)
  if not answer then error(tostring(err), 2) end
  return answer
end

local function put(item)
  check(ddb:put_item({ TableName = table_name, Item = ds.marshall(item) }))
  print("wrote " .. ds.json_encode(item))
  io.stdout:flush()
  ds.sleep(delay)
end

put({ pk = "apple", colour = "red", price = 1.25, tags = ds.set("SS", { "fruit", "round" }) })
put({ pk = "pear", colour = "green", price = 0.8, stock = 12 })
put({ pk = "apple", colour = "green", price = 1.5, tags = ds.set("SS", { "fruit" }) })
check(ddb:update_item({
  TableName = table_name,
  Key = ds.marshall({ pk = "pear" }),
  UpdateExpression = "SET stock = stock - :one",
  ExpressionAttributeValues = ds.marshall({ [":one"] = 1 }),
}))
print("updated pear")
ds.sleep(delay)
check(ddb:delete_item({ TableName = table_name, Key = ds.marshall({ pk = "apple" }) }))
print("deleted apple")
