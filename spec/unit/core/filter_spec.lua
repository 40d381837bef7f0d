-- Lambda event filtering: core.compile_filter and filter:match (csrc/filter.c).
--
-- Expected results come from outside this code: the pattern x record table of
-- the issue's reference (spec/fixtures/filter/lambda_cases.json, rows numbered
-- as there; "aws" notes where our extension or a refusal differs from AWS),
-- and spec/support/filter_reference.py, a Python reference written from AWS's
-- documented semantics, run over the table and over generated random criteria
-- and records: any disagreement fails.
local core = require("dynamodb_stream.core")
local helper = require("helper")

local PYTHON = "/usr/bin/python3"
local REFERENCE = "spec/support/filter_reference.py"
local CASES = "spec/fixtures/filter/lambda_cases.json"

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The lines a command prints.
local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do
    out[#out + 1] = line
  end
  p:close()
  return out
end

local function criteria(patterns)
  local filters = {}
  for i, text in ipairs(patterns) do
    filters[i] = { Pattern = text }
  end
  return { Filters = filters }
end

-- "true", "false" or "invalid" from the C filter, with the compile error.
local function c_result(patterns, record)
  local ok, f = pcall(core.compile_filter, criteria(patterns))
  if not ok then
    return "invalid", f
  end
  if record == nil then
    return "compiled"
  end
  local got, err = f:match(record)
  assert(got ~= nil, err)
  return tostring(got)
end

-- pcall(fn) must fail with a message containing fragment (plain text).
local function raises(fragment, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error containing: " .. fragment)
  err = tostring(err)
  assert(err:find(fragment, 1, true), ("error %q does not contain %q"):format(err, fragment))
end

describe("filter: the reference's table of patterns and records", function()
  local cases = core.json_decode(read_file(CASES))

  it("filter.c gives every expected result", function()
    for _, case in ipairs(cases) do
      local want = case.expect == true and "true" or case.expect == false and "false" or case.expect
      local got, err = c_result(case.patterns, case.record)
      if want == "invalid" then
        assert(got == "invalid", ("row %s: compiled %s"):format(case.row, case.patterns[1]:sub(1, 200)))
      else
        assert(got == want, ("row %s: %s, expected %s (%s) for %s on %s"):format(case.row, got, want,
          tostring(err), case.patterns[1]:sub(1, 200), tostring(case.record)))
      end
    end
  end)

  it("the Python reference gives every expected result", function()
    local got = lines_of(PYTHON .. " " .. REFERENCE .. " table " .. CASES)
    assert.equals(#cases, #got)
    for i, case in ipairs(cases) do
      local want = case.expect == true and "true" or case.expect == false and "false" or case.expect
      assert(got[i] == want, ("row %s: reference says %s, expected %s"):format(case.row, got[i], want))
    end
  end)
end)

describe("filter: against the Python reference on generated criteria and records", function()
  for _, seed in ipairs({ 1, 2, 3, 4, 5 }) do
    it("agrees on every record and every refusal, seed " .. seed, function()
      local matched, refused = 0, 0
      for _, line in ipairs(lines_of(PYTHON .. " " .. REFERENCE .. " generate " .. seed .. " 2000")) do
        local case = core.json_decode(line)
        local ok, f = pcall(core.compile_filter, criteria(case.patterns))
        local where = "patterns " .. core.json_encode(case.patterns)
        if case.results == "invalid" then
          assert(not ok, "filter.c compiles what the reference refuses: " .. where)
          refused = refused + 1
        else
          assert(ok, "filter.c refuses (" .. tostring(f) .. ") what the reference compiles: " .. where)
          for i, record in ipairs(case.records) do
            local got = f:match(record)
            if got ~= case.results[i] then
              error(("filter.c says %s, the reference %s: %s on %s"):format(tostring(got),
                tostring(case.results[i]), where, record))
            end
            matched = matched + 1
          end
        end
      end
      assert.is_true(matched > 12000 and refused > 150, ("%d matched, %d refused"):format(matched, refused))
    end)
  end
end)

describe("filter: a record as the stream's Lua path sees it", function()
  -- Whether the JSON text holds a number (outside strings) of more than 15
  -- significant digits, or one that a double reads as 0: json_decode reads it
  -- as a double, which may not be the same decimal (README, Filters: the limits).
  local function has_long_number(text)
    local i, n = 1, #text
    while i <= n do
      local c = text:sub(i, i)
      if c == '"' then
        i = i + 1
        while text:sub(i, i) ~= '"' do i = i + (text:sub(i, i) == "\\" and 2 or 1) end
        i = i + 1
      elseif c:find("[%-%d]") then
        local token = text:match("^%-?[%d%.eE%+%-]+", i)
        local digits = token:match("^%-?([%d%.]+)"):gsub("%.", ""):gsub("^0+", ""):gsub("0+$", "")
        if #digits > 15 or (#digits > 0 and tonumber(token) == 0) then return true end
        i = i + #token
      else
        i = i + 1
      end
    end
    return false
  end

  -- Off the C decode path the stream matches json_encode(record) of the
  -- record json_decode made (stream/records.lua's _passes): the same verdict.
  it("gets the verdict of its own text after json_decode and json_encode", function()
    local compared, long = 0, 0
    for _, line in ipairs(lines_of(PYTHON .. " " .. REFERENCE .. " generate 7 1500")) do
      local case = core.json_decode(line)
      if case.results ~= "invalid" then
        local f = core.compile_filter(criteria(case.patterns))
        for i, record in ipairs(case.records) do
          local decoded = core.json_decode(record)
          if has_long_number(record) then
            long = long + 1
          elseif decoded ~= nil then
            local again = core.json_encode(decoded)
            if f:match(again) ~= case.results[i] then
              error(("%s on %s (re-encoded %s): not %s"):format(core.json_encode(case.patterns), record, again,
                tostring(case.results[i])))
            end
            compared = compared + 1
          end
        end
      end
    end
    assert.is_true(compared > 5000, compared .. " compared, " .. long .. " skipped")
  end)
end)

describe("core.compile_filter", function()
  local record = '{"eventName":"INSERT","dynamodb":{"NewImage":{"s":{"S":"done"}}}}'

  it("takes FilterCriteria, a JSON pattern or a Lua table pattern", function()
    assert.is_true(core.compile_filter({ Filters = { { Pattern = '{"eventName":["INSERT"]}' } } }):match(record))
    assert.is_true(core.compile_filter('{"eventName":["INSERT"]}'):match(record))
    assert.is_true(core.compile_filter({ dynamodb = { NewImage = { s = { S = { "done" } } } } }):match(record))
    assert.is_false(core.compile_filter({ eventName = { "REMOVE" } }):match(record))
    assert.is_true(core.compile_filter({ Filters = { { Pattern = { eventName = { "REMOVE" } } },
      { Pattern = '{"eventName":["INSERT"]}' } } }):match(record))
  end)

  it("refuses invalid patterns naming the pattern, the place and the reason", function()
    raises("pattern 2: dynamodb.NewImage.s.S[2].prefix: the value must be a string", function()
      core.compile_filter(criteria({ '{"eventName":["INSERT"]}', '{"dynamodb":{"NewImage":{"s":{"S":["a",{"prefix":1}]}}}}' }))
    end)
    raises("pattern 1: top level: invalid JSON at byte", function() core.compile_filter("{") end)
    raises("pattern 1: top level: a pattern must be a JSON object", function() core.compile_filter("[1]") end)
    raises("pattern 1: $or[2]: each alternative must be a non-empty object", function()
      core.compile_filter('{"$or":[{"a":["1"]},[]]}')
    end)
    raises("$or expands to more than 1000 combinations", function()
      local alts = {}
      for i = 1, 11 do alts[i] = ('{"a%d":["x"]}'):format(i) end
      local ors = "[" .. table.concat(alts, ",") .. "]"
      core.compile_filter('{"x":{"$or":' .. ors .. '},"y":{"$or":' .. ors .. '},"z":{"$or":' .. ors .. '}}')
    end)
    raises("nested too deeply", function()
      core.compile_filter(('{"a":'):rep(70) .. '["x"]' .. ("}"):rep(70))
    end)
  end)

  it("allows 5 filters, or up to 10 with max_filters", function()
    local ten = {}
    for i = 1, 10 do ten[i] = '{"eventName":["INSERT"]}' end
    raises("10 filters: between 1 and 5 are allowed", function() core.compile_filter(criteria(ten)) end)
    assert.is_true(core.compile_filter(criteria(ten), { max_filters = 10 }):match(record))
    raises("max_filters must be an integer 1..10", function() core.compile_filter(criteria(ten), { max_filters = 11 }) end)
    raises("between 1 and 5", function() core.compile_filter({ Filters = {} }) end)
  end)

  it("raises on bad arguments", function()
    raises("bad argument #1", function() core.compile_filter(42) end)
    raises("Filters[1] must be a table", function() core.compile_filter({ Filters = { "x" } }) end)
    raises("Filters[1].Pattern must be a JSON string or a table, got nil", function()
      core.compile_filter({ Filters = { {} } })
    end)
    raises("json_encode", function() core.compile_filter({ a = { print } }) end)
  end)
end)

describe("filter:match", function()
  local f = core.compile_filter('{"eventName":["INSERT"]}')

  it("returns nil, InvalidJSON for a record that is not one JSON object", function()
    for _, text in ipairs({ "", "{", "[1]", '{"eventName":"INSERT"} x', '{"a":"\1"}', '{"a":"\\ud800"}',
      ("["):rep(300) .. ("]"):rep(300), '{"a":01}', '{"a":1e400}', '{"a":' .. ("["):rep(998) .. ("]"):rep(998) .. "}",
      -- in members no pattern names, which are read for their syntax only
      '{"a":{"b":[1,tru]}}', '{"a":{"b":"\\q"}}', '{"a":[1,]}', '{"a":{"b" 1}}', '{"a":{"b":-}}', '{"a":{"b":1}',
      '{"a":[{"b":"x"}', '{"eventName":"INSERT","a":{"b":nul}}' }) do
      local ok, err, code = f:match(text)
      assert.is_nil(ok, text)
      assert.equals("InvalidJSON", code)
      assert.matches("^InvalidJSON: ", err)
    end
  end)

  it("gives the same error at the same byte whether the bad member is read or only passed", function()
    local reads = core.compile_filter('{"a":[{"exists":true}]}') -- reads a's value
    local passes = core.compile_filter('{"z":[{"exists":true}]}') -- checks a's syntax only
    for _, value in ipairs({ '{"b":[1,tru]}', '{"b":"\\q"}', '[1,]', '{"b" 1}', '{"b":-}',
      '[{"b":"x"}', '{"b":nul}', '"\1"', '"\\ud800"', '1e400', '01', '{1:2}', '{"b":1,}', '[1 2]', '{"b":{"c":[',
      '"abc', ("["):rep(998) .. ("]"):rep(998), '{"b":"x\\u00"}' }) do
      local text = '{"eventName":"INSERT","a":' .. value .. ',"z":1}'
      local _, read_err = reads:match(text)
      local _, pass_err = passes:match(text)
      assert.is_string(read_err, text)
      assert.equals(read_err, pass_err, text)
    end
  end)

  it("reads what json_decode reads: 1e-400, 997 levels of nesting", function()
    local g = core.compile_filter('{"a":[{"exists":true}]}')
    assert.is_true(g:match('{"a":1e-400}'))
    assert.is_false(g:match('{"b":' .. ("["):rep(997) .. ("]"):rep(997) .. "}"))
  end)

  it("reads escapes, dotted record keys and GetRecords' identity names", function()
    assert.is_true(f:match('{"event\\u004eame":"\\u0049NSERT"}'))
    local g = core.compile_filter('{"userIdentity":{"principalId":["dynamodb.amazonaws.com"]},"a":{"b":{"S":["x"]}}}')
    assert.is_true(g:match('{"userIdentity":{"PrincipalId":"dynamodb.amazonaws.com"},"a.b":{"S":"x"}}'))
    assert.is_true(g:match('{"userIdentity":{"principalId":"dynamodb.amazonaws.com"},"a":{"b.S":"x"}}'))
    -- an object a dotted key made merges with a same-named object, else the later member wins
    local h = core.compile_filter('{"x":{"y":{"a":[1],"b":[2]}}}')
    assert.is_true(h:match('{"x":5,"x.y.a":1,"x.y.b":2}'))
    assert.is_true(h:match('{"x.y":{"a":1},"x.y.b":2}'))
    assert.is_false(h:match('{"x.y.a":1,"x":5,"x.y.b":2}'))
  end)

  it("folds case per code point, whatever the folded length (ẞ is 3 bytes, ß 2)", function()
    local g = core.compile_filter('{"a":[{"equals-ignore-case":"STRAẞE"}],"b":[{"prefix":{"equals-ignore-case":"ΣΟΦ"}}]}')
    assert.is_true(g:match('{"a":"straße","b":"σοφίας"}'))
    assert.is_false(g:match('{"a":"strasse","b":"σοφίας"}'))
  end)

  it("closes once; a closed filter raises", function()
    local g = core.compile_filter('{"a":["x"]}')
    g:close()
    g:close()
    raises("filter is closed", function() g:match("{}") end)
    assert.matches("closed", tostring(g))
  end)

  it("reads many dotted record keys in linear time (they merge through an index, not a scan)", function()
    local parts = {}
    for i = 1, 40000 do parts[i] = ('"a%d.b":{"S":"x"}'):format(i) end
    local text = '{"dynamodb":{"NewImage":{' .. table.concat(parts, ",") .. ',"a7":{"N":"1"}}}}'
    local g = core.compile_filter('{"dynamodb":{"NewImage":{"a7":{"b":{"S":["x"]},"N":["1"]}}}}')
    local t0 = os.clock()
    assert.is_true(g:match(text))
    assert.is_true(os.clock() - t0 < 1)
  end)

  it("matches large records in linear time", function()
    local items = {}
    for i = 1, 20000 do items[i] = ('{"M":{"sku":{"S":"%d"},"qty":{"N":"%d"}}}'):format(i, i % 7) end
    local text = '{"dynamodb":{"NewImage":{"items":{"L":[' .. table.concat(items, ",") .. ']}}}}'
    local g = core.compile_filter('{"dynamodb":{"NewImage":{"items":{"L":{"M":{"sku":{"S":["19999"]},"qty":{"N":["6"]}}}}}}}')
    local t0 = os.clock()
    assert.is_false(g:match(text)) -- item 19999 has qty 19999 % 7 == 0, item 6 has sku "6"
    assert.is_true(core.compile_filter('{"dynamodb":{"NewImage":{"items":{"L":{"M":{"sku":{"S":["19999"]},"qty":{"N":["0"]}}}}}}}'):match(text))
    assert.is_true(os.clock() - t0 < 2)
  end)
end)

describe("decode_records with opts.filter", function()
  -- A record that only a filter added for it passes, and that sends the whole
  -- page down the exact path (an L given as {}).
  local EXACT = '{"eventID":"force-exact","eventName":"INSERT","dynamodb":{"NewImage":{"z":{"L":{}}}}}'
  local EXACT_FILTER = '{"eventID":["force-exact"]}'

  local function page(records)
    return '{"Records":[' .. table.concat(records, ",") .. '],"NextShardIterator":"it-1"}'
  end

  it("drops the records the filter refuses, on the fast and the exact path alike", function()
    local pages = { fast = 0, exact = 0 }
    for _, line in ipairs(lines_of(PYTHON .. " " .. REFERENCE .. " generate 9 300")) do
      local case = core.json_decode(line)
      if case.results ~= "invalid" and #case.patterns < 5 then
        local patterns = { EXACT_FILTER }
        for i, p in ipairs(case.patterns) do patterns[i + 1] = p end
        local f = core.compile_filter(criteria(patterns))
        -- what each record alone decodes to, when the filter passes it
        local want, want_err = {}, nil
        for i, r in ipairs(case.records) do
          assert.equals(case.results[i], f:match(r))
          if case.results[i] then
            local one, err, code = core.decode_records(page({ r }))
            if one == nil then
              want_err = want_err or code
            else
              want[#want + 1] = one[1]
            end
          end
        end
        -- the records as they come (fast path unless one needs the exact), then with EXACT first
        for kind, records in pairs({ any = case.records, exact = { EXACT, helper.unpack(case.records) } }) do
          local before = core.decode_stats()
          local got, nsi, filtered = core.decode_records(page(records), { filter = f })
          if want_err then
            assert.is_nil(got)
            assert.equals(want_err, filtered) -- the code, third of nil, msg, code
          else
            assert(got, nsi)
            if kind == "exact" then table.remove(got, 1) end
            assert.same(want, got)
            assert.equals("it-1", nsi)
            assert.equals(#case.records - #want, filtered)
          end
          local took = core.decode_stats().fast > before.fast and "fast" or "exact"
          assert(kind == "any" or took == "exact", "the exact path was not taken")
          pages[took] = pages[took] + 1
        end
      end
    end
    assert.is_true(pages.fast > 100 and pages.exact > 250, ("%d fast, %d exact"):format(pages.fast, pages.exact))
  end)

  it("builds nothing for a dropped record: its bad AttributeValue does not fail the page", function()
    local bad = '{"eventName":"REMOVE","dynamodb":{"NewImage":{"a":{"Q":"?"}}}}'
    local good = '{"eventName":"INSERT","dynamodb":{"NewImage":{"a":{"S":"x"}}}}'
    local f = core.compile_filter('{"eventName":["INSERT"]}')
    local got, nsi, filtered = core.decode_records(page({ bad, good, bad }), { filter = f })
    assert.same({ { eventName = "INSERT", dynamodb = { NewImage = { a = "x" } } } }, got)
    assert.equals(2, filtered)
    local none, err, code = core.decode_records(page({ bad, good }))
    assert.is_nil(none)
    assert.equals("InvalidResponse", code)
  end)

  it("tells the page's last sequence number, dropped or not, on the fast and the exact path alike", function()
    local function rec(name, seq)
      return ('{"eventName":"%s","dynamodb":{"SequenceNumber":"%s"}}'):format(name, seq)
    end
    local f = core.compile_filter({ Filters = { { Pattern = '{"eventName":["INSERT"]}' }, { Pattern = EXACT_FILTER } } })
    local cases = {
      { { rec("INSERT", "100"), rec("REMOVE", "200") }, "200", 1 },   -- a dropped tail
      { { rec("REMOVE", "100"), rec("REMOVE", "2\\u0030") }, "20", 2 }, -- all dropped; an escaped digit
      { { rec("REMOVE", "100"), rec("INSERT", "300") }, "300", 1 },   -- the last one passed
      { { rec("INSERT", "100"), '{"eventName":"REMOVE","dynamodb":{"SequenceNumber":7}}' }, nil, 1 }, -- not a string
      { { rec("INSERT", "100"), '{"eventName":"REMOVE"}' }, nil, 1 }, -- none
      { {}, nil, 0 },
    }
    for _, c in ipairs(cases) do
      for _, records in ipairs({ c[1], { EXACT, helper.unpack(c[1]) } }) do
        local got, nsi, filtered, last = core.decode_records(page(records), { filter = f })
        assert(got, nsi)
        assert.equals(c[3], filtered)
        assert.equals(c[2], last)
      end
    end
    -- without a filter: two values, as before
    assert.equals(2, select("#", core.decode_records(page({ rec("INSERT", "1") }))))
  end)

  it("raises on a bad filter option and keeps the three-value failures", function()
    raises("opts.filter must be a filter", function() core.decode_records(page({}), { filter = "x" }) end)
    local f = core.compile_filter('{"eventName":["INSERT"]}')
    local none, err, code = core.decode_records("{", { filter = f })
    assert.is_nil(none)
    assert.equals("InvalidJSON", code)
    f:close()
    raises("filter is closed", function() core.decode_records(page({}), { filter = f }) end)
  end)
end)
