-- ds.verify's value comparison (dynamodb_stream.verify.equal): a table of
-- AttributeValue pairs in wire shape, equal or not, over every type; and the
-- options verify raises on.
local ds = require("dynamodb_stream")
local verify = require("dynamodb_stream.verify")

local function M(t) return { M = t } end
local function L(...) return { L = { ... } } end

local EQUAL = {
  { "S", { S = "a" }, { S = "a" } },
  { "empty S", { S = "" }, { S = "" } },
  { "N the same text", { N = "42" }, { N = "42" } },
  { "N 1 and 1.0", { N = "1" }, { N = "1.0" } },
  { "N 1 and 10E-1", { N = "1" }, { N = "10E-1" } },
  { "N 1.0 and 0.1e1", { N = "1.0" }, { N = "0.1e1" } },
  { "N 0, -0 and 0.000", { N = "0" }, { N = "-0.000" } },
  { "N 100 and 1E2", { N = "100" }, { N = "1E+2" } },
  { "N -5.50 and -55e-1", { N = "-5.50" }, { N = "-55e-1" } },
  { "N 38 digits", { N = "12345678901234567890123456789012345678" }, { N = "1.2345678901234567890123456789012345678E37" } },
  { "B by bytes", { B = "AAEC/w==" }, { B = "AAEC/w==" } },
  { "BOOL true", { BOOL = true }, { BOOL = true } },
  { "BOOL false", { BOOL = false }, { BOOL = false } },
  { "NULL", { NULL = true }, { NULL = true } },
  { "SS in another order", { SS = { "a", "b", "c" } }, { SS = { "c", "a", "b" } } },
  { "NS in another order and form", { NS = { "1", "2.5", "10" } }, { NS = { "1E1", "2.50", "1.0" } } },
  { "BS in another order", { BS = { "AQ==", "Ag==" } }, { BS = { "Ag==", "AQ==" } } },
  { "empty L", { L = setmetatable({}, ds.list_mt) }, { L = {} } },
  { "empty M", M({}), M({}) },
  { "M in another key order", M({ a = { S = "x" }, b = { N = "1" } }), M({ b = { N = "1.0" }, a = { S = "x" } }) },
  { "nested M and L", M({ a = L({ N = "1" }, M({ s = { SS = { "x", "y" } } })) }),
    M({ a = L({ N = "1.00" }, M({ s = { SS = { "y", "x" } } })) }) },
}

local DIFFERENT = {
  { "S", { S = "a" }, { S = "b" } },
  { "S case", { S = "a" }, { S = "A" } },
  { "S with a trailing space", { S = "a" }, { S = "a " } },
  { "N", { N = "1" }, { N = "2" } },
  { "N 1 and 1.0000000000000000000000000000000000001", { N = "1" }, { N = "1.0000000000000000000000000000000000001" } },
  { "N 10 and 1", { N = "10" }, { N = "1" } },
  { "N sign", { N = "1" }, { N = "-1" } },
  { "B", { B = "AQ==" }, { B = "Ag==" } },
  { "B longer", { B = "AQ==" }, { B = "AQA=" } },
  { "BOOL", { BOOL = true }, { BOOL = false } },
  { "N and S of one text", { N = "1" }, { S = "1" } },
  { "S and B of one text", { S = "AQ==" }, { B = "AQ==" } },
  { "BOOL and NULL", { BOOL = true }, { NULL = true } },
  { "SS and L", { SS = { "a" } }, L({ S = "a" }) },
  { "SS and NS", { SS = { "1" } }, { NS = { "1" } } },
  { "L and M", { L = setmetatable({}, ds.list_mt) }, M({}) },
  { "SS with a member more", { SS = { "a", "b" } }, { SS = { "a", "b", "c" } } },
  { "SS with a member less", { SS = { "a", "b", "c" } }, { SS = { "a", "b" } } },
  { "SS with another member", { SS = { "a", "b" } }, { SS = { "a", "c" } } },
  { "NS with another member", { NS = { "1", "2" } }, { NS = { "1", "3" } } },
  { "BS with another member", { BS = { "AQ==", "Ag==" } }, { BS = { "AQ==", "Aw==" } } },
  { "L in another order", L({ S = "a" }, { S = "b" }), L({ S = "b" }, { S = "a" }) },
  { "L longer", L({ S = "a" }), L({ S = "a" }, { S = "a" }) },
  { "M with an attribute more", M({ a = { S = "x" } }), M({ a = { S = "x" }, b = { S = "y" } }) },
  { "M with an attribute less", M({ a = { S = "x" }, b = { S = "y" } }), M({ a = { S = "x" } }) },
  { "M with another name", M({ a = { S = "x" } }), M({ b = { S = "x" } }) },
  { "deep in nested M and L", M({ a = L({ N = "1" }, M({ s = { SS = { "x", "y" } } })) }),
    M({ a = L({ N = "1" }, M({ s = { SS = { "x", "z" } } })) }) },
  { "a type deep inside", M({ a = L(M({ n = { N = "5" } })) }), M({ a = L(M({ n = { S = "5" } })) }) },
}

