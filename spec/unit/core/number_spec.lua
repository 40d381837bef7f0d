-- number.c's fast paths (the nearest double of 16-17 digit texts, the
-- shortest print behind marshall and json_encode) against glibc's printf and
-- strtod: fuzz/number_check.c, a C program with no Lua, on 300,000 random
-- doubles and their texts (about 3.3 million checks); then what a Lua user sees.
local helper = require("helper")
local core = require("dynamodb_stream.core")

describe("numbers", function()
  -- a C program with no Lua: one phase runs it (the fuzz phase runs the same checks under ASan)
  local c_it = helper.phase_it(it, pending, "lua5.4")
  c_it("agree with printf and strtod on millions of doubles and texts (fuzz/number_check.c)", function()
    assert(helper.execute("make -s number-check BUILD=build >/dev/null"))
    local p = assert(io.popen("build/number_check 300000 2>&1"))
    local out = p:read("*a")
    p:close()
    assert.matches(" 0 failures;", out, 1, true)
  end)

  -- 2^-24 and the other powers of two whose shortest text has a digit less
  -- than the nearest 17-digit one, as JavaScript and Python print them.
  local powers = {
    { -24, "5.960464477539063e-8", "5.9604644775390625e-8" },
    { -44, "5.684341886080802e-14", "5.6843418860808015e-14" },
  }
  for _, c in ipairs(powers) do
    it("reads and prints 2^" .. c[1] .. " as JavaScript does: " .. c[2], function()
      local v = core.unmarshall_value { N = c[2] }
      assert.equals(2 ^ c[1], v)
      assert.same({ N = c[2] }, core.marshall_value(v))
      assert.equals(c[2], core.json_encode(v))
      assert.equals(core.decimal_mt, getmetatable(core.unmarshall_value { N = c[3] }))
    end)
  end

  it("reads the shortest texts SDKs write for doubles as numbers, and others as boxes", function()
    local doubles = { "58.93184691667557", "77.11649179458618", "4.656612873077393E-10", "1125899906842624.2",
                      "0.30000000000000004" }
    -- under LuaJIT and 5.1 a double beyond 2^53 stands for an integer: boxed (ds.h)
    if helper.int64 then doubles[#doubles + 1] = "1e23" end
    for _, s in ipairs(doubles) do
      assert.equals("number", type(core.unmarshall_value { N = s }), s)
      assert.equals(tonumber(s), core.unmarshall_value { N = s }, s)
    end
    for _, s in ipairs { "9.999999999999999e22", "4.6566128730773926E-10", "1125899906842624.3",
                         "1125899906842624.25", "0.10000000000000001" } do
      assert.equals(core.decimal_mt, getmetatable(core.unmarshall_value { N = s }), s)
    end
  end)

  -- ds_number_classify_fast reads runs of eight digits with one load
  -- (ds_eight_digits); "e0" sends the same number through ds_number_classify,
  -- which reads a digit at a time: every split of up to 19 digits around the
  -- dot, runs of 0s, 9s and mixed digits, and a byte next to '0' or '9' in
  -- every position.
  it("reads digits eight at a time as ds_number_classify reads them one at a time", function()
    local function same(text)
      local got, want = core.unmarshall_value { N = text }, core.unmarshall_value { N = text .. "e0" }
      if type(want) == "table" then
        assert.equals(core.decimal_mt, getmetatable(got), text)
        assert.equals(want[1], got[1] .. "e0", text)
      else
        assert.equals(math.type and math.type(want) or type(want), math.type and math.type(got) or type(got), text)
        assert.equals(want, got, text)
      end
    end
    local fills = { "0000000000000000000", "9999999999999999999", "1234567890123456789", "9081726354453627189" }
    for int_len = 0, 19 do
      for frac_len = 0, 19 - int_len do
        if int_len + frac_len > 0 then
          for _, f in ipairs(fills) do
            local int, frac = f:sub(1, int_len), f:sub(20 - frac_len)
            for _, text in ipairs { int .. (frac_len > 0 and "." .. frac or ""), int .. "." .. frac } do
              if text ~= "." then
                same(text)
                same("-" .. text)
              end
            end
          end
        end
      end
    end
    local digits = "1234567890123456789"
    for len = 1, 19 do
      for pos = 1, len do
        for _, c in ipairs { "/", ":", " ", "\0" } do
          local text = digits:sub(1, pos - 1) .. c .. digits:sub(pos + 1, len)
          local ok, err = pcall(core.unmarshall_value, { N = text })
          assert.is_false(ok, text)
          assert.matches("not a decimal number", err, 1, true)
        end
      end
    end
  end)
end)
