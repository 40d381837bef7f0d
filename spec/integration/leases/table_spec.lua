-- leases/table.lua against DynamoDB Local: the contract cases (table_conformance.lua), and
-- what only a real service shows: table creation and its races, key schemas, lost answers
-- retried by the client, garbage items, a client without permissions, consumed capacity.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local helper = require("helper")
local LeaseTable = require("dynamodb_stream.leases.table")

local NAMESPACE = "leasetable"

describe("leases.table against DynamoDB Local", function()
  local ddb
  local serial = 0

  -- Names no other case, nor another run against the same DynamoDB Local, uses.
  local function unique(prefix)
    serial = serial + 1
    return string.format("%s_%.0f_%d", prefix, core.monotime() * 1e6, serial)
  end

  local function arn()
    return "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/" .. unique("s")
  end

  -- A client whose call goes through intercept(operation, params, forward) first.
  local function wrapped(intercept)
    return { call = function(_, operation, params)
      return intercept(operation, params, function() return ddb:call(operation, params) end)
    end }
  end

  local function service_error(operation, code, message)
    return errors.new({ code = code, message = message, status = 400, operation = operation })
  end

  local shared -- the table every contract case uses, each with its own stream ARN
  setup(function()
    ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
    shared = unique("leases")
    assert(LeaseTable.new(ddb, shared):ensure())
  end)

  dofile("spec/integration/leases/table_conformance.lua")(function()
    return LeaseTable.new(ddb, shared), arn()
  end, getfenv and getfenv(1) or _ENV)

  describe("ensure", function()
    it("creates a PAY_PER_REQUEST table keyed by leaseKey once; again, it only checks", function()
      local name = unique("ensure")
      local ops = {}
      local lt = LeaseTable.new(wrapped(function(op, _, forward) ops[#ops + 1] = op return forward() end), name)
      assert.is_true(lt:ensure())
      assert.same({ "DescribeTable", "CreateTable", "DescribeTable" }, ops)
      local desc = assert(ddb:describe_table({ TableName = name })).Table
      assert.same({ { AttributeName = "leaseKey", KeyType = "HASH" } }, desc.KeySchema)
      assert.equal("PAY_PER_REQUEST", desc.BillingModeSummary.BillingMode)
      assert.is_true(lt:ensure())
      assert.same({ "DescribeTable", "CreateTable", "DescribeTable", "DescribeTable" }, ops)
    end)

    it("race 16: two workers at once, one creates, the other sees ResourceInUse and waits", function()
      local name = unique("both")
      -- B described the table before A created it (DescribeTable: not found), then A created
      -- it; B's CreateTable meets A's table, and B waits while it is CREATING.
      local b_ops, describes, pauses = {}, 0, {}
      local b = LeaseTable.new(wrapped(function(op, _, forward)
        local answer, err
        if op == "DescribeTable" then
          describes = describes + 1
          if describes == 1 then
            assert.is_true(LeaseTable.new(ddb, name):ensure()) -- A, in between
            answer, err = nil, service_error(op, "ResourceNotFoundException", "not found")
          else
            answer, err = forward()
            if describes <= 3 then answer.Table.TableStatus = "CREATING" end
          end
        else
          answer, err = forward()
        end
        b_ops[#b_ops + 1] = op .. " " .. (answer and (answer.Table and answer.Table.TableStatus or "ok") or err.code)
        return answer, err
      end), name, { sleep = function(s) pauses[#pauses + 1] = s end })
      assert.is_true(b:ensure())
      assert.same({ "DescribeTable ResourceNotFoundException", "CreateTable ResourceInUseException",
        "DescribeTable CREATING", "DescribeTable CREATING", "DescribeTable ACTIVE" }, b_ops)
      assert.same({ 0.1, 0.2 }, pauses)
    end)

    it("race 16 for real: 4 processes started together, one CreateTable wins, all see it ACTIVE, one create of the first lease", function()
      local name, stream, dir = unique("fleet"), arn(), helper.tmpdir()
      local go = dir .. "/go"
      local code = ([[
        local ds = require("dynamodb_stream")
        local core = require("dynamodb_stream.core")
        local LeaseTable = require("dynamodb_stream.leases.table")
        local ddb = ds.dynamodb({ endpoint = %q, region = "us-east-1",
          credentials = { access_key_id = %q, secret_access_key = "local-secret" } })
        local ops = {}
        local lt = LeaseTable.new({ call = function(_, op, params)
          local answer, err = ddb:call(op, params)
          ops[#ops + 1] = op .. "=" .. (answer and "ok" or err.code)
          return answer, err
        end }, %q)
        while not io.open(%q) do core.sleep(0.002) end
        local ok, err = lt:ensure()
        io.write("ensure ", tostring(ok or err), " ", table.concat(ops, ","), "\n")
        local created = lt:create(%q, { shard_id = "s1", checkpoint = "TRIM_HORIZON" })
        io.write("create ", tostring(created), "\n")
      ]]):format(helper.ddb_local_endpoint(), NAMESPACE, name, go, stream)
      local env = { LUA_PATH = package.path, LUA_CPATH = package.cpath }
      local jobs = {}
      for i = 1, 4 do
        jobs[i] = helper.env_command(env, helper.lua .. " -e " .. helper.shell_quote(code))
          .. " >" .. dir .. "/out" .. i .. " 2>&1 &"
      end
      assert(helper.execute(table.concat(jobs, " ") .. " sleep 1; touch " .. go .. "; wait"))
      local creators, in_use, created = 0, 0, 0
      for i = 1, 4 do
        local out = helper.read_file(dir .. "/out" .. i)
        assert.matches("^ensure true DescribeTable=", out)
        if out:find("CreateTable=ok", 1, true) then creators = creators + 1 end
        if out:find("CreateTable=ResourceInUseException", 1, true) then in_use = in_use + 1 end
        if out:find("create true", 1, true) then created = created + 1 end
        assert.matches("create %a+\n$", out)
      end
      helper.rmdir(dir)
      assert.equal(1, creators)
      assert.equal(1, created)
      assert.equal("ACTIVE", assert(ddb:describe_table({ TableName = name })).Table.TableStatus)
      print(string.format("\n  race 16: 1 CreateTable won, %d of 3 others met ResourceInUse", in_use))
    end)

    it("a table that stays CREATING: LeaseTableNotReady after wait_timeout, bounded backoff", function()
      local name = unique("stuck")
      assert.is_true(LeaseTable.new(ddb, name):ensure())
      local pauses, slept = {}, 0
      local lt = LeaseTable.new(wrapped(function(_, _, forward)
        local answer = forward()
        answer.Table.TableStatus = "CREATING"
        return answer
      end), name, { wait_timeout = 30, sleep = function(s) pauses[#pauses + 1] = s slept = slept + s end })
      local ok, err = lt:ensure()
      assert.is_nil(ok)
      assert.equal("LeaseTableNotReady", err.code)
      assert.matches("is CREATING after", err.message)
      assert.is_true(slept <= 30)
      assert.is_true(slept > 20)
      for _, s in ipairs(pauses) do assert.is_true(s <= 5) end
    end)

    it("a table being deleted: LeaseTableNotReady at once", function()
      local name = unique("deleting")
      assert.is_true(LeaseTable.new(ddb, name):ensure())
      local lt = LeaseTable.new(wrapped(function(_, _, forward)
        local answer = forward()
        answer.Table.TableStatus = "DELETING"
        return answer
      end), name, { sleep = function() error("must not wait") end })
      local ok, err = lt:ensure()
      assert.is_nil(ok)
      assert.equal("LeaseTableNotReady", err.code)
    end)

    local schemas = {
      ["HASH pk"] = { { { AttributeName = "pk", AttributeType = "S" } }, { { AttributeName = "pk", KeyType = "HASH" } } },
      ["HASH leaseKey N"] = { { { AttributeName = "leaseKey", AttributeType = "N" } },
        { { AttributeName = "leaseKey", KeyType = "HASH" } } },
      ["HASH leaseKey S, RANGE r"] = {
        { { AttributeName = "leaseKey", AttributeType = "S" }, { AttributeName = "r", AttributeType = "S" } },
        { { AttributeName = "leaseKey", KeyType = "HASH" }, { AttributeName = "r", KeyType = "RANGE" } } },
    }
    for label, schema in pairs(schemas) do
      it("a table keyed " .. label .. ": BadLeaseTable, and nothing written to it", function()
        local name = unique("wrongkey")
        assert(ddb:create_table({ TableName = name, AttributeDefinitions = schema[1], KeySchema = schema[2],
          BillingMode = "PAY_PER_REQUEST" }))
        local lt = LeaseTable.new(ddb, name)
        local ok, err = lt:ensure()
        assert.is_nil(ok)
        assert.equal("BadLeaseTable", err.code)
        assert.matches(name, err.message, 1, true)
        assert.matches("HASH leaseKey (S)", err.message, 1, true)
        assert.equal("fatal", errors.class(err))
        assert.equal(0, assert(ddb:scan({ TableName = name })).Count)
      end)
    end
  end)

  describe("a lost answer retried by the client (races 4 and 5)", function()
    -- A client whose transport forwards the first UpdateItem, then answers it with a
    -- timeout: the service client retries the same request, which DynamoDB refuses.
    -- meanwhile (optional) runs between the lost answer and the retry.
    local function losing_client(meanwhile)
      local http = core.http({})
      local lost = 0
      local transport = {
        post = function(_, url, lines, body)
          local status, answer, headers = http:post(url, lines, body)
          local update = false
          for _, line in ipairs(lines) do
            if line == "x-amz-target: DynamoDB_20120810.UpdateItem" then update = true end
          end
          if update and lost == 0 and status == 200 then
            lost = lost + 1
            if meanwhile then meanwhile() end
            return nil, "Timeout: the answer was lost", "Timeout"
          end
          return status, answer, headers
        end,
        post_many = function() error("not used") end,
        close = function() http:close() end,
      }
      local opts = helper.local_opts(NAMESPACE)
      opts.transport, opts.sleep = transport, function() end
      return ds.dynamodb(opts), function() return lost end
    end

    local function setup_held(client)
      local lt = LeaseTable.new(client, shared)
      local stream = arn()
      assert.is_true(LeaseTable.new(ddb, shared):create(stream, { shard_id = "s1", checkpoint = "TRIM_HORIZON" }))
      assert.equal(1, LeaseTable.new(ddb, shared):take(stream, "s1", "a", 0))
      return lt, stream
    end

    it("renew: reported a success, the counter moved once", function()
      local client, lost = losing_client()
      local lt, stream = setup_held(client)
      assert.equal(2, lt:renew(stream, "s1", "a", 1))
      assert.equal(1, lost())
      assert.equal(1, client:stats().retries)
      assert.equal(2, LeaseTable.new(ddb, shared):get(stream, "s1").counter)
      assert.equal(1, lt:stats().recovered)
      assert.equal(0, lt:stats().conflicts)
      assert.equal(3, lt:renew(stream, "s1", "a", 2)) -- and the next renewal goes on from there
    end)

    it("checkpoint: reported a success, stored exactly once", function()
      local client, lost = losing_client()
      local lt, stream = setup_held(client)
      assert.equal(2, lt:checkpoint(stream, "s1", "a", 1, "300", { at = "300" }))
      assert.equal(1, lost())
      local stored = LeaseTable.new(ddb, shared):get(stream, "s1")
      assert.equal(2, stored.counter)
      assert.equal("300", stored.checkpoint)
      assert.same({ at = "300" }, stored.position)
      assert.equal(1, lt:stats().recovered)
    end)

    it("take and release: reported a success", function()
      local client = losing_client()
      local lt = LeaseTable.new(client, shared)
      local stream = arn()
      assert.is_true(lt:create(stream, { shard_id = "s1", checkpoint = "TRIM_HORIZON" }))
      assert.equal(1, lt:take(stream, "s1", "a", 0))
      local client2 = losing_client()
      assert.is_true(LeaseTable.new(client2, shared):release(stream, "s1", "a", 1))
      local stored = LeaseTable.new(ddb, shared):get(stream, "s1")
      assert.is_nil(stored.owner)
      assert.equal(2, stored.counter)
    end)

    it("a lost answer, then the lease taken before the retry: LeaseConflict, the taker's state kept", function()
      local stream
      local client = losing_client(function()
        assert.equal(3, LeaseTable.new(ddb, shared):take(stream, "s1", "b", 2, "a"))
      end)
      local lt
      lt, stream = setup_held(client)
      local counter, err = lt:checkpoint(stream, "s1", "a", 1, "400")
      assert.is_nil(counter)
      assert.equal("LeaseConflict", err.code)
      assert.matches("owner b, counter 3", err.message, 1, true)
      local stored = lt:get(stream, "s1")
      assert.equal("b", stored.owner)
      assert.equal(3, stored.counter)
      assert.equal("400", stored.checkpoint) -- a's checkpoint did land, before b took over
      assert.equal(0, lt:stats().recovered)
      assert.equal(1, lt:stats().conflicts)
    end)

    it("a refused write whose re-read fails: that error, not a conflict (the lease's fate is unknown)", function()
      local lt, stream = setup_held(wrapped(function(op, _, forward)
        if op == "GetItem" then return nil, service_error(op, "ThrottlingException", "slow down") end
        return forward()
      end))
      local counter, err = lt:renew(stream, "s1", "a", 7)
      assert.is_nil(counter)
      assert.equal("ThrottlingException", err.code)
      assert.equal(0, lt:stats().conflicts)
    end)

    it("the same stale call made twice by hand is not mistaken for a lost answer", function()
      local lt, stream = setup_held(ddb)
      assert.equal(2, lt:renew(stream, "s1", "a", 1))
      local again, err = lt:renew(stream, "s1", "a", 1)
      assert.is_nil(again)
      assert.equal("LeaseConflict", err.code)
      assert.equal(2, lt:get(stream, "s1").counter)
    end)

    it("a lost answer to a delete: the item is gone, which is what was asked", function()
      local lt, stream = setup_held(ddb)
      assert.equal(2, lt:checkpoint(stream, "s1", "a", 1, "SHARD_END"))
      assert.is_true(lt:delete(stream, "s1"))
      assert.is_true(lt:delete(stream, "s1")) -- the retry of a delete that was applied
      assert.is_false(lt:get(stream, "s1"))
    end)
  end)

  describe("a garbage item", function()
    local good = function(stream, key)
      return {
        leaseKey = { S = stream .. "|" .. key }, streamArn = { S = stream }, shardId = { S = key },
        leaseCounter = { N = "3" }, checkpoint = { S = "TRIM_HORIZON" }, ownerSwitchesSinceCheckpoint = { N = "0" },
      }
    end
    local cases = {
      { "checkpoint", function(item) item.checkpoint = { S = "abc" } end },
      { "checkpoint", function(item) item.checkpoint = nil end },
      { "checkpoint", function(item) item.checkpoint = { N = "12" } end },
      { "leaseCounter", function(item) item.leaseCounter = { S = "3" } end },
      { "leaseCounter", function(item) item.leaseCounter = { N = "-1" } end },
      { "leaseCounter", function(item) item.leaseCounter = { N = "1.5" } end },
      { "leaseCounter", function(item) item.leaseCounter = { N = "9007199254740993" } end },
      { "position", function(item) item.position = { S = "not json" } end },
      { "position", function(item) item.position = { S = "[1,2]" } end },
      { "position", function(item) item.position = { N = "1" } end },
      { "leaseOwner", function(item) item.leaseOwner = { N = "7" } end },
      { "parentShardIds", function(item) item.parentShardIds = { S = "p1" } end },
      { "shardId", function(item) item.shardId = { S = "other" } end },
      { "ownerSwitchesSinceCheckpoint", function(item) item.ownerSwitchesSinceCheckpoint = { S = "x" } end },
    }
    for i, case in ipairs(cases) do
      local field, spoil = case[1], case[2]
      it("#" .. i .. " (" .. field .. "): list and get fail with BadLeaseItem naming the key and the field", function()
        local lt, stream = LeaseTable.new(ddb, shared), arn()
        assert.is_true(lt:create(stream, { shard_id = "fine", checkpoint = "LATEST" }))
        local item = good(stream, "bad")
        spoil(item)
        assert(ddb:put_item({ TableName = shared, Item = item }))
        local leases, err = lt:list(stream)
        assert.is_nil(leases)
        assert.equal("BadLeaseItem", err.code)
        assert.equal("fatal", errors.class(err))
        assert.matches('lease item "' .. stream .. '|bad": ' .. field .. " ", err.message, 1, true)
        local lease, get_err = lt:get(stream, "bad")
        assert.is_nil(lease)
        assert.equal("BadLeaseItem", get_err.code)
        assert.same(good(stream, "fine").streamArn, assert(ddb:get_item({ TableName = shared,
          Key = { leaseKey = { S = stream .. "|fine" } } })).Item.streamArn) -- nothing else touched
      end)
    end

    it("the good item parses (the cases above differ from it in one field only)", function()
      local lt, stream = LeaseTable.new(ddb, shared), arn()
      assert(ddb:put_item({ TableName = shared, Item = good(stream, "bad") }))
      assert.same({ { shard_id = "bad", counter = 3, checkpoint = "TRIM_HORIZON", parents = {},
        owner_switches = 0 } }, lt:list(stream))
    end)
  end)

  it("list reads every page of the Scan, consistently", function()
    local scans = 0
    local paging = LeaseTable.new(wrapped(function(op, params, forward)
      if op == "Scan" then
        scans = scans + 1
        assert.is_true(params.ConsistentRead)
        params.Limit = 2
      end
      return forward()
    end), shared)
    local stream = arn()
    for i = 1, 5 do assert.is_true(paging:create(stream, { shard_id = "s" .. i, checkpoint = "LATEST" })) end
    local leases = assert(paging:list(stream))
    local ids = {}
    for i, lease in ipairs(leases) do ids[i] = lease.shard_id end
    table.sort(ids)
    assert.same({ "s1", "s2", "s3", "s4", "s5" }, ids)
    assert.is_true(scans > 3) -- the shared table holds other streams' items too
    assert.equal(scans, paging:stats().reads)
  end)

  it("a client without permissions: every method returns its AccessDeniedException, nothing raises", function()
    local calls = 0
    local denied = { call = function(_, op)
      calls = calls + 1
      return nil, service_error(op, "AccessDeniedException", "User is not authorized to perform: dynamodb:" .. op)
    end }
    local lt, stream = LeaseTable.new(denied, shared), arn()
    local attempts = {
      ensure = { lt:ensure() },
      list = { lt:list(stream) },
      get = { lt:get(stream, "s1") },
      create = { lt:create(stream, { shard_id = "s1", checkpoint = "LATEST" }) },
      renew = { lt:renew(stream, "s1", "a", 1) },
      take = { lt:take(stream, "s1", "a", 1) },
      checkpoint = { lt:checkpoint(stream, "s1", "a", 1, "5") },
      release = { lt:release(stream, "s1", "a", 1) },
      delete = { lt:delete(stream, "s1") },
    }
    for method, result in pairs(attempts) do
      assert.is_nil(result[1], method)
      assert.equal("AccessDeniedException", result[2].code, method)
      assert.matches("not authorized", tostring(result[2]), 1, true)
      assert.equal("fatal", errors.class(result[2]))
    end
    assert.equal(9, calls) -- one call each: a refusal is not retried as a conflict
  end)

  it("consumed capacity: the units DynamoDB reports, a refused write counted as one", function()
    local lt, stream = LeaseTable.new(ddb, shared), arn()
    assert.is_true(lt:create(stream, { shard_id = "s1", checkpoint = "TRIM_HORIZON" }))
    assert.equal(1, lt:take(stream, "s1", "a", 0))
    assert.truthy(lt:get(stream, "s1"))
    assert.same({ reads = 1, writes = 2, conflicts = 0, recovered = 0, read_units = 1, write_units = 2 }, lt:stats())
    assert.is_nil(lt:renew(stream, "s1", "b", 1)) -- refused, then re-read
    assert.same({ reads = 2, writes = 3, conflicts = 1, recovered = 0, read_units = 2, write_units = 3 }, lt:stats())
  end)
end)
