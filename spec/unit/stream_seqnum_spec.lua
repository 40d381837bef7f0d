local seqnum = require("dynamodb_stream.seqnum")

describe("dynamodb_stream.seqnum", function()
  it("orders by number of significant digits, then by digits", function()
    assert.equals(-1, seqnum.compare("999999999999999999999", "1000000000000000000000"))
    assert.equals(1, seqnum.compare("1000000000000000000000", "999999999999999999999"))
    assert.equals(-1, seqnum.compare("100000000000000000001", "100000000000000000002"))
    assert.equals(0, seqnum.compare("000000000000000064242", "64242"))
    assert.equals(0, seqnum.compare("000", "0"))
  end)

  it("tells apart 40-digit numbers that are equal as floats", function()
    local a = "1234567890123456789012345678901234567890"
    local b = "1234567890123456789012345678901234567891"
    assert.equals(tonumber(a), tonumber(b)) -- why tonumber must never be used
    assert.is_true(seqnum.lt(a, b))
    assert.is_false(seqnum.lt(b, a))
    assert.is_true(seqnum.le(a, a))
  end)

  it("lt_valid agrees with lt on valid numbers, leading zeros and lengths included", function()
    local list = { "0", "000", "1", "01", "009", "10", "0010", "999999999999999999999", "1000000000000000000000",
      "000000000000000064242", "64242", "64243", "1234567890123456789012345678901234567891" }
    for _, a in ipairs(list) do
      for _, b in ipairs(list) do
        assert.equals(seqnum.lt(a, b), seqnum.lt_valid(a, b), a .. " < " .. b)
      end
    end
  end)

  it("validates digit strings and raises on anything else", function()
    assert.is_true(seqnum.valid("000000000000000064242"))
    assert.is_false(seqnum.valid("12a"))
    assert.is_false(seqnum.valid(""))
    assert.is_false(seqnum.valid(12))
    assert.has_error(function() seqnum.compare("1", 2) end)
  end)
end)
