-- spec/support/fake_streams_server.py as a live stream: starts it and drives
-- its control endpoints (puts, the writer thread, split, rollover, the list
-- of every change written). See the server's docstring for the endpoints.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local helper = require("helper")

local M = {}

M.SERVER = "spec/support/fake_streams_server.py"
M.SECRET = "fake-streams-secret-0123456789" -- the server's default for AKID

--- Starts the fake with the given command-line arguments (a list) for at most
-- lifetime seconds (default 120); returns { pid, port, arn, endpoint, stop, control }.
function M.start(args, lifetime)
  local cmd = { "exec /usr/bin/python3", helper.shell_quote(M.SERVER), "--lifetime", tostring(lifetime or 120) }
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = helper.shell_quote(a) end
  local pipe = assert(io.popen(table.concat(cmd, " ")))
  local line = pipe:read("*l") or ""
  local srv = { pid = line:match("pid=(%d+)"), port = tonumber(line:match("port=(%d+)")), arn = line:match("arn=(%S+)") }
  assert(srv.port and srv.arn, "fake_streams_server.py did not start: " .. line)
  srv.endpoint = "http://127.0.0.1:" .. srv.port
  local http = core.http({ timeout = 30 })

  function srv.stop()
    http:close()
    os.execute("kill " .. srv.pid .. " 2>/dev/null")
    pipe:close()
  end

  -- One control request: returns the decoded answer and the status.
  function srv.control(method, path, params)
    local status, body = http:request(method, srv.endpoint .. "/_control/" .. path,
      { "Content-Type: application/json" }, params and ds.json_encode(params) or (method == "POST" and "{}" or nil))
    assert(status, "control " .. path .. ": " .. tostring(body))
    return assert(ds.json_decode(body), "control " .. path .. ": not JSON: " .. tostring(body)), status
  end

  -- A successful control request's answer (a failure fails the spec).
  local function ok(method, path, params)
    local res, status = srv.control(method, path, params)
    assert(status == 200, "control " .. path .. ": " .. status .. " " .. tostring(res.error))
    return res
  end

  function srv.put(key, version) return ok("POST", "put", { key = key, version = version }).written[1] end
  function srv.put_many(changes) return ok("POST", "put", { changes = changes }).written end
  function srv.split(shard_id) return ok("POST", "split", { shard = shard_id }) end
  function srv.rollover() return ok("POST", "rollover") end
  function srv.start_writer(changes, keys, rate, seed)
    return ok("POST", "writer", { changes = changes, keys = keys, rate = rate, seed = seed or 1 })
  end
  function srv.writer() return ok("GET", "writer") end
  function srv.stop_writer() return ok("POST", "writer/stop") end
  -- Every change written: { { key, version, shard, seq }, ... } in the order written.
  function srv.changes()
    local out = {}
    for i, c in ipairs(ok("GET", "changes").changes) do
      out[i] = { key = c[1], version = c[2], shard = c[3], seq = c[4] }
    end
    return out
  end
  return srv
end

--- A streams client on the fake, with its default credentials.
function M.client(srv, opts)
  local o = {
    endpoint = srv.endpoint, region = "us-east-1",
    credentials = { access_key_id = "AKID", secret_access_key = M.SECRET },
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return ds.client(o)
end

--- Every shard of the stream, following LastEvaluatedShardId; and the number of pages.
function M.describe_all(c, arn, limit)
  local shards, pages, start = {}, 0, nil
  repeat
    local res = assert(c:describe_stream({ StreamArn = arn, Limit = limit, ExclusiveStartShardId = start }))
    pages = pages + 1
    for _, s in ipairs(res.StreamDescription.Shards) do shards[#shards + 1] = s end
    start = res.StreamDescription.LastEvaluatedShardId
  until start == nil
  return shards, pages
end

return M
