#!/usr/bin/env lua5.4
-- Generates realistic DynamoDB Streams GetRecords response bodies, one page
-- of a chosen kind (--page, default "orders"):
--   orders        1,000 MODIFY records, NEW_AND_OLD_IMAGES, ~1.8 KB each: an
--                 order item of ~20 attributes of every type (the original page)
--   doubles       the same shape of order, its prices, coordinates and ratios
--                 doubles printed shortest (16-17 significant digits, as the
--                 JavaScript, Python and Java SDKs write them)
--   long_strings  items holding strings of 1-4 KB (descriptions, JSON blobs)
--   many_attrs    items of 120 small attributes
--   deep_maps     maps nested 12-20 levels deep
--   lists_sets    lists of 50-150 elements, string and number sets of 20-60
--   binary        B of 64-2048 bytes and binary sets (base64 on the wire)
--   keys_only     a KEYS_ONLY stream: the keys alone (REMOVE, MODIFY, INSERT)
--   new_image     a NEW_IMAGE stream: INSERT and MODIFY with the new image only
--   small_items   items of ~200 bytes (JSON), where per-record cost dominates
--
--   lua5.4 bench/gen_page.lua --seed 42 [--page NAME] [--records N] OUT.json
--   lua5.4 bench/gen_page.lua --list        (the page names, one a line)
--
-- Deterministic from --seed (Lua 5.4's xoshiro256** generator; the JSON is
-- written by hand in a fixed key order, so the same seed gives the same bytes).
-- Numbers are chosen so that @aws-sdk/util-dynamodb's unmarshall accepts them
-- without wrapNumbers: big integers become BigInt, 38-significant-digit
-- decimals have a small magnitude (Number(), lossy but no throw). See
-- bench/README.md.

local seed, page_name, nrec, out, list = 1, "orders", nil, nil, false
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--seed" then seed = assert(tonumber(arg[i + 1]), "--seed N"); i = i + 1
  elseif a == "--page" then page_name = assert(arg[i + 1], "--page NAME"); i = i + 1
  elseif a == "--records" then nrec = assert(math.tointeger(tonumber(arg[i + 1])), "--records N"); i = i + 1
  elseif a == "--list" then list = true
  elseif a:sub(1, 1) == "-" then error("unknown option " .. a)
  else out = a end
  i = i + 1
end
if not out and not list then
  io.stderr:write("usage: lua5.4 bench/gen_page.lua --seed N [--page NAME] [--records N] OUT.json | --list\n")
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

-- Decimal numbers of an order: as a hand-written schema has them (fixed
-- decimals), or as SDKs print a computed double (shortest round trip).
local function shortest(x)
  for prec = 15, 17 do
    local s = string.format("%." .. prec .. "g", x)
    if tonumber(s) == x then return s end
  end
end
local FIXED = {
  price = money,
  coord = function(span) return string.format("%.6f", rnd() * span - span / 2) end,
  ratio = function() return string.format("%.3f", rnd() * 10) end,
}
local SHORTEST = {
  price = function() return shortest(rnd(100, 9999999) / 100 * 1.0825) end,  -- with a tax rate
  coord = function(span) return shortest(rnd() * span - span / 2) end,
  ratio = function() return shortest(rnd() * 10) end,
}

