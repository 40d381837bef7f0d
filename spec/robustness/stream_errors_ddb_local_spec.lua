-- How the consumer meets DynamoDB Local's real error answers (issue 11, item
-- 5): a key it does not know is fatal for run(); an iterator it calls invalid
-- re-opens from the last delivered record and is reported once.
local ds = require("dynamodb_stream")
local helper = require("helper")

local NAMESPACE = "streamerrors"

describe("stream errors against DynamoDB Local", function()
  it("run() with an access key DynamoDB Local does not accept returns nil, UnrecognizedClientException at once",
      function()
    local arn
    do
      local ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
      arn = helper.create_stream_table(ddb, "badkey_" .. os.time())
      ddb:close()
    end
    local opts = helper.local_opts(NAMESPACE)
    opts.credentials = { access_key_id = "bad-key!", secret_access_key = "local-secret" }
    local client = ds.client(opts)
    local slept = 0
    local s = ds.new(client, arn, { clock = function() return slept end })
    local codes = {}
    s:on("error", function(e) codes[#codes + 1] = e.code end)
    local r, err = s:run({ duration = 60, sleep = function(t) slept = slept + t end })
    assert.is_nil(r)
    assert.equals("UnrecognizedClientException", err.code)
    assert.same({ "UnrecognizedClientException" }, codes)
    assert.equals(0, slept)
    client:close()
  end)

  it("an iterator DynamoDB Local calls invalid re-opens after the last delivered record, reported once", function()
    local name = "baditer_" .. os.time()
    local ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
    local streams = ds.client(helper.local_opts(NAMESPACE))
    local arn = helper.create_stream_table(ddb, name)
    local s = ds.new(streams, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
    local log = {}
    s:on("insert record", function(new) log[#log + 1] = "insert " .. new.pk end)
    s:on("error", function(e) log[#log + 1] = "error " .. e.code end)
    assert(s:fetch_stream_state())
    assert(ddb:put_item({ TableName = name, Item = ds.marshall({ pk = "1" }) }))
    assert(s:fetch_stream_state())
    local state = s:get_shard_state()
    local id, entry = next(state)
    assert.is_string(entry.sequenceNumber)
    entry.nextShardIterator = "not-an-iterator"
    assert.is_true(s:set_shard_state({ [id] = entry }))
    assert(ddb:put_item({ TableName = name, Item = ds.marshall({ pk = "2" }) }))
    assert(s:fetch_stream_state())
    assert.same({ "insert 1", "error ValidationException", "insert 2" }, log)
    assert(s:fetch_stream_records())
    assert.same({ "insert 1", "error ValidationException", "insert 2" }, log)
    ddb:close()
    streams:close()
  end)
end)
