-- Issue 11, item 4 against DynamoDB Local, as a new user meets it: the
-- README's quick start with run{ checkpoint = path }, stopped before anything
-- happened, restarted after a downtime that outlived the saved iterator.
local ds = require("dynamodb_stream")
local helper = require("helper")

-- A namespace per interpreter: the passes may share one DynamoDB Local.
local NAMESPACE = "latestspec" .. helper.lua

describe("the README's quick start with a checkpoint, against DynamoDB Local", function()
  local ddb, dir

  setup(function() ddb = ds.dynamodb(helper.local_opts(NAMESPACE)) end)
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmdir(dir) end)

  local function quick_start(arn, log)
    local stream = ds.new(ds.client(helper.local_opts(NAMESPACE)), arn, ds.unmarshall)
    stream:on("insert record", function(item) log[#log + 1] = "new " .. item.pk end)
    stream:on("gap", function(info) log[#log + 1] = "gap " .. info.reason end)
    stream:on("error", function(err) log[#log + 1] = "error " .. err.code end)
    return stream
  end

  it("delivers after the restart what was written while the process was down", function()
    local name = "fruit_" .. os.time()
    local arn = helper.create_stream_table(ddb, name)
    local path = dir .. "/fruit-stream.json"
    local log = {}
    local first = quick_start(arn, log)
    assert(first:run({ checkpoint = path, sleep = function() first:stop() end }))
    assert.same({}, log)

    -- Down for more than 15 minutes: the saved iterator is of no use any more.
    local state = assert(ds.json_decode(helper.read_file(path)))
    local shard_id, entry = next(state)
    assert.equals("LATEST", entry.position.type)
    assert.is_number(entry.position.openedAt)
    entry.nextShardIterator = nil
    helper.write_file(path, ds.json_encode(state))
    for _, pk in ipairs({ "apple", "pear" }) do
      assert(ddb:put_item({ TableName = name, Item = ds.marshall({ pk = pk }) }))
    end

    local second = quick_start(arn, log)
    local rounds = 0
    assert(second:run({ checkpoint = path, sleep = function()
      rounds = rounds + 1
      if #log >= 2 or rounds >= 20 then second:stop() end
    end }))
    assert.same({ "new apple", "new pear" }, log)
    local saved = assert(ds.json_decode(helper.read_file(path)))[shard_id]
    assert.equals("AFTER_SEQUENCE_NUMBER", saved.position.type)
    assert.is_nil(saved.position.openedAt)
  end)
end)
