-- The lua-cjson baseline of bench/decode/decode.lua (Lua 5.3+: bit operators,
-- so decode.lua itself stays loadable by LuaJIT): lua-cjson decode + a
-- plain-Lua recursive unmarshall of Keys, NewImage, OldImage.
--   local decode = require("lua_cjson_unmarshall"); decode(text) -> records
local cjson = require("cjson")
local cjson_null = cjson.null
local byte, char, concat = string.byte, string.char, table.concat

local B64 = {}
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
for i = 1, 64 do B64[byte(alphabet, i)] = i - 1 end
local function b64decode(s)
  local out, n = {}, 0
  for i = 1, #s, 4 do
    local a, b, c, d = byte(s, i, i + 3)
    local v = (B64[a] << 18) | (B64[b] << 12) | ((B64[c] or 0) << 6) | (B64[d] or 0)
    n = n + 1
    if d == 61 then  -- '='
      if c == 61 then out[n] = char(v >> 16)
      else out[n] = char(v >> 16, (v >> 8) & 255) end
    else
      out[n] = char(v >> 16, (v >> 8) & 255, v & 255)
    end
  end
  return concat(out)
end

local unmarshall_value
local function unmarshall(map)
  local out = {}
  for k, av in pairs(map) do out[k] = unmarshall_value(av) end
  return out
end
function unmarshall_value(av)
  local t, v = next(av)
  if t == "S" then return v
  elseif t == "N" then return tonumber(v)
  elseif t == "BOOL" then return v
  elseif t == "NULL" then return cjson_null
  elseif t == "M" then return unmarshall(v)
  elseif t == "L" then
    local out = {}
    for i = 1, #v do out[i] = unmarshall_value(v[i]) end
    return out
  elseif t == "SS" then
    local out = {}
    for i = 1, #v do out[i] = v[i] end
    return out
  elseif t == "NS" then
    local out = {}
    for i = 1, #v do out[i] = tonumber(v[i]) end
    return out
  elseif t == "B" then return b64decode(v)
  elseif t == "BS" then
    local out = {}
    for i = 1, #v do out[i] = b64decode(v[i]) end
    return out
  else
    error("unknown AttributeValue type " .. tostring(t))
  end
end

return function(text)
  local page = cjson.decode(text)
  local recs = page.Records
  for i = 1, #recs do
    local d = recs[i].dynamodb
    if d.Keys then d.Keys = unmarshall(d.Keys) end
    if d.NewImage then d.NewImage = unmarshall(d.NewImage) end
    if d.OldImage then d.OldImage = unmarshall(d.OldImage) end
  end
  return #recs
end
