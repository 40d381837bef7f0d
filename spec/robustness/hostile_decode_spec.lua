-- Hostile response bodies at the C level: core.json_decode and core.unmarshall
-- on deep nesting, invalid UTF-8, NUL bytes, numbers at and past DynamoDB's
-- limits, and AttributeValues of the wrong JSON type. Each case states the
-- exact outcome: the decoded value, or the error code and message.
local core = require("dynamodb_stream.core")
local NULL = core.null

local function decode(text)
  local v, err, code = core.json_decode(text)
  assert(v ~= nil, "json_decode failed: " .. tostring(err))
  assert.is_nil(code)
  return v
end

-- json_decode + unmarshall of '{"a": <av>}'; returns a's value.
local function av(json_av, opts)
  return core.unmarshall(decode('{"a":' .. json_av .. '}'), opts).a
end

local function decode_fails(text, message)
  local v, err, code = core.json_decode(text)
  assert.is_nil(v)
  assert.equals("InvalidJSON", code)
  assert.equals("InvalidJSON: " .. message, err)
end

local function av_fails(json_av, message, opts)
  local t = decode('{"a":' .. json_av .. '}')
  local ok, err = pcall(core.unmarshall, t, opts)
  assert.is_false(ok)
  assert.equals("unmarshall: " .. message, err)
end

