-- The DynamoDB Streams client: ds.client(opts).

local Service = require("dynamodb_stream.service")

return Service.class({
  name = "client",
  target_prefix = "DynamoDBStreams_20120810",
  endpoint_prefix = "streams.dynamodb",
  env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
}, { "DescribeStream", "GetShardIterator", "GetRecords", "ListStreams" })
