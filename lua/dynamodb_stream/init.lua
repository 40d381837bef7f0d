-- require 'dynamodb_stream': the public entry point.

local core = require("dynamodb_stream.core")

local ds = {
  _VERSION = core._VERSION,
  null = core.null,
  list_mt = core.list_mt,
  unmarshall = core.unmarshall,
  unmarshall_value = core.unmarshall_value,
  marshall = core.marshall,
  marshall_value = core.marshall_value,
  decimal = core.decimal,
  binary = core.binary,
  set = core.set,
  json_encode = core.json_encode,
  json_decode = core.json_decode,
  decode_records = core.decode_records,
  sleep = require("dynamodb_stream.runtime").sleep, -- ngx.sleep inside nginx where it can yield
}

-- An empty table that marshalls to an empty L and encodes as a JSON [].
function ds.empty_list()
  return setmetatable({}, core.list_mt)
end

function ds.client(opts)
  return require("dynamodb_stream.client").new(opts)
end

function ds.dynamodb(opts)
  return require("dynamodb_stream.dynamodb").new(opts)
end

function ds.new(client, stream_arn, unmarshall_or_opts)
  return require("dynamodb_stream.stream").new(client, stream_arn, unmarshall_or_opts)
end

return ds
