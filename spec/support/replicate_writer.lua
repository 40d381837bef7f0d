-- A writer process for spec/integration/replicate_spec.lua: keeps changing a
-- table in DynamoDB Local, one call at a time, until a stop file exists (or
-- WRITER_MAX changes were made): PutItem, UpdateItem (SET, REMOVE, ADD to a
-- number and to sets, DELETE from a set) and DeleteItem over a small key
-- space, with every attribute type and hostile values (38-digit, negative and
-- exponent numbers, empty and non-ASCII strings, binary with every byte,
-- nested lists and maps, empty ones) and a few items near the 400 KB limit.
-- Random but seeded. Everything comes from the environment:
--
--   DDB_LOCAL_ENDPOINT   DynamoDB Local (as scripts/with-ddb-local sets it)
--   WRITER_NAMESPACE     access key id (a DynamoDB Local namespace)
--   WRITER_TABLE         the table (key "pk", string; and "sk", number, when WRITER_SORT_KEYS > 0)
--   WRITER_STOP          stop once this file exists
--   WRITER_SEED (1), WRITER_KEYS (150: pk values k001..), WRITER_FIRST_KEY (1: the first
--   pk, k001), WRITER_SORT_KEYS (0: no sort key;
--   N: sk = 1..N for each pk), WRITER_BIG (0.01: share of puts near 400 KB),
--   WRITER_PAUSE (0: seconds between calls), WRITER_MAX (no limit)
--
-- Every item written carries `ver`, the writer's change counter at that
-- write, so that a stale copy shows as an older ver. At the end it prints
-- "CHANGES n puts=a updates=b deletes=c" on stdout; any failed call exits
-- with status 1 and the error on stderr.
local ds = require("dynamodb_stream")

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then io.stderr:write("replicate_writer: ", name, " is required\n") os.exit(2) end
    return default
  end
  return v
end

local endpoint, namespace, table_name = env("DDB_LOCAL_ENDPOINT"), env("WRITER_NAMESPACE"), env("WRITER_TABLE")
local stop_file = env("WRITER_STOP")
local nkeys, nsort = tonumber(env("WRITER_KEYS", "150")), tonumber(env("WRITER_SORT_KEYS", "0"))
local first_key = tonumber(env("WRITER_FIRST_KEY", "1"))
local big_share, pause = tonumber(env("WRITER_BIG", "0.01")), tonumber(env("WRITER_PAUSE", "0"))
local max_changes = tonumber(env("WRITER_MAX", "1e18"))
math.randomseed(tonumber(env("WRITER_SEED", "1")))

