-- ddb:scan_pages, ddb:query_pages and ddb:batch_write_all against DynamoDB Local;
-- failures and UnprocessedItems injected by a client wrapper.
local ds = require("dynamodb_stream")
local errors = require("dynamodb_stream.errors")
local helper = require("helper")

-- A table keyed by pk (S), and by sk (N) when with_sort; empty, even when an
-- earlier run in the same DynamoDB Local left one.
local function create_table(ddb, name, with_sort)
  ddb:delete_table({ TableName = name })
  local attributes = { { AttributeName = "pk", AttributeType = "S" } }
  local schema = { { AttributeName = "pk", KeyType = "HASH" } }
  if with_sort then
    attributes[2] = { AttributeName = "sk", AttributeType = "N" }
    schema[2] = { AttributeName = "sk", KeyType = "RANGE" }
  end
  assert(ddb:create_table({ TableName = name, AttributeDefinitions = attributes, KeySchema = schema,
    BillingMode = "PAY_PER_REQUEST" }))
end

local function put(item) return { PutRequest = { Item = ds.marshall(item) } } end
local function delete(key) return { DeleteRequest = { Key = ds.marshall(key) } } end

-- A client that is ddb except for the methods in hooks, each called as
-- hook(ddb, ...) with the method's arguments.
local function wrapped(ddb, hooks)
  local client = setmetatable({}, { __index = ddb })
  for name, hook in pairs(hooks) do
    client[name] = function(_, ...) return hook(ddb, ...) end
  end
  return client
end

-- { pk = n } of every item of the table.
local function contents(ddb, name)
  local seen = {}
  for _, item in ipairs(assert(ddb:scan_all({ TableName = name })).Items) do
    local value = ds.unmarshall(item)
    seen[value.pk] = value.n
  end
  return seen
end

local function injected(code, operation)
  return errors.new({ code = code, message = "injected", operation = operation or "Scan" })
end

