--- DynamoDB Streams sequence numbers are decimal strings of 21 to 40 digits:
-- too large for a Lua float or integer, so they are compared as strings
-- (fewer significant digits is smaller, then byte order), never with tonumber.
-- @module dynamodb_stream.seqnum
local seqnum = {}

--- True when s is a non-empty string of decimal digits.
-- @param s any value
-- @treturn boolean
function seqnum.valid(s)
  return type(s) == "string" and #s > 0 and #s <= 128 and not s:find("%D")
end

local function significant(s)
  local digits = s:match("^0*(%d-)$")
  return digits == "" and "0" or digits
end

-- -1, 0 or 1 as a < b, a == b, a > b, for two valid sequence numbers.
local function compare_valid(a, b)
  if #a ~= #b then -- only then can leading zeros matter
    a, b = significant(a), significant(b)
    if #a ~= #b then return #a < #b and -1 or 1 end
  end
  if a == b then return 0 end
  return a < b and -1 or 1
end

--- -1, 0 or 1 as `a < b`, `a == b`, `a > b`. Raises on anything but digit strings.
-- @tparam string a a sequence number
-- @tparam string b a sequence number
-- @treturn integer
function seqnum.compare(a, b)
  if not seqnum.valid(a) then error("bad sequence number: " .. tostring(a), 2) end
  if not seqnum.valid(b) then error("bad sequence number: " .. tostring(b), 2) end
  return compare_valid(a, b)
end

--- `a < b` for two sequence numbers already checked with valid() (the
-- consumer's per-record test: no second check of each).
-- @treturn boolean
function seqnum.lt_valid(a, b) return compare_valid(a, b) < 0 end

--- `a < b` for two sequence numbers; raises on anything but digit strings.
-- @tparam string a
-- @tparam string b
-- @treturn boolean
function seqnum.lt(a, b) return seqnum.compare(a, b) < 0 end
--- `a <= b` for two sequence numbers; raises on anything but digit strings.
-- @tparam string a
-- @tparam string b
-- @treturn boolean
function seqnum.le(a, b) return seqnum.compare(a, b) <= 0 end

return seqnum
