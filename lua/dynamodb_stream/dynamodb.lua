--- The DynamoDB client: ds.dynamodb(opts).
--
-- Made by `ds.dynamodb(opts)`. Methods `create_table`, `describe_table`, `delete_table`,
-- `put_item`, `get_item`, `update_item`, `delete_item`, `query`, `scan`,
-- `batch_write_item` (and camelCase names), each taking a table with AWS's field names
-- and returning the decoded answer or `nil, err`; `call(operation, params)` for any
-- other operation, `call_many`, `stats` and `close` come from `dynamodb_stream.service`.
-- @module dynamodb_stream.dynamodb

local Service = require("dynamodb_stream.service")

local DynamoDB = Service.class({
  name = "dynamodb",
  target_prefix = "DynamoDB_20120810",
  endpoint_prefix = "dynamodb",
  env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB",
}, {
  "CreateTable", "DescribeTable", "DeleteTable", "PutItem", "GetItem", "UpdateItem",
  "DeleteItem", "Query", "Scan", "BatchWriteItem",
})

--- Scans the whole table, following LastEvaluatedKey; returns a Scan-shaped
-- answer whose Items hold every item, or nil, err.
-- @tparam table params Scan parameters (`TableName`, ...); raises when not a table
-- @treturn table `{ Items = every item, Count = n, ScannedCount = n }`, or `nil, err`
function DynamoDB:scan_all(params)
  if type(params) ~= "table" then error("scan_all: params must be a table", 2) end
  local page = {}
  for k, v in pairs(params) do page[k] = v end
  local items, count, scanned = {}, 0, 0
  repeat
    local answer, err = self:scan(page)
    if not answer then return nil, err end
    for _, item in ipairs(answer.Items or {}) do items[#items + 1] = item end
    count = count + (answer.Count or 0)
    scanned = scanned + (answer.ScannedCount or 0)
    page.ExclusiveStartKey = answer.LastEvaluatedKey
  until page.ExclusiveStartKey == nil
  return { Items = items, Count = count, ScannedCount = scanned }
end
DynamoDB.scanAll = DynamoDB.scan_all

return DynamoDB
