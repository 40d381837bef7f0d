-- The checker of the lease chaos spec (spec/support/lease_chaos_check.lua) on
-- synthetic logs: a clean failover passes with its duplicates counted and its
-- failover time measured; a missing change, an order violation, an overlap, a
-- delivery without a lease and a slow failover are each reported.
local check = require("lease_chaos_check")

local CHANGES = {
  { key = "a", version = 1, shard = "s1", seq = "101" },
  { key = "a", version = 2, shard = "s1", seq = "102" },
  { key = "a", version = 3, shard = "s1", seq = "103" },
  { key = "b", version = 1, shard = "s2", seq = "104" },
}

-- w1 holds s1 and s2, delivers a1 a2 (checkpointed a1 only) and b1, and is
-- SIGKILLed at 10; w2 takes both at 12.5 and redelivers a2, then a3.
local CLEAN = [[
S w1 0.0
A w1 1.0 s1 s2
D w1 s1 a 1 101 2.0
D w1 s1 a 2 102 3.0
D w1 s2 b 1 104 3.5
K w1 10.0
S w2 0.5
A w2 12.5 s1 s2
D w2 s1 a 2 102 12.6
D w2 s1 a 3 103 12.7
T w2 20.0
X w2 20.3 true nil
]]

local function run(text, changes, opts)
  opts = opts or {}
  return check.check({
    changes = changes or CHANGES, entries = check.parse(text),
    window = opts.window or 1, failover_bound = opts.failover_bound or 3, graceful_bound = opts.graceful_bound or 2,
  })
end

local function has_problem(report, pattern)
  for _, p in ipairs(report.problems) do
    if p:match(pattern) then return true end
  end
  return false, "no problem matching " .. pattern .. " in: " .. table.concat(report.problems, " | ")
end

