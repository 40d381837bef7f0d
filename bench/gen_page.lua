#!/usr/bin/env lua5.4
-- Generates a realistic DynamoDB Streams GetRecords response body: N MODIFY
-- records (default 1,000) with NEW_AND_OLD_IMAGES, about 1.8 KB of JSON each
-- (an item of about 20 attributes, both images, and the record envelope).
--
--   lua5.4 bench/gen_page.lua --seed 42 [--records 1000] OUT.json
--
-- Deterministic from --seed (Lua 5.4's xoshiro256** generator; the JSON is
-- written by hand in a fixed key order, so the same seed gives the same bytes).
-- Every image holds: strings (ASCII, UTF-8, escapes), integers, floats, 38-digit
-- numbers (a few), nested maps, lists (of maps, mixed), string sets, number
-- sets, binary (base64), NULL and BOOL. Numbers are chosen so that
-- @aws-sdk/util-dynamodb's unmarshall accepts them without wrapNumbers: big
-- integers become BigInt, 38-significant-digit decimals have a small magnitude
-- (Number(), lossy but no throw). See bench/README.md.

local seed, nrec, out = 1, 1000, nil
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--seed" then seed = assert(tonumber(arg[i + 1]), "--seed N"); i = i + 1
  elseif a == "--records" then nrec = assert(math.tointeger(tonumber(arg[i + 1])), "--records N"); i = i + 1
  elseif a:sub(1, 1) == "-" then error("unknown option " .. a)
  else out = a end
  i = i + 1
end
if not out then
  io.stderr:write("usage: lua5.4 bench/gen_page.lua --seed N [--records N] OUT.json\n")
  os.exit(2)
end

math.randomseed(math.tointeger(seed) or 1, 0)
local rnd = math.random

