-- Defect history: the original's own test passes here, so what the npm package
-- promised still holds. Keep it beside spec/unit/defects/stream_defects_spec.lua,
-- the proof that each of the original's defects is fixed.
-- The npm package's own test (test.js of dynamodb-stream 1.1.4, "reports the
-- correct stream of changes"), ported unchanged in substance, against DynamoDB
-- Local instead of a real AWS account.
local ds = require("dynamodb_stream")
local helper = require("helper")

local TABLE_NAME = "testDynamoDBStream"

describe("the original's test against DynamoDB Local", function()
  local ddb, ddb_streams, t

  local function create_table()
    local _, err = ddb:create_table({
      TableName = TABLE_NAME,
      KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
      AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
      ProvisionedThroughput = { ReadCapacityUnits = 1, WriteCapacityUnits = 1 },
      StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" },
    })
    if err and err.code ~= "ResourceInUseException" then error(tostring(err)) end
    for _ = 1, 100 do
      local d = assert(ddb:describe_table({ TableName = TABLE_NAME }))
      if d.Table.TableStatus == "ACTIVE" then return end
      ds.sleep(0.05)
    end
    error("table did not become active")
  end

  local function find_stream_arn()
    local listed = assert(ddb_streams:list_streams({ TableName = TABLE_NAME }))
    for _, s in ipairs(listed.Streams) do
      if s.TableName == TABLE_NAME then return s.StreamArn end
    end
    error("cannot find stream arn")
  end

  local function put_item(data)
    assert(ddb:put_item({ TableName = TABLE_NAME, Item = { pk = { S = data.pk }, data = { S = data.data } } }))
  end

  local function delete_item(pk)
    assert(ddb:delete_item({ TableName = TABLE_NAME, Key = { pk = { S = pk } } }))
  end

  before_each(function()
    -- a namespace of its own: DynamoDB Local keeps tables per access key id
    ddb = ds.dynamodb(helper.local_opts("originaltest"))
    ddb_streams = ds.client(helper.local_opts("originaltest"))
    t = { event_log = {} }
    create_table()
    local arn = find_stream_arn()
    t.ddb_stream = ds.new(ddb_streams, arn, ds.unmarshall)
    t.ddb_stream:on("insert record", function(record)
      table.insert(t.event_log, { eventName = "insert record", record = record })
    end)
    t.ddb_stream:on("modify record", function(new_record, old_record)
      table.insert(t.event_log, { eventName = "modify record", newRecord = new_record, oldRecord = old_record })
    end)
    t.ddb_stream:on("remove record", function(record)
      table.insert(t.event_log, { eventName = "remove record", record = record })
    end)
    t.ddb_stream:on("new shards", function(shards) t.shards = shards end)
  end)

  it("reports the correct stream of changes", function()
    local event_log, ddb_stream = t.event_log, t.ddb_stream
    local pk = tostring(os.time()) .. tostring(math.random(1e6))

    assert(ddb_stream:fetch_stream_state())
    put_item({ pk = pk, data = "1" })
    assert(ddb_stream:fetch_stream_state())
    put_item({ pk = pk, data = "2" })
    assert(ddb_stream:fetch_stream_state())
    put_item({ pk = "a", data = "2" })
    put_item({ pk = "b", data = "2" })
    assert(ddb_stream:fetch_stream_state())
    delete_item("a")
    assert(ddb_stream:fetch_stream_state())

    assert.same({
      { eventName = "insert record", record = { pk = pk, data = "1" } },
      { eventName = "modify record", newRecord = { pk = pk, data = "2" }, oldRecord = { pk = pk, data = "1" } },
      { eventName = "insert record", record = { pk = "a", data = "2" } },
      { eventName = "insert record", record = { pk = "b", data = "2" } },
      { eventName = "remove record", record = { pk = "a", data = "2" } },
    }, event_log)
    -- the part the original stored but never checked
    assert.equals(1, #t.shards)
  end)

  it("passes again on the same (now non-empty) table, as the original reuses its table", function()
    local ddb_stream, event_log = t.ddb_stream, t.event_log
    put_item({ pk = "b", data = "2" }) -- before the LATEST bookmark: not reported
    assert(ddb_stream:fetch_stream_state())
    put_item({ pk = "c", data = "3" })
    delete_item("b")
    assert(ddb_stream:fetch_stream_state())
    assert.same({
      { eventName = "insert record", record = { pk = "c", data = "3" } },
      { eventName = "remove record", record = { pk = "b", data = "2" } },
    }, event_log)
  end)
end)
