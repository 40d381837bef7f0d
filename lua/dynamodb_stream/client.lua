--- The DynamoDB Streams client: ds.client(opts).
--
-- Made by `ds.client(opts)`. Every operation is a method under its snake_case and
-- camelCase names (`describe_stream`/`describeStream`, `get_shard_iterator`,
-- `get_records`, `list_streams`), taking a table with AWS's field names and returning
-- the decoded answer or `nil, err`; `call`, `call_many`, `stats` and `close` come from
-- `dynamodb_stream.service`.
-- @module dynamodb_stream.client

local Service = require("dynamodb_stream.service")

local Client = Service.class({
  name = "client",
  target_prefix = "DynamoDBStreams_20120810",
  endpoint_prefix = "streams.dynamodb",
  env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
}, { "DescribeStream", "GetShardIterator", "GetRecords", "ListStreams" })

--- GetRecords with the images already unmarshalled (as ds.unmarshall would),
-- parsed in one pass in C; the stream uses it when its unmarshall is ds.unmarshall.
-- @tparam table params GetRecords parameters (`ShardIterator`, `Limit`)
-- @tparam[opt] table opts `{ filter = f }` (a filter from `core.compile_filter`): the
-- records it refuses are dropped in C (see `Service.unmarshalled_records`)
-- @return the answer (`Records`, `NextShardIterator`), or `nil, err`
function Client:get_records_unmarshalled(params, opts)
  return self:call("GetRecords", params, Service.records_decoder(opts))
end

--- GetRecords on many shards at once: list of params -> answers, errs (see
-- Service:call_many); pages unmarshalled in C like get_records_unmarshalled
-- when unmarshalled is true, or a table of its options (`{ filter = f }`).
-- @tparam {table,...} list GetRecords parameters, one table per shard
-- @param[opt] unmarshalled true or `{ filter = f }`: unmarshall the images in C
-- @tparam[opt=16] integer max_in_flight requests sent at once
-- @treturn table answers, by position in list (with holes)
-- @treturn table errs, by position in list (with holes)
function Client:get_records_many(list, unmarshalled, max_in_flight)
  return self:call_many("GetRecords", list, unmarshalled and Service.records_decoder(unmarshalled) or nil,
    max_in_flight)
end

return Client