describe("verify.equal: values, not their text", function()
  for _, case in ipairs(EQUAL) do
    it("equal: " .. case[1], function()
      assert.is_true(verify.equal(case[2], case[3]))
      assert.is_true(verify.equal(case[3], case[2]))
    end)
  end
  for _, case in ipairs(DIFFERENT) do
    it("different: " .. case[1], function()
      assert.is_false(verify.equal(case[2], case[3]))
      assert.is_false(verify.equal(case[3], case[2]))
    end)
  end

  it("equal_items compares attribute maps: names in any order, every attribute", function()
    local item = { pk = { S = "k" }, n = { N = "1" }, tags = { SS = { "a", "b" } } }
    assert.is_true(verify.equal_items(item, { tags = { SS = { "b", "a" } }, n = { N = "1.0" }, pk = { S = "k" } }))
    assert.is_false(verify.equal_items(item, { pk = { S = "k" }, n = { N = "1" } }))
    assert.is_false(verify.equal_items({ pk = { S = "k" } }, item))
  end)

  it("raises on what is no AttributeValue, naming the type it does not know", function()
    for _, bad in ipairs({ "x", {}, { S = "a", N = "1" } }) do
      assert.has_error(function() verify.equal(bad, { S = "a" }) end)
      assert.has_error(function() verify.equal({ S = "a" }, bad) end)
    end
    assert.has_error(function() verify.equal({ X = "a" }, { X = "a" }) end, "verify: unknown AttributeValue type X")
  end)
end)

describe("ds.verify: bad options raise", function()
  local client = { call = function() error("not called") end, call_many = function() error("not called") end }
  local cases = {
    { nil, "verify: opts must be a table" },
    { { target = "b", dynamodb = client }, "verify: opts.source must be a table name (a non-empty string)" },
    { { source = "", target = "b", dynamodb = client }, "verify: opts.source must be a table name (a non-empty string)" },
    { { source = "a", dynamodb = client }, "verify: opts.target must be a table name (a non-empty string)" },
    { { source = "a", target = 1, dynamodb = client }, "verify: opts.target must be a table name (a non-empty string)" },
    { { source = "a", target = "b", dynamodb = client, segments = 0 }, "verify: opts.segments must be an integer from 1 to 1000000" },
    { { source = "a", target = "b", dynamodb = client, segments = 1000001 }, "verify: opts.segments must be an integer from 1 to 1000000" },
    { { source = "a", target = "b", dynamodb = client, segments = 1.5 }, "verify: opts.segments must be an integer from 1 to 1000000" },
    { { source = "a", target = "b", dynamodb = client, segments = "2" }, "verify: opts.segments must be an integer from 1 to 1000000" },
    { { source = "a", target = "b", dynamodb = {} }, "verify: opts.dynamodb must be a DynamoDB client (with call and call_many)" },
    { { source = "a", target = "b", dynamodb = client, target_dynamodb = { call = print } },
      "verify: opts.target_dynamodb must be a DynamoDB client (with call and call_many)" },
    { { source = "a", target = "b", dynamodb = client, on_difference = true }, "verify: opts.on_difference must be a function" },
    { { source = "a", target = "b", client = "x" }, "verify: opts.client must be a table of client options" },
    { { source = "a", target = "b", dynamodb = client, sgements = 2 }, "verify: unknown option sgements" },
  }
  for _, case in ipairs(cases) do
    it(case[2], function()
      local ok, err = pcall(ds.verify, case[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[2], 1, true), tostring(err))
    end)
  end
end)