describe("lease chaos checker", function()
  it("passes a clean failover, counting its duplicate and measuring it", function()
    local r = run(CLEAN)
    assert.same({}, r.problems)
    assert.equals(5, r.delivered)
    assert.equals(1, r.duplicates)
    assert.equals(1, #r.failovers)
    -- s1 came back at 12.6; s2 had nothing more to deliver, so it is not measured.
    assert.equals(1, #r.failovers[1].shards)
    assert.equals("s1", r.failovers[1].shards[1].shard)
    assert.equals("w2", r.failovers[1].shards[1].by)
    assert.near(2.6, r.failovers[1].worst, 1e-9)
    assert.equals(1, #r.graceful)
  end)

  it("reports a change never delivered", function()
    local changes = {}
    for i, c in ipairs(CHANGES) do changes[i] = c end
    changes[#changes + 1] = { key = "b", version = 2, shard = "s2", seq = "105" }
    local r = run(CLEAN, changes)
    assert.same({ "b 2" }, r.missing)
    assert(has_problem(r, "^1 of 5 changes never delivered; first: b 2$"))
  end)

  it("reports a change delivered that was never written", function()
    local r = run(CLEAN .. "A w3 21.0 s2\nD w3 s2 b 9 199 21.1\n")
    assert(has_problem(r, "^b 9 was delivered but never written$"))
  end)

  it("reports a key going back within one worker, but not after it reacquired the shard", function()
    local back = CLEAN:gsub("D w1 s2 b 1 104 3.5\n", "D w1 s2 b 1 104 3.5\nD w1 s1 a 1 101 4.0\n")
    local r = run(back)
    assert.equals(1, #r.order)
    assert.same({ id = "w1", key = "a", from = 2, to = 1 }, r.order[1])
    assert(has_problem(r, "^w1 delivered a v1 after v2$"))
    -- The same after a lease lost and acquired again: a restart from the checkpoint.
    local again = CLEAN:gsub("D w1 s2 b 1 104 3.5\n",
      "D w1 s2 b 1 104 3.5\nL w1 3.7 s1\nA w1 3.9 s1\nD w1 s1 a 1 101 4.0\n")
    assert.same({}, run(again).problems)
  end)

  it("reports two workers holding a shard beyond the window, not within it", function()
    -- w3 takes s1 at 5 while w1 holds it until its SIGKILL at 10: 5 s together.
    local overlap = CLEAN .. "S w3 4.0\nA w3 5.0 s1\nL w3 12.4 s1\n"
    local r = run(overlap)
    assert.equals(1, #r.overlaps)
    assert.same({ "w1", "w3" }, r.overlaps[1].ids)
    assert.near(5, r.overlaps[1].seconds, 1e-9)
    assert(has_problem(r, "^w1 and w3 both held s1 for 5%.000 s"))
    -- The zombie notices within the window: w1 lost s1 at 5.5, 0.5 s after w3 took it.
    local zombie = CLEAN:gsub("K w1 10.0\n", "L w1 5.5 s1\nK w1 10.0\n") .. "S w3 4.0\nA w3 5.0 s1\nL w3 12.4 s1\n"
    assert.same({}, run(zombie).overlaps)
  end)

  it("reports a delivery without the lease", function()
    local r = run((CLEAN:gsub("A w2 12.5 s1 s2\n", "A w2 12.65 s1 s2\n")))
    assert.equals(1, #r.unheld)
    assert(has_problem(r, "^w2 delivered a v2 of s1 at 12%.600 without holding its lease$"))
    -- After the SIGKILL landed, w1 delivers nothing; between the spec's kill
    -- command and its landing (t_dead), it still may.
    local late = CLEAN:gsub("K w1 10.0\n", "K w1 10.0\nD w1 s1 a 3 103 10.01\n")
    assert.equals(1, #run(late).unheld)
    local landing = CLEAN:gsub("K w1 10.0\n", "K w1 10.0 10.02\nD w1 s1 a 3 103 10.01\n")
    r = run(landing)
    assert.same({}, r.problems)
    assert.near(2.6, r.failovers[1].worst, 1e-9) -- measured from before the kill
  end)

  it("reports a failover or a graceful handover slower than its bound", function()
    local r = run(CLEAN, nil, { failover_bound = 2.5 })
    assert(has_problem(r, "^after the SIGKILL of w1, its shards came back after 2%.600 s %(bound 2%.500 s%)$"))
    local stop = CLEAN:gsub("T w2 20.0\nX w2 20.3 true nil\n", "")
      .. "S w3 13.0\nT w2 13.0\nX w2 13.1 true nil\nA w3 15.6 s1\nD w3 s1 a 3 103 15.7\n"
    r = run(stop)
    assert.equals(1, #r.graceful)
    assert.near(2.7, r.graceful[1].worst, 1e-9)
    assert(has_problem(r, "^after w2 was stopped, its shards came back after 2%.700 s"))
  end)

  it("parses whole lines only and refuses a malformed one", function()
    local entries = check.parse("S w1 1.0\nD w1 s1 a 1 101 2.0\nD w1 s1 a 2 1")
    assert.equals(2, #entries)
    assert.same({ kind = "D", id = "w1", shard = "s1", key = "a", version = 1, seq = "101", t = 2.0 }, entries[2])
    assert.has_error(function() check.parse("S w1 1.0\nD w1 s1 a one 101 2.0\n", "w1.log") end,
      'w1.log:2: bad line "D w1 s1 a one 101 2.0"')
    assert.has_error(function() check.parse("K w1 2.0 1.0\n", "spec.log") end, 'spec.log:1: bad line "K w1 2.0 1.0"')
    assert.equals(2.5, check.parse("K w1 2.0 2.5\n")[1].dead_at)
  end)

  it("gives the distribution of a list of seconds", function()
    assert.equals("n=4 min=1.00 median=2.00 p90=4.00 max=4.00 s", check.distribution({ 4, 1, 3, 2 }))
    assert.equals("(none)", check.distribution({}))
  end)
end)
