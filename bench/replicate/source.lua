-- The tables of the replication benchmark (bench/replicate/run.sh), in DynamoDB Local.
--
--   lua5.4 bench/replicate/source.lua create ENDPOINT SRC N
--       SRC with a NEW_AND_OLD_IMAGES stream and N items of about 1 KB (keys
--       ITEM#0000001..N); prints ITEM_BYTES=<mean bytes of an item as JSON on the wire>.
--   lua5.4 bench/replicate/source.lua targets ENDPOINT TABLE...
--       empty tables with SRC's key schema.
--   lua5.4 bench/replicate/source.lua drop ENDPOINT TABLE...
--   lua5.4 bench/replicate/source.lua change ENDPOINT SRC M
--       M changes to SRC as it is: 20% puts of new keys, 40% puts over existing
--       ones, 20% UpdateItem, 20% deletes; puts and deletes by BatchWriteItem
--       (25 a call, no key twice in a call), a key may change more than once.
--       Every change alters its item, so it is one stream record.
--   lua5.4 bench/replicate/source.lua count ENDPOINT TABLE...
--       prints "TABLE <items>" per table (a Scan with Select = COUNT).
-- Env: BENCH_ACCESS_KEY_ID / BENCH_SECRET_ACCESS_KEY (default benchkey/benchsecret).

local ds = require("dynamodb_stream")

local USAGE = "usage: source.lua create ENDPOINT SRC N | targets|drop|count ENDPOINT TABLE... | change ENDPOINT SRC M"
local mode, endpoint = arg[1], arg[2]
if not endpoint then io.stderr:write(USAGE, "\n"); os.exit(2) end

local ddb = assert(ds.dynamodb({
  endpoint = endpoint,
  region = "us-east-1",
  credentials = {
    access_key_id = os.getenv("BENCH_ACCESS_KEY_ID") or "benchkey",
    secret_access_key = os.getenv("BENCH_SECRET_ACCESS_KEY") or "benchsecret",
  },
}))

local function check(what, res, err)
  if not res then error(what .. ": " .. tostring(err), 2) end
  return res
end

local function count_arg(text)
  local n = math.tointeger(tonumber(text or ""))
  if not n or n < 0 then io.stderr:write(USAGE, "\n"); os.exit(2) end
  return n
end

math.randomseed(15, 0)
local rnd = math.random
local WORDS = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
  "india", "juliet", "kilo", "lima", "mike", "müller", "café" }
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function text(n)  -- n random base64 characters
  local t = {}
  for j = 1, n do local c = rnd(1, 64); t[j] = B64:sub(c, c) end
  return table.concat(t)
end
local function key(i) return { pk = { S = string.format("ITEM#%07d", i) } } end

