-- The DynamoDB Streams client: ds.client(opts).

local Service = require("dynamodb_stream.service")

local Client = Service.class({
  name = "client",
  target_prefix = "DynamoDBStreams_20120810",
  endpoint_prefix = "streams.dynamodb",
  env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
}, { "DescribeStream", "GetShardIterator", "GetRecords", "ListStreams" })

-- GetRecords with the images already unmarshalled (as ds.unmarshall would),
-- parsed in one pass in C; the stream uses it when its unmarshall is ds.unmarshall.
function Client:get_records_unmarshalled(params)
  return self:call("GetRecords", params, Service.unmarshalled_records)
end

-- GetRecords on many shards at once: list of params -> answers, errs (see
-- Service:call_many); pages unmarshalled in C like get_records_unmarshalled
-- when unmarshalled is true.
function Client:get_records_many(list, unmarshalled, max_in_flight)
  return self:call_many("GetRecords", list, unmarshalled and Service.unmarshalled_records or nil, max_in_flight)
end

return Client
