-- The consumer against DynamoDB Local: its quirks, and positions re-opened by
-- sequence number on a real service.
local ds = require("dynamodb_stream")
local helper = require("helper")

local NAMESPACE = "streamspec"

describe("stream against DynamoDB Local", function()
  local ddb, streams

  local function create_table(name)
    return helper.create_stream_table(ddb, name)
  end

  local function put(name, pk)
    assert(ddb:put_item({ TableName = name, Item = ds.marshall({ pk = pk }) }))
  end

  local function recorder(stream)
    local log = {}
    stream:on("insert record", function(new) log[#log + 1] = "insert " .. new.pk end)
    stream:on("gap", function(info) log[#log + 1] = "gap " .. info.shard_id end)
    stream:on("error", function(err) log[#log + 1] = "error " .. err.code end)
    return log
  end

  setup(function()
    ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
    streams = ds.client(helper.local_opts(NAMESPACE))
  end)

  it("TRIM_HORIZON taken on an empty shard delivers what arrives later, with no gap", function()
    local arn = create_table("quirk_" .. os.time())
    local horizons = 0
    local counting = {
      describe_stream = function(_, p) return streams:describe_stream(p) end,
      get_records = function(_, p) return streams:get_records(p) end,
      get_shard_iterator = function(_, p)
        if p.ShardIteratorType == "TRIM_HORIZON" then horizons = horizons + 1 end
        return streams:get_shard_iterator(p)
      end,
    }
    local s = ds.new(counting, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
    local log = recorder(s)
    assert(s:fetch_stream_state())
    put(arn:match("table/([^/]+)/"), "1")
    put(arn:match("table/([^/]+)/"), "2")
    assert(s:fetch_stream_state())
    assert.same({ "insert 1", "insert 2" }, log)
    -- 1 when this DynamoDB Local keeps the iterator valid, 2 when it answered
    -- Trimmed and the shard was re-opened; either way without a gap
    assert.is_true(horizons == 1 or horizons == 2)
  end)

  it("a raising listener: the next fetch re-opens AT_SEQUENCE_NUMBER and delivers the record again", function()
    local name = "listener_" .. os.time()
    local arn = create_table(name)
    local s = ds.new(streams, arn, ds.unmarshall)
    local log = recorder(s)
    assert(s:fetch_stream_state())
    put(name, "1"); put(name, "2"); put(name, "3")
    local failed = false
    s:on("insert record", function(new)
      if new.pk == "2" and not failed then failed = true; error("once") end
    end)
    assert.is_nil(s:fetch_stream_state())
    assert.equals(2, #assert(s:fetch_stream_state()))
    assert.same({ "insert 1", "insert 2", "error ListenerError", "insert 2", "insert 3" }, log)
  end)

  it("a batch's partial failure, then a restart from the saved state: from the failed record on, nothing before",
    function()
      local name = "batch_" .. os.time()
      local arn = create_table(name)
      local s = ds.new(streams, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
      for i = 1, 5 do put(name, tostring(i)) end
      local batches = {}
      local function pks(records)
        local out = {}
        for i, r in ipairs(records) do out[i] = r.dynamodb.Keys.pk end
        return table.concat(out, ",")
      end
      s:on("batch", function(records)
        batches[#batches + 1] = pks(records)
        for _, r in ipairs(records) do
          if r.dynamodb.Keys.pk == "3" then return { failed = r.dynamodb.SequenceNumber } end
        end
      end)
      local r, err = s:fetch_stream_state()
      assert.is_nil(r)
      assert.equals("BatchItemFailure", err.code)
      local state = assert(ds.json_decode(ds.json_encode(s:get_shard_state())))
      local s2 = ds.new(streams, arn, { unmarshall = ds.unmarshall, batch_size = 2 })
      s2:set_shard_state(state)
      s2:on("batch", function(records) batches[#batches + 1] = pks(records) end)
      assert.equals(3, #assert(s2:fetch_stream_state()))
      assert.same({ "1,2,3,4,5", "3,4", "5" }, batches)
    end)

  it("a saved state without its iterators resumes AFTER the saved sequence number", function()
    local name = "resume_" .. os.time()
    local arn = create_table(name)
    local s = ds.new(streams, arn, ds.unmarshall)
    assert(s:fetch_stream_state())
    put(name, "1")
    assert(s:fetch_stream_state())
    local state = assert(ds.json_decode(ds.json_encode(s:get_shard_state())))
    for _, entry in pairs(state) do entry.nextShardIterator = nil end -- as if expired
    put(name, "2")
    local s2 = ds.new(streams, arn, ds.unmarshall)
    local log = recorder(s2)
    s2:set_shard_state(state)
    assert(s2:fetch_stream_state())
    assert.same({ "insert 2" }, log)
  end)
end)
