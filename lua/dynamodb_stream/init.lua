--- require 'dynamodb_stream': the public entry point.
--
-- `local ds = require("dynamodb_stream")` gives the two clients, the stream
-- consumer and, re-exported from `dynamodb_stream.core`, the AttributeValue and
-- JSON functions: `ds.unmarshall`, `ds.unmarshall_value`, `ds.marshall`,
-- `ds.marshall_value`, `ds.decimal`, `ds.binary`, `ds.set`, `ds.json_encode`,
-- `ds.json_decode`, `ds.null`, `ds.list_mt`, `ds._VERSION` (see
-- `dynamodb_stream.core`); `ds.decode_records` is core's, taking filter
-- criteria too; `ds.sleep(seconds)` is `ngx.sleep` inside nginx where it can
-- yield, a blocking sleep elsewhere.
-- @module dynamodb_stream

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
  sleep = require("dynamodb_stream.runtime").sleep, -- ngx.sleep inside nginx where it can yield
  -- credential providers: ds.credentials.chain{...}, .static, .from_function, .profile,
  -- .process, .web_identity, .assume_role, .container, .imds (dynamodb_stream.credentials)
  credentials = require("dynamodb_stream.credentials"),
}

--- An empty table that marshalls to an empty L and encodes as a JSON [].
-- @treturn table an empty table with the metatable `ds.list_mt`
function ds.empty_list()
  return setmetatable({}, core.list_mt)
end

-- Filters compiled by ds.decode_records, by the JSON text of their criteria;
-- weak values: one is reused until a collection finds it unused.
local compiled_filters = setmetatable({}, { __mode = "v" })

-- opts.filter of ds.decode_records as core.decode_records takes it (a bad
-- one raises at the caller of ds.decode_records).
local function compiled_filter(criteria)
  if type(criteria) == "userdata" then return criteria end -- compiled already (core checks it)
  local ok, text = pcall(core.json_encode, criteria)
  local key = ok and type(criteria) .. ":" .. text
  local filter = key and compiled_filters[key]
  if not filter then
    filter = require("dynamodb_stream.stream.records").compile_filter(criteria, 4)
    if key then compiled_filters[key] = filter end
  end
  return filter
end

--- Decodes a GetRecords page (or a Lambda event payload) with its images
-- unmarshalled in one pass in C (`core.decode_records`).
-- @param text the JSON text (a string, or a body object)
-- @tparam[opt] table opts `numbers` ("auto" or "string"), `filter`: Lambda's
-- FilterCriteria (`{ Filters = { { Pattern = json }, ... } }`), one pattern as a
-- JSON string or a Lua table, or a filter from `core.compile_filter`; criteria
-- are compiled once and reused for the same JSON text (until a garbage
-- collection finds the filter unused). An invalid pattern raises.
-- @return records, next_shard_iterator (with a filter also the number of records
-- it dropped and the page's last sequence number), or `nil, message, code`
-- @usage local records = ds.decode_records(body, { filter = '{"eventName":["INSERT"]}' })
function ds.decode_records(text, opts)
  if type(opts) == "table" and opts.filter ~= nil then
    local copy = {}
    for k, v in pairs(opts) do copy[k] = v end
    copy.filter = compiled_filter(opts.filter)
    opts = copy
  end
  return core.decode_records(text, opts)
end

--- A DynamoDB Streams client (`dynamodb_stream.client`).
-- Operations `describe_stream`, `get_shard_iterator`, `get_records`, `list_streams`
-- (and camelCase names), plus `call`, `call_many`, `stats`, `close`.
-- @tparam[opt] table opts `region`, `credentials` (`{ access_key_id, secret_access_key,
-- session_token }`), `profile`, `endpoint`, `connect_timeout`, `timeout`, `verify_tls`,
-- `ca_file`, `max_attempts`, `retry_mode`, `sleep` (see `dynamodb_stream.config.resolve`)
-- @return the client; raises on a bad option or a missing region or credentials
function ds.client(opts)
  return require("dynamodb_stream.client").new(opts)
end

--- A DynamoDB client (`dynamodb_stream.dynamodb`).
-- `call(operation, params)` for any operation, methods for the common ones, `scan_pages`,
-- `query_pages`, `scan_all` and `batch_write_all`.
-- @tparam[opt] table opts the same options as `client`
-- @return the client; raises on a bad option
function ds.dynamodb(opts)
  return require("dynamodb_stream.dynamodb").new(opts)
end

--- Compares two tables by value (`dynamodb_stream.verify`): missing, extra and different items.
-- @tparam table opts `source`, `target` (table names), `segments`, `dynamodb`,
-- `target_dynamodb`, `client`, `on_difference` (see `dynamodb_stream.verify.tables`)
-- @treturn table `{ source_items, target_items, missing, extra, different }`, or `nil, err`;
-- raises on bad options
function ds.verify(opts)
  return require("dynamodb_stream.verify").tables(opts)
end

--- A stream consumer (`dynamodb_stream.stream`): an event emitter that reads every shard.
-- @param client anything with `describe_stream`, `get_shard_iterator` and `get_records`
-- (or their camelCase names), normally `ds.client()`
-- @tparam string stream_arn the stream's ARN (`LatestStreamArn` of DescribeTable)
-- @param[opt] unmarshall_or_opts the unmarshall function (`ds.unmarshall`), or a table of
-- options: `unmarshall`, `start_at`, `limit`, `max_pages_per_shard`, `max_in_flight`, `clock`,
-- `wall_clock`, `max_record_attempts`, `max_record_age`, `on_failure`, `batch_size`,
-- `batch_window`, `bisect`, `filter` (Lambda's FilterCriteria), `leases`
-- @return the stream; raises on bad arguments
function ds.new(client, stream_arn, unmarshall_or_opts)
  return require("dynamodb_stream.stream").new(client, stream_arn, unmarshall_or_opts)
end

--- Copies a table into another and keeps it in sync through the source's stream
-- (`dynamodb_stream.replicate`; README, "Replication").
-- @tparam table opts `source`, `target`, `checkpoint`, `segments`, `transform`,
-- `create_target`, `dynamodb`, `target_dynamodb`, `streams`, `client`, `progress`,
-- `until_caught_up`, `duration`, `stop_on_signals`, `on_error`
-- @return true when stopped, or nil and an error; raises on bad options
function ds.replicate(opts)
  return require("dynamodb_stream.replicate").replicate(opts)
end

return ds
