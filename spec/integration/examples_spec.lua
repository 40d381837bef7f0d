-- The two examples ported from the npm package's README, run as separate
-- processes against DynamoDB Local.
local ds = require("dynamodb_stream")
local helper = require("helper")

local NAMESPACE = "examplesspec"

-- Starts `<helper.lua> examples/<script> args...` with the AWS variables of DynamoDB
-- Local and nothing else from our environment; returns the popen handle.
local function start_example(script, ...)
  local q = helper.shell_quote
  local parts = { "env -i",
    q("PATH=/usr/bin:/bin"),
    q("AWS_ENDPOINT_URL=" .. helper.ddb_local_endpoint()),
    q("AWS_REGION=us-east-1"),
    q("AWS_ACCESS_KEY_ID=" .. NAMESPACE),
    q("AWS_SECRET_ACCESS_KEY=local-secret"),
    q("LUA_PATH=" .. package.path),
    q("LUA_CPATH=" .. package.cpath),
    helper.lua, q("examples/" .. script),
  }
  for i = 1, select("#", ...) do parts[#parts + 1] = q(tostring(select(i, ...))) end
  parts[#parts + 1] = "2>&1"
  return assert(helper.popen(table.concat(parts, " ")))
end

local function run_example(script, ...)
  local p = start_example(script, ...)
  local out = p:read("*a")
  local ok = p:close()
  return out, ok
end

local function lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

describe("examples against DynamoDB Local", function()
  local ddb

  local function create_table(name)
    return helper.create_stream_table(ddb, name)
  end

  local function put(name, pk, data)
    assert(ddb:put_item({ TableName = name, Item = ds.marshall({ pk = pk, data = data }) }))
  end

  local function delete(name, pk)
    assert(ddb:delete_item({ TableName = name, Key = ds.marshall({ pk = pk }) }))
  end

  setup(function()
    ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
  end)

  it("replicate_table.lua keeps a replica equal to the table", function()
    local name = "replica_" .. os.time()
    create_table(name)
    put(name, "keep", "1")
    put(name, "change", "1")
    put(name, "drop", "1")

    local p = start_example("replicate_table.lua", name, 4, 20)
    local ready = p:read("*l")
    assert.equals("READY", ready)
    put(name, "new1", "2")
    put(name, "change", "2")
    delete(name, "drop")
    put(name, "new2", "2")
    local out = p:read("*a")
    assert.is_true(p:close(), out)

    local changes, replica_json = {}, nil
    for _, line in ipairs(lines(out)) do
      replica_json = line:match("^REPLICA (.*)$") or replica_json
      if line:match("^%u+ ") and not replica_json then changes[#changes + 1] = line end
    end
    assert.same({ "INSERT new1", "MODIFY change", "REMOVE drop", "INSERT new2" }, changes)
    local replica = assert(ds.json_decode(replica_json))
    local table_now = {}
    for _, item in ipairs(assert(ddb:scan_all({ TableName = name })).Items) do
      local row = ds.unmarshall(item)
      table_now[row.pk] = row
    end
    assert.same(table_now, replica)
    assert.same({ pk = "change", data = "2" }, replica.change)
    assert.is_nil(replica.drop)
  end)

  it("persist_state.lua resumes from its state file without losing or repeating a change", function()
    local name = "persist_" .. os.time()
    create_table(name)
    local dir = helper.tmpdir()
    local state = dir .. "/state.json"
    finally(function() helper.rmdir(dir) end)

    for i = 1, 5 do put(name, "k" .. i, "1") end
    local out1, ok1 = run_example("persist_state.lua", name, state, 3, 20)
    assert.is_true(ok1, out1)
    assert.same({ "INSERT k1 1", "INSERT k2 1", "INSERT k3 1", "stopped after 3 changes" }, lines(out1))

    put(name, "k1", "2")
    delete(name, "k2")
    local out2, ok2 = run_example("persist_state.lua", name, state, 4, 20)
    assert.is_true(ok2, out2)
    assert.same({ "INSERT k4 1", "INSERT k5 1", "MODIFY k1 1 -> 2", "REMOVE k2", "stopped after 4 changes" },
      lines(out2))

    -- nothing new: a third run delivers nothing and ends at its deadline
    local out3, ok3 = run_example("persist_state.lua", name, state, 1, 1.5)
    assert.is_true(ok3, out3)
    assert.same({ "stopped after 0 changes" }, lines(out3))
  end)
end)