-- About 1 KB on the wire, every AttributeValue type, a 38-digit number among them.
local function item(i, version)
  local it = key(i)
  it.version = { N = tostring(version) }
  it.name = { S = WORDS[rnd(#WORDS)] .. " " .. WORDS[rnd(#WORDS)] }
  it.price = { N = string.format("%d.%02d", rnd(0, 9999), rnd(0, 99)) }
  it.ledger = { N = "1234567890123456789012345678901234567" .. rnd(0, 9) }
  it.active = { BOOL = rnd(2) == 1 }
  it.deleted_at = { NULL = true }
  it.tags = { SS = { "t" .. rnd(1, 5), "u" .. rnd(1, 5), "v" .. rnd(1, 5) } }
  it.scores = { NS = { tostring(rnd(1, 100)), tostring(rnd(101, 200)) } }
  it.blob = { B = text(64) }
  it.address = { M = {
    street = { S = rnd(1, 999) .. " " .. WORDS[rnd(#WORDS)] .. " street" },
    zip = { S = string.format("%05d", rnd(0, 99999)) },
    geo = { M = { lat = { N = string.format("%.6f", rnd() * 180 - 90) },
                  lon = { N = string.format("%.6f", rnd() * 360 - 180) } } },
  } }
  it.lines = { L = {
    { M = { sku = { S = "SKU-" .. rnd(1e7, 9e7) }, qty = { N = tostring(rnd(1, 9)) } } },
    { M = { sku = { S = "SKU-" .. rnd(1e7, 9e7) }, qty = { N = tostring(rnd(1, 9)) } } },
  } }
  it.notes = { S = text(480) }
  return it
end

local function create_table(name, stream)
  local params = {
    TableName = name,
    AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
    KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
    BillingMode = "PAY_PER_REQUEST",
  }
  if stream then params.StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" } end
  check("CreateTable " .. name, ddb:create_table(params))
end

local function write(table_name, requests)
  check("BatchWriteItem " .. table_name, ddb:batch_write_all(table_name, requests))
end

-- Every key of SRC (its number) and the version of its item.
local function scan_versions(src)
  local versions, last = {}, 0
  for page, err in ddb:scan_pages({ TableName = src, ProjectionExpression = "#k, #v",
    ExpressionAttributeNames = { ["#k"] = "pk", ["#v"] = "version" } }) do
    check("Scan " .. src, page, err)
    for _, it in ipairs(page.Items) do
      local i = math.tointeger(tonumber(it.pk.S:match("^ITEM#(%d+)$")))
      versions[i], last = math.tointeger(tonumber(it.version.N)), math.max(last, i)
    end
  end
  return versions, last
end

if mode == "create" and arg[4] and not arg[5] then
  local src, n = arg[3], count_arg(arg[4])
  create_table(src, true)
  local requests, bytes = {}, 0
  for i = 1, n do
    local it = item(i, 1)
    bytes = bytes + #ds.json_encode(it)
    requests[#requests + 1] = { PutRequest = { Item = it } }
    if #requests == 1000 then write(src, requests); requests = {} end
  end
  if #requests > 0 then write(src, requests) end
  print("ITEM_BYTES=" .. (n > 0 and bytes // n or 0))
elseif mode == "targets" and arg[3] then
  for k = 3, #arg do create_table(arg[k], false) end
elseif mode == "drop" and arg[3] then
  for k = 3, #arg do check("DeleteTable " .. arg[k], ddb:delete_table({ TableName = arg[k] })) end
elseif mode == "change" and arg[4] and not arg[5] then
  local src, m = arg[3], count_arg(arg[4])
  -- alive: the keys SRC holds (a list, and each key's place in it); version of each.
  local version, last = scan_versions(src)
  local alive, place, next_key = {}, {}, last + 1
  for i in pairs(version) do alive[#alive + 1] = i end
  table.sort(alive)  -- the same changes for the same table, whatever pairs' order
  for k, i in ipairs(alive) do place[i] = k end
  local function remove(i)
    local tail = alive[#alive]
    alive[place[i]], place[tail] = tail, place[i]
    alive[#alive], place[i], version[i] = nil, nil, nil
  end
  local batch, in_batch = {}, {}
  local function flush()
    if #batch > 0 then write(src, batch) end
    batch, in_batch = {}, {}
  end
  local function pick()  -- an existing key, not in the batch being built
    local i = alive[rnd(#alive)]
    if in_batch[i] then flush() end
    return i
  end
  for j = 1, m do
    local roll = j % 10
    if roll < 2 or #alive == 0 then  -- a new key
      local i = next_key
      next_key = next_key + 1
      alive[#alive + 1] = i
      place[i], version[i] = #alive, 1
      batch[#batch + 1], in_batch[i] = { PutRequest = { Item = item(i, 1) } }, true
    elseif roll < 6 then  -- a put over an existing item, a new version
      local i = pick()
      version[i] = version[i] + 1
      batch[#batch + 1], in_batch[i] = { PutRequest = { Item = item(i, version[i]) } }, true
    elseif roll < 8 then  -- an UpdateItem, at once
      local i = pick()
      version[i] = version[i] + 1
      check("UpdateItem", ddb:update_item({
        TableName = src,
        Key = key(i),
        UpdateExpression = "SET version = :v, notes = :n",
        ExpressionAttributeValues = { [":v"] = { N = tostring(version[i]) }, [":n"] = { S = text(480) } },
      }))
    else  -- a delete
      local i = pick()
      remove(i)
      batch[#batch + 1], in_batch[i] = { DeleteRequest = { Key = key(i) } }, true
    end
    if #batch == 25 then flush() end
  end
  flush()
elseif mode == "count" and arg[3] then
  for k = 3, #arg do
    local items = 0
    for page, err in ddb:scan_pages({ TableName = arg[k], Select = "COUNT" }) do
      check("Scan " .. arg[k], page, err)
      items = items + page.Count
    end
    print(arg[k] .. " " .. items)
  end
else
  io.stderr:write(USAGE, "\n")
  os.exit(2)
end
