--- Compares two tables by value (`ds.verify`): the keys missing from the target,
-- those only in the target, and those whose items differ.
--
-- Never both tables in memory: the source is scanned page by page and each page's keys
-- are read from the target (BatchGetItem); then only the key attributes of the target
-- are scanned and looked up in the source, to find what only the target holds.
-- @module dynamodb_stream.verify

local batch_write = require("dynamodb_stream.batch_write")
local compat = require("dynamodb_stream.compat")
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local table_key = require("dynamodb_stream.table_key")
local pages = require("dynamodb_stream.pages")
local retry = require("dynamodb_stream.retry")
local runtime = require("dynamodb_stream.runtime")

local verify = {}

local canonical_number, identity = batch_write.canonical_number, batch_write.identity

local MAX_SEGMENTS = 1000000 -- DynamoDB's limit on TotalSegments
local KEYS_PER_CALL = 100    -- DynamoDB's limit of keys in one BatchGetItem
local MAX_IN_FLIGHT = 16     -- BatchGetItem calls at once
local MAX_ATTEMPTS = 10      -- reads of one key that keep coming back in UnprocessedKeys
local OPTIONS = {
  source = true, target = true, segments = true, dynamodb = true, target_dynamodb = true,
  client = true, on_difference = true,
}

-- ---------------------------------------------------------------- values

-- An AttributeValue's type and value, or nil when av is no AttributeValue.
local function type_of(av)
  if type(av) ~= "table" then return nil end
  local kind, value = next(av)
  if kind == nil or next(av, kind) ~= nil then return nil end
  return kind, value
end

local function itself(text) return text end