local ddb = ds.dynamodb({
  endpoint = endpoint, region = "us-east-1",
  credentials = { access_key_id = namespace, secret_access_key = "local-secret" },
})

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = { math.floor(n / 262144) % 64, math.floor(n / 4096) % 64, math.floor(n / 64) % 64, n % 64 }
    out[#out + 1] = B64:sub(q[1] + 1, q[1] + 1) .. B64:sub(q[2] + 1, q[2] + 1)
      .. (b and B64:sub(q[3] + 1, q[3] + 1) or "=") .. (c and B64:sub(q[4] + 1, q[4] + 1) or "=")
  end
  return table.concat(out)
end

local function pick(list) return list[math.random(#list)] end

-- Numbers as DynamoDB takes them: 38 significant digits, signs, exponents,
-- trailing and leading zeros, the extremes of the range.
local NUMBERS = {
  "0", "1", "-1", "42", "2.50", "-0.001", "0.1", "3.14159265358979323846264338327950288",
  "12345678901234567890123456789012345678", "-98765432109876543210987654321098765432",
  "1E+3", "1e3", "-2.5e-7", "6.02214076E23", "9.9999999999999999999999999999999999999E+125",
  "-9.9999999999999999999999999999999999999E+125", "1E-130", "-1E-130", "00017", "1.000",
  "9007199254740993", "-9223372036854775809", "18446744073709551616", "0.30000000000000004",
}
local STRINGS = { "", "a", "é", "日本語", "emoji 🙂", "quote \" and \\ backslash", "tab\tnew\nline", "nul\0byte",
  "<script>", "   spaced   ", ("x"):rep(300) }

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

-- n distinct elements made by gen (sets hold no duplicates; numbers compare
-- by value, so "1E+3" and "1e3" may not share a set: keyed by a canonical form).
local function distinct(n, gen, canon)
  local seen, list = {}, {}
  for _ = 1, n * 3 do
    local v = gen()
    local k = canon and canon(v) or v
    if not seen[k] then seen[k], list[#list + 1] = true, v end
    if #list == n then break end
  end
  return list
end
local function number_value(s) return ("%.17g"):format(tonumber(s)) .. "|" .. s:gsub("[eE].*", ""):gsub("[^%d]", ""):gsub("^0+", ""):gsub("0+$", "") end

local value
-- A random AttributeValue (wire form); depth bounds the nesting.
function value(depth)
  local kinds = { "S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS" }
  if depth < 3 then kinds[#kinds + 1], kinds[#kinds + 2] = "L", "M" end
  local kind = pick(kinds)
  if kind == "S" then return { S = pick(STRINGS) } end
  if kind == "N" then return { N = pick(NUMBERS) } end
  if kind == "B" then return { B = base64(random_bytes(math.random(0, 40))) } end
  if kind == "BOOL" then return { BOOL = math.random() < 0.5 } end
  if kind == "NULL" then return { NULL = true } end
  if kind == "SS" then return { SS = distinct(math.random(1, 5), function() return pick(STRINGS) .. math.random(9) end) } end
  if kind == "NS" then return { NS = distinct(math.random(1, 5), function() return pick(NUMBERS) end, number_value) } end
  if kind == "BS" then return { BS = distinct(math.random(1, 4), function() return base64(random_bytes(math.random(1, 12))) end) } end
  if kind == "L" then
    local l = setmetatable({}, ds.list_mt) -- an empty one encodes as []
    for i = 1, math.random(0, 4) do l[i] = value(depth + 1) end
    return { L = l }
  end
  local m = {}
  for i = 1, math.random(0, 4) do m["f" .. i .. pick({ "", ".dot", " space", "é" })] = value(depth + 1) end
  return { M = m }
end

local function key_of(i, j)
  local key = { pk = { S = ("k%03d"):format(i) } }
  if nsort > 0 then key.sk = { N = tostring(j) } end
  return key
end

local changes, puts, updates, deletes = 0, 0, 0, 0
local function check(what, res, err)
  if not res then
    io.stderr:write("replicate_writer: ", what, " failed after ", changes, " changes: ", tostring(err), "\n")
    os.exit(1)
  end
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- Size of an item near the limit: 400 KB (409,600 bytes) less a margin for
-- its other attributes and a later UpdateItem's additions.
local BIG_SIZE = 409600 - 8000

while changes < max_changes and not exists(stop_file) do
  local key = key_of(first_key + math.random(nkeys) - 1, math.random(math.max(nsort, 1)))
  local r = math.random()
  changes = changes + 1
  if r < 0.45 then
    local item = { ver = { N = tostring(changes) } }
    for k, v in pairs(key) do item[k] = v end
    if math.random() < big_share then
      item.big = { S = ("%d "):format(changes) .. ("B"):rep(BIG_SIZE) }
    else
      for i = 1, math.random(0, 6) do item["a" .. i] = value(0) end
    end
    puts = puts + 1
    check("PutItem", ddb:put_item({ TableName = table_name, Item = item }))
  elseif r < 0.8 then
    local names, values = { ["#v"] = "ver" }, { [":v"] = { N = tostring(changes) } }
    local clauses, taken = { SET = { "#v = :v" }, REMOVE = {}, ADD = {}, DELETE = {} }, {}
    for i = 1, math.random(0, 3) do
      local which, attr, action, v = math.random(4)
      if which <= 2 then
        attr = "a" .. math.random(6)
        action, v = which == 1 and "SET" or "REMOVE", which == 1 and value(0) or nil
      else
        -- ADD and DELETE need an attribute of the right type: names of their own;
        -- DELETE takes sets only, so a number is always ADDed
        local kind = pick({ "n", "ss", "ns", "bs" })
        attr, action = "u" .. kind, (which == 3 or kind == "n") and "ADD" or "DELETE"
        v = kind == "n" and { N = pick({ "1", "-2.5", "12345678901234567890", "1e-5", "-7E+2" }) }
          or kind == "ss" and { SS = { pick(STRINGS) .. "u" } }
          or kind == "ns" and { NS = { tostring(math.random(-5, 5)) } }
          or { BS = { base64(string.char(math.random(0, 3))) } }
      end
      if not taken[attr] then -- one action per attribute (paths may not overlap)
        taken[attr], names["#a" .. i] = true, attr
        local list = clauses[action]
        if action == "SET" then list[#list + 1] = "#a" .. i .. " = :a" .. i
        elseif action == "REMOVE" then list[#list + 1] = "#a" .. i
        else list[#list + 1] = "#a" .. i .. " :a" .. i end
        values[":a" .. i] = v
      end
    end
    local parts = {}
    for _, action in ipairs({ "SET", "REMOVE", "ADD", "DELETE" }) do
      if #clauses[action] > 0 then parts[#parts + 1] = action .. " " .. table.concat(clauses[action], ", ") end
    end
    local text = table.concat(parts, " ")
    updates = updates + 1
    check("UpdateItem " .. text, ddb:update_item({ TableName = table_name, Key = key, UpdateExpression = text,
      ExpressionAttributeNames = names, ExpressionAttributeValues = values }))
  else
    deletes = deletes + 1
    check("DeleteItem", ddb:delete_item({ TableName = table_name, Key = key }))
  end
  if pause > 0 then ds.sleep(pause) end
end
io.stdout:write(("CHANGES %d puts=%d updates=%d deletes=%d\n"):format(changes, puts, updates, deletes))