-- An in-memory DynamoDB answering what verify asks (DescribeTable, Scan, BatchGetItem)
-- through call and call_many only, and recording every request. tables: { name =
-- { key = { { "pk", "S" }, ... }, items = { wire items }, page = items a Scan page (7) } }. unprocessed(keys) -> how
-- many of a BatchGetItem's keys (from the end) to send back unprocessed.
local function fake_dynamodb(tables, unprocessed)
  local fake = { requests = {}, slept = {}, most_keys = 0 }
  fake._retry = {
    sleep = function(seconds) fake.slept[#fake.slept + 1] = seconds end,
    backoff = function(_, attempt) return attempt / 1000 end,
  }
  local function key_of(t, item)
    local key = {}
    for _, k in ipairs(t.key) do key[k[1]] = item[k[1]] end
    return key
  end
  local OPS = {}
  function OPS.DescribeTable(p)
    local t = tables[p.TableName]
    if not t then return nil, { code = "ResourceNotFoundException", message = "Requested resource not found" } end
    local schema, defs = {}, {}
    for i, k in ipairs(t.key) do
      schema[i] = { AttributeName = k[1], KeyType = i == 1 and "HASH" or "RANGE" }
      defs[i] = { AttributeName = k[1], AttributeType = k[2] }
    end
    return { Table = { KeySchema = schema, AttributeDefinitions = defs } }
  end
  function OPS.Scan(p)
    local t = tables[p.TableName]
    assert.is_true(p.ConsistentRead)
    local items, i = {}, p.ExclusiveStartKey and tonumber(p.ExclusiveStartKey.at.N) or 0
    while #items < (t.page or 7) and i < #t.items do
      i = i + 1
      if p.TotalSegments == nil or i % p.TotalSegments == p.Segment then
        local item = t.items[i]
        if p.ProjectionExpression then
          assert.equals(#t.key == 1 and "#k1" or "#k1, #k2", p.ProjectionExpression)
          for n, k in ipairs(t.key) do assert.equals(k[1], p.ExpressionAttributeNames["#k" .. n]) end
          item = key_of(t, item)
        end
        items[#items + 1] = item
      end
    end
    return { Items = items, Count = #items, LastEvaluatedKey = i < #t.items and { at = { N = tostring(i) } } or nil }
  end
  function OPS.BatchGetItem(p)
    local name, request = next(p.RequestItems)
    local t = tables[name]
    assert.is_true(request.ConsistentRead)
    assert.is_true(#request.Keys >= 1 and #request.Keys <= 100, "keys in one call: " .. #request.Keys)
    fake.most_keys = math.max(fake.most_keys, #request.Keys)
    local left = unprocessed and unprocessed(request.Keys) or 0
    local found, back = {}, {}
    for n, key in ipairs(request.Keys) do
      if n > #request.Keys - left then
        back[#back + 1] = key
      else
        for _, item in ipairs(t.items) do
          if verify.equal_items(key, key_of(t, item)) then found[#found + 1] = item end
        end
      end
    end
    return { Responses = { [name] = found }, UnprocessedKeys = #back > 0 and { [name] = { Keys = back } } or {} }
  end
  function fake.call(_, operation, params)
    fake.requests[#fake.requests + 1] = { operation = operation, params = params }
    if fake.fail and fake.fail[operation] then return nil, fake.fail[operation] end
    return OPS[operation](params)
  end
  function fake.call_many(self, operation, list)
    local answers, errs = {}, {}
    for i, params in ipairs(list) do answers[i], errs[i] = self:call(operation, params) end
    return answers, errs
  end
  function fake.count(operation)
    local n = 0
    for _, r in ipairs(fake.requests) do if r.operation == operation then n = n + 1 end end
    return n
  end
  return fake
end

-- Two tables of n items keyed by pk (S) and sk (N): the target holds the same values
-- in other forms (numbers as 1.0, sets in another order), then one key missing, one
-- extra and one different deep in a nested map (n >= 21).
local function two_tables(n)
  local source, target = {}, {}
  for i = 1, n do
    source[i] = { pk = { S = "p" .. i }, sk = { N = tostring(i) }, tags = { SS = { "a", "b", "c" } },
      m = { M = { x = { L = { { N = "1" }, { NS = { "1", "2" } } } } } } }
    target[i] = { sk = { N = i .. ".0" }, pk = { S = "p" .. i }, tags = { SS = { "c", "b", "a" } },
      m = { M = { x = { L = { { N = "1.0" }, { NS = { "2", "1" } } } } } } }
  end
  table.remove(target, 10)                                          -- p10 missing
  target[#target + 1] = { pk = { S = "extra" }, sk = { N = "0" }, v = { B = "AQ==" } } -- extra
  target[20].m.M.x.L[2].NS[1] = "3"                                  -- p21 different
  local key = { { "pk", "S" }, { "sk", "N" } }
  return { src = { key = key, items = source }, dst = { key = key, items = target } }
end

describe("ds.verify over call and call_many (an in-memory DynamoDB)", function()
  it("finds exactly the missing, extra and different keys, one page (7 items here) at a time", function()
    for _, segments in ipairs({ 1, 3 }) do
      local fake = fake_dynamodb(two_tables(250))
      local seen = {}
      local summary = assert(ds.verify({ source = "src", target = "dst", dynamodb = fake, segments = segments,
        on_difference = function(kind, key, source_item, target_item)
          seen[#seen + 1] = { kind, key, source_item, target_item }
        end }))
      assert.same({ source_items = 250, target_items = 250, missing = 1, extra = 1, different = 1 }, summary)
      table.sort(seen, function(a, b) return a[1] < b[1] end)
      assert.same({ "different", { pk = "p21", sk = 21 } }, { seen[1][1], seen[1][2] })
      -- both items, as Lua values
      local function sorted(set) local c = { require("helper").unpack(set) } table.sort(c) return c end
      assert.same({ 1, 2 }, sorted(seen[1][3].m.x[2]))
      assert.same({ 1, 3 }, sorted(seen[1][4].m.x[2]))
      assert.same({ "extra", { pk = "extra", sk = 0 } }, { seen[2][1], seen[2][2] })
      assert.is_nil(seen[2][3])
      assert.equals("\1", seen[2][4].v) -- the whole target item, not only its key
      assert.same({ "missing", { pk = "p10", sk = 10 } }, { seen[3][1], seen[3][2] })
      assert.equals("p10", seen[3][3].pk)
      assert.is_nil(seen[3][4])
      assert.equals(3, #seen)
      assert.equals(7, fake.most_keys) -- the keys of one page, never the whole table
    end
  end)

  it("a page of 250 items: BatchGetItem calls of 100, 100 and 50 keys", function()
    local t = two_tables(250)
    t.src.page, t.dst.page = 250, 250
    local fake = fake_dynamodb(t)
    assert(ds.verify({ source = "src", target = "dst", dynamodb = fake }))
    local sizes = {}
    for _, r in ipairs(fake.requests) do
      if r.operation == "BatchGetItem" then sizes[#sizes + 1] = #r.params.RequestItems.dst.Keys end
      if #sizes == 3 then break end
    end
    assert.same({ 100, 100, 50 }, sizes)
  end)

  it("equal tables: nothing reported", function()
    local t = two_tables(30)
    t.dst.items = t.src.items
    local called = false
    local summary = assert(ds.verify({ source = "src", target = "dst", dynamodb = fake_dynamodb(t),
      on_difference = function() called = true end }))
    assert.same({ source_items = 30, target_items = 30, missing = 0, extra = 0, different = 0 }, summary)
    assert.is_false(called)
  end)

  it("UnprocessedKeys are asked again after the client's backoff, until read", function()
    local fake = fake_dynamodb(two_tables(250), function(keys) return math.floor(#keys / 2) end)
    local summary = assert(ds.verify({ source = "src", target = "dst", dynamodb = fake }))
    assert.same({ source_items = 250, target_items = 250, missing = 1, extra = 1, different = 1 }, summary)
    assert.is_true(#fake.slept > 0)
  end)

  it("keys unprocessed for ever: nil, UnprocessedKeys after 10 attempts, no hang", function()
    local fake = fake_dynamodb(two_tables(25), function(keys) return #keys end)
    local summary, err = ds.verify({ source = "src", target = "dst", dynamodb = fake })
    assert.is_nil(summary)
    assert.equals("UnprocessedKeys", err.code)
    assert.matches("'dst'", err.message)
    assert.equals(10, fake.count("BatchGetItem"))
    assert.equals(9, #fake.slept)
  end)

  it("a failed Scan or BatchGetItem: nil and its error", function()
    for _, operation in ipairs({ "Scan", "BatchGetItem" }) do
      local fake = fake_dynamodb(two_tables(25))
      fake.fail = { [operation] = { code = "InternalServerError", message = "down" } }
      local summary, err = ds.verify({ source = "src", target = "dst", dynamodb = fake })
      assert.is_nil(summary)
      assert.same(fake.fail[operation], err)
    end
  end)

  it("a missing table names it; key schemas that differ in a name or a type: KeySchemaMismatch", function()
    local t = two_tables(25)
    local _, err = ds.verify({ source = "src", target = "nope", dynamodb = fake_dynamodb(t) })
    assert.equals("ResourceNotFoundException", err.code)
    assert.equals("table 'nope' not found", err.message)
    for _, key in ipairs({ { { "pk", "S" }, { "sk", "S" } }, { { "pk", "S" } }, { { "pk", "S" }, { "other", "N" } },
        { { "sk", "N" }, { "pk", "S" } } }) do
      t.dst.key = key
      _, err = ds.verify({ source = "src", target = "dst", dynamodb = fake_dynamodb(t) })
      assert.equals("KeySchemaMismatch", err.code)
      assert.matches("table 'src' has the key pk %(S%), sk %(N%), table 'dst' the key ", err.message)
    end
  end)

  it("a target client of its own; a client without _retry backs off with its own policy", function()
    local t = two_tables(25)
    local source = fake_dynamodb({ src = t.src })
    local target = fake_dynamodb({ dst = t.dst }, function(keys) return #keys > 1 and 1 or 0 end)
    target._retry = nil
    local summary = assert(ds.verify({ source = "src", target = "dst", dynamodb = source, target_dynamodb = target }))
    assert.same({ source_items = 25, target_items = 25, missing = 1, extra = 1, different = 1 }, summary)
    assert.is_true(source.count("BatchGetItem") > 0)
    assert.is_true(target.count("BatchGetItem") > 1)
  end)
end)
