-- Issue 16, filters against DynamoDB Local: INSERT, MODIFY and REMOVE records
-- filtered on eventName and on dynamodb.NewImage.status.S deliver only the
-- matching ones, the same on the C decode path (ds.unmarshall with
-- ds.client()) and the Lua one (a custom unmarshall); the saved position is
-- past the records filtered out, and a restart from it delivers nothing twice
-- and misses nothing.
local ds = require("dynamodb_stream")
local helper = require("helper")

local NAMESPACE = "filterspec"
local CRITERIA = { Filters = {
  { Pattern = '{"eventName":["REMOVE"]}' },
  { Pattern = '{"dynamodb":{"NewImage":{"status":{"S":["done"]}}}}' },
} }

describe("a stream with a filter against DynamoDB Local", function()
  local ddb, streams

  setup(function()
    ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
    streams = ds.client(helper.local_opts(NAMESPACE))
  end)

  local function put(name, pk, status)
    assert(ddb:put_item({ TableName = name, Item = ds.marshall({ pk = pk, status = status }) }))
  end

  local function delete(name, pk)
    assert(ddb:delete_item({ TableName = name, Key = ds.marshall({ pk = pk }) }))
  end

  -- "EVENT pk status" per record delivered; the sequence numbers in seqs.
  local function recorder(stream)
    local log, seqs = {}, {}
    stream:on("record", function(r)
      local d = r.dynamodb
      local image = d.NewImage or d.OldImage
      log[#log + 1] = r.eventName .. " " .. tostring(d.Keys.pk) .. " " .. tostring(image and image.status)
      seqs[#seqs + 1] = d.SequenceNumber
    end)
    stream:on("error", function(err) log[#log + 1] = "error " .. tostring(err.code) end)
    return log, seqs
  end

  -- The stream's saved state as a checkpoint file would hold it, its
  -- iterators dropped (as if expired): a restart re-opens by sequence number.
  local function checkpoint(stream)
    local state = assert(ds.json_decode(ds.json_encode(stream:get_shard_state())))
    for _, entry in pairs(state) do entry.nextShardIterator = nil end
    return state
  end

  local function only_entry(state)
    local id, entry = next(state)
    assert.is_nil(next(state, id))
    return entry
  end

  local UNMARSHALL = {
    ["the C decode path"] = ds.unmarshall,
    ["a custom unmarshall"] = function(av) return ds.unmarshall(av) end,
  }
  for path, unmarshall in pairs(UNMARSHALL) do
    it("delivers only the matching records (" .. path .. "), and a restart resumes past the filtered ones", function()
      local name = "filter_" .. path:gsub("%W", "_") .. "_" .. os.time()
      local arn = helper.create_stream_table(ddb, name)
      put(name, "1", "new")      -- INSERT, filtered out
      put(name, "2", "done")     -- INSERT, passes
      put(name, "1", "done")     -- MODIFY, passes
      put(name, "2", "old")      -- MODIFY, filtered out
      delete(name, "1")          -- REMOVE, passes
      put(name, "3", "new")      -- INSERT, filtered out: the page's tail

      local all = ds.new(streams, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
      local _, all_seqs = recorder(all)
      assert(all:fetch_stream_state())
      assert.equals(6, #all_seqs)

      local s = ds.new(streams, arn, { unmarshall = unmarshall, start_at = "TRIM_HORIZON", filter = CRITERIA })
      local log = recorder(s)
      assert(s:fetch_stream_state())
      assert.same({ "INSERT 2 done", "MODIFY 1 done", "REMOVE 1 done" }, log)
      assert.equals(3, s:stats().filtered)
      local state = checkpoint(s)
      assert.equals(all_seqs[6], only_entry(state).sequenceNumber) -- past the filtered tail

      -- more changes, then a restart from the checkpoint
      put(name, "4", "done")     -- passes
      put(name, "5", "new")      -- filtered out
      delete(name, "2")          -- passes
      local again = ds.new(streams, arn, { unmarshall = unmarshall, filter = CRITERIA })
      local log2, seqs2 = recorder(again)
      assert(again:set_shard_state(state))
      assert(again:fetch_stream_state())
      assert.same({ "INSERT 4 done", "REMOVE 2 old" }, log2)
      assert.equals(1, again:stats().filtered)
      assert.equals(seqs2[2], only_entry(checkpoint(again)).sequenceNumber)
      assert(again:fetch_stream_records())
      assert.equals(2, #log2) -- nothing twice
    end)
  end
end)
