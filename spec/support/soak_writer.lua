-- A writer process for spec/robustness/soak_spec.lua and
-- spec/robustness/crash_spec.lua: makes changes (inserts, updates, deletes) to
-- a table in DynamoDB Local, straight to it (never through the fault proxy: a
-- reset after a write would leave it unknown whether the write happened), and
-- records each one.
--
--   lua5.4|luajit spec/support/soak_writer.lua endpoint=URL namespace=NS table=NAME \
--     journal=PATH done=PATH [keys=600] [changes=6000] [batch=25] [pause=0] \
--     [seed=1] [stop_file=PATH]
--
-- Every item is { pk = "kNNNN", v = <version of that key>, w = <global write
-- number> }. A key's version grows by one with every put, and a key is only
-- deleted when it exists, so each change has an identity and a per-key order:
--   put of version v        -> ord 2*v      (INSERT when the key was absent, else MODIFY)
--   delete of version v     -> ord 2*v + 1  (REMOVE; its OldImage holds v)
-- A change is "key ord op" with op I, M or D.
--
-- Writes go in BatchWriteItem calls of up to `batch` distinct keys (DynamoDB
-- refuses two requests for one key in a batch). After each call succeeds its
-- changes are appended to the journal (one line each, flushed). At the end
-- (after `changes` changes, or once stop_file exists) the total goes to the
-- done file (written to a temporary name, then renamed) and to stdout as
-- "TOTAL n". Any failure exits with status 1 and a message on stderr.
local ds = require("dynamodb_stream")

local args = {}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k then io.stderr:write("soak_writer: bad argument " .. a .. "\n") os.exit(2) end
  args[k] = v
end
local function need(name)
  local v = args[name]
  if not v or v == "" then io.stderr:write("soak_writer: " .. name .. "= is required\n") os.exit(2) end
  return v
end

local endpoint, namespace, table_name = need("endpoint"), need("namespace"), need("table")
local journal_path, done_path = need("journal"), need("done")
local tointeger = math.tointeger or function(x) return x and x == math.floor(x) and x or nil end
local nkeys = tointeger(tonumber(args.keys or "600"))
local nchanges = tointeger(tonumber(args.changes or "6000"))
local batch = tointeger(tonumber(args.batch or "25"))
local pause = tonumber(args.pause or "0")
local stop_file = args.stop_file
math.randomseed(tointeger(tonumber(args.seed or "1")))
assert(batch >= 1 and batch <= 25 and batch <= nkeys, "batch must be 1..25 and at most keys")

local ddb = ds.dynamodb({
  endpoint = endpoint, region = "us-east-1",
  credentials = { access_key_id = namespace, secret_access_key = "local-secret" },
  max_attempts = 1, -- a resent write would be fine here, but keep one call = one write
})

local journal = assert(io.open(journal_path, "a"))
journal:setvbuf("full")

local function fail(msg)
  io.stderr:write("soak_writer: " .. msg .. "\n")
  journal:close()
  os.exit(1)
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local version = {} -- key -> last version written (nil: never written)
local present = {} -- key -> true while the item exists
local keys = {}
for i = 1, nkeys do keys[i] = string.format("k%04d", i) end

local written, w = 0, 0
while written < nchanges and not (stop_file and exists(stop_file)) do
  -- Pick distinct keys: a partial Fisher-Yates shuffle.
  local n = math.min(batch, nchanges - written)
  for i = 1, n do
    local j = math.random(i, nkeys)
    keys[i], keys[j] = keys[j], keys[i]
  end
  local requests, changes = {}, {}
  for i = 1, n do
    local key = keys[i]
    local v = version[key] or 0
    if present[key] and math.random() < 0.2 then
      requests[i] = { DeleteRequest = { Key = ds.marshall({ pk = key }) } }
      changes[i] = { key, 2 * v + 1, "D" }
    else
      w = w + 1
      requests[i] = { PutRequest = { Item = ds.marshall({ pk = key, v = v + 1, w = w }) } }
      changes[i] = { key, 2 * (v + 1), present[key] and "M" or "I" }
    end
  end

  local pending = { [table_name] = requests }
  for attempt = 1, 20 do
    local res, err = ddb:batch_write_item({ RequestItems = pending })
    if not res then fail("BatchWriteItem failed: " .. tostring(err)) end
    local left = res.UnprocessedItems
    if type(left) ~= "table" or next(left) == nil then pending = nil break end
    pending = left
    ds.sleep(0.05 * attempt)
  end
  if pending then fail("BatchWriteItem left items unprocessed after 20 attempts") end

  for _, c in ipairs(changes) do
    local key, ord, op = c[1], c[2], c[3]
    if op == "D" then
      present[key] = nil
    else
      present[key], version[key] = true, math.floor(ord / 2)
    end
    journal:write(key, " ", ord, " ", op, "\n")
  end
  journal:flush()
  written = written + n
  if pause > 0 then ds.sleep(pause) end
end
journal:close()

local tmp = done_path .. ".tmp"
local f = assert(io.open(tmp, "w"))
f:write(written, "\n")
f:close()
assert(os.rename(tmp, done_path))
io.stdout:write("TOTAL ", written, "\n")