describe("ddb:scan_pages and ddb:query_pages", function()
  local ddb
  local N = 2000

  setup(function()
    ddb = ds.dynamodb(helper.local_opts("dynamodbpages"))
    create_table(ddb, "pages_scan")
    local requests = {}
    for i = 1, N do requests[i] = put({ pk = ("item%05d"):format(i), n = i }) end
    local summary = assert(ddb:batch_write_all("pages_scan", requests))
    assert.equals(N, summary.written)
  end)

  -- Every page of an iterator, and what its last step gave.
  local function drain(iterator)
    local got, steps, last_err = {}, 0, nil
    for page, err in iterator do
      steps = steps + 1
      if not page then
        assert.is_false(page)
        last_err = err
      else
        got[#got + 1] = page
      end
    end
    return got, steps, last_err
  end

  -- { pk = count of times seen } over pages, checking each item's value.
  local function tally(pages)
    local seen, total = {}, 0
    for _, page in ipairs(pages) do
      assert.equals(#page.Items, page.Count)
      for _, item in ipairs(page.Items) do
        local value = ds.unmarshall(item)
        assert.equals(("item%05d"):format(value.n), value.pk)
        seen[value.pk] = (seen[value.pk] or 0) + 1
        total = total + 1
      end
    end
    return seen, total
  end

  local function assert_each_once(seen, total)
    assert.equals(N, total)
    for i = 1, N do assert.equals(1, seen[("item%05d"):format(i)], "item " .. i) end
  end

  it("hands out the table page by page, each of at most Limit items", function()
    local got, steps, err = drain(ddb:scan_pages({ TableName = "pages_scan", Limit = 50 }))
    assert.is_nil(err)
    assert.equals(#got, steps)
    assert.is_true(#got >= N / 50, "pages: " .. #got)
    for _, page in ipairs(got) do assert.is_true(page.Count <= 50) end
    assert.is_nil(got[#got].LastEvaluatedKey)
    assert_each_once(tally(got))
  end)

  it("with segments = 4 asks the 4 segments at once and gives every item once", function()
    local rounds = {}
    local spy_client = wrapped(ddb, {
      call_many = function(real, operation, list, decode, max_in_flight)
        rounds[#rounds + 1] = { operation = operation, list = list, max_in_flight = max_in_flight }
        return real:call_many(operation, list, decode, max_in_flight)
      end,
    })
    local params = { TableName = "pages_scan", Limit = 100, segments = 4 }
    local got = drain(spy_client:scan_pages(params))
    assert_each_once(tally(got))
    assert.equals(4, params.segments) -- the caller's table is left alone
    local first = rounds[1]
    assert.equals("Scan", first.operation)
    assert.equals(4, #first.list)
    assert.equals(4, first.max_in_flight)
    for i, request in ipairs(first.list) do
      assert.equals(i - 1, request.Segment)
      assert.equals(4, request.TotalSegments)
      assert.is_nil(request.segments)
      assert.is_nil(request.ExclusiveStartKey)
    end
    for _, round in ipairs(rounds) do assert.is_true(#round.list <= 4) end
    assert.is_true(#rounds >= N / 100 / 4, "rounds: " .. #rounds)
    -- Every answer of every round was handed out.
    local answered = 0
    for _, round in ipairs(rounds) do answered = answered + #round.list end
    assert.equals(answered, #got)
  end)

  it("scan_all takes segments too", function()
    local all = assert(ddb:scan_all({ TableName = "pages_scan", segments = 3, Limit = 300 }))
    assert.equals(N, all.Count)
    assert_each_once(tally({ all }))
  end)

  it("stopped early, makes no further call", function()
    local before = ddb:stats().calls
    local pages = 0
    for page in ddb:scan_pages({ TableName = "pages_scan", Limit = 10 }) do
      assert.equals(10, page.Count)
      pages = pages + 1
      if pages == 2 then break end
    end
    assert.equals(2, ddb:stats().calls - before)
  end)

  it("a call that fails mid-way ends the loop with false, err, seen by the body", function()
    local scans = 0
    local failing = wrapped(ddb, {
      call = function(real, operation, params, decode)
        scans = scans + 1
        if scans == 3 then return nil, injected("AccessDeniedException") end
        return real:call(operation, params, decode)
      end,
    })
    local iterator = failing:scan_pages({ TableName = "pages_scan", Limit = 20 })
    local got, steps, err = drain(iterator)
    assert.equals(2, #got)
    assert.equals(3, steps)
    assert.equals("AccessDeniedException", err.code)
    assert.is_nil(iterator())
    assert.equals(3, scans)
  end)

  it("a segment that fails ends a parallel scan after the other pages of its round", function()
    local rounds = 0
    local failing = wrapped(ddb, {
      call_many = function(real, operation, list, decode, max_in_flight)
        rounds = rounds + 1
        local answers, errs = real:call_many(operation, list, decode, max_in_flight)
        if rounds == 2 then
          answers[3], errs[3] = nil, injected("InternalServerError")
        end
        return answers, errs
      end,
    })
    local got, steps, err = drain(failing:scan_pages({ TableName = "pages_scan", Limit = 20, segments = 4 }))
    assert.equals(4 + 3, #got)
    assert.equals(8, steps)
    assert.equals("InternalServerError", err.code)
    assert.equals(2, err.segment)
    assert.equals(2, rounds)
  end)

  it("a missing table ends the first step with false, err", function()
    local got, steps, err = drain(ddb:scan_pages({ TableName = "pages_absent" }))
    assert.same({}, got)
    assert.equals(1, steps)
    assert.equals("ResourceNotFoundException", err.code)
    local _, _, err4 = drain(ddb:scan_pages({ TableName = "pages_absent", segments = 4 }))
    assert.equals("ResourceNotFoundException", err4.code)
  end)

  it("query_pages hands out a key's items page by page, in order", function()
    create_table(ddb, "pages_query", true)
    local requests = {}
    for i = 1, 300 do
      requests[#requests + 1] = put({ pk = "a", sk = i, n = i })
      requests[#requests + 1] = put({ pk = "b", sk = i, n = -i })
    end
    assert(ddb:batch_write_all("pages_query", requests))
    local params = { TableName = "pages_query", Limit = 40, KeyConditionExpression = "pk = :k",
      ExpressionAttributeValues = ds.marshall({ [":k"] = "a" }) }
    local got, _, err = drain(ddb:query_pages(params))
    assert.is_nil(err)
    assert.is_true(#got >= 8)
    local expected = 0
    for _, page in ipairs(got) do
      assert.is_true(page.Count <= 40)
      for _, item in ipairs(page.Items) do
        expected = expected + 1
        assert.same({ pk = "a", sk = expected, n = expected }, ds.unmarshall(item))
      end
    end
    assert.equals(300, expected)
    assert.is_nil(params.ExclusiveStartKey)
    local _, _, bad = drain(ddb:query_pages({ TableName = "pages_query" }))
    assert.equals("ValidationException", bad.code)
  end)
end)

describe("a parallel scan of more segments than a transport takes at once", function()
  it("asks at most 1024 at a time and reads every segment to its end", function()
    local rounds, asked = {}, {}
    -- Each segment has two pages; the fake answers what a Scan would.
    local fake = {
      call_many = function(_, operation, list, _, max_in_flight)
        assert.equals("Scan", operation)
        rounds[#rounds + 1] = { n = #list, max_in_flight = max_in_flight }
        local answers = {}
        for i, params in ipairs(list) do
          assert.equals(1030, params.TotalSegments)
          asked[#asked + 1] = params.Segment .. ":" .. tostring(params.ExclusiveStartKey and params.ExclusiveStartKey.at)
          answers[i] = { Items = { params.Segment }, Count = 1,
            LastEvaluatedKey = params.ExclusiveStartKey == nil and { at = "second" } or nil }
        end
        return answers, {}
      end,
    }
    local per_segment, round_ends, handed = {}, {}, 0
    for page, segment, round_done in require("dynamodb_stream.pages").scan(fake, { TableName = "t", segments = 1030 }) do
      assert.is_truthy(page, segment)
      assert.equals(page.Items[1], segment)
      per_segment[segment] = (per_segment[segment] or 0) + 1
      handed = handed + 1
      if round_done then round_ends[#round_ends + 1] = handed end
      assert.equals(round_done, handed == #asked, "the last page of a round says so, and only it")
    end
    for s = 0, 1029 do assert.equals(2, per_segment[s], "segment " .. s) end
    assert.same({ 1024, 2048, 2060 }, round_ends)
    for _, round in ipairs(rounds) do
      assert.is_true(round.n <= 1024)
      assert.equals(round.n, round.max_in_flight)
    end
    assert.same({ 1024, 1024, 12 }, { rounds[1].n, rounds[2].n, rounds[3].n })
    assert.equals(3, #rounds)
    assert.equals("0:nil", asked[1])
    assert.equals("1029:nil", asked[1030])   -- the 6 left out of round 1 come first in round 2
    assert.equals("0:second", asked[1031])
  end)
end)

describe("a parallel scan resumed from positions", function()
  it("skips the segments done and starts the others after their key", function()
    local asked = {}
    local fake = {
      call_many = function(_, _, list)
        local answers = {}
        for i, params in ipairs(list) do
          asked[#asked + 1] = params.Segment .. ":" .. tostring(params.ExclusiveStartKey and params.ExclusiveStartKey.at)
          answers[i] = { Items = {} }
        end
        return answers, {}
      end,
    }
    local starts = { [0] = false, [1] = { at = "k1" }, [3] = false }
    for page in require("dynamodb_stream.pages").scan(fake, { TableName = "t", segments = 4 }, nil, starts) do
      assert.is_truthy(page)
    end
    assert.same({ "1:k1", "2:nil" }, asked)
  end)
end)

describe("ddb:batch_write_all", function()
  local ddb, sleeps

  setup(function()
    sleeps = {}
    local opts = helper.local_opts("dynamodbbatch")
    opts.sleep = function(seconds) sleeps[#sleeps + 1] = seconds end
    ddb = ds.dynamodb(opts)
  end)

  before_each(function()
    for k in pairs(sleeps) do sleeps[k] = nil end
  end)

  -- A client that answers the first `times` BatchWriteItem rounds with the
  -- requests for which withhold(request, k) is true (k: place in its call)
  -- left out of the call and returned in UnprocessedItems.
  local function refusing(withhold, times)
    local rounds = 0
    return wrapped(ddb, {
      call_many = function(real, operation, list, decode, max_in_flight)
        if operation ~= "BatchWriteItem" then return real:call_many(operation, list, decode, max_in_flight) end
        rounds = rounds + 1
        if times and rounds > times then return real:call_many(operation, list, decode, max_in_flight) end
        local refused, sent = {}, {}
        for i, body in ipairs(list) do
          local name, requests = next(body.RequestItems)
          local kept, back = {}, {}
          for k, request in ipairs(requests) do
            if withhold(request, k) then back[#back + 1] = request else kept[#kept + 1] = request end
          end
          refused[i] = back
          sent[i] = { RequestItems = { [name] = kept }, name = name }
        end
        local answers, errs = {}, {}
        for i, body in ipairs(sent) do
          local requests = body.RequestItems[body.name]
          local answer, err = { UnprocessedItems = {} }, nil
          if #requests > 0 then
            answer, err = real:call("BatchWriteItem", { RequestItems = body.RequestItems })
          end
          if answer and #refused[i] > 0 then answer.UnprocessedItems = { [body.name] = refused[i] } end
          answers[i], errs[i] = answer, err
        end
        return answers, errs
      end,
    })
  end

  it("writes 1,000 puts, then 1,000 puts and deletes, 25 a call", function()
    create_table(ddb, "batch_big")
    local requests = {}
    for i = 1, 1000 do requests[i] = put({ pk = "k" .. i, n = i }) end
    assert.same({ written = 1000, batches = 40, retries = 0, superseded = 0 },
      assert(ddb:batch_write_all("batch_big", requests)))
    requests = {}
    for i = 1, 500 do requests[#requests + 1] = delete({ pk = "k" .. i }) end
    for i = 1001, 1500 do requests[#requests + 1] = put({ pk = "k" .. i, n = i }) end
    assert.same({ written = 1000, batches = 40, retries = 0, superseded = 0 },
      assert(ddb:batch_write_all("batch_big", requests, { key = { "pk" }, max_in_flight = 3 })))
    local seen = contents(ddb, "batch_big")
    local count = 0
    for pk, n in pairs(seen) do
      count = count + 1
      assert.equals("k" .. n, pk)
      assert.is_true(n > 500 and n <= 1500)
    end
    assert.equals(1000, count)
    assert.same({}, sleeps)
  end)

  it("sends UnprocessedItems again, after a jittered backoff, until all are written", function()
    create_table(ddb, "batch_unprocessed")
    local client = refusing(function(_, k) return k > 15 end, 2)
    local requests = {}
    for i = 1, 100 do requests[i] = put({ pk = "u" .. i, n = i }) end
    -- Round 1: 4 calls, 10 back from each; round 2: those 40 in 2 calls, 10 back
    -- (from the first); round 3: those 10, written.
    assert.same({ written = 100, batches = 7, retries = 50, superseded = 0 },
      assert(client:batch_write_all("batch_unprocessed", requests)))
    assert.equals(2, #sleeps)
    assert.is_true(sleeps[1] >= 0 and sleeps[1] <= 0.05 * 2 ^ 1)
    assert.is_true(sleeps[2] >= 0 and sleeps[2] <= 0.05 * 2 ^ 2)
    local seen = contents(ddb, "batch_unprocessed")
    for i = 1, 100 do assert.equals(i, seen["u" .. i]) end
  end)

  it("a request refused every time ends with nil, err listing exactly what is missing", function()
    create_table(ddb, "batch_refused")
    local refused = { u3 = true, u57 = true }
    local client = refusing(function(request) return refused[request.PutRequest.Item.pk.S] end)
    local requests = {}
    for i = 1, 100 do requests[i] = put({ pk = "u" .. i, n = i }) end
    local summary, err = client:batch_write_all("batch_refused", requests, { max_attempts = 3 })
    assert.is_nil(summary)
    assert.equals("UnprocessedItems", err.code)
    assert.is_true(err.retryable)
    assert.matches("2 of 100 requests for table batch_refused not written", err.message, 1, true)
    assert.equals(2, #err.unprocessed)
    assert.equals(requests[3], err.unprocessed[1])
    assert.equals(requests[57], err.unprocessed[2])
    assert.equals(98, err.summary.written)
    assert.equals(2, #sleeps)
    local seen = contents(ddb, "batch_refused")
    for i = 1, 100 do assert.equals(not refused["u" .. i] and i or nil, seen["u" .. i]) end
    -- What err.unprocessed lists can be written as it is.
    assert(ddb:batch_write_all("batch_refused", err.unprocessed))
    assert.equals(57, contents(ddb, "batch_refused").u57)
  end)

  it("a call that fails stops new calls; err.unprocessed is everything not written", function()
    create_table(ddb, "batch_failed")
    local calls = 0
    local client = wrapped(ddb, {
      call_many = function(real, operation, list, decode, max_in_flight)
        calls = calls + 1
        if calls == 2 then return {}, { injected("AccessDeniedException", "BatchWriteItem") } end
        return real:call_many(operation, list, decode, max_in_flight)
      end,
    })
    local requests = {}
    for i = 1, 100 do requests[i] = put({ pk = "f" .. i, n = i }) end
    local summary, err = client:batch_write_all("batch_failed", requests, { key = { "pk" }, max_in_flight = 1 })
    assert.is_nil(summary)
    assert.equals("AccessDeniedException", err.code)
    assert.equals(75, #err.unprocessed)
    for k = 1, 75 do assert.equals(requests[25 + k], err.unprocessed[k]) end
    assert.same({ written = 25, batches = 2, retries = 0, superseded = 0 }, err.summary)
    assert.equals(2, calls)
    local count = 0
    for _ in pairs(contents(ddb, "batch_failed")) do count = count + 1 end
    assert.equals(25, count)
  end)

  it("a missing table: nil, err with every request unprocessed, with or without opts.key", function()
    local requests = { put({ pk = "a" }), delete({ pk = "b" }) }
    for _, opts in ipairs({ {}, { key = { "pk" } } }) do
      local summary, err = ddb:batch_write_all("batch_absent", requests, opts)
      assert.is_nil(summary)
      assert.equals("ResourceNotFoundException", err.code)
      assert.same(requests, err.unprocessed)
      assert.equals(requests[1], err.unprocessed[1])
    end
  end)

  it("keeps the last request for a key, as writing them in order would", function()
    create_table(ddb, "batch_duplicates")
    assert(ddb:batch_write_all("batch_duplicates", { put({ pk = "b", n = 0 }), put({ pk = "c", n = 0 }) }))
    local summary = assert(ddb:batch_write_all("batch_duplicates", {
      put({ pk = "a", n = 1 }), put({ pk = "a", n = 2 }),
      delete({ pk = "b" }), put({ pk = "b", n = 3 }),
      put({ pk = "c", n = 4 }), delete({ pk = "c" }),
      put({ pk = "d", n = 5 }),
    }))
    assert.same({ written = 4, batches = 1, retries = 0, superseded = 3 }, summary)
    assert.same({ a = 2, b = 3, d = 5 }, contents(ddb, "batch_duplicates"))
  end)

  it("takes 1, 1.0 and 10E-1 for one number key, as DynamoDB does", function()
    create_table(ddb, "batch_numbers", true)
    local function item(sk, n) return { PutRequest = { Item = { pk = { S = "k" }, sk = { N = sk }, n = { N = n } } } } end
    local summary = assert(ddb:batch_write_all("batch_numbers",
      { item("1", "1"), item("1.0", "2"), item("10E-1", "3"), item("0.10e1", "4"), item("10", "5"), item("-1", "6") }))
    assert.same({ written = 3, batches = 1, retries = 0, superseded = 3 }, summary)
    local items = assert(ddb:scan_all({ TableName = "batch_numbers" })).Items
    local by_sk = {}
    for _, raw in ipairs(items) do
      local value = ds.unmarshall(raw)
      by_sk[value.sk] = value.n
    end
    assert.same({ [1] = 4, [10] = 5, [-1] = 6 }, by_sk)
  end)

  it("returns an empty summary for no requests, without a call", function()
    local before = ddb:stats().calls
    assert.same({ written = 0, batches = 0, retries = 0, superseded = 0 }, ddb:batch_write_all("batch_none", {}))
    assert.equals(before, ddb:stats().calls)
  end)
end)

describe("bad arguments raise before anything is sent", function()
  local ddb = ds.dynamodb({ endpoint = "http://127.0.0.1:9", region = "us-east-1",
    credentials = { access_key_id = "AKID", secret_access_key = "secret" } })
  local good = { PutRequest = { Item = { pk = { S = "a" } } } }
  local pk = { key = { "pk" } }
  local ok_key = "batch_write_all: opts.key must be a list of one or two attribute names, such as { \"pk\", \"sk\" }"
  local shape = " must be { PutRequest = { Item = item } } or { DeleteRequest = { Key = key } }"
  local cases = {
    { "scan_pages", { nil }, "scan_pages: params must be a table" },
    { "scan_pages", { "t" }, "scan_pages: params must be a table" },
    { "scan_pages", { {} }, "scan_pages: params.TableName must be a non-empty string" },
    { "scan_pages", { { TableName = "" } }, "scan_pages: params.TableName must be a non-empty string" },
    { "scan_pages", { { TableName = 7 } }, "scan_pages: params.TableName must be a non-empty string" },
    { "scan_pages", { { TableName = "t", segments = 0 } }, "scan_pages: params.segments must be an integer from 1 to 1000000" },
    { "scan_pages", { { TableName = "t", segments = 1000001 } }, "scan_pages: params.segments must be an integer from 1 to 1000000" },
    { "scan_pages", { { TableName = "t", segments = 2.5 } }, "scan_pages: params.segments must be an integer from 1 to 1000000" },
    { "scan_pages", { { TableName = "t", segments = "4" } }, "scan_pages: params.segments must be an integer from 1 to 1000000" },
    { "scan_pages", { { TableName = "t", segments = 2, Segment = 0 } }, "scan_pages: give segments, or Segment and TotalSegments, not both" },
    { "scan_pages", { { TableName = "t", segments = 1, TotalSegments = 2 } }, "scan_pages: give segments, or Segment and TotalSegments, not both" },
    { "scan_pages", { { TableName = "t", segments = 2, ExclusiveStartKey = { pk = { S = "a" } } } },
      "scan_pages: ExclusiveStartKey is a place in one segment; it cannot start a scan of several" },
    { "scan_all", { nil }, "scan_all: params must be a table" },
    { "scan_all", { { segments = 2 } }, "scan_all: params.TableName must be a non-empty string" },
    { "query_pages", { nil }, "query_pages: params must be a table" },
    { "query_pages", { { Limit = 1 } }, "query_pages: params.TableName must be a non-empty string" },
    { "query_pages", { { TableName = "t", segments = 2 } }, "query_pages: segments is for scans only" },
    { "batch_write_all", { nil, {} }, "batch_write_all: table_name must be a non-empty string" },
    { "batch_write_all", { "", {} }, "batch_write_all: table_name must be a non-empty string" },
    { "batch_write_all", { "t", nil }, "batch_write_all: requests must be a list of write requests" },
    { "batch_write_all", { "t", good }, "batch_write_all: requests must be a list (keys 1 to n)" },
    { "batch_write_all", { "t", { good, [3] = good } }, "batch_write_all: requests must be a list (keys 1 to n)" },
    { "batch_write_all", { "t", { good, 42 } }, "batch_write_all: requests[2]" .. shape },
    { "batch_write_all", { "t", { {} } }, "batch_write_all: requests[1]" .. shape },
    { "batch_write_all", { "t", { { PutRequest = {} } } }, "batch_write_all: requests[1]" .. shape },
    { "batch_write_all", { "t", { { PutRequest = { Key = {} } } } }, "batch_write_all: requests[1]" .. shape },
    { "batch_write_all", { "t", { { DeleteRequest = { Item = {} } } } }, "batch_write_all: requests[1]" .. shape },
    { "batch_write_all", { "t", { { PutRequest = good.PutRequest, DeleteRequest = { Key = {} } } } },
      "batch_write_all: requests[1]" .. shape },
    { "batch_write_all", { "t", { { Item = {} } } }, "batch_write_all: requests[1]" .. shape },
    { "batch_write_all", { "t", { good }, "opts" }, "batch_write_all: opts must be a table" },
    { "batch_write_all", { "t", { good }, { maxInFlight = 2 } }, "batch_write_all: unknown option maxInFlight" },
    { "batch_write_all", { "t", { good }, { max_in_flight = 0 } }, "batch_write_all: opts.max_in_flight must be an integer from 1 to 1024" },
    { "batch_write_all", { "t", { good }, { max_in_flight = 1025 } }, "batch_write_all: opts.max_in_flight must be an integer from 1 to 1024" },
    { "batch_write_all", { "t", { good }, { max_in_flight = 1.5 } }, "batch_write_all: opts.max_in_flight must be an integer from 1 to 1024" },
    { "batch_write_all", { "t", { good }, { max_attempts = 0 } }, "batch_write_all: opts.max_attempts must be an integer >= 1" },
    { "batch_write_all", { "t", { good }, { max_attempts = "3" } }, "batch_write_all: opts.max_attempts must be an integer >= 1" },
    { "batch_write_all", { "t", { good }, { key = "pk" } }, ok_key },
    { "batch_write_all", { "t", { good }, { key = {} } }, ok_key },
    { "batch_write_all", { "t", { good }, { key = { "pk", "pk" } } }, ok_key },
    { "batch_write_all", { "t", { good }, { key = { "a", "b", "c" } } }, ok_key },
    { "batch_write_all", { "t", { good }, { key = { "" } } }, ok_key },
    { "batch_write_all", { "t", { good }, { key = { 1 } } }, ok_key },
    { "batch_write_all", { "t", { good }, { key = { "pk", x = 1 } } }, ok_key },
    { "batch_write_all", { "t", { { PutRequest = { Item = { other = { S = "a" } } } } }, pk },
      "batch_write_all: requests[1]: key attribute 'pk' must be a marshalled S, N or B value" },
    { "batch_write_all", { "t", { good, { PutRequest = { Item = { pk = "a" } } } }, pk },
      "batch_write_all: requests[2]: key attribute 'pk' must be a marshalled S, N or B value" },
    { "batch_write_all", { "t", { { DeleteRequest = { Key = { pk = { S = 1 } } } } }, pk },
      "batch_write_all: requests[1]: key attribute 'pk' must be a marshalled S, N or B value" },
    { "batch_write_all", { "t", { { DeleteRequest = { Key = { pk = { BOOL = true } } } } }, pk },
      "batch_write_all: requests[1]: key attribute 'pk' must be a marshalled S, N or B value" },
    { "batch_write_all", { "t", { { DeleteRequest = { Key = { pk = { S = "a", N = "1" } } } } }, pk },
      "batch_write_all: requests[1]: key attribute 'pk' must be a marshalled S, N or B value" },
  }
  for _, case in ipairs(cases) do
    local method, args, message = case[1], case[2], case[3]
    it(method .. ": " .. message, function()
      local before = ddb:stats().calls
      assert.has_error(function() ddb[method](ddb, helper.unpack(args, 1, 3)) end, message)
      assert.equals(before, ddb:stats().calls)
    end)
  end
end)
