-- Loaded by busted before every spec file (see .busted).
local helper = {}

-- The endpoint of the DynamoDB Local that scripts/with-ddb-local started.
function helper.ddb_local_endpoint()
  local endpoint = os.getenv("DDB_LOCAL_ENDPOINT")
  assert(endpoint, "DDB_LOCAL_ENDPOINT is not set: run the specs through `make test`")
  return endpoint
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
helper.shell_quote = shell_quote

-- Runs a Lua chunk in a fresh lua5.4 with exactly the given environment
-- (plus this process's module paths unless env sets them) and returns its stdout and whether it succeeded.
function helper.run_lua(env, code)
  local parts = { "env -i" }
  for k, v in pairs(env) do parts[#parts + 1] = shell_quote(k .. "=" .. v) end
  if not env.LUA_PATH then parts[#parts + 1] = shell_quote("LUA_PATH=" .. package.path) end
  if not env.LUA_CPATH then parts[#parts + 1] = shell_quote("LUA_CPATH=" .. package.cpath) end
  parts[#parts + 1] = "lua5.4 -e " .. shell_quote(code) .. " 2>&1"
  local p = assert(io.popen(table.concat(parts, " ")))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

-- A fresh directory under /tmp, removed by the caller with helper.rmdir.
function helper.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/ds-spec.XXXXXX"))
  local dir = p:read("l")
  p:close()
  return dir
end

function helper.rmdir(dir)
  assert(dir:match("^/tmp/ds%-spec%."), "refusing to remove " .. dir)
  os.execute("rm -rf " .. shell_quote(dir))
end

function helper.write_file(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- Starts spec/support/http_server.py; returns its ports ({ http =, refused = })
-- and a function that stops it.
function helper.start_http_server()
  local proc = assert(io.popen("exec /usr/bin/python3 spec/support/http_server.py"))
  local line = assert(proc:read("l"), "http_server.py did not start")
  local ports = {}
  for k, v in line:gmatch("(%w+)=(%d+)") do ports[k] = tonumber(v) end
  return ports, function()
    os.execute("kill " .. ports.pid .. " 2>/dev/null")
    proc:close()
  end
end

-- Static credentials and a region for DynamoDB Local; a distinct access key id
-- gives a spec its own namespace of tables there (DynamoDB Local accepts only
-- letters and digits in it, so anything else is dropped).
function helper.local_opts(namespace)
  return {
    endpoint = helper.ddb_local_endpoint(),
    region = "us-east-1",
    credentials = { access_key_id = (namespace or "spec"):gsub("[^%w]", ""), secret_access_key = "local-secret" },
  }
end

-- Creates a table keyed by "pk" (string) with a stream of the given view
-- type (NEW_AND_OLD_IMAGES by default); returns the stream ARN.
function helper.create_stream_table(ddb, name, view_type)
  assert(ddb:create_table({
    TableName = name,
    AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
    KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
    BillingMode = "PAY_PER_REQUEST",
    StreamSpecification = { StreamEnabled = true, StreamViewType = view_type or "NEW_AND_OLD_IMAGES" },
  }))
  return assert(ddb:describe_table({ TableName = name })).Table.LatestStreamArn
end

package.loaded["helper"] = helper
return helper
