-- JSON <-> Lua (csrc/ds_json.c).
local core = require("dynamodb_stream.core")

local helper = require("helper")
local encode, decode = core.json_encode, core.json_decode
local math_type = helper.math_type

describe("core JSON", function()
  describe("json_encode", function()
    it("tells [] from {}", function()
      assert.equals("{}", encode {})
      assert.equals("[]", encode(setmetatable({}, core.list_mt)))
      assert.equals("[1,2,3]", encode { 1, 2, 3 })
      assert.equals('{"a":[]}', encode { a = setmetatable({}, core.list_mt) })
      assert.equals('{"L":[]}', encode(core.marshall_value(setmetatable({}, core.list_mt))))
      assert.equals('{"M":{}}', encode(core.marshall_value {}))
    end)

    it("writes scalars", function()
      assert.equals("null", encode(core.null))
      assert.equals("true", encode(true))
      assert.equals("false", encode(false))
      assert.equals('"x"', encode("x"))
      assert.equals("0", encode(0))
      assert.equals("-12", encode(-12))
    end)

    it("writes integers exactly", function()
      if helper.int64 then
        assert.equals("9223372036854775807", encode(math.maxinteger))
        assert.equals("-9223372036854775808", encode(math.mininteger))
        assert.equals("[9007199254740993]", encode { 9007199254740993 })
      else -- LuaJIT/5.1: integral numbers up to 2^53 print as integers, larger ones as floats
        assert.equals("9007199254740992", encode(2 ^ 53))
        assert.equals("-9007199254740992", encode(-2 ^ 53))
        assert.equals("[42,-7]", encode { 42, -7.0 })
        assert.equals("9007199254740994", encode(2 ^ 53 + 2))
        assert.equals("1152921504606847000", encode(2 ^ 60))
      end
    end)

    it("writes floats in the shortest form that reads back the same", function()
      local cases = {
        { 0.1, "0.1" }, { 3.14159, "3.14159" }, { 1e21, "1e+21" }, { 1e20, "100000000000000000000" },
        { -1.5e-7, "-1.5e-7" }, { 0.1 + 0.2, "0.30000000000000004" }, { 2.0, "2" }, { 1e300, "1e+300" },
        { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
      }
      for _, c in ipairs(cases) do
        assert.equals(c[2], encode(c[1]))
        assert.equals(c[1], tonumber(encode(c[1])))
      end
    end)

    it("escapes strings and keeps NUL and UTF-8", function()
      assert.equals('"a\\"b\\\\c\\n\\r\\t\\b\\f"', encode("a\"b\\c\n\r\t\b\f"))
      assert.equals('"\\u0000\\u0001\\u001f"', encode("\0\1\31"))
      assert.equals('"Zoë €😀/"', encode("Zoë €😀/"))
      assert.equals("\0x", decode(encode("\0x")))
    end)

    it("writes boxes: decimals as numbers, binaries as base64", function()
      assert.equals("12345678901234567890123456789012345678", encode(core.decimal("12345678901234567890123456789012345678")))
      assert.equals("0.30000000000000000001", encode(core.decimal("0.30000000000000000001")))
      assert.equals("100", encode(core.decimal("1E+2")))
      assert.equals("0.5", encode(core.decimal(".5")))
      assert.equals('"AP8="', encode(core.binary("\0\255")))
      assert.equals('["a"]', encode(core.set("SS", { "a" })))
      assert.equals('[1,2.5]', encode(core.set("NS", { 1, 2.5 })))
      assert.equals('["AA=="]', encode(core.set("BS", { "\0" })))
    end)

    it("writes unmarshalled B values as base64", function()
      local item = core.unmarshall { b = { B = "AP8=" }, l = { L = { { B = "AQ==" } } } }
      local back = decode(encode(item))
      assert.equals("AP8=", back.b)
      assert.equals("AQ==", back.l[1])
    end)

    it("sorts nothing and loses nothing in objects", function()
      local t = {}
      for i = 1, 100 do t["k" .. i] = i end
      local back = decode(encode(t))
      assert.same(t, back)
    end)

    describe("errors", function()
      local function fails(v, message)
        local ok, err = pcall(encode, v)
        assert.is_false(ok)
        assert.equals(message, err)
      end

      it("rejects values JSON cannot hold", function()
        fails({ f = print }, "json_encode: cannot encode a function at f")
        fails({ a = { io.stdout } }, "json_encode: cannot encode a userdata at a[1]")
        fails({ x = 0 / 0 }, "json_encode: cannot encode NaN at x")
        fails({ x = math.huge }, "json_encode: cannot encode inf at x")
        fails(-math.huge, "json_encode: cannot encode -inf at top level")
        fails(coroutine.create(function() end), "json_encode: cannot encode a thread at top level")
      end)

      -- The first number key in traversal order is named (1 under Lua 5.4).
      local function first_number_key(t)
        for k in pairs(t) do if type(k) == "number" then return k end end
      end

      it("rejects mixed, sparse and non-string keys", function()
        fails({ 1, 2, x = 3 }, "json_encode: cannot encode a table with the number key 1 (mixed or sparse table?) at top level")
        local sparse = { [1] = 1, [3] = 3 }
        fails(sparse, "json_encode: cannot encode a table with the number key " .. first_number_key(sparse)
          .. " (mixed or sparse table?) at top level")
        fails({ [true] = 1 }, "json_encode: cannot encode a table with a boolean key at top level")
        fails({ a = { [1.5] = 1 } }, "json_encode: cannot encode a table with the number key 1.5 (mixed or sparse table?) at a")
      end)

      it("rejects cycles", function()
        local t = { a = {} }
        t.a.b = t
        fails(t, "json_encode: table cycle (the table contains itself) at a.b")
      end)

      it("allows 1000 levels of nesting and rejects 1001", function()
        local t = {}
        local x = t
        for _ = 2, 1000 do x[1] = {} x = x[1] end
        assert.equals(string.rep("[", 999) .. "{}" .. string.rep("]", 999), encode(t))
        x[1] = {}
        local ok, err = pcall(encode, t)
        assert.is_false(ok)
        -- long paths keep their innermost 32 frames
        assert.equals("json_encode: nesting deeper than 1000 levels at ..." .. string.rep("[1]", 32), err)
      end)
    end)
  end)

  describe("json_decode", function()
    it("decodes objects, arrays, null and scalars", function()
      local v = decode('{"a":[1,"x",true,false,null],"o":{},"e":[],"s":"t"}')
      assert.is_nil(getmetatable(v))
      assert.equals(core.list_mt, getmetatable(v.a))
      assert.equals(5, #v.a)
      assert.same({ 1, "x", true, false, core.null }, v.a)
      assert.is_nil(getmetatable(v.o))
      assert.is_nil(next(v.o))
      assert.equals(core.list_mt, getmetatable(v.e))
      assert.equals("t", v.s)
      assert.equals(core.null, decode("null"))
      assert.equals(false, decode(" false "))
      assert.equals("x", decode('"x"'))
    end)

    it("keeps integers that fit int64 exact, others become floats", function()
      local v = decode("[9223372036854775807,-9223372036854775808,9007199254740993,9223372036854775808,"
        .. "1.5,1e2,1.0,-0,1700000000.123,1E-400,9007199254740992]")
      if helper.int64 then
        assert.equals(math.maxinteger, v[1])
        assert.equals("integer", math.type(v[1]))
        assert.equals(math.mininteger, v[2])
        assert.equals(9007199254740993, v[3])
        assert.equals("integer", math.type(v[3]))
        assert.equals("float", math.type(v[4]))
      else -- LuaJIT/5.1: beyond 2^53, the nearest double (no envelope field needs more)
        assert.equals(2 ^ 63, v[1])
        assert.equals(-2 ^ 63, v[2])
        assert.equals(2 ^ 53, v[3])
      end
      assert.equals(9223372036854775808.0, v[4])
      assert.equals(1.5, v[5])
      assert.equals("integer", math_type(v[6]))
      assert.equals(100, v[6])
      assert.equals("integer", math_type(v[7]))
      assert.equals("integer", math_type(v[11]))
      assert.equals(2 ^ 53, v[11])
      assert.equals(0, v[8])
      assert.equals(1700000000.123, v[9])
      assert.equals(0.0, v[10])
    end)

    it("refuses a \\u without four hex digits, in values and keys (issue 11 item 12)", function()
      for _, text in ipairs({ '"ab\\uqqqq"', '"\\u00G0"', '["\\u12"]', '{"a\\u00G0":1,"a":2}', '"\\u"' }) do
        local v, err, code = core.json_decode(text)
        assert.is_nil(v, text)
        assert.equals("InvalidJSON", code, text)
        assert.matches("^InvalidJSON: syntax error at offset %d+ near '\\u", err)
      end
      assert.same({ ["a\0"] = 1, a = 2 }, core.json_decode('{"a\\u0000":1,"a":2}'))
    end)

    it("decodes unicode escapes, surrogate pairs and NUL", function()
      assert.equals("é€😀", decode('"\\u00e9\\u20AC\\ud83d\\ude00"'))
      assert.equals("a\0b", decode('"a\\u0000b"'))
      assert.equals("\0", decode('"\\u0000"'))
      local v = decode('{"k\\u0000ey":"v\\u0000\\n\\u00e9","n":1.5e1}')
      assert.equals("v\0\né", v["k\0ey"])
      assert.equals(15, v.n)
      assert.equals('/"\\', decode('"\\/\\"\\\\"'))
    end)

    it("decodes a raw UTF-8 body and a BOM", function()
      assert.equals("Zoë", decode('"Zoë"'))
      assert.same({ a = 1 }, decode('\239\187\191{"a":1}'))
    end)

    it("round-trips what json_encode writes", function()
      local v = { a = { 1, 2.5, "x", core.null, true }, b = { c = setmetatable({}, core.list_mt), d = {} },
        s = "\0\1 \"q\" é", n = math.mininteger or -2 ^ 53 }
      assert.same(v, decode(encode(v)))
    end)

    it("accepts 1000 levels of nesting", function()
      local v = decode(string.rep("[", 1000) .. string.rep("]", 1000))
      assert.equals(core.list_mt, getmetatable(v))
    end)

    describe("bad input returns nil, message, code", function()
      local cases = {
        { "", "InvalidJSON: empty input" },
        { " \n\t", "InvalidJSON: empty input" },
        { "{", "InvalidJSON: unexpected end of input after 1 bytes (truncated?)" },
        { '{"Records":[{"a":1},', "InvalidJSON: unexpected end of input after 20 bytes (truncated?)" },
        { '"abc', "InvalidJSON: unexpected end of input after 4 bytes (truncated?)" },
        { "[1,]", "InvalidJSON: syntax error at offset 3 near ']'" },
        { "<html><body>502 Bad Gateway</body></html>",
          "InvalidJSON: syntax error at offset 0 near '<html><body>502 Bad Gate...'" },
        { "{} x", "InvalidJSON: unexpected data after the value at offset 3" },
        { "[1] [2]", "InvalidJSON: unexpected data after the value at offset 4" },
        { "[1]\0", "InvalidJSON: unexpected data after the value at offset 3" },
        { "nul", "InvalidJSON: syntax error at offset 0 near 'nul'" },
        { '{"a":[1,01]}', "InvalidJSON: syntax error at offset 8 near '01]}'" }, -- cJSON alone accepts this
        { string.rep("[", 1001) .. string.rep("]", 1001), "InvalidJSON: nesting deeper than 1000 levels" },
      }
      for _, c in ipairs(cases) do
        it(string.format("%q", c[1]:sub(1, 40)):gsub("\\\n", "\\n"), function()
          local v, err, code = decode(c[1])
          assert.is_nil(v)
          assert.equals(c[2], err)
          assert.equals("InvalidJSON", code)
        end)
      end

      it("fails without raising on assorted garbage", function()
        for _, s in ipairs { "{'a':1}", "[01]", "[1.]", "[.5]", '"\\x41"', '"\\ud800"', '"\\udc00x"', "tru", "[NaN]",
          "[Infinity]", "[-]", "[+1]", "[1e]", "[-01]", "[1.e5]", "{\"a\" 1}", "{\"a\":}", "{,}", "]", "\255\254" } do
          local v, err, code = decode(s)
          assert.is_nil(v, s)
          assert.matches("^InvalidJSON: ", err)
          assert.equals("InvalidJSON", code)
        end
      end)

      it("raises only on a non-string argument", function()
        assert.has_error(function() decode(nil) end)
        assert.has_error(function() decode({}) end)
      end)
    end)
  end)
end)
