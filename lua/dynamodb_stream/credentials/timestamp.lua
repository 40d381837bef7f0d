--- RFC 3339 / ISO 8601 UTC timestamps, as credential sources write them, to epoch seconds.
-- @module dynamodb_stream.credentials.timestamp

local M = {}

-- Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
-- (Howard Hinnant's days_from_civil): no os.time, which works in local time.
local floor = math.floor
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local DAYS_IN_MONTH = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

--- Parses `2026-09-01T13:00:00Z` (fractions and a `+hh:mm` offset allowed) to epoch seconds.
-- @tparam string text
-- @treturn number epoch seconds, or `nil, why`
function M.parse(text)
  if type(text) ~= "string" then return nil, "a timestamp must be a string" end
  local y, mo, d, h, mi, s, rest = text:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil, "not an RFC 3339 timestamp: " .. text:sub(1, 40) end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  local fraction, zone = rest:match("^(%.%d+)(.*)$")
  if fraction then rest = zone end
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil, "timestamp without a time zone: " .. text:sub(1, 40) end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60 * (sign == "-" and -1 or 1)
  end
  if mo < 1 or mo > 12 or d < 1 or d > DAYS_IN_MONTH[mo] or h > 23 or mi > 59 or s > 60 then
    return nil, "timestamp out of range: " .. text:sub(1, 40)
  end
  local seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
  return seconds + (fraction and tonumber("0" .. fraction) or 0)
end

--- Formats epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
-- @tparam number epoch
-- @treturn string
function M.format(epoch)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(epoch))
end

return M
