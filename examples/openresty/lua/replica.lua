-- A live replica of one DynamoDB table in a lua_shared_dict, kept by exactly
-- one worker per node (the lock in openresty.poller) and served by all.
--
-- Environment (list each in an `env` directive): DS_TABLE (the table), DS_KEY
-- (its hash key attribute, default "pk"), and the usual AWS_* variables.
--
-- Shared dict "replica":
--   item:<key>   the item as JSON           checkpoint   the stream position
--   stat:*       counters and times          poller       the lock (holder's pid)
-- A missing or wrong build of the C core is the usual first error: say which
-- build nginx needs and where it looked.
local function require_module(name)
  local ok, module = pcall(require, name)
  if ok then return module end
  local message = tostring(module)
  if message:find("dynamodb_stream.core", 1, true) then
    error("dynamodb_stream: the LuaJIT build of the C core (dynamodb_stream/core.so) is missing or"
      .. " not for LuaJIT: run `make LUA=luajit` in the repository root (it builds build-luajit/)."
      .. " lua_package_cpath searched: " .. package.cpath .. "\n" .. message, 0)
  end
  error(message, 0)
end

local ds = require_module("dynamodb_stream")
local openresty = require_module("dynamodb_stream.openresty")

local M = {}

local DICT = "replica"

local function dict() return ngx.shared[DICT] end

-- Counts an error and keeps the last one for /stats; start and run failures
-- come here too (already logged by the poller).
local function note_error(err, log)
  local d = dict()
  d:incr("stat:errors", 1, 0)
  d:set("stat:last_error", tostring(err))
  if log then ngx.log(ngx.WARN, "dynamodb_stream: ", tostring(err)) end
end

-- Makes the clients and the stream when this worker becomes the poller.
local function start()
  local table_name = assert(os.getenv("DS_TABLE"), "DS_TABLE is not set (and listed in an env directive)")
  local key_attr = os.getenv("DS_KEY") or "pk"
  local d = dict()
  local ddb = ds.dynamodb()
  local described, err = ddb:describe_table({ TableName = table_name })
  if not described then error("DescribeTable " .. table_name .. ": " .. tostring(err)) end
  local arn = described.Table.LatestStreamArn
  if not arn then error("table " .. table_name .. " has no stream") end

  local stream = ds.new(ds.client(), arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON" })
  local function put(item, keys)
    d:set("item:" .. tostring(keys[key_attr]), ds.json_encode(item))
  end
  stream:on("insert record", put)
  stream:on("modify record", function(new, _, keys) put(new, keys) end)
  stream:on("remove record", function(_, keys) d:delete("item:" .. tostring(keys[key_attr])) end)
  stream:on("record", function(record)
    d:incr("stat:records", 1, 0)
    local created = record.dynamodb and record.dynamodb.ApproximateCreationDateTime
    if type(created) == "number" then
      d:set("stat:last_created", created)
      d:set("stat:lag", math.max(0, ngx.now() - created))
    end
  end)
  stream:on("error", function(err) note_error(err, true) end)

  -- Saved after every fetch: also the moment to note the shards and the poll time.
  local store = openresty.checkpoint(DICT, "checkpoint")
  local counting = {
    load = function() return store:load() end,
    save = function(_, state)
      local open, done = 0, 0
      for _, shard in pairs(state) do
        if shard.finished then done = done + 1 else open = open + 1 end
      end
      d:set("stat:shards", open)
      d:set("stat:shards_finished", done)
      d:set("stat:last_poll", ngx.now())
      -- the consumer's own metrics (lag, caught_up, pages, throttles, per shard), for /stats
      d:set("stat:stream", ds.json_encode(stream:stats()))
      return store:save(state)
    end,
  }
  d:set("stat:stream_arn", arn)
  return stream, { checkpoint = counting, sleep = ngx.sleep, interval = 0.05, max_interval = 0.5 }
end

function M.start_poller()
  M.lock = openresty.poller({ dict = DICT, key = "poller", start = start, ttl = 3, retry = 0.5,
    on_error = function(what, err) note_error(what .. " failed: " .. tostring(err)) end })
end

local function json(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(body)
end

function M.items()
  local d = dict()
  local keys = {}
  for _, k in ipairs(d:get_keys(0)) do
    if k:sub(1, 5) == "item:" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = d:get(k)
    if v then out[#out + 1] = v end
  end
  json(200, "[" .. table.concat(out, ",") .. "]")
end

-- GET /items/<pk>: the key is taken from the request line and decoded once
-- ($uri is decoded already, with its slashes merged), so "100%25" is "100%".
function M.item()
  local raw = ngx.var.request_uri:match("^/items/([^?#]*)")
  local pk = ngx.unescape_uri(((raw or ""):gsub("%+", "%%2B"))) -- "+" is a plus sign in a path
  local v = dict():get("item:" .. pk)
  if not v then return json(404, '{"error":"not found"}') end
  json(200, v)
end

function M.stats()
  local d = dict()
  local holder = d:get("poller")
  local last_created = d:get("stat:last_created")
  json(200, ds.json_encode({
    records = d:get("stat:records") or 0,
    lag_seconds = d:get("stat:lag") or ds.null,
    last_record_age = last_created and math.max(0, ngx.now() - last_created) or ds.null,
    shards = d:get("stat:shards") or 0,
    shards_finished = d:get("stat:shards_finished") or 0,
    errors = d:get("stat:errors") or 0,
    last_error = d:get("stat:last_error") or ds.null,
    last_poll = d:get("stat:last_poll") or ds.null,
    poller_pid = holder and tonumber(holder:match("^(%d+)")) or ds.null,
    worker_pid = ngx.worker.pid(),
    stream_arn = d:get("stat:stream_arn") or ds.null,
    stream = d:get("stat:stream") and ds.json_decode(d:get("stat:stream")) or ds.null,
  }))
end

return M
