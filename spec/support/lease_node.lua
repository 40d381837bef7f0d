-- One nginx "node" of spec/integration/leases/openresty_leases_spec.lua: a
-- poller (dynamodb_stream.openresty, one per node) running a stream with the
-- leases option over the fake Streams endpoint and a lease table in DynamoDB
-- Local. Needs `lua_shared_dict lease_node 1m;`.
--   init_worker_by_lua_block { require("lease_node").start({ node = "a",
--     endpoint = URL, arn = ARN, ddb = URL, namespace = NS, table = NAME,
--     lease_duration = S, log = PATH }) }
--   location = /status { content_by_lua_block { require("lease_node").status() } }
-- The log gets one line per delivered change, "D <node> <shard> <key> <version>",
-- flushed line by line. /status answers { held = { shard ids }, delivered = n,
-- errors = n, last_error = text | null, polling = bool }.
local ds = require("dynamodb_stream")
local openresty = require("dynamodb_stream.openresty")

local M = {}
local DICT = "lease_node"

-- Makes the clients and the stream when this worker becomes the node's poller.
local function starter(cfg)
  return function()
    local d = ngx.shared[DICT]
    local streams = ds.client({
      endpoint = cfg.endpoint, region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = "fake-streams-secret-0123456789" },
    })
    local ddb = ds.dynamodb({
      endpoint = cfg.ddb, region = "us-east-1",
      credentials = { access_key_id = cfg.namespace, secret_access_key = "local-secret" },
    })
    local stream = ds.new(streams, cfg.arn, {
      unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON",
      leases = { dynamodb = ddb, table = cfg.table, worker_id = cfg.node .. ":" .. ngx.worker.pid(),
                 lease_duration = cfg.lease_duration },
    })
    local log = assert(io.open(cfg.log, "a"))
    log:setvbuf("full")
    stream:on("lease acquired", function(ids)
      for _, id in ipairs(ids) do d:set("held:" .. id, true) end
    end)
    stream:on("lease lost", function(ids)
      for _, id in ipairs(ids) do d:delete("held:" .. id) end
    end)
    stream:on("record", function(record, shard_id)
      local ddb_part = record.dynamodb
      log:write("D ", cfg.node, " ", shard_id, " ", ddb_part.Keys.pk, " ",
        string.format("%d", tonumber(tostring(ddb_part.NewImage.v))), "\n")
      log:flush()
      d:incr("delivered", 1, 0)
    end)
    stream:on("error", function(err)
      d:incr("errors", 1, 0)
      d:set("last_error", tostring(type(err) == "table" and (tostring(err.code) .. ": " .. tostring(err.message)) or err))
    end)
    d:set("polling", true)
    return stream, { sleep = ngx.sleep, interval = 0.05, max_interval = 0.2, describe_interval = 1 }
  end
end

--- Starts the node's poller (from init_worker_by_lua*).
-- @tparam table cfg node, endpoint, arn, ddb, namespace, table, lease_duration, log
function M.start(cfg)
  M.lock = openresty.poller({ dict = DICT, key = "poller", ttl = 3, retry = 0.5, start = starter(cfg),
    on_error = function(what, err)
      ngx.shared[DICT]:set("last_error", what .. ": " .. tostring(type(err) == "table" and err.code or err))
    end })
end

--- Answers /status as JSON.
function M.status()
  local d = ngx.shared[DICT]
  local held = {}
  for _, key in ipairs(d:get_keys(0)) do
    local id = key:match("^held:(.*)$")
    if id then held[#held + 1] = id end
  end
  table.sort(held)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(ds.json_encode({
    held = setmetatable(held, ds.list_mt), delivered = d:get("delivered") or 0, errors = d:get("errors") or 0,
    last_error = d:get("last_error") or ds.null, polling = d:get("polling") or false,
  }))
end

return M
