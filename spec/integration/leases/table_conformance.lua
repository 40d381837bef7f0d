-- The contract of leases/table.lua, as cases any lease table object must pass: the real one
-- (table_spec.lua, against DynamoDB Local) and the fake (spec/support/fake_lease_table.lua).
-- Usage, inside a describe block:
--   dofile("spec/integration/leases/table_conformance.lua")(make_table, getfenv and getfenv(1) or _ENV)
-- where make_table() returns a fresh table object and a stream ARN no other case uses, and
-- the second argument is the spec's environment (a dofile'd chunk does not see busted's
-- describe, it and assert).

return function(make_table, env)
  local describe, it, assert = env.describe, env.it, env.assert
  local function conflict(result, err)
    assert.is_nil(result)
    assert.equal("LeaseConflict", err and err.code, tostring(err))
  end

  -- A lease of shard "s1" taken by owner "a": counter 1.
  local function held(lt, arn)
    assert.is_true(lt:create(arn, { shard_id = "s1", checkpoint = "TRIM_HORIZON" }))
    assert.equal(1, lt:take(arn, "s1", "a", 0))
    return assert(lt:get(arn, "s1"))
  end

  describe("lease table contract", function()
    it("create: true, then false when the item exists (the first one kept)", function()
      local lt, arn = make_table()
      assert.is_true(lt:create(arn, { shard_id = "s1", checkpoint = "TRIM_HORIZON",
        parents = { "p2", "p1" }, position = { sequence = "12" } }))
      assert.is_false(lt:create(arn, { shard_id = "s1", checkpoint = "LATEST" }))
      assert.same({ shard_id = "s1", counter = 0, checkpoint = "TRIM_HORIZON", parents = { "p1", "p2" },
        position = { sequence = "12" }, owner_switches = 0 }, lt:get(arn, "s1"))
    end)

    it("get of a missing lease is false; list holds only the stream's own leases", function()
      local lt, arn = make_table()
      local _, other = make_table()
      assert.is_false(lt:get(arn, "nothing"))
      assert.is_true(lt:create(arn, { shard_id = "s1", checkpoint = "TRIM_HORIZON" }))
      assert.is_true(lt:create(arn, { shard_id = "s2", checkpoint = "LATEST", parents = { "s1" } }))
      assert.is_true(lt:create(other, { shard_id = "s1", checkpoint = "SHARD_END" }))
      local leases = assert(lt:list(arn))
      table.sort(leases, function(x, y) return x.shard_id < y.shard_id end)
      assert.same({
        { shard_id = "s1", counter = 0, checkpoint = "TRIM_HORIZON", parents = {}, owner_switches = 0 },
        { shard_id = "s2", counter = 0, checkpoint = "LATEST", parents = { "s1" }, owner_switches = 0 },
      }, leases)
    end)

    it("take: the seen counter wins once; a wrong counter is refused and changes nothing", function()
      local lt, arn = make_table()
      local before = held(lt, arn)
      assert.same({ shard_id = "s1", owner = "a", counter = 1, checkpoint = "TRIM_HORIZON", parents = {},
        owner_switches = 1 }, before)
      conflict(lt:take(arn, "s1", "b", 0, nil))
      conflict(lt:take(arn, "s1", "b", 2, "a"))
      assert.same(before, lt:get(arn, "s1"))
      -- a steal from a live owner counts a switch; a take back by the same owner does not
      assert.equal(2, lt:take(arn, "s1", "b", 1, "a"))
      assert.equal(3, lt:take(arn, "s1", "b", 2, "b"))
      local after = lt:get(arn, "s1")
      assert.equal("b", after.owner)
      assert.equal(2, after.owner_switches)
    end)

    it("race 1: two takers with the same seen counter, exactly one wins", function()
      local lt, arn = make_table()
      assert.is_true(lt:create(arn, { shard_id = "s1", checkpoint = "TRIM_HORIZON" }))
      local a, a_err = lt:take(arn, "s1", "a", 0)
      local b, b_err = lt:take(arn, "s1", "b", 0)
      assert.equal(1, a, tostring(a_err))
      conflict(b, b_err)
      local stored = lt:get(arn, "s1")
      assert.equal("a", stored.owner)
      assert.equal(1, stored.counter)
    end)

    it("renew: owner and counter right moves the counter; either wrong is refused and changes nothing", function()
      local lt, arn = make_table()
      local before = held(lt, arn)
      conflict(lt:renew(arn, "s1", "b", 1))
      conflict(lt:renew(arn, "s1", "a", 2))
      assert.same(before, lt:get(arn, "s1"))
      assert.equal(2, lt:renew(arn, "s1", "a", 1))
      assert.equal(3, lt:renew(arn, "s1", "a", 2))
      assert.equal(3, lt:get(arn, "s1").counter)
    end)

    it("checkpoint: stores checkpoint and position, zeroes the switches; wrong owner or counter change nothing", function()
      local lt, arn = make_table()
      local before = held(lt, arn)
      conflict(lt:checkpoint(arn, "s1", "b", 1, "100", { at = "100" }))
      conflict(lt:checkpoint(arn, "s1", "a", 0, "100", { at = "100" }))
      assert.same(before, lt:get(arn, "s1"))
      assert.equal(2, lt:checkpoint(arn, "s1", "a", 1, "100", { at = "100" }))
      assert.same({ shard_id = "s1", owner = "a", counter = 2, checkpoint = "100", parents = {},
        position = { at = "100" }, owner_switches = 0 }, lt:get(arn, "s1"))
      -- no position: the stored one goes
      assert.equal(3, lt:checkpoint(arn, "s1", "a", 2, "SHARD_END"))
      assert.is_nil(lt:get(arn, "s1").position)
    end)

    it("race 3: a checkpoint by a worker whose lease was taken is refused; the newer one is kept", function()
      local lt, arn = make_table()
      held(lt, arn)                                              -- a holds it at 1
      assert.equal(2, lt:take(arn, "s1", "b", 1, "a"))           -- a paused; b takes it
      assert.equal(3, lt:checkpoint(arn, "s1", "b", 2, "200", { at = "200" }))
      conflict(lt:checkpoint(arn, "s1", "a", 1, "150", { at = "150" })) -- a resumes
      local stored = lt:get(arn, "s1")
      assert.equal("b", stored.owner)
      assert.equal("200", stored.checkpoint)
      assert.same({ at = "200" }, stored.position)
      conflict(lt:renew(arn, "s1", "a", 1))                  -- and a's renewal fails too
    end)

    it("release: clears the owner and moves the counter; by another or with a wrong counter, nothing", function()
      local lt, arn = make_table()
      local before = held(lt, arn)
      conflict(lt:release(arn, "s1", "b", 1))
      conflict(lt:release(arn, "s1", "a", 5))
      assert.same(before, lt:get(arn, "s1"))
      assert.is_true(lt:release(arn, "s1", "a", 1))
      local stored = lt:get(arn, "s1")
      assert.is_nil(stored.owner)
      assert.equal(2, stored.counter)
      assert.equal(3, lt:take(arn, "s1", "b", 2))                -- free for the next taker
    end)

    it("delete: only at SHARD_END", function()
      local lt, arn = make_table()
      local before = held(lt, arn)
      conflict(lt:delete(arn, "s1"))
      assert.same(before, lt:get(arn, "s1"))
      assert.equal(2, lt:checkpoint(arn, "s1", "a", 1, "SHARD_END"))
      assert.is_true(lt:delete(arn, "s1"))
      assert.is_false(lt:get(arn, "s1"))
    end)

    it("race 20: no update of a missing lease creates an item", function()
      local lt, arn = make_table()
      conflict(lt:renew(arn, "gone", "a", 0))
      conflict(lt:take(arn, "gone", "a", 0))
      conflict(lt:checkpoint(arn, "gone", "a", 0, "100"))
      conflict(lt:release(arn, "gone", "a", 0))
      assert.is_false(lt:get(arn, "gone"))
      assert.same({}, lt:list(arn))
    end)

    it("stats count writes, reads and conflicts", function()
      local lt, arn = make_table()
      local s0 = lt:stats()
      for _, field in ipairs({ "reads", "writes", "conflicts", "read_units", "write_units" }) do
        assert.is_number(s0[field], field)
      end
      held(lt, arn)
      conflict(lt:renew(arn, "s1", "a", 7))
      local s1 = lt:stats()
      assert.is_true(s1.writes >= s0.writes + 3)
      assert.is_true(s1.reads >= s0.reads + 1)
      assert.equal(s0.conflicts + 1, s1.conflicts)
      assert.is_true(s1.write_units > s0.write_units)
    end)
  end)
end
