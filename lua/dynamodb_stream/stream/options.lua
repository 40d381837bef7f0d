--- The checks of the stream's options (Stream.new's and run's), each made
-- where the option is read. A bad option raises, at the caller of the
-- function that reads it.
-- @module dynamodb_stream.stream.options
local compat = require("dynamodb_stream.compat")

local M = {}

--- opts[name] as an integer in lo..hi, or nil when absent.
-- @tparam table opts
-- @tparam string name
-- @tparam integer lo
-- @tparam integer hi
-- @tparam[opt] string where prefix of the message ("run: ")
-- @return the value or nil
function M.integer(opts, name, lo, hi, where)
  local v = opts[name]
  if v == nil then return nil end
  if not compat.is_integer(v) or v < lo or v > hi then
    error(string.format("%sopts.%s must be an integer in %d..%d", where or "", name, lo, hi), 3)
  end
  return v
end

--- opts[name] as a finite number of seconds, at least lo (above lo when open
-- is set) and at most hi when given, or default when absent.
-- @tparam table opts
-- @tparam string name
-- @param default
-- @tparam number lo
-- @tparam[opt] boolean open
-- @tparam[opt] string where prefix of the message ("run: ")
-- @tparam[opt] number hi
-- @return the value or default
function M.seconds(opts, name, default, lo, open, where, hi)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v == math.huge or v < lo or (open and v == lo) or (hi and v > hi) then
    local range = hi and string.format("in %s..%s", lo, hi) or string.format("%s %s", open and ">" or ">=", lo)
    error(string.format("%sopts.%s must be a number of seconds %s", where or "", name, range), 3)
  end
  return v
end

--- opts[name] as a boolean, or default when absent.
-- @tparam table opts
-- @tparam string name
-- @tparam boolean default
-- @return the value or default
function M.boolean(opts, name, default)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "boolean" then error("opts." .. name .. " must be a boolean", 3) end
  return v
end

--- opts[name] as a function, or default when absent.
-- @tparam table opts
-- @tparam string name
-- @param default
-- @tparam[opt] string where prefix of the message ("run: ")
-- @return the value or default
function M.fn(opts, name, default, where)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "function" then error((where or "") .. "opts." .. name .. " must be a function", 3) end
  return v
end

return M
