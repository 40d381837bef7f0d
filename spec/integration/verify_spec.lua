-- dynamodb-stream verify (as a subprocess) and ds.verify against DynamoDB Local:
-- equal tables written in other forms (sets in another order, 1.50 for 1.5) are
-- equal; a planted difference of each kind is found exactly, with 1 or 3 segments;
-- a missing table, another key schema and bad flags fail clearly.
local ds = require("dynamodb_stream")
local helper = require("helper")

local NAMESPACE = "verifyspec"
local N = 300

-- Item i in wire shape, every attribute type; other_forms writes the same values
-- otherwise: sets reversed, numbers with trailing zeros or an exponent.
local function item(i, other_forms)
  local function set(list)
    if not other_forms then return list end
    local reversed = {}
    for k = #list, 1, -1 do reversed[#reversed + 1] = list[k] end
    return reversed
  end
  local function number(text, exponent_form)
    if not other_forms then return text end
    local int, frac = text:match("^(%d+)%.(%d+)$")
    if exponent_form and int then return int .. frac .. "E-" .. #frac end -- 1.5 as 15E-1
    return int and text .. "00" or text .. ".0"
  end
  return {
    pk = { S = "item" .. i }, sk = { N = number(tostring(i)) },
    s = { S = "text " .. i }, n = { N = number(i .. ".5", true) },
    big = { N = "1234567890123456789012345678901234567" .. i % 10 },
    b = { B = "AAEC/w==" }, yes = { BOOL = i % 2 == 0 }, none = { NULL = true },
    ss = { SS = set({ "a", "b", "c" .. i }) }, ns = { NS = set({ "-1", "2.5", number(tostring(1000 + i)) }) },
    bs = { BS = set({ "AQ==", "Ag==", "Aw==" }) },
    list = { L = { { S = "x" }, { N = number("1") }, { M = { deep = { SS = set({ "p", "q" }) } } } } },
    map = { M = { name = { S = "n" .. i }, inner = { M = {
      count = { N = number(tostring(i)) }, tags = { SS = set({ "u", "v", "w" }) } } } } },
  }
end

