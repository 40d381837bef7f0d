-- Issue 16, filters in the consumer: ds.new(client, arn, { filter = criteria })
-- delivers only the records the criteria pass (Lambda's FilterCriteria), the
-- same on every path: pages decoded in C (ds.unmarshall with a client that
-- has get_records_unmarshalled: filtered in C before any Lua value of a
-- dropped record), a custom unmarshall, raw records. Filtered-out records are
-- acknowledged (the position and the saved state move past them) and counted.
local core = require("dynamodb_stream.core")
local Service = require("dynamodb_stream.service")
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")

local CRITERIA = { Filters = {
  { Pattern = '{"eventName":["REMOVE"]}' },
  { Pattern = '{"dynamodb":{"NewImage":{"status":{"S":["done"]}}}}' },
} }

-- A client over the fake whose pages go through the real C decode
-- (Service.records_decoder on the page's JSON), as ds.client()'s do; with
-- many, it also answers get_records_many(list, unmarshalled). c_pages counts
-- the pages decoded so, filtered ones the pages that said how many they dropped.
local function c_client(fake, many)
  local client = { c_pages = 0, filtered_pages = 0 }
  function client.describe_stream(_, p) return fake:describe_stream(p) end
  function client.get_shard_iterator(_, p) return fake:get_shard_iterator(p) end
  function client.get_records(_, p) return fake:get_records(p) end
  function client.get_records_unmarshalled(_, p, opts)
    local res, err = fake:get_records(p)
    if not res then return nil, err end
    setmetatable(res.Records, core.list_mt)
    client.c_pages = client.c_pages + 1
    local page, why = Service.records_decoder(opts)(core.json_encode(res))
    if page and page._filtered then client.filtered_pages = client.filtered_pages + 1 end
    return page, why
  end
  if many then
    function client.get_records_many(self, list, unmarshalled)
      local answers, errs = {}, {}
      for i, p in ipairs(list) do
        if unmarshalled then
          answers[i], errs[i] = self:get_records_unmarshalled(p, unmarshalled)
        else
          answers[i], errs[i] = fake:get_records(p)
        end
      end
      return answers, errs
    end
  end
  return client
end

-- The ways a stream reads pages: name -> function(fake, opts) -> stream, client.
local PATHS = {
  ["C decode, one shard a call"] = function(fake, opts)
    local client = c_client(fake, false)
    opts.unmarshall = core.unmarshall
    return Stream.new(client, fake.stream_arn, opts), client
  end,
  ["C decode, get_records_many"] = function(fake, opts)
    local client = c_client(fake, true)
    opts.unmarshall = core.unmarshall
    return Stream.new(client, fake.stream_arn, opts), client
  end,
  ["custom unmarshall"] = function(fake, opts)
    opts.unmarshall = function(av) return core.unmarshall(av) end
    return Stream.new(fake, fake.stream_arn, opts)
  end,
  ["raw records"] = function(fake, opts)
    return Stream.new(fake, fake.stream_arn, opts)
  end,
}

-- The image's value of k, raw or unmarshalled.
local function value(image, k)
  local v = image and image[k]
  if type(v) == "table" then return v.S or v.N end
  return v
end

-- 'record' listener log: "EVENT pk status".
local function recorder(stream)
  local log = {}
  stream:on("record", function(r)
    local d = r.dynamodb
    log[#log + 1] = r.eventName .. " " .. tostring(value(d.Keys, "pk")) .. " "
      .. tostring(value(d.NewImage or d.OldImage, "status"))
  end)
  return log
end

-- Puts the scripted changes into shard A: which pass CRITERIA is in the name.
local function script(fake)
  fake:insert("A", { pk = "1", status = "new" })
  fake:insert("A", { pk = "2", status = "done" })
  fake:modify("A", { pk = "1", status = "done" }, { pk = "1", status = "new" })
  fake:modify("A", { pk = "2", status = "old" }, { pk = "2", status = "done" })
  fake:remove("A", { pk = "1", status = "done" })
  fake:insert("A", { pk = "3", status = "new" })
  return fake:insert("A", { pk = "4", status = "new" })
end
local WANT = { "INSERT 2 done", "MODIFY 1 done", "REMOVE 1 done" }

for name, make in pairs(PATHS) do
  describe("a stream with a filter (" .. name .. ")", function()
    local fake

    before_each(function()
      fake = Fake.new()
      fake:add_shard("A")
    end)

    local function new_stream(opts)
      opts = opts or {}
      opts.start_at = opts.start_at or "TRIM_HORIZON"
      opts.filter = opts.filter == nil and CRITERIA or opts.filter
      return make(fake, opts)
    end

    it("delivers only the records the criteria pass, and counts the others", function()
      local last = script(fake)
      local s, client = new_stream()
      local lua_matches = 0
      local passes = s._passes
      s._passes = function(...) lua_matches = lua_matches + 1 return passes(...) end
      local log = recorder(s)
      local delivered = assert(s:fetch_stream_state())
      assert.same(WANT, log)
      assert.equals(3, #delivered)
      assert.equals(4, s:stats().filtered)
      assert.equals(3, s:stats().delivered)
      assert.equals(4, s._shards.A.filtered)
      assert.equals(4, s:stats().shards.A.filtered)
      assert.equals(last, s:get_shard_state().A.sequenceNumber) -- past the filtered tail
      if client then
        assert.is_true(client.c_pages > 0)
        assert.equals(client.c_pages, client.filtered_pages)
        assert.equals(0, lua_matches) -- filtered in C only
      else
        assert.equals(7, lua_matches)
      end
    end)

    it("acknowledges a page all filtered out; a restart resumes after it", function()
      local seqs = {}
      for i = 1, 3 do seqs[i] = fake:insert("A", { pk = "x" .. i, status = "new" }) end
      local s = new_stream({ limit = 2 })
      local log = recorder(s)
      assert.same({}, assert(s:fetch_stream_state()))
      assert.same({}, log)
      local state = s:get_shard_state()
      assert.equals(seqs[3], state.A.sequenceNumber)
      assert.same({ type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = seqs[3] }, state.A.position)
      assert.equals(3, s:stats().filtered)

      -- a restart without the iterator: re-opened after the filtered records
      fake:insert("A", { pk = "y", status = "done" })
      state.A.nextShardIterator = nil
      local again = new_stream()
      local log2 = recorder(again)
      assert(again:set_shard_state(state))
      assert(again:fetch_stream_state())
      assert.same({ "INSERT y done" }, log2)
      assert.equals(0, again:stats().filtered)
      local opened = fake:calls_on("A", "get_shard_iterator")
      assert.same({ "AFTER_SEQUENCE_NUMBER", seqs[3] },
        { opened[#opened].params.ShardIteratorType, opened[#opened].params.SequenceNumber })
    end)

    it("gives the 'batch' listeners only the records the criteria pass, then moves past the filtered tail", function()
      local last = script(fake)
      local s = new_stream({ batch_size = 2 })
      local batches = {}
      s:on("batch", function(records)
        local pks = {}
        for i, r in ipairs(records) do pks[i] = r.eventName .. " " .. tostring(value(r.dynamodb.Keys, "pk")) end
        batches[#batches + 1] = table.concat(pks, ",")
      end)
      local log = recorder(s)
      assert(s:fetch_stream_state())
      assert.same({ "INSERT 2,MODIFY 1", "REMOVE 1" }, batches)
      assert.same(WANT, log)
      assert.equals(last, s:get_shard_state().A.sequenceNumber)
    end)

    it("keeps a collected batch's filtered tail unacknowledged until the batch is delivered", function()
      fake:insert("A", { pk = "1", status = "done" })
      local tail = fake:insert("A", { pk = "2", status = "new" })
      local now = 0
      local s = new_stream({ batch_window = 5, clock = function() return now end })
      local got = 0
      s:on("batch", function(records) got = got + #records end)
      assert(s:fetch_stream_state())
      assert.equals(0, got)                                  -- still collecting
      assert.is_nil(s:get_shard_state().A.sequenceNumber)   -- nothing acknowledged yet
      now = 6
      assert(s:fetch_stream_records())
      assert.equals(1, got)
      assert.equals(tail, s:get_shard_state().A.sequenceNumber)
      assert.equals(1, s:stats().filtered)                  -- counted once, not at each re-read
    end)
  end)
end

describe("the lag with a filter on the C decode path", function()
  it("is not taken from an older kept record when the page's newest were filtered out", function()
    local fake = Fake.new()
    fake:add_shard("A")
    local stream = PATHS["C decode, one shard a call"](fake, { filter = CRITERIA, start_at = "TRIM_HORIZON",
      wall_clock = function() return fake:wall() end })
    stream:on("record", function() end)
    fake:insert("A", { pk = "1", status = "done" }) -- kept
    fake:advance(100)
    fake:insert("A", { pk = "2", status = "new" })  -- dropped in C: the page's newest
    fake:advance(5)
    assert(stream:fetch_stream_state())
    assert.is_nil(stream:stats().lag, "the lag of the kept record, 105 s old, is not the stream's")
    fake:insert("A", { pk = "3", status = "done" })
    fake:advance(3)
    assert(stream:fetch_stream_state())
    assert.equals(3, stream:stats().lag)
  end)
end)

describe("a stream with a filter, off the C decode path", function()
  it("stops at a record it cannot encode as JSON to match, as at a malformed one", function()
    local fake = Fake.new()
    fake:add_shard("A")
    fake:insert("A", { pk = "1", status = "done" })
    local bad = fake:insert("A", { pk = "2", status = "done" })
    fake:insert("A", { pk = "3", status = "done" })
    fake:tamper("get_records", function(res)
      res.Records[2].dynamodb.SizeBytes = 0 / 0 -- NaN: json_encode refuses it
      return res
    end, { shard = "A", times = 1 })
    local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", filter = CRITERIA })
    local log = recorder(s)
    local none, err = s:fetch_stream_state()
    assert.is_nil(none)
    assert.equals("InvalidResponse", err.code)
    assert.matches("record " .. bad .. ": cannot be filtered: ", err.message, 1, true)
    assert.same({ "INSERT 1 done" }, log)
    assert(s:fetch_stream_state()) -- read again from after record 1
    assert.same({ "INSERT 1 done", "INSERT 2 done", "INSERT 3 done" }, log)
  end)
end)

describe("opts.filter", function()
  local client = { describe_stream = print, get_shard_iterator = print, get_records = print }
  local function new(filter) return Stream.new(client, "arn:x", { filter = filter }) end

  it("takes FilterCriteria, a pattern as JSON text, or a pattern as a Lua table", function()
    assert.is_not_nil(new(CRITERIA)._filter)
    assert.is_not_nil(new('{"eventName":["INSERT"]}')._filter)
    assert.is_not_nil(new({ eventName = { "INSERT" } })._filter)
    assert.is_nil(new(nil)._filter)
  end)

  -- Bad values raise in Stream.new, the offending part named.
  local BAD = {
    { 42, "opts.filter must be FilterCriteria ({ Filters = { { Pattern = json }, ... } }) "
      .. "or a pattern (a JSON string or a table), not a number" },
    { true, "opts.filter must be FilterCriteria", "not a boolean" },
    { "{", "opts.filter: pattern 1: top level: invalid JSON at byte 2: expected a key" },
    { '{"a":"x"}', "opts.filter: pattern 1: a: the value must be an object or an array" },
    { '{"a":[]}', "opts.filter: pattern 1: a: empty arrays are not allowed" },
    { { Filters = {} }, "opts.filter: 0 filters: between 1 and 5 are allowed" },
    { { Filters = { 1 } }, "opts.filter: Filters[1] must be a table { Pattern = json }" },
    { { Filters = { {} } }, "opts.filter: Filters[1].Pattern must be a JSON string or a table, got nil" },
    { { Filters = { { Pattern = '{"eventName":["INSERT"]}' }, { Pattern = '{"x":[{"prefix":1}]}' } } },
      "opts.filter: pattern 2: x[1].prefix: the value must be a string" },
    { { dynamodb = { NewImage = { n = { N = { { numeric = { ">", 10, "<", 5 } } } } } } },
      "opts.filter: pattern 1: dynamodb.NewImage.n.N[1].numeric" },
    { { a = { print } }, "opts.filter: json_encode: cannot encode a function" },
  }
  for _, case in ipairs(BAD) do
    it("refuses " .. core.json_encode(type(case[1]) == "table" and "(a table)" or tostring(case[1])), function()
      local ok, err = pcall(new, case[1])
      assert.is_false(ok)
      for i = 2, #case do
        assert(tostring(err):find(case[i], 1, true), "got: " .. tostring(err))
      end
    end)
  end
end)

describe("ds.decode_records with opts.filter", function()
  local ds = require("dynamodb_stream")
  local PAGE = '{"Records":[{"eventName":"INSERT","dynamodb":{"SequenceNumber":"100"}},'
    .. '{"eventName":"REMOVE","dynamodb":{"SequenceNumber":"200"}}],"NextShardIterator":"it"}'

  it("takes criteria, compiles them once per JSON text, and returns what core.decode_records returns", function()
    local compiles, compile = 0, core.compile_filter
    collectgarbage("stop") -- the cache holds them weakly: no collection in between
    core.compile_filter = function(...) compiles = compiles + 1 return compile(...) end
    local results = {}
    for i = 1, 3 do
      for _, criteria in ipairs({ '{"eventName":["REMOVE"]}', { eventName = { "REMOVE" } },
        { Filters = { { Pattern = '{"eventName":["REMOVE"]}' } } } }) do
        results[#results + 1] = { ds.decode_records(PAGE, { filter = criteria }) }
      end
      assert.equals(3, compiles)
    end
    core.compile_filter = compile
    collectgarbage("restart")
    for _, r in ipairs(results) do
      assert.equals(1, #r[1])
      assert.equals("200", r[1][1].dynamodb.SequenceNumber)
      assert.same({ "it", 1, "200" }, { r[2], r[3], r[4] })
    end
    -- a compiled filter as it is; numbers and the rest of opts passed on
    local f = core.compile_filter('{"eventName":["INSERT"]}')
    local records, _, filtered = ds.decode_records(PAGE, { filter = f, numbers = "string" })
    assert.same({ "100", 1 }, { records[1].dynamodb.SequenceNumber, filtered })
  end)

  it("raises on bad criteria at its caller, with the offending part named", function()
    local ok, err = pcall(ds.decode_records, PAGE, { filter = '{"a":[{"prefix":1}]}' })
    assert.is_false(ok)
    assert.matches("opts.filter: pattern 1: a%[1%]%.prefix: the value must be a string", err)
    ok, err = pcall(ds.decode_records, PAGE, { filter = 42 })
    assert.is_false(ok)
    assert.matches("not a number", err)
  end)
end)