-- The text that says which member of a set a member is (a set never holds two
-- members with one text). Binary is base64 in wire shape, and DynamoDB (as
-- core's decoder) takes only its canonical form: one text for one byte string.
local MEMBER = { SS = itself, NS = canonical_number, BS = itself }

local function same_set(kind, a, b)
  local member = MEMBER[kind]
  local in_a, count = {}, 0
  for _, m in ipairs(a) do
    local text = member(m)
    if not in_a[text] then in_a[text], count = true, count + 1 end
  end
  local in_b = {}
  for _, m in ipairs(b) do
    local text = member(m)
    if not in_a[text] then return false end
    if not in_b[text] then in_b[text], count = true, count - 1 end
  end
  return count == 0
end

local same_value -- (kind, a, b): whether two values of one type are equal

local function same_av(a, b)
  local kind_a, value_a = type_of(a)
  local kind_b, value_b = type_of(b)
  if kind_a == nil or kind_b == nil then
    error("verify: not an AttributeValue: " .. tostring(kind_a == nil and a or b), 0)
  end
  return kind_a == kind_b and same_value(kind_a, value_a, value_b)
end

local function same_map(a, b)
  for name, av in pairs(a) do
    if b[name] == nil or not same_av(av, b[name]) then return false end
  end
  for name in pairs(b) do
    if a[name] == nil then return false end
  end
  return true
end

local SAME = {
  S = function(a, b) return a == b end,
  N = function(a, b) return a == b or canonical_number(a) == canonical_number(b) end,
  B = function(a, b) return a == b end, -- canonical base64: equal bytes, equal text
  BOOL = function(a, b) return a == b end,
  NULL = function(a, b) return a == b end,
  SS = function(a, b) return same_set("SS", a, b) end,
  NS = function(a, b) return same_set("NS", a, b) end,
  BS = function(a, b) return same_set("BS", a, b) end,
  M = same_map,
  L = function(a, b)
    if #a ~= #b then return false end
    for i = 1, #a do
      if not same_av(a[i], b[i]) then return false end
    end
    return true
  end,
}

same_value = function(kind, a, b)
  local same = SAME[kind]
  if not same then error("verify: unknown AttributeValue type " .. tostring(kind), 0) end
  return same(a, b)
end

--- Whether two AttributeValues in wire shape (`{ N = "1" }`) hold one DynamoDB value.
-- Map keys in any order, lists in order, sets (`SS`, `NS`, `BS`) in any order, numbers
-- as numbers (`"1"`, `"1.0"` and `"10E-1"` are equal), binary by its bytes; two types
-- are never equal (`{ N = "1" }` and `{ S = "1" }` differ).
-- @tparam table a an AttributeValue
-- @tparam table b another
-- @treturn boolean; raises on a value that is no AttributeValue
function verify.equal(a, b)
  return same_av(a, b)
end

--- Whether two items (attribute maps in wire shape) hold the same attributes and values.
-- @tparam table a an item (`{ pk = { S = "a" }, ... }`)
-- @tparam table b another
-- @treturn boolean (see `equal`)
function verify.equal_items(a, b)
  return same_map(a, b)
end

-- ---------------------------------------------------------------- the tables

local function fail(message, level)
  error("verify: " .. message, level + 1)
end

local function is_client(c)
  local t = type(c)
  if t ~= "table" and t ~= "userdata" then return false end
  local ok, complete = pcall(function() return type(c.call) == "function" and type(c.call_many) == "function" end)
  return ok and complete
end

-- opts checked (raising at level) -> the source client, the target client.
local function checked_options(opts, level)
  level = level + 1
  if type(opts) ~= "table" then fail("opts must be a table", level) end
  for name in pairs(opts) do
    if not OPTIONS[name] then fail("unknown option " .. tostring(name), level) end
  end
  for _, name in ipairs({ "source", "target" }) do
    if type(opts[name]) ~= "string" or opts[name] == "" then
      fail("opts." .. name .. " must be a table name (a non-empty string)", level)
    end
  end
  local segments = opts.segments
  if segments ~= nil and (not compat.is_integer(segments) or segments < 1 or segments > MAX_SEGMENTS) then
    fail("opts.segments must be an integer from 1 to " .. MAX_SEGMENTS, level)
  end
  if opts.on_difference ~= nil and type(opts.on_difference) ~= "function" then
    fail("opts.on_difference must be a function", level)
  end
  for _, name in ipairs({ "dynamodb", "target_dynamodb" }) do
    if opts[name] ~= nil and not is_client(opts[name]) then
      fail("opts." .. name .. " must be a DynamoDB client (with call and call_many)", level)
    end
  end
  if opts.client ~= nil and type(opts.client) ~= "table" then fail("opts.client must be a table of client options", level) end
  local source = opts.dynamodb
  if source == nil then
    local ok, made = pcall(require("dynamodb_stream.dynamodb").new, opts.client)
    if not ok then fail(tostring(made):gsub("^[^:]*:%d+: ", ""), level) end
    source = made
  end
  return source, opts.target_dynamodb or source
end

local function quoted(name)
  return "'" .. name .. "'"
end

-- The key attributes of an item (wire shape) and its identity, or nil, err.
local function key_of(item, names, table_name)
  local key = {}
  for _, name in ipairs(names) do key[name] = type(item) == "table" and item[name] or nil end
  local id, why = identity(key, names)
  if not id then
    return nil, errors.new({ code = "InvalidResponse", operation = "Scan",
      message = "an item of table " .. quoted(table_name) .. ": " .. why })
  end
  return key, id
end

-- Reads the items of keys ({ key, id } entries) from a table: consistent reads,
-- KEYS_PER_CALL keys a call, up to MAX_IN_FLIGHT calls at once; keys that come back in
-- UnprocessedKeys are asked again after the client's backoff. -> { [id] = item } (a key
-- without an item is not there), or nil, err.
local function batch_get(client, policy, table_name, names, entries, projection)
  local found, waiting = {}, entries
  for _, entry in ipairs(entries) do entry.attempts = 0 end
  while #waiting > 0 do
    local bodies, asked = {}, {}
    for first = 1, #waiting, KEYS_PER_CALL do
      local keys = {}
      for i = first, math.min(first + KEYS_PER_CALL - 1, #waiting) do
        keys[#keys + 1] = waiting[i].key
        asked[waiting[i].id] = waiting[i]
      end
      local request = { Keys = keys, ConsistentRead = true }
      if projection then
        request.ProjectionExpression, request.ExpressionAttributeNames = projection.expression, projection.names
      end
      bodies[#bodies + 1] = { RequestItems = { [table_name] = request } }
    end
    local answers, errs = client:call_many("BatchGetItem", bodies, nil, math.min(#bodies, MAX_IN_FLIGHT))
    local again, attempt = {}, 0
    for k = 1, #bodies do
      local answer = answers[k]
      if not answer then
        return nil, errs[k] or errors.new({ code = "InvalidResponse", operation = "BatchGetItem",
          message = "call_many gave neither an answer nor an error" })
      end
      local items = type(answer.Responses) == "table" and answer.Responses[table_name]
      for _, item in ipairs(type(items) == "table" and items or {}) do
        local id = identity(item, names)
        if id then found[id] = item end
      end
      local unprocessed = type(answer.UnprocessedKeys) == "table" and answer.UnprocessedKeys[table_name]
      local keys = type(unprocessed) == "table" and unprocessed.Keys
      for _, key in ipairs(type(keys) == "table" and keys or {}) do
        local entry = asked[identity(key, names) or ""]
        if entry then -- a key never asked (a broken answer) has nothing to wait for
          asked[entry.id] = nil
          entry.attempts = entry.attempts + 1
          if entry.attempts >= MAX_ATTEMPTS then
            return nil, errors.new({ code = "UnprocessedKeys", operation = "BatchGetItem", retryable = true,
              message = ("a key of table %s still unprocessed after %d attempts"):format(quoted(table_name), MAX_ATTEMPTS) })
          end
          again[#again + 1] = entry
          attempt = math.max(attempt, entry.attempts)
        end
      end
    end
    if #again > 0 then policy.sleep(policy:backoff(attempt)) end
    waiting = again
  end
  return found
end

-- The scan's pages: page, or false, err once.
local function scan(client, table_name, segments, projection)
  local params = { TableName = table_name, ConsistentRead = true, segments = segments }
  if projection then
    params.ProjectionExpression, params.ExpressionAttributeNames = projection.expression, projection.names
  end
  return pages.scan(client, params, "verify")
end

-- A page's items as { key, id, item } entries, or nil, err.
local function entries_of(page, names, table_name)
  local entries = {}
  for i, item in ipairs(type(page.Items) == "table" and page.Items or {}) do
    local key, id = key_of(item, names, table_name)
    if not key then return nil, id end
    entries[i] = { key = key, id = id, item = item }
  end
  return entries
end

--- Compares two tables by value (`ds.verify`).
--
-- Scans the source page by page (consistent reads, `segments` in parallel) and reads
-- each page's keys from the target with BatchGetItem (consistent, 100 keys a call,
-- `UnprocessedKeys` asked again after the client's backoff): a key the target lacks is
-- `missing`, an item that differs in any attribute is `different` (compared as values:
-- see `equal`). Then scans the target's key attributes only and reads them from the
-- source: a key only the target holds is `extra`. At most one page of each table (per
-- segment) is held at a time. Items changed while it runs may show as differences.
-- @tparam table opts `source`, `target` (table names, required); `segments` (1 to
-- 1000000, default 1); `dynamodb` (the source's client: anything with `call` and
-- `call_many`, such as `ds.dynamodb()`), `target_dynamodb` (default `dynamodb`), or
-- `client` (options for `ds.dynamodb` when no client is given); `on_difference`
-- (`function(kind, key, source_item, target_item)`: kind `"missing"`, `"extra"` or
-- `"different"`, key and items as `ds.unmarshall` gives them, nil where there is none;
-- an error it raises is raised by verify)
-- @treturn table `{ source_items = n, target_items = n, missing = n, extra = n,
-- different = n }`, or `nil, err` (a missing table: `ResourceNotFoundException` naming
-- it; key schemas that differ in names or types: `KeySchemaMismatch`; a failed call);
-- raises on bad options
function verify.tables(opts)
  local source_client, target_client = checked_options(opts, 2)
  local source, target, segments = opts.source, opts.target, opts.segments or 1
  local on_difference = opts.on_difference

  local source_key, err = table_key.read(source_client, source)
  if not source_key then return nil, err end
  local target_key
  target_key, err = table_key.read(target_client, target)
  if not target_key then return nil, err end
  if source_key.text ~= target_key.text then
    return nil, errors.new({ code = "KeySchemaMismatch", retryable = false, message = ("table %s has the key %s, table %s the key %s")
      :format(quoted(source), source_key.text, quoted(target), target_key.text) })
  end
  local names = source_key.names
  local projection = { names = {} }
  local placeholders = {}
  for i, name in ipairs(names) do
    placeholders[i] = "#k" .. i
    projection.names["#k" .. i] = name
  end
  projection.expression = table.concat(placeholders, ", ")

  local summary = { source_items = 0, target_items = 0, missing = 0, extra = 0, different = 0 }
  local function report(kind, entry, source_item, target_item)
    summary[kind] = summary[kind] + 1
    if on_difference then
      on_difference(kind, core.unmarshall(entry.key), source_item and core.unmarshall(source_item),
        target_item and core.unmarshall(target_item))
    end
  end
  local source_policy = source_client._retry or retry.policy({ max_attempts = MAX_ATTEMPTS, sleep = runtime.sleep })
  local target_policy = target_client._retry or source_policy

  for page, scan_err in scan(source_client, source, segments) do
    if not page then return nil, scan_err end
    local entries, bad = entries_of(page, names, source)
    if not entries then return nil, bad end
    summary.source_items = summary.source_items + #entries
    local in_target, get_err = batch_get(target_client, target_policy, target, names, entries)
    if not in_target then return nil, get_err end
    for _, entry in ipairs(entries) do
      local copy = in_target[entry.id]
      if copy == nil then
        report("missing", entry, entry.item, nil)
      elseif not same_map(entry.item, copy) then
        report("different", entry, entry.item, copy)
      end
    end
  end

  for page, scan_err in scan(target_client, target, segments, projection) do
    if not page then return nil, scan_err end
    local entries, bad = entries_of(page, names, target)
    if not entries then return nil, bad end
    summary.target_items = summary.target_items + #entries
    local in_source, get_err = batch_get(source_client, source_policy, source, names, entries, projection)
    if not in_source then return nil, get_err end
    local extras = {}
    for _, entry in ipairs(entries) do
      if in_source[entry.id] == nil then extras[#extras + 1] = entry end
    end
    if #extras > 0 then
      -- the whole items, for on_difference (the scan read only their keys); one
      -- deleted since the scan is reported with its key alone
      local items
      items, get_err = batch_get(target_client, target_policy, target, names, extras)
      if not items then return nil, get_err end
      for _, entry in ipairs(extras) do
        report("extra", entry, nil, items[entry.id] or entry.key)
      end
    end
  end
  return summary
end

return verify