describe("verify against DynamoDB Local", function()
  local ddb, dir, opts
  local src, same, planted, hash_only, sk_string

  local function create(name, key)
    local definitions, schema = {}, {}
    for i, k in ipairs(key) do
      definitions[i] = { AttributeName = k[1], AttributeType = k[2] }
      schema[i] = { AttributeName = k[1], KeyType = i == 1 and "HASH" or "RANGE" }
    end
    assert(ddb:create_table({ TableName = name, AttributeDefinitions = definitions, KeySchema = schema,
      BillingMode = "PAY_PER_REQUEST" }))
    return name
  end

  local function fill(name, other_forms)
    local requests = {}
    for i = 1, N do requests[i] = { PutRequest = { Item = item(i, other_forms) } } end
    assert(ddb:batch_write_all(name, requests))
  end

  setup(function()
    opts = helper.local_opts(NAMESPACE)
    ddb = ds.dynamodb(opts)
    dir = helper.tmpdir()
    local stamp = os.time() .. math.random(1000, 9999)
    local key = { { "pk", "S" }, { "sk", "N" } }
    src = create("verify_src" .. stamp, key)
    same = create("verify_same" .. stamp, key)
    planted = create("verify_planted" .. stamp, key)
    hash_only = create("verify_hash" .. stamp, { { "pk", "S" } })
    sk_string = create("verify_sks" .. stamp, { { "pk", "S" }, { "sk", "S" } })
    fill(src, false)
    fill(same, true)
    fill(planted, true)
    -- one difference of each kind, on several attribute types
    local function update(i, expression, values, names)
      assert(ddb:update_item({ TableName = planted, Key = { pk = { S = "item" .. i }, sk = { N = tostring(i) } },
        UpdateExpression = expression, ExpressionAttributeValues = values, ExpressionAttributeNames = names }))
    end
    assert(ddb:delete_item({ TableName = planted, Key = { pk = { S = "item7" }, sk = { N = "7" } } }))
    assert(ddb:put_item({ TableName = planted, Item = { pk = { S = "zextra" }, sk = { N = "0.5" }, b = { B = "AQ==" } } }))
    update(20, "SET #m.#i.#c = :v", { [":v"] = { N = "21" } }, { ["#m"] = "map", ["#i"] = "inner", ["#c"] = "count" })
    update(30, "ADD ss :v", { [":v"] = { SS = { "another" } } })
    update(40, "SET n = :v", { [":v"] = { S = "40.5" } })
    update(50, "SET b = :v", { [":v"] = { B = "AAEC/g==" } })
    update(60, "SET #l[0] = :v", { [":v"] = { S = "y" } }, { ["#l"] = "list" })
    update(70, "REMOVE #n", nil, { ["#n"] = "none" })
  end)
  teardown(function() helper.rmdir(dir) end)

  local PLANTED = {
    "different\t{\"pk\":\"item20\",\"sk\":20}",
    "different\t{\"pk\":\"item30\",\"sk\":30}",
    "different\t{\"pk\":\"item40\",\"sk\":40}",
    "different\t{\"pk\":\"item50\",\"sk\":50}",
    "different\t{\"pk\":\"item60\",\"sk\":60}",
    "different\t{\"pk\":\"item70\",\"sk\":70}",
    "extra\t{\"pk\":\"zextra\",\"sk\":0.5}",
    "missing\t{\"pk\":\"item7\",\"sk\":7}",
  }

  local function sorted_lines(text)
    local t = {}
    for line in text:gmatch("[^\n]+") do t[#t + 1] = line end
    table.sort(t)
    return t
  end

  it("equal tables (sets in other orders, numbers in other forms): exit 0, no line", function()
    for _, segments in ipairs({ "1", "3" }) do
      local code, out, err = helper.run_cli(opts, dir, { "verify", src, same, "--segments", segments })
      assert.equals(0, code, err)
      assert.equals("", out)
      assert.equals(("dynamodb-stream: verify: %d items in %s, %d in %s: 0 missing, 0 extra, 0 different\n")
        :format(N, src, N, same), err)
    end
  end)

  it("a planted difference of each kind is found exactly, with 1 or 3 segments: exit 1", function()
    for _, segments in ipairs({ "1", "3" }) do
      local code, out, err = helper.run_cli(opts, dir, { "verify", src, planted, "--segments", segments })
      assert.equals(1, code, err)
      assert.same(PLANTED, sorted_lines(out))
      assert.equals(("dynamodb-stream: verify: %d items in %s, %d in %s: 1 missing, 1 extra, 6 different\n")
        :format(N, src, N, planted), err)
    end
    -- the other way round: what was missing is extra
    local code, out = helper.run_cli(opts, dir, { "verify", planted, src })
    assert.equals(1, code)
    local lines = sorted_lines(out)
    assert.equals("extra\t{\"pk\":\"item7\",\"sk\":7}", lines[7])
    assert.equals("missing\t{\"pk\":\"zextra\",\"sk\":0.5}", lines[8])
  end)

  it("ds.verify: the same answer, the items as Lua values", function()
    for _, segments in ipairs({ 1, 3 }) do
      local found = {}
      local summary = assert(ds.verify({ source = src, target = planted, segments = segments, client = opts,
        on_difference = function(kind, key, source_item, target_item)
          found[key.pk] = { kind = kind, key = key, source = source_item, target = target_item }
        end }))
      assert.same({ source_items = N, target_items = N, missing = 1, extra = 1, different = 6 }, summary)
      assert.same({ kind = "missing", pk = "item7", sk = 7, target = false },
        { kind = found.item7.kind, pk = found.item7.key.pk, sk = found.item7.key.sk, target = found.item7.target ~= nil })
      assert.equals("text 7", found.item7.source.s)
      assert.equals("extra", found.zextra.kind)
      assert.is_nil(found.zextra.source)
      assert.equals("\1", found.zextra.target.b)
      assert.equals(20, found.item20.source.map.inner.count)
      assert.equals(21, found.item20.target.map.inner.count)
      assert.equals("40.5", found.item40.target.n)
      local count = 0
      for _ in pairs(found) do count = count + 1 end
      assert.equals(8, count)
    end
    local summary = assert(ds.verify({ source = src, target = same, dynamodb = ddb, target_dynamodb = ds.dynamodb(opts) }))
    assert.same({ source_items = N, target_items = N, missing = 0, extra = 0, different = 0 }, summary)
  end)

  it("a missing table, or a target with another key schema: exit 1, a clear message, nothing on stdout", function()
    local cases = {
      { { "verify", "no_such_table", src }, "table 'no_such_table' not found" },
      { { "verify", src, "no_such_table" }, "table 'no_such_table' not found" },
      { { "verify", src, hash_only }, ("table '%s' has the key pk (S), sk (N), table '%s' the key pk (S)")
        :format(src, hash_only) },
      { { "verify", src, sk_string }, ("table '%s' has the key pk (S), sk (N), table '%s' the key pk (S), sk (S)")
        :format(src, sk_string) },
    }
    for _, case in ipairs(cases) do
      local code, out, err = helper.run_cli(opts, dir, case[1])
      assert.equals(1, code, err)
      assert.equals("", out)
      assert.equals("dynamodb-stream: verify: " .. case[2] .. "\n", err)
    end
    local summary, err = ds.verify({ source = src, target = hash_only, client = opts })
    assert.is_nil(summary)
    assert.equals("KeySchemaMismatch", err.code)
  end)

  it("bad usage: exit 2, one line, nothing read", function()
    local cases = {
      { { "verify", src, same, "--segments", "0" }, "--segments '0': must be a whole number above 0" },
      { { "verify", src, same, "--segment", "2" }, "unknown option '--segment' for verify" },
      { { "verify", src }, "verify: DST is missing" },
    }
    for _, case in ipairs(cases) do
      local code, out, err = helper.run_cli(opts, dir, case[1])
      assert.equals(2, code, err)
      assert.equals("", out)
      assert.equals("dynamodb-stream: " .. case[2] .. " (see dynamodb-stream verify --help)\n", err)
    end
  end)
end)
