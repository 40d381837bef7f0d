--- The little that differs between Lua 5.3/5.4 and Lua 5.1/LuaJIT 2.1, for
-- the other modules (internal). Under 5.1/LuaJIT every number is a double:
-- an "integer" there is an integral number a double holds exactly
-- (|x| <= 2^53), which is also what dynamodb_stream.core treats as one.
-- @module dynamodb_stream.compat
local compat = {}

if math.type then
  --- Whether x is an integer (Lua 5.3+: `math.type(x) == "integer"`).
  -- @param x any value
  -- @treturn boolean
  function compat.is_integer(x) return math.type(x) == "integer" end
else
  local floor = math.floor
  --- Whether x is an integer (Lua 5.1, LuaJIT: an integral number of at most 2^53).
  -- @local
  function compat.is_integer(x)
    return type(x) == "number" and x == floor(x) and x >= -2 ^ 53 and x <= 2 ^ 53
  end
end

-- xpcall(f, handler, ...): Lua 5.1's passes f no arguments.
if select(2, xpcall(function(x) return x end, tostring, true)) then
  compat.xpcall = xpcall
else
  local unpack = unpack
  --- `xpcall(f, handler, ...)` that passes the arguments to f under Lua 5.1 too
  -- (Lua 5.3+ and LuaJIT: `xpcall` itself).
  function compat.xpcall(f, handler, ...)
    local n, args = select("#", ...), { ... }
    return xpcall(function() return f(unpack(args, 1, n)) end, handler)
  end
end

return compat