local function pick(t) return t[rnd(#t)] end

local WORDS = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
  "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
  "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu" }
local FIRST = { "Ana", "Bjørn", "Chloé", "Dmitri", "Emma", "François", "Grace", "Hiroshi",
  "Inés", "Jamal", "Kateřina", "Liam", "Mei", "Noah", "Olivia", "Pål", "Quinn", "Raj" }
local LAST = { "Smith", "Müller", "García", "Rossi", "Kowalski", "Nakamura", "O'Brien",
  "Dubois", "Jensen", "Silva", "Novák", "Kim", "Ivanova", "Brown" }
local STATUS = { "PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED", "RETURNED" }
local TAGS = { "vip", "new", "returning", "promo", "wholesale", "eu", "us", "apac", "gift",
  "priority", "fragile", "subscription" }

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(bytes)
  local out, n = {}, #bytes
  for j = 1, n, 3 do
    local a, b, c = bytes:byte(j, j + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local s1, s2 = (v >> 18) & 63, (v >> 12) & 63
    local s3, s4 = (v >> 6) & 63, v & 63
    out[#out + 1] = B64:sub(s1 + 1, s1 + 1) .. B64:sub(s2 + 1, s2 + 1)
      .. (b and B64:sub(s3 + 1, s3 + 1) or "=") .. (c and B64:sub(s4 + 1, s4 + 1) or "=")
  end
  return table.concat(out)
end

local function rbytes(n)
  local t = {}
  for j = 1, n do t[j] = string.char(rnd(0, 255)) end
  return table.concat(t)
end

local function hex(n)
  local t = {}
  for j = 1, n do t[j] = string.format("%x", rnd(0, 15)) end
  return table.concat(t)
end

local function digits(n, first_nonzero)
  local t = {}
  for j = 1, n do t[j] = tostring((j == 1 and first_nonzero) and rnd(1, 9) or rnd(0, 9)) end
  return table.concat(t)
end

local function jstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\"
    elseif c == "\n" then return "\\n" elseif c == "\t" then return "\\t"
    else return string.format("\\u%04x", c:byte()) end
  end) .. '"'
end

-- AttributeValue builders: each returns the JSON text of one AV.
local function S(s) return '{"S":' .. jstr(s) .. '}' end
local function N(n) return '{"N":"' .. n .. '"}' end
local function B(bytes) return '{"B":"' .. base64(bytes) .. '"}' end
local function BOOL(b) return '{"BOOL":' .. tostring(b) .. '}' end
local NULL = '{"NULL":true}'
local function M(pairs_)  -- pairs_: sequence of {name, av_json}
  local t = {}
  for j, p in ipairs(pairs_) do t[j] = jstr(p[1]) .. ":" .. p[2] end
  return "{" .. table.concat(t, ",") .. "}"
end
local function Mv(pairs_) return '{"M":' .. M(pairs_) .. '}' end
local function L(items) return '{"L":[' .. table.concat(items, ",") .. ']}' end
local function SS(items)
  local t = {}
  for j, s in ipairs(items) do t[j] = jstr(s) end
  return '{"SS":[' .. table.concat(t, ",") .. ']}'
end
local function NS(items)
  local t = {}
  for j, s in ipairs(items) do t[j] = '"' .. s .. '"' end
  return '{"NS":[' .. table.concat(t, ",") .. ']}'
end

local function money() return string.format("%d.%02d", rnd(0, 99999), rnd(0, 99)) end
local function sentence(n)
  local t = {}
  for j = 1, n do t[j] = pick(WORDS) end
  local s = table.concat(t, " ")
  if rnd(4) == 1 then s = s .. ' "quoted"\tand\\slashed' end
  if rnd(3) == 1 then s = s .. " café naïve 東京" end
  return s
end

local function distinct(pool, k)
  local seen, t = {}, {}
  while #t < k do
    local v = pick(pool)
    if not seen[v] then seen[v] = true; t[#t + 1] = v end
  end
  return t
end

-- One item image. base: the customer fields shared by the old and new image.
local function image(base, version, kind)
  local lines = {}
  for j = 1, rnd(1, 2) do
    lines[j] = Mv({
      { "sku", S("SKU-" .. digits(8)) },
      { "qty", N(tostring(rnd(1, 20))) },
      { "price", N(money()) },
    })
  end
  local nums = {}
  for j = 1, rnd(2, 4) do nums[j] = tostring(rnd(1, 100000)) end
  local uniq, seen = {}, {}
  for _, v in ipairs(nums) do if not seen[v] then seen[v] = true; uniq[#uniq + 1] = v end end
  local f = {
    { "pk", S(base.pk) },
    { "sk", S(base.sk) },
    { "customer", Mv({
      { "name", S(base.name) },
      { "age", N(tostring(base.age)) },
      { "geo", Mv({ { "lat", N(string.format("%.6f", rnd() * 180 - 90)) },
                    { "lon", N(string.format("%.6f", rnd() * 360 - 180)) } }) },
    }) },
    { "status", S(pick(STATUS)) },
    { "version", N(tostring(version)) },
    { "updatedAt", N(tostring(base.created + version * rnd(1000, 90000))) },
    { "active", BOOL(rnd(2) == 1) },
    { "deletedAt", NULL },
    { "tags", SS(distinct(TAGS, rnd(1, 3))) },
    { "scores", NS(uniq) },
    { "avatarHash", B(rbytes(rnd(16, 32))) },
    { "lines", L(lines) },
    { "history", L({ S(pick(STATUS)), N(string.format("%.3f", rnd() * 10)), NULL }) },
    { "notes", S(sentence(rnd(2, 5))) },
  }
  -- A few 38-digit numbers: integers (BigInt in util-dynamodb) and
  -- 38-significant-digit decimals of small magnitude (Number() in util-dynamodb).
  if kind % 10 == 0 then f[#f + 1] = { "ledger", N(digits(38, true)) } end
  if kind % 10 == 5 then f[#f + 1] = { "precise", N("0." .. digits(38, true)) } end
  if kind % 25 == 0 then f[#f + 1] = { "negBig", N("-" .. digits(38, true)) } end
  return M(f)
end

local arn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-06-01T00:00:00.000"
local t0 = 1717200000 + rnd(0, 1000000)
local seq0 = 4000000000000000000 + rnd(0, 99999999) * 1000

local recs = {}
for r = 1, nrec do
  local id = rnd(1, 10000000)
  local base = {
    pk = "CUSTOMER#" .. id,
    sk = "ORDER#" .. digits(12),
    name = pick(FIRST) .. " " .. pick(LAST),
    age = rnd(18, 90),
    created = 1700000000000 + rnd(0, 10000000000),
  }
  local v = rnd(1, 50)
  local keys = M({ { "pk", S(base.pk) }, { "sk", S(base.sk) } })
  local new, old = image(base, v + 1, r), image(base, v, r + 3)
  local size = #keys + #new + #old  -- approximate, as real SizeBytes is
  recs[r] = table.concat({
    '{"eventID":"', hex(32), '","eventName":"MODIFY","eventVersion":"1.1",',
    '"eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{',
    '"ApproximateCreationDateTime":', tostring(t0 + r // 50), '.0,',
    '"Keys":', keys, ',"NewImage":', new, ',"OldImage":', old, ',',
    '"SequenceNumber":"', string.format("%021d", seq0 + r * 100 + rnd(0, 99)), '",',
    '"SizeBytes":', tostring(size), ',"StreamViewType":"NEW_AND_OLD_IMAGES"}}',
  })
end

local body = '{"Records":[' .. table.concat(recs, ",") .. '],"NextShardIterator":"'
  .. arn .. "|1|" .. base64(rbytes(600)) .. '"}'

local fh = assert(io.open(out, "wb"))
fh:write(body)
fh:close()
print(string.format("%s: %d records, %d bytes (%.0f bytes/record)", out, nrec, #body, #body / nrec))