-- One order image. base: the customer fields shared by the old and new image;
-- decimals: FIXED or SHORTEST.
local function image(base, version, kind, decimals)
  local lines = {}
  for j = 1, rnd(1, 2) do
    lines[j] = Mv({
      { "sku", S("SKU-" .. digits(8)) },
      { "qty", N(tostring(rnd(1, 20))) },
      { "price", N(decimals.price()) },
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
      { "geo", Mv({ { "lat", N(decimals.coord(180)) }, { "lon", N(decimals.coord(360)) } }) },
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
    { "history", L({ S(pick(STATUS)), N(decimals.ratio()), NULL }) },
    { "notes", S(sentence(rnd(2, 5))) },
  }
  -- A few 38-digit numbers: integers (BigInt in util-dynamodb) and
  -- 38-significant-digit decimals of small magnitude (Number() in util-dynamodb).
  if kind % 10 == 0 then f[#f + 1] = { "ledger", N(digits(38, true)) } end
  if kind % 10 == 5 then f[#f + 1] = { "precise", N("0." .. digits(38, true)) } end
  if kind % 25 == 0 then f[#f + 1] = { "negBig", N("-" .. digits(38, true)) } end
  return M(f)
end

local function customer()
  return {
    pk = "CUSTOMER#" .. rnd(1, 10000000),
    sk = "ORDER#" .. digits(12),
    name = pick(FIRST) .. " " .. pick(LAST),
    age = rnd(18, 90),
    created = 1700000000000 + rnd(0, 10000000000),
  }
end
local function order_keys(base) return M({ { "pk", S(base.pk) }, { "sk", S(base.sk) } }) end
local function orders(decimals)
  return function(r)
    local base = customer()
    local v = rnd(1, 50)
    return "MODIFY", order_keys(base), image(base, v + 1, r, decimals), image(base, v, r + 3, decimals)
  end
end
local function id_keys(r) return M({ { "id", S(string.format("item-%08d", r)) } }) end
-- A MODIFY of an item of attributes made by attrs(): new and old image.
local function modify_of(attrs)
  return function(r)
    local keys = id_keys(r)
    local function img() return M({ { "id", S(string.format("item-%08d", r)) }, table.unpack(attrs()) }) end
    return "MODIFY", keys, img(), img()
  end
end
local function nested(depth)
  if depth == 0 then return S(pick(WORDS)) end
  return Mv({ { "level", N(tostring(depth)) }, { "name", S(pick(WORDS)) }, { "child", nested(depth - 1) } })
end
local EVENTS = { "INSERT", "MODIFY", "REMOVE" }

-- name -> { records per page, StreamViewType, record(r) -> eventName, keys, new image, old image }
local PAGES = {
  orders = { 1000, "NEW_AND_OLD_IMAGES", orders(FIXED) },
  doubles = { 1000, "NEW_AND_OLD_IMAGES", orders(SHORTEST) },
  long_strings = { 200, "NEW_AND_OLD_IMAGES", modify_of(function()
    return { { "title", S(sentence(rnd(3, 8))) }, { "body", S(sentence(rnd(150, 600))) },
             { "payload", S('{"k":"' .. hex(rnd(1000, 3000)) .. '"}') } }
  end) },
  many_attrs = { 400, "NEW_AND_OLD_IMAGES", modify_of(function()
    local f = {}
    for j = 1, 120 do
      local k = rnd(3)
      f[j] = { string.format("attr%03d", j),
        k == 1 and S(pick(WORDS)) or k == 2 and N(tostring(rnd(0, 9999))) or BOOL(rnd(2) == 1) }
    end
    return f
  end) },
  deep_maps = { 1000, "NEW_AND_OLD_IMAGES", modify_of(function()
    return { { "tree", nested(rnd(12, 20)) } }
  end) },
  lists_sets = { 200, "NEW_AND_OLD_IMAGES", modify_of(function()
    local list, ss, ns = {}, {}, {}
    for j = 1, rnd(50, 150) do list[j] = j % 2 == 0 and N(tostring(rnd(0, 1000000))) or S(pick(WORDS)) end
    for j = 1, rnd(20, 60) do ss[j] = pick(WORDS) .. "-" .. j end
    for j = 1, rnd(20, 60) do ns[j] = tostring(j * 1000 + rnd(0, 999)) end
    return { { "events", L(list) }, { "labels", SS(ss) }, { "readings", NS(ns) } }
  end) },
  binary = { 400, "NEW_AND_OLD_IMAGES", modify_of(function()
    local bs = {}
    for j = 1, rnd(2, 6) do bs[j] = base64(string.char(j) .. rbytes(rnd(16, 64))) end
    return { { "blob", B(rbytes(rnd(64, 2048))) }, { "digests", '{"BS":["' .. table.concat(bs, '","') .. '"]}' } }
  end) },
  keys_only = { 1000, "KEYS_ONLY", function(r)
    return pick(EVENTS), order_keys(customer())
  end },
  new_image = { 1000, "NEW_IMAGE", function(r)
    local base = customer()
    return rnd(2) == 1 and "INSERT" or "MODIFY", order_keys(base), image(base, rnd(1, 50), r, FIXED)
  end },
  small_items = { 1000, "NEW_AND_OLD_IMAGES", modify_of(function()
    return { { "status", S(pick(STATUS)) }, { "count", N(tostring(rnd(0, 999))) },
             { "updatedAt", N(tostring(1700000000000 + rnd(0, 10000000000))) }, { "ok", BOOL(rnd(2) == 1) } }
  end) },
}

if list then
  local names = {}
  for name in pairs(PAGES) do names[#names + 1] = name end
  table.sort(names)
  print(table.concat(names, "\n"))
  os.exit(0)
end
local page = assert(PAGES[page_name], "unknown page " .. page_name .. " (see --list)")
nrec = nrec or page[1]

local arn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-06-01T00:00:00.000"
local t0 = 1717200000 + rnd(0, 1000000)
local seq0 = 4000000000000000000 + rnd(0, 99999999) * 1000

local recs = {}
for r = 1, nrec do
  local event, keys, new, old = page[3](r)
  local size = #keys + #(new or "") + #(old or "")  -- approximate, as real SizeBytes is
  recs[r] = table.concat({
    '{"eventID":"', hex(32), '","eventName":"', event, '","eventVersion":"1.1",',
    '"eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{',
    '"ApproximateCreationDateTime":', tostring(t0 + r // 50), '.0,',
    '"Keys":', keys, new and ',"NewImage":' .. new or "", old and ',"OldImage":' .. old or "", ',',
    '"SequenceNumber":"', string.format("%021d", seq0 + r * 100 + rnd(0, 99)), '",',
    '"SizeBytes":', tostring(size), ',"StreamViewType":"', page[2], '"}}',
  })
end

local body = '{"Records":[' .. table.concat(recs, ",") .. '],"NextShardIterator":"'
  .. arn .. "|1|" .. base64(rbytes(600)) .. '"}'

local fh = assert(io.open(out, "wb"))
fh:write(body)
fh:close()
print(string.format("%s: %s, %d records, %d bytes (%.0f bytes/record)", out, page_name, nrec, #body, #body / nrec))
