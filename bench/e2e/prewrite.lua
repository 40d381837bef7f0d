-- Pre-writes the changes the end-to-end benchmark consumes: creates a table
-- with a NEW_AND_OLD_IMAGES stream in DynamoDB Local and writes
--   inserts (BatchWriteItem puts of new keys), modifies (BatchWriteItem puts
--   over existing keys, plus a few UpdateItem), deletes (BatchWriteItem deletes).
--
--   lua5.4 bench/e2e/prewrite.lua ENDPOINT TABLE CHANGES [PAD]
-- PAD: bytes of random base64 text added to every item as "pad" (default 0:
-- items of about 500 bytes; the large items of bench/e2e/run.sh have 4000).
-- Env: BENCH_ACCESS_KEY_ID / BENCH_SECRET_ACCESS_KEY (default benchkey/benchsecret;
-- the consumers must use the same key id: DynamoDB Local namespaces tables by
-- access key and region).
-- Prints: STREAM_ARN=<arn>, CHANGES=<n> (the number of stream records written).

local ds = require("dynamodb_stream")

local endpoint, table_name, total = arg[1], arg[2], math.tointeger(tonumber(arg[3] or 20000))
local pad = math.tointeger(tonumber(arg[4] or 0))
assert(endpoint and table_name and total and pad, "usage: prewrite.lua ENDPOINT TABLE CHANGES [PAD]")

local db = assert(ds.dynamodb({
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

local created = check("CreateTable", db:create_table({
  TableName = table_name,
  AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
  KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
  BillingMode = "PAY_PER_REQUEST",
  StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" },
}))
local arn = created.TableDescription.LatestStreamArn

math.randomseed(7, 0)
local rnd = math.random
local WORDS = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
  "india", "juliet", "kilo", "lima", "mike", "müller", "café" }
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(n)  -- n*4 base64 characters of random bytes
  local t = {}
  for j = 1, n * 4 do local c = rnd(1, 64); t[j] = B64:sub(c, c) end
  return table.concat(t)
end
local function key(i) return string.format("ITEM#%07d", i) end

-- A realistic item of about 500 bytes (plus pad): all the AttributeValue types.
local function item(i, version)
  local it = {
    pk = { S = key(i) },
    name = { S = WORDS[rnd(#WORDS)] .. " " .. WORDS[rnd(#WORDS)] },
    version = { N = tostring(version) },
    price = { N = string.format("%d.%02d", rnd(0, 9999), rnd(0, 99)) },
    qty = { N = tostring(rnd(1, 500)) },
    ledger = { N = (i % 10 == 0) and "12345678901234567890123456789012345678" or tostring(rnd(1, 1e9)) },
    active = { BOOL = rnd(2) == 1 },
    deleted_at = { NULL = true },
    tags = { SS = { "t" .. rnd(1, 5), "u" .. rnd(1, 5), "v" .. rnd(1, 5) } },
    scores = { NS = { tostring(rnd(1, 100)), tostring(rnd(101, 200)) } },
    blob = { B = b64(8) },
    address = { M = {
      street = { S = rnd(1, 999) .. " " .. WORDS[rnd(#WORDS)] .. " street" },
      zip = { S = string.format("%05d", rnd(0, 99999)) },
      geo = { M = { lat = { N = string.format("%.6f", rnd() * 180 - 90) },
                    lon = { N = string.format("%.6f", rnd() * 360 - 180) } } },
    } },
    lines = { L = {
      { M = { sku = { S = "SKU-" .. rnd(1e7, 9e7) }, qty = { N = tostring(rnd(1, 9)) } } },
      { M = { sku = { S = "SKU-" .. rnd(1e7, 9e7) }, qty = { N = tostring(rnd(1, 9)) } } },
    } },
    notes = { S = WORDS[rnd(#WORDS)] .. " " .. WORDS[rnd(#WORDS)] .. " " .. WORDS[rnd(#WORDS)] },
  }
  if pad > 0 then it.pad = { S = b64(pad // 4) } end
  return it
end

local function batch(requests)
  local pending = { [table_name] = requests }
  for _ = 1, 50 do
    local res = check("BatchWriteItem", db:batch_write_item({ RequestItems = pending }))
    local un = res.UnprocessedItems
    if un == nil or un == ds.null or next(un) == nil then return end
    pending = un
    ds.sleep(0.05)
  end
  error("BatchWriteItem: unprocessed items after 50 tries")
end

local function write_many(n, make)  -- make(j) -> one WriteRequest
  local reqs = {}
  for j = 1, n do
    reqs[#reqs + 1] = make(j)
    if #reqs == 25 then batch(reqs); reqs = {} end
  end
  if #reqs > 0 then batch(reqs) end
end

-- Split: 50% inserts, 28% modifies by put, 2% modifies by UpdateItem, 20% deletes.
local n_ins = total // 2
local n_upd = total // 50
local n_del = total // 5
local n_mod = total - n_ins - n_upd - n_del
local t0 = os.time()

write_many(n_ins, function(j) return { PutRequest = { Item = item(j, 1) } } end)
write_many(n_mod, function(j) return { PutRequest = { Item = item(j, 2) } } end)
for j = 1, n_upd do
  check("UpdateItem", db:update_item({
    TableName = table_name,
    Key = { pk = { S = key(n_ins - j + 1) } },
    UpdateExpression = "SET version = version + :one, notes = :n",
    ExpressionAttributeValues = { [":one"] = { N = "1" }, [":n"] = { S = "updated " .. j } },
  }))
end
write_many(n_del, function(j)
  return { DeleteRequest = { Key = { pk = { S = key(n_ins - n_upd - j + 1) } } } }
end)

io.stderr:write(string.format("prewrite: %d inserts, %d put-modifies, %d update-modifies, %d deletes in ~%ds\n",
  n_ins, n_mod, n_upd, n_del, os.time() - t0))
print("STREAM_ARN=" .. arn)
print("CHANGES=" .. (n_ins + n_mod + n_upd + n_del))
