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
