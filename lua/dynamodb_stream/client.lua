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

return Client
