-- With ds.unmarshall and our own client, the consumer takes each GetRecords
-- page through core.decode_records (parse + unmarshall in one pass in C). It
-- must deliver exactly what the Lua path delivers, and a page holding a bad
-- AttributeValue must still stop at that record.
local ds = require("dynamodb_stream")
local helper = require("helper")

-- Every event with its arguments, to compare deeply (not as JSON text: key
-- order in a Lua table depends on how it was built).
local function record_events(stream)
  local log = {}
  for _, event in ipairs({ "insert record", "modify record", "remove record", "record" }) do
    stream:on(event, function(...) log[#log + 1] = { event, ... } end)
  end
  return log
end

describe("the one-pass decode path", function()
  it("delivers what the Lua unmarshall path delivers, against DynamoDB Local", function()
    local opts = helper.local_opts("fastpath")
    local ddb = ds.dynamodb(opts)
    local arn = helper.create_stream_table(ddb, "fast_path")
    for i = 1, 40 do
      assert(ddb:put_item({ TableName = "fast_path", Item = ds.marshall({
        pk = "k" .. (i % 7), i = i, f = i / 8, big = ds.decimal("1234567890123456789012345." .. i),
        l = { i, ds.null, { m = "x" } }, e = ds.empty_list(), s = ds.set("SS", { "a" .. i }),
        b = ds.binary("\0\255" .. i), ok = i % 2 == 0,
      }) }))
      if i % 5 == 0 then
        assert(ddb:delete_item({ TableName = "fast_path", Key = ds.marshall({ pk = "k" .. (i % 7) }) }))
      end
    end

    local client = ds.client(opts)
    local one_pass_pages = 0
    local get_records_many = client.get_records_many
    client.get_records_many = function(self, list, unmarshalled, ...)
      if unmarshalled then one_pass_pages = one_pass_pages + #list end
      return get_records_many(self, list, unmarshalled, ...)
    end
    local fast = ds.new(client, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
    local slow = ds.new(client, arn, {
      unmarshall = function(av) return ds.unmarshall(av) end, start_at = "TRIM_HORIZON",
    })
    local fast_log, slow_log = record_events(fast), record_events(slow)
    assert(fast:fetch_stream_state())
    local fast_pages = one_pass_pages
    assert(slow:fetch_stream_state())
    assert.is_true(fast_pages > 0)
    assert.equals(fast_pages, one_pass_pages)  -- the custom unmarshall took the Lua path
    assert.equals(48 * 2, #fast_log)       -- 40 puts and 8 deletes, each as 'record' and its typed event
    assert.same(slow_log, fast_log)
    -- The B annotation survives the fast path: marshalling an image gives B again.
    local image
    fast:on("insert record", function(new) image = image or new end)
    assert(ddb:put_item({ TableName = "fast_path", Item = ds.marshall({ pk = "new", b = ds.binary("\1\2") }) }))
    assert(fast:fetch_stream_records())
    assert.same({ B = "AQI=" }, ds.marshall(image).b)
  end)

  it("stops at a record whose AttributeValue does not unmarshall, as the Lua path does", function()
    local proc = assert(io.popen("exec /usr/bin/python3 spec/support/hostile_server.py"))
    local line = assert(proc:read("*l"))
    local pid = line:match("pid=(%d+)")
    local endpoint = "http://127.0.0.1:" .. line:match("http=(%d+)") .. "/badav/2"
    local client = ds.client({ endpoint = endpoint, region = "us-east-1", max_attempts = 1,
      credentials = { access_key_id = "AKIDFAST", secret_access_key = "fast-path-secret" } })
    local stream = ds.new(client, "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
      { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
    local inserted = {}
    stream:on("insert record", function(new) inserted[#inserted + 1] = new.n end)
    local records, err = stream:fetch_stream_state()
    os.execute("kill " .. pid)
    proc:close()
    assert.is_nil(records)
    assert.equals("UnmarshallError", err.code)
    assert.matches("unknown AttributeValue type 'X'", err.message)
    assert.same({ 1 }, inserted)                          -- record 1 delivered, 2 and 3 held back
    assert.equals("100000000000000000001", stream:get_shard_state()["shardId-1"].sequenceNumber)
  end)
end)
