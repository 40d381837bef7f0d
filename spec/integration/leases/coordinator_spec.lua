-- leases/coordinator.lua over the real lease table on DynamoDB Local (an injected clock, so
-- no waiting): the contract the unit specs assume of the fake holds of the real table too.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local helper = require("helper")
local LeaseTable = require("dynamodb_stream.leases.table")
local Coordinator = require("dynamodb_stream.leases.coordinator")

local D = 10

describe("leases.coordinator over DynamoDB Local", function()
  local ddb, name
  local arn = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/"
    .. string.format("%.0f", core.monotime() * 1e6)

  setup(function()
    ddb = ds.dynamodb(helper.local_opts("leasecoord"))
    name = string.format("coord_%.0f", core.monotime() * 1e6)
    assert(LeaseTable.new(ddb, name):ensure())
  end)

  it("three workers share 8 shards, fence checkpoints, release, and clean up a finished parent", function()
    local now = 0
    local function worker(id)
      return Coordinator.new({ table = LeaseTable.new(ddb, name), stream_arn = arn, worker_id = id,
        lease_duration = D, clock = function() return now end })
    end
    local workers = { worker("A"), worker("B"), worker("C") }
    local shards = { { id = "p", closed = true } }
    for i = 1, 7 do shards[#shards + 1] = { id = "s" .. i, parent = i == 1 and "p" or nil } end
    assert.is_true(workers[1]:sync(shards))
    for _ = 1, 200 do -- 50 lease_durations, every worker ticking at its due times
      now = math.huge
      for _, w in ipairs(workers) do now = math.min(now, w:next_due()) end
      for _, w in ipairs(workers) do
        if w:next_due() <= now then assert(w:tick()) end
      end
    end
    local total, owner_of = 0, {}
    for _, w in ipairs(workers) do
      local held = w:stats().held
      total = total + held
      assert.is_true(held >= 2 and held <= 3, "held " .. held)
      for _, s in ipairs(shards) do
        if w:holds(s.id) then
          assert.is_nil(owner_of[s.id], s.id .. " held twice")
          owner_of[s.id] = w
        end
      end
    end
    assert.equal(8, total)
    -- the child waits for its parent; the parent's SHARD_END opens it
    local parent, child = owner_of.p, owner_of.s1
    assert.is_false(child:readable("s1"))
    assert.is_true(parent:checkpoint("p", "SHARD_END"))
    now = now + D / 4 -- the child's next scan sees it
    assert(child:tick())
    assert.is_true(child:readable("s1"))
    -- a worker whose lease was taken cannot checkpoint over the new owner's checkpoint
    local victim = owner_of.s2
    local lt = LeaseTable.new(ddb, name)
    local stored = assert(lt:get(arn, "s2"))
    assert.equal(stored.counter + 1, lt:take(arn, "s2", "Z", stored.counter, stored.owner))
    assert.equal(stored.counter + 2, lt:checkpoint(arn, "s2", "Z", stored.counter + 1, "500"))
    local ok, err = victim:checkpoint("s2", "400")
    assert.is_nil(ok)
    assert.equal("LeaseLost", err.code)
    assert.equal("500", assert(lt:get(arn, "s2")).checkpoint)
    -- cleanup once the child started and the parent is no longer listed
    assert.is_true(child:checkpoint("s1", "49600000000000000000001"))
    table.remove(shards, 1)
    assert.is_true(workers[1]:sync(shards))
    assert.is_false(lt:get(arn, "p"))
    -- graceful stop
    for _, w in ipairs(workers) do assert.is_true(w:release_all()) end
    for _, lease in ipairs(assert(lt:list(arn))) do
      if lease.shard_id ~= "s2" then assert.is_nil(lease.owner, lease.shard_id) end
    end
  end)
end)
