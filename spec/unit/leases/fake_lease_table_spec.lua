-- The fake lease table (spec/support/fake_lease_table.lua) passes the same contract cases
-- as leases/table.lua against DynamoDB Local, and its test hooks do what they say.
local FakeTable = require("fake_lease_table")

local ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/L"

describe("fake lease table", function()
  local n = 0
  dofile("spec/integration/leases/table_conformance.lua")(function()
    n = n + 1
    return FakeTable.new(), ARN .. n
  end, getfenv and getfenv(1) or _ENV)

  it("fail: the next N calls of a method (on one shard) fail and change nothing", function()
    local t = FakeTable.new()
    assert.is_true(t:create(ARN, { shard_id = "s1", checkpoint = "TRIM_HORIZON" }))
    assert.is_true(t:create(ARN, { shard_id = "s2", checkpoint = "TRIM_HORIZON" }))
    t:fail("take", "AccessDeniedException", { times = 2, shard = "s1" })
    assert.equal(1, t:take(ARN, "s2", "a", 0))
    for _ = 1, 2 do
      local ok, err = t:take(ARN, "s1", "a", 0)
      assert.is_nil(ok)
      assert.equal("AccessDeniedException", err.code)
      assert.is_false(err.retryable)
    end
    assert.equal(0, t:item(ARN, "s1").counter)
    assert.equal(1, t:take(ARN, "s1", "a", 0))
    assert.equal(4, t:count("take"))
  end)

  it("lose_response: the write is applied, the caller gets a Timeout, a retry with the old counter is refused", function()
    local t = FakeTable.new()
    t:put(ARN, { shard_id = "s1", owner = "a", counter = 3, checkpoint = "10" })
    t:lose_response("checkpoint")
    local ok, err = t:checkpoint(ARN, "s1", "a", 3, "20")
    assert.is_nil(ok)
    assert.equal("Timeout", err.code)
    assert.is_true(err.retryable)
    assert.equal("20", t:item(ARN, "s1").checkpoint)
    assert.equal(4, t:item(ARN, "s1").counter)
    ok, err = t:checkpoint(ARN, "s1", "a", 3, "20")
    assert.is_nil(ok)
    assert.equal("LeaseConflict", err.code)
  end)

  it("before: runs with the call's arguments before it is applied", function()
    local t = FakeTable.new()
    t:put(ARN, { shard_id = "s1", owner = "a", counter = 3, checkpoint = "10" })
    local seen
    t:before("renew", function(...) seen = { ... } t:put(ARN, { shard_id = "s1", owner = "b", counter = 9, checkpoint = "10" }) end)
    local ok, err = t:renew(ARN, "s1", "a", 3)
    assert.same({ ARN, "s1", "a", 3 }, seen)
    assert.is_nil(ok)
    assert.equal("LeaseConflict", err.code)
  end)
end)