describe("hostile bodies: json_decode", function()
  describe("deep nesting", function()
    it("10,000 nested arrays: InvalidJSON, no crash", function()
      decode_fails(string.rep("[", 10000) .. string.rep("]", 10000), "nesting deeper than 1000 levels")
    end)
    it("10,000 nested objects: InvalidJSON", function()
      decode_fails(string.rep('{"a":', 10000) .. "1" .. string.rep("}", 10000), "nesting deeper than 1000 levels")
    end)
    it("10,000 opening brackets and nothing else: InvalidJSON", function()
      decode_fails(string.rep("[", 10000), "nesting deeper than 1000 levels")
    end)
    it("1000 levels decode; 1001 do not", function()
      local v = decode(string.rep("[", 1000) .. string.rep("]", 1000))
      local depth = 0
      while type(v) == "table" do depth, v = depth + 1, v[1] end
      assert.equals(1000, depth)
      decode_fails(string.rep("[", 1001) .. string.rep("]", 1001), "nesting deeper than 1000 levels")
    end)
  end)

  describe("invalid UTF-8 is passed through as bytes", function()
    -- a lone continuation byte, an overlong '/', a surrogate encoded in UTF-8,
    -- a sequence cut short, bytes that never occur in UTF-8
    local bad = "\128|\192\175|\237\160\128|\226\130|\254\255"
    it("in a value and in a key", function()
      local v = decode('{"k' .. bad .. '":"v' .. bad .. '"}')
      assert.equals("v" .. bad, v["k" .. bad])
    end)
    it("in an S value and a map key through unmarshall", function()
      local t = core.unmarshall(decode('{"k' .. bad .. '":{"S":"' .. bad .. '"},"m":{"M":{"' .. bad .. '":{"SS":["'
        .. bad .. '"]}}}}'))
      assert.equals(bad, t["k" .. bad])
      assert.same({ bad }, t.m[bad])
    end)
    it("escaped lone surrogates are rejected by the parser", function()
      decode_fails('"\\ud800"', "syntax error at offset 1 near '\\ud800\"'")
      decode_fails('"\\udc00x"', "syntax error at offset 1 near '\\udc00x\"'")
      decode_fails('"\\u0000\\ud800"', "syntax error at offset 7 near '\\ud800\"'")
    end)
    it("escaped pairs become UTF-8, also next to \\u0000", function()
      assert.same({ "\240\159\152\128", "\0\240\159\152\128", "\195\169\0" },
        decode('["\\ud83d\\ude00", "\\u0000\\ud83d\\ude00", "\\u00e9\\u0000"]'))
    end)
    it("raw control characters inside strings are rejected (RFC 8259); DEL is not one", function()
      decode_fails('"x\ny"', "syntax error at offset 2 near '?y\"'")
      decode_fails('{"k\tz":1}', "syntax error at offset 3 near '?z\":1}'")
      assert.equals("x\127", decode('"x\127"'))
    end)
  end)

  describe("NUL bytes", function()
    it("\\u0000 in values and keys keeps the NUL and the length", function()
      local v = decode('{"k\\u0000z":"a\\u0000b","e":"\\u0000"}')
      assert.equals("a\0b", v["k\0z"])
      assert.equals("\0", v.e)
    end)
    it("a raw NUL byte inside a string is rejected (a control character)", function()
      decode_fails('"a\0b"', "syntax error at offset 2 near '?b\"'")
    end)
    it("a NUL byte after the value is trailing data", function()
      decode_fails('{"a":1}\0', "unexpected data after the value at offset 7")
    end)
    it("a NUL or control byte before or between tokens is not JSON whitespace", function()
      -- cJSON skips every byte <= 0x20; JSON whitespace is space, tab, LF and
      -- CR only (RFC 8259 section 2).
      decode_fails('\0{"a":1}', "syntax error at offset 0 near '?{\"a\":1}'")
      decode_fails('{"a":\1 1}', "syntax error at offset 5 near '? 1}'")
      local records, err, code = core.decode_records('\0{"Records":[]}')
      assert.is_nil(records)
      assert.equals("InvalidJSON", code)
      assert.matches("syntax error at offset 0", err)
    end)
  end)

  describe("numbers in JSON (the envelope, not N values)", function()
    it("integers stay exact up to int64; beyond, they are floats", function()
      if math.type then
        assert.equals(math.mininteger, decode("-9223372036854775808"))
        assert.equals(math.maxinteger, decode("9223372036854775807"))
        assert.equals("float", math.type(decode("9223372036854775808")))
      else -- LuaJIT/5.1: exact up to 2^53, then the nearest double
        assert.equals(9007199254740992, decode("9007199254740992"))
        assert.equals(-9007199254740992, decode("-9007199254740992"))
        assert.equals(2 ^ 63, decode("9223372036854775807"))
      end
    end)
    it("a number beyond a double is refused; one below the smallest is 0.0", function()
      -- issue 11 item 12: inf would reach the listener (ApproximateCreationDateTime,
      -- SizeBytes) and json_encode could not write it back.
      decode_fails("1e999", "number out of range at offset 0")
      decode_fails('{"a":[-1e999]}', "number out of range at offset 6")
      decode_fails("1e999999", "number out of range at offset 0")
      assert.equals(0.0, decode("1e-999"))
    end)
    it("JSON number syntax is enforced", function()
      decode_fails("[01]", "syntax error at offset 1 near '01]'")
      decode_fails("[.5]", "syntax error at offset 1 near '.5]'")
    end)
  end)

  describe("truncated and foreign bodies", function()
    it("gives a clear InvalidJSON", function()
      decode_fails('{"Records":[{"eventName":"INSERT","dynamodb":{"Keys":',
        "unexpected end of input after 53 bytes (truncated?)")
      decode_fails("", "empty input")
      decode_fails("<html>oops</html>", "syntax error at offset 0 near '<html>oops</html>'")
      decode_fails('{"Records":[]} {"Records":[]}', "unexpected data after the value at offset 15")
    end)
  end)

  it("a 50 MB GetRecords-shaped body decodes (within the 64 MiB max_body)", function()
    local pad = string.rep("x", 50000)
    local parts = {}
    for i = 1, 1000 do
      parts[i] = ('{"eventID":"ev-%d","eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"k%d"}},'
        .. '"NewImage":{"pk":{"S":"k%d"},"pad":{"S":"%s"}},"SequenceNumber":"%021d"}}'):format(i, i, i, pad, i)
    end
    local body = '{"Records":[' .. table.concat(parts, ",") .. '],"NextShardIterator":"it"}'
    assert.is_true(#body > 50e6 and #body < 64 * 1024 * 1024)
    local v = decode(body)
    body, parts = nil, nil
    assert.equals(1000, #v.Records)
    local last = core.unmarshall(v.Records[1000].dynamodb.NewImage)
    assert.same({ pk = "k1000", pad = pad }, last)
    assert.equals("000000000000000001000", v.Records[1000].dynamodb.SequenceNumber)
    v = nil
    collectgarbage()
  end)
end)

describe("hostile AttributeValues: unmarshall", function()
  describe("nesting", function()
    local function nest(tag, n)
      local s = '{"S":"x"}'
      for _ = 1, n do
        s = tag == "L" and ('{"L":[' .. s .. ']}') or ('{"M":{"k":' .. s .. '}}')
      end
      return s
    end
    it("32 levels of L or M unmarshall", function()
      local v = av(nest("L", 32))
      for _ = 1, 32 do v = v[1] end
      assert.equals("x", v)
      v = av(nest("M", 32))
      for _ = 1, 32 do v = v.k end
      assert.equals("x", v)
    end)
    it("33 levels raise a clear error naming the (cut) path", function()
      av_fails(nest("L", 33), "nesting deeper than 32 levels at ..." .. string.rep("[1]", 32))
      av_fails(nest("M", 33), "nesting deeper than 32 levels at ..." .. string.rep(".k", 32):sub(2))
    end)
    it("900 levels (JSON-legal) raise the same error, no C stack trouble", function()
      local ok, err = pcall(av, nest("L", 450) .. "")
      assert.is_false(ok)
      assert.matches("^unmarshall: nesting deeper than 32 levels at %.%.%.", err)
    end)
  end)

  describe("NUL bytes", function()
    it("in S values and in keys", function()
      local t = core.unmarshall(decode('{"k\\u0000z":{"S":"a\\u0000b"},"m":{"M":{"\\u0000":{"S":"\\u0000"}}}}'))
      assert.equals("a\0b", t["k\0z"])
      assert.equals("\0", t.m["\0"])
    end)
    it("in B and BS values (base64 of NULs)", function()
      local t = core.unmarshall(decode('{"b":{"B":"AAAA"},"bs":{"BS":["AA==","AAA=","AAAA"]}}'))
      assert.equals("\0\0\0", t.b)
      assert.same({ "\0", "\0\0", "\0\0\0" }, t.bs)
      assert.equals(core.binary_set_mt, getmetatable(t.bs))
    end)
  end)

  describe("numbers at DynamoDB's limits", function()
    it("38 significant digits are exact (a decimal box)", function()
      local v = av('{"N":"12345678901234567890123456789012345678"}')
      assert.equals(core.decimal_mt, getmetatable(v))
      assert.equals("12345678901234567890123456789012345678", tostring(v))
      assert.equals("-0.12345678901234567890123456789012345678",
        tostring(av('{"N":"-0.12345678901234567890123456789012345678"}')))
    end)
    it("the largest and smallest magnitudes", function()
      assert.equals("9.9999999999999999999999999999999999999E+125",
        tostring(av('{"N":"9.9999999999999999999999999999999999999E+125"}')))
      assert.equals("-9.9999999999999999999999999999999999999E+125",
        tostring(av('{"N":"-9.9999999999999999999999999999999999999E+125"}')))
      assert.equals(1e-130, av('{"N":"1E-130"}'))
      assert.equals(-1e-130, av('{"N":"-1E-130"}'))
      assert.equals(1e-130, av('{"N":"0.' .. string.rep("0", 129) .. '1"}'))
      assert.equals("1E-130", av('{"N":"1E-130"}', { numbers = "string" }))
      assert.same({ "1E-130", "9.9999999999999999999999999999999999999E+125" },
        { table.unpack(av('{"NS":["1E-130","9.9999999999999999999999999999999999999E+125"]}', { numbers = "string" })) })
    end)
    it("beyond the limits: a clear error, in either numbers mode", function()
      for _, mode in ipairs({ "auto", "string" }) do
        local opts = { numbers = mode }
        av_fails('{"N":"1E-131"}', "invalid number '1E-131' in N (magnitude outside 1E-130 .. 9.99E+125) at a", opts)
        av_fails('{"N":"1E+126"}', "invalid number '1E+126' in N (magnitude outside 1E-130 .. 9.99E+125) at a", opts)
        av_fails('{"N":"123456789012345678901234567890123456789"}',
          "invalid number '123456789012345678901234567890123456789' in N (more than 38 significant digits) at a", opts)
        av_fails('{"N":"9.99999999999999999999999999999999999999E+125"}',
          "invalid number '9.99999999999999999999999999999999999999...' in N (more than 38 significant digits) at a", opts)
        av_fails('{"NS":["1","1E+126"]}',
          "invalid number '1E+126' in NS (magnitude outside 1E-130 .. 9.99E+125) at a[2]", opts)
      end
    end)
    it("absurd exponents and 100,000 digits are errors, not hangs", function()
      av_fails('{"N":"1E99999999999999999999"}',
        "invalid number '1E99999999999999999999' in N (magnitude outside 1E-130 .. 9.99E+125) at a")
      av_fails('{"N":"1E-99999999999999999999"}',
        "invalid number '1E-99999999999999999999' in N (magnitude outside 1E-130 .. 9.99E+125) at a")
      av_fails('{"N":"' .. string.rep("7", 100000) .. '"}',
        "invalid number '" .. string.rep("7", 40) .. "...' in N (more than 38 significant digits) at a")
      assert.equals(0, av('{"N":"0E999999999999"}'))
      assert.equals(1, av('{"N":"' .. string.rep("0", 100000) .. '1"}'))
    end)
    it("not numbers", function()
      av_fails('{"N":""}', "invalid number '' in N (not a decimal number) at a")
      av_fails('{"N":"NaN"}', "invalid number 'NaN' in N (not a decimal number) at a")
      av_fails('{"N":"0x10"}', "invalid number '0x10' in N (not a decimal number) at a")
      av_fails('{"N":" 1"}', "invalid number ' 1' in N (not a decimal number) at a")
      av_fails('{"N":"1\\u0000"}', "invalid number '1\\0' in N (not a decimal number) at a")
    end)
  end)

  describe("wrong JSON types", function()
    for _, case in ipairs({
      { '{"N":5}', "N value must be a string, got number at a" },
      { '{"N":null}', "N value must be a string, got userdata at a" },
      { '{"N":{}}', "N value must be a string, got table at a" },
      { '{"S":[]}', "S value must be a string, got table at a" },
      { '{"S":null}', "S value must be a string, got userdata at a" },
      { '{"B":1}', "B value must be a string, got number at a" },
      { '{"B":"!!!!"}', "bad base64 in B (character 1 of 4) at a" },
      { '{"BOOL":"true"}', "BOOL value must be a boolean, got string at a" },
      { '{"BOOL":1}', "BOOL value must be a boolean, got number at a" },
      { '{"NULL":false}', "NULL value must be true, got boolean at a" },
      { '{"NULL":null}', "NULL value must be true, got userdata at a" },
      { '{"SS":"x"}', "SS value must be a table, got string at a" },
      { '{"NS":[5]}', "NS items must be strings, got number at a[1]" },
      { '{"BS":["AA==",null]}', "BS items must be strings, got userdata at a[2]" },
      { '{"SS":{"a":"x"}}', "SS value must be an array, got a table with a string key at a" },
      { '{"M":[{"S":"x"}]}', "M value must be an object, got an array at a" },
      { '{"M":"x"}', "M value must be a table, got string at a" },
      { '{"L":{"a":{"S":"x"}}}', "L value must be an array, got a table with a string key at a" },
      { '{"L":[5]}', "AttributeValue must be a table with exactly one type key, got number at a[1]" },
      { '{"L":"x"}', "L value must be a table, got string at a" },
      { '{"X":"1"}', "unknown AttributeValue type 'X' at a" },
      { '{"s":"x"}', "unknown AttributeValue type 's' at a" },
      { '{}', "AttributeValue must be a table with exactly one type key, got an empty table at a" },
      { '{"S":"a","N":"1"}', "AttributeValue must be a table with exactly one type key, got several keys at a" },
      { '"x"', "AttributeValue must be a table with exactly one type key, got string at a" },
      { 'null', "AttributeValue must be a table with exactly one type key, got userdata at a" },
      { '[{"S":"x"}]', "AttributeValue must be a table with exactly one type key, got a number key at a" },
    }) do
      it(case[1] .. " raises '" .. case[2] .. "'", function()
        av_fails(case[1], case[2])
      end)
    end

    it('the right types still decode: NULL true, BOOL false, empty S and B, empty sets and lists', function()
      assert.equals(NULL, av('{"NULL":true}'))
      assert.is_false(av('{"BOOL":false}'))
      assert.equals("", av('{"S":""}'))
      assert.equals("", av('{"B":""}'))
      assert.equals(core.list_mt, getmetatable(av('{"L":[]}')))
      assert.equals(core.string_set_mt, getmetatable(av('{"SS":[]}')))
    end)

    it('an empty JSON object where L or a set belongs is read as empty (a Lua {} cannot tell them apart)', function()
      local l = av('{"L":{}}')
      assert.equals(0, #l)
      assert.equals(core.list_mt, getmetatable(l))
      assert.equals(core.string_set_mt, getmetatable(av('{"SS":{}}')))
    end)

    it('"M": [] (an array where a map belongs) is rejected', function()
      av_fails('{"M":[]}', "M value must be an object, got an array at a")
      av_fails('{"M":[{"S":"x"}]}', "M value must be an object, got an array at a")
      local records, err = core.decode_records(
        '{"Records":[{"eventName":"INSERT","dynamodb":{"Keys":{"k":{"M":[]}},"SequenceNumber":"1"}}]}')
      assert.is_nil(records)
      assert.matches("M value must be an object, got an array at Keys.k", err)
    end)
  end)
end)
