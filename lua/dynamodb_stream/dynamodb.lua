--- The DynamoDB client: ds.dynamodb(opts).
--
-- Made by `ds.dynamodb(opts)`. Methods `create_table`, `describe_table`, `delete_table`,
-- `put_item`, `get_item`, `update_item`, `delete_item`, `query`, `scan`,
-- `batch_write_item` (and camelCase names), each taking a table with AWS's field names
-- and returning the decoded answer or `nil, err`; `call(operation, params)` for any
-- other operation, `call_many`, `stats` and `close` come from `dynamodb_stream.service`.
-- Beyond single calls: `scan_pages`, `query_pages`, `scan_all` and `batch_write_all`.
-- @module dynamodb_stream.dynamodb

local Service = require("dynamodb_stream.service")
local batch_write = require("dynamodb_stream.batch_write")
local pages = require("dynamodb_stream.pages")

local DynamoDB = Service.class({
  name = "dynamodb",
  target_prefix = "DynamoDB_20120810",
  endpoint_prefix = "dynamodb",
  env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB",
}, {
  "CreateTable", "DescribeTable", "DeleteTable", "PutItem", "GetItem", "UpdateItem",
  "DeleteItem", "Query", "Scan", "BatchWriteItem",
})

--- An iterator over the pages of a Scan, one call per page, never the whole table.
--
--    for page, err in ddb:scan_pages({ TableName = "t", Limit = 100, segments = 4 }) do
--      if not page then error(tostring(err)) end
--      for _, item in ipairs(page.Items) do ... end
--    end
--
-- Each page is the Scan answer (`Items`, `Count`, `ScannedCount`, `LastEvaluatedKey`),
-- given with its segment number (0 when not parallel).
-- A failed call (after the client's retries) ends the iteration: that step gives
-- `false, err` (so that the loop body sees err; `nil` would end a `for` loop unseen), and
-- the next gives nil. `params.segments = N` (1 to 1000000, default 1) scans in parallel:
-- segment i is sent as `Segment = i, TotalSegments = N`; each round asks the next page
-- of every live segment at once through `call_many` (at most 1024 at once: beyond that,
-- in turn) and hands the answers out in segment order, so up to N pages are held at a
-- time. A failed segment's err has `err.segment`; the other pages of its round come first.
-- `segments` is not sent; params is not changed.
-- @tparam table params Scan parameters (`TableName` required, `ExclusiveStartKey` to
-- resume one segment), plus `segments`
-- @treturn function the iterator; raises on bad params (not a table, no `TableName`,
-- `segments` not an integer in range, or given with `Segment`/`TotalSegments`, or with
-- `ExclusiveStartKey` when above 1)
function DynamoDB:scan_pages(params)
  return pages.scan(self, params)
end
DynamoDB.scanPages = DynamoDB.scan_pages

--- An iterator over the pages of a Query, as `scan_pages` is over a Scan (no `segments`).
-- @tparam table params Query parameters (`TableName` required)
-- @treturn function the iterator (`page`, or `false, err` once, then nil); raises on bad params
function DynamoDB:query_pages(params)
  return pages.query(self, params)
end
DynamoDB.queryPages = DynamoDB.query_pages

--- Scans the whole table into memory (small tables only: see `scan_pages`).
-- @tparam table params Scan parameters, as for `scan_pages` (`segments` too); raises on
-- bad params
-- @treturn table `{ Items = every item, Count = n, ScannedCount = n }`, or `nil, err`
function DynamoDB:scan_all(params)
  local items, count, scanned = {}, 0, 0
  for page, err in pages.scan(self, params, "scan_all") do
    if not page then return nil, err end
    for _, item in ipairs(page.Items or {}) do items[#items + 1] = item end
    count = count + (page.Count or 0)
    scanned = scanned + (page.ScannedCount or 0)
  end
  return { Items = items, Count = count, ScannedCount = scanned }
end
DynamoDB.scanAll = DynamoDB.scan_all

--- Writes a list of puts and deletes to one table: BatchWriteItem calls of 25, in
-- parallel, with `UnprocessedItems` sent again until written.
--
-- Requests are in AWS shape, marshalled: `{ PutRequest = { Item = ds.marshall(item) } }`
-- or `{ DeleteRequest = { Key = ds.marshall(key) } }`. When several requests name the
-- same key (one BatchWriteItem may not hold two), only the last of them is sent: it is
-- what writing them in order would leave; the others count as `superseded`. Requests
-- for different keys may be written in any order. The key attributes are `opts.key`,
-- else read once with DescribeTable. Requests that come back in `UnprocessedItems` are
-- sent again after the client's backoff with jitter (its `retry_base` and `sleep`),
-- each up to `opts.max_attempts` times in all. At the first failure (a call that
-- failed after the client's retries, or a request still unprocessed after
-- `max_attempts`), no new call starts and `nil, err` is returned: `err.unprocessed`
-- lists, in the caller's order, every request not known to be written (pass it to
-- `batch_write_all` again to carry on), `err.summary` what was done; err is the
-- failed call's error, or `UnprocessedItems` (retryable).
-- @tparam string table_name the table
-- @tparam {table,...} requests PutRequest and DeleteRequest tables
-- @tparam[opt] table opts `key` (`{ "pk" }` or `{ "pk", "sk" }`), `max_in_flight` (calls
-- at once, 1 to 1024, default 8), `max_attempts` (sends of one request, default 10)
-- @treturn table `{ written = n, batches = n, retries = n, superseded = n }` (written +
-- superseded = #requests; batches: calls made; retries: requests sent again), or
-- `nil, err`; raises on bad arguments (a request of another shape or without its key
-- attributes, an unknown option)
function DynamoDB:batch_write_all(table_name, requests, opts)
  return batch_write.all(self, table_name, requests, opts)
end
DynamoDB.batchWriteAll = DynamoDB.batch_write_all

return DynamoDB
