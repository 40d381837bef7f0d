-- The lease state machine (dynamodb_stream.leases.coordinator) against the in-memory lease
-- table (spec/support/fake_lease_table.lua), several coordinators ("workers") sharing one
-- table and one injected clock. The races are those of leases.md section 7 about the state
-- machine; each `it` names its number. Not here: 16 and 17 (table creation and DescribeStream
-- pagination belong to the table and the stream); 8 only within one process (two
-- coordinators with one id), its multi-process form belongs to spec/robustness.
local Coordinator = require("dynamodb_stream.leases.coordinator")
local FakeTable = require("fake_lease_table")

local ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
local D = 10 -- lease_duration

-- A world: one table, one clock, workers by id, a log of what each tick reported.
local function new_world()
  local w = { now = 0, table = FakeTable.new(), alive = {}, order = {}, log = {}, last_write = {} }
  w.clock = function() return w.now end
  return w
end

local function add(w, id, opts)
  opts = opts or {}
  local seed = #w.order * 7919 + 17 -- a deterministic shuffle per worker (Park-Miller)
  local c = Coordinator.new({
    table = w.table, stream_arn = ARN, worker_id = id, lease_duration = D, clock = w.clock,
    max_leases = opts.max_leases, initial_checkpoint = opts.initial_checkpoint,
    random = function(n) seed = (seed * 16807) % 2147483647 return seed % n + 1 end,
  })
  w.order[#w.order + 1] = id
  w.alive[id] = c
  return c
end

local function tick(w, id)
  local c = w.alive[id]
  local before = c:stats()
  local res, err = c:tick()
  local after = c:stats()
  if after.renewals > before.renewals or after.takes > before.takes then w.last_write[id] = w.now end
  for _, kind in ipairs({ "acquired", "lost" }) do
    for _, s in ipairs(res and res[kind] or {}) do
      w.log[#w.log + 1] = { t = w.now, who = id, what = kind, shard = s }
    end
  end
  return res, err
end

-- Ticks every live worker at its own due times until the clock reaches t.
local function run(w, t)
  for _ = 1, 1e5 do
    local due = math.huge
    for _, id in ipairs(w.order) do
      if w.alive[id] then due = math.min(due, w.alive[id]:next_due()) end
    end
    if due > t then w.now = t return end
    w.now = math.max(w.now, due)
    for _, id in ipairs(w.order) do
      local c = w.alive[id]
      if c and c:next_due() <= w.now then tick(w, id) end
    end
  end
  error("the workers did not settle")
end

local function shards(n)
  local list = {}
  for i = 1, n do list[i] = { id = string.format("shard-%02d", i), closed = false } end
  return list
end

local function held(w)
  local out = {}
  for _, id in ipairs(w.order) do if w.alive[id] then out[id] = w.alive[id]:stats().held end end
  return out
end

-- Owners in the table, and that no shard is held by two coordinators.
local function check_single_owner(w, n)
  for _, s in ipairs(shards(n)) do
    local holders = 0
    for _, id in ipairs(w.order) do
      if w.alive[id] and w.alive[id]:holds(s.id) then holders = holders + 1 end
    end
    assert.is_true(holders <= 1, s.id .. " held by " .. holders .. " workers")
  end
end

local function count_events(w, what, from)
  local n = 0
  for _, e in ipairs(w.log) do if e.what == what and e.t >= (from or -math.huge) then n = n + 1 end end
  return n
end

describe("leases.coordinator options", function()
  local t = FakeTable.new()
  local function opts(over)
    local o = { table = t, stream_arn = ARN, worker_id = "w1", lease_duration = D, clock = function() return 0 end }
    for k, v in pairs(over) do o[k] = v end
    return o
  end
  local NONE = {}
  local bad = {
    { "no options table", "x", "options table expected" },
    { "no lease table", opts({ table = NONE }), "opts.table must be a lease table" },
    { "a table without methods", opts({ table = {} }), "opts.table must be a lease table" },
    { "a table missing stats", opts({ table = setmetatable({ stats = false }, { __index = t }) }),
      "opts.table must be a lease table" },
    { "no stream ARN", opts({ stream_arn = NONE }), "opts.stream_arn must be a DynamoDB stream ARN" },
    { "an ARN of a table", opts({ stream_arn = "arn:aws:dynamodb:us-east-1:1:table/t" }), "opts.stream_arn" },
    { "an ARN of another service", opts({ stream_arn = "arn:aws:kinesis:us-east-1:1:stream/t" }), "opts.stream_arn" },
    { "an ARN with a newline", opts({ stream_arn = ARN .. "\n" }), "opts.stream_arn" },
    { "an ARN with '|'", opts({ stream_arn = ARN .. "|x" }), "opts.stream_arn" },
    { "an empty worker_id", opts({ worker_id = "" }), "opts.worker_id must be a non%-empty string" },
    { "a worker_id with a newline", opts({ worker_id = "w\n1" }), "without control characters" },
    { "a worker_id with NUL", opts({ worker_id = "w\0001" }), "without control characters" },
    { "a worker_id with DEL", opts({ worker_id = "w\127" }), "without control characters" },
    { "a number as worker_id", opts({ worker_id = 7 }), "opts.worker_id" },
    { "a worker_id of 257 bytes", opts({ worker_id = ("x"):rep(257) }), "at most 256 bytes" },
    { "lease_duration 0", opts({ lease_duration = 0 }), "opts.lease_duration must be a positive finite number" },
    { "lease_duration < 0", opts({ lease_duration = -1 }), "opts.lease_duration" },
    { "lease_duration NaN", opts({ lease_duration = 0 / 0 }), "opts.lease_duration" },
    { "lease_duration inf", opts({ lease_duration = math.huge }), "opts.lease_duration" },
    { "lease_duration as a string", opts({ lease_duration = "10" }), "opts.lease_duration" },
    { "clock not a function", opts({ clock = 5 }), "opts.clock must be a function" },
    { "random not a function", opts({ random = {} }), "opts.random must be a function" },
    { "initial_checkpoint AT_TIMESTAMP", opts({ initial_checkpoint = "AT_TIMESTAMP" }),
      "opts.initial_checkpoint must be \"TRIM_HORIZON\" or \"LATEST\"" },
    { "initial_checkpoint a sequence number", opts({ initial_checkpoint = "123" }), "opts.initial_checkpoint" },
    { "max_leases 0", opts({ max_leases = 0 }), "opts.max_leases must be a positive integer" },
    { "max_leases 1.5", opts({ max_leases = 1.5 }), "opts.max_leases" },
    { "max_leases as a string", opts({ max_leases = "2" }), "opts.max_leases" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1], function()
      local o = case[2]
      if type(o) == "table" then for k, v in pairs(o) do if v == NONE then o[k] = nil end end end
      local ok, msg = pcall(Coordinator.new, o)
      assert.is_false(ok)
      assert.matches("^leases%.coordinator%.new: .*" .. case[3], msg:gsub("^[^:]*:%d+: ", ""))
    end)
  end

  it("accepts the documented options and defaults", function()
    local c = Coordinator.new({ table = t, stream_arn = "arn:aws-cn:dynamodb:ddblocal:000000000000:table/x/stream/L" })
    assert.matches("^[^:]+:%d+:%x+$", c:worker_id())
    local other = Coordinator.new({ table = t, stream_arn = ARN })
    assert.are_not.equal(c:worker_id(), other:worker_id()) -- unique per coordinator
    assert.truthy(Coordinator.new(opts({ initial_checkpoint = "LATEST", max_leases = 3 })))
  end)

  it("raises on bad arguments of the methods", function()
    local c = Coordinator.new(opts({}))
    assert.has_error(function() c:holds(nil) end, "holds: shard_id (a string) expected")
    assert.has_error(function() c:lease(3) end, "lease: shard_id (a string) expected")
    assert.has_error(function() c:checkpoint("s", "12a") end,
      "checkpoint: checkpoint must be a sequence number (digits), TRIM_HORIZON, LATEST or SHARD_END")
    assert.has_error(function() c:checkpoint("s", "1", "pos") end, "checkpoint: position must be nil or a table")
    assert.has_error(function() c:sync("x") end, "sync: shards (a list) expected")
    assert.has_error(function() c:sync({ { id = "" } }) end, "sync: shards[1].id must be a non-empty string")
    assert.has_error(function() c:sync({ { id = "a", parent = 1 } }) end,
      "sync: shards[1].parent must be nil or a non-empty string")
    assert.has_error(function() c:sync({ { id = "a", closed = "yes" } }) end, "sync: shards[1].closed must be a boolean")
  end)
end)

describe("leases.coordinator sync", function()
  it("creates leases parents first: roots at initial_checkpoint, children of a known parent at TRIM_HORIZON", function()
    local w = new_world()
    local a = add(w, "A", { initial_checkpoint = "LATEST" })
    local created = {}
    w.table:before("create", function(_, lease) created[#created + 1] = lease.shard_id end)
    -- listed child before its parent; "orphan"'s parent is neither listed nor leased
    assert.is_true(a:sync({ { id = "c", parent = "p" }, { id = "p", closed = true }, { id = "orphan", parent = "gone" } }))
    assert.same({ "p", "c", "orphan" }, created)
    assert.equal("LATEST", w.table:item(ARN, "p").checkpoint)
    -- its parent is new too, starting at LATEST: "from now" holds for the child
    assert.equal("LATEST", w.table:item(ARN, "c").checkpoint)
    assert.same({ "p" }, w.table:item(ARN, "c").parents)
    assert.equal("LATEST", w.table:item(ARN, "orphan").checkpoint)
    assert.same({ "gone" }, w.table:item(ARN, "orphan").parents)
    assert.is_nil(w.table:item(ARN, "c").owner)
    assert.is_true(a:sync({ { id = "c", parent = "p" }, { id = "p" }, { id = "orphan", parent = "gone" } }))
    assert.equal(3, a:stats().creates) -- the second sync created nothing
    assert.equal(3, #created)          -- nor tried to
    -- a child found later, of a parent leased before: its whole shard, nothing lost
    assert.is_true(a:sync({ { id = "c", parent = "p" }, { id = "p", closed = true }, { id = "d", parent = "c" } }))
    assert.equal("TRIM_HORIZON", w.table:item(ARN, "d").checkpoint)
    local t = new_world()
    local b = add(t, "B", { initial_checkpoint = "TRIM_HORIZON" })
    assert.is_true(b:sync({ { id = "p", closed = true }, { id = "c", parent = "p" } }))
    assert.equal("TRIM_HORIZON", t.table:item(ARN, "p").checkpoint)
    assert.equal("TRIM_HORIZON", t.table:item(ARN, "c").checkpoint)
  end)

  it("race 12: two workers creating the same leases at once: each created once, same parents", function()
    local w = new_world()
    local a, b = add(w, "A"), add(w, "B")
    local list = { { id = "p" }, { id = "c", parent = "p" } }
    local nested = false
    w.table:before("create", function()
      if not nested then nested = true assert.is_true(b:sync(list)) end -- B runs inside A's first create
    end)
    assert.is_true(a:sync(list))
    assert.equal(2, a:stats().creates + b:stats().creates)
    assert.same({ "p" }, w.table:item(ARN, "c").parents)
  end)

  it("cleanup: a finished, unlisted lease goes once its children started and its parents are gone", function()
    local w = new_world()
    local a = add(w, "A")
    w.table:put(ARN, { shard_id = "g", checkpoint = "SHARD_END" })
    w.table:put(ARN, { shard_id = "p", checkpoint = "SHARD_END", parents = { "g" } })
    w.table:put(ARN, { shard_id = "c", checkpoint = "TRIM_HORIZON", parents = { "p" } })
    -- g's child p is finished: g goes; c has not started: p stays
    assert.is_true(a:sync({ { id = "c", parent = "p" } }))
    assert.is_nil(w.table:item(ARN, "g"))
    assert.truthy(w.table:item(ARN, "p"))
    -- c started, but p is still listed
    w.table:put(ARN, { shard_id = "c", checkpoint = "4100000000000000000001", parents = { "p" } })
    assert.is_true(a:sync({ { id = "p" }, { id = "c", parent = "p" } }))
    assert.truthy(w.table:item(ARN, "p"))
    assert.is_true(a:sync({ { id = "c", parent = "p" } }))
    assert.is_nil(w.table:item(ARN, "p"))
    assert.equal(2, a:stats().deletes)
    assert.truthy(w.table:item(ARN, "c")) -- not finished
  end)

  it("cleanup waits for a listed child that has no lease yet, and keeps unfinished leases", function()
    local w = new_world()
    local a = add(w, "A")
    w.table:put(ARN, { shard_id = "p", checkpoint = "SHARD_END" })
    w.table:put(ARN, { shard_id = "q", checkpoint = "900" }) -- unlisted but not finished
    w.table:fail("create", "Timeout", { shard = "c" })
    assert.is_nil((a:sync({ { id = "c", parent = "p" } })))
    assert.truthy(w.table:item(ARN, "p"))
    assert.is_true(a:sync({ { id = "c", parent = "p" } }))
    assert.equal("TRIM_HORIZON", w.table:item(ARN, "c").checkpoint)
    assert.truthy(w.table:item(ARN, "p")) -- c has not started
    assert.truthy(w.table:item(ARN, "q"))
  end)

  it("cleanup keeps a finished lease while its own parent's lease exists", function()
    local w = new_world()
    local a = add(w, "A")
    w.table:put(ARN, { shard_id = "g", checkpoint = "5" }) -- unlisted, never finished
    w.table:put(ARN, { shard_id = "p", checkpoint = "SHARD_END", parents = { "g" } })
    w.table:put(ARN, { shard_id = "c", checkpoint = "77", parents = { "p" } })
    assert.is_true(a:sync({ { id = "c", parent = "p" } }))
    assert.truthy(w.table:item(ARN, "p"))
    assert.equal(0, a:stats().deletes)
  end)

  it("races 13/14: a deleted parent is not recreated by a later sync, by anyone, and the child proceeds", function()
    local w = new_world()
    local a = add(w, "A")
    w.table:put(ARN, { shard_id = "p", checkpoint = "SHARD_END" })
    w.table:put(ARN, { shard_id = "c", checkpoint = "TRIM_HORIZON", parents = { "p" } })
    run(w, 1)
    assert.is_true(a:holds("c"))
    assert.is_true(a:readable("c"))
    assert.is_true(a:checkpoint("c", "5000"))
    assert.is_true(a:sync({ { id = "c", parent = "p" } }))
    assert.is_nil(w.table:item(ARN, "p"))
    -- DescribeStream lists p again (eventual consistency); this worker and a fresh one sync
    local b = add(w, "B")
    assert.is_true(a:sync({ { id = "p" }, { id = "c", parent = "p" } }))
    assert.is_true(b:sync({ { id = "p" }, { id = "c", parent = "p" } }))
    assert.is_nil(w.table:item(ARN, "p"))
    assert.equal(0, a:stats().creates + b:stats().creates)
    run(w, 5)
    assert.is_true(a:readable("c"))
  end)

  it("a table without permissions: sync and tick return the error, nothing is lost", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(2)))
    run(w, 1)
    assert.equal(2, a:stats().held)
    w.table:fail("list", "AccessDeniedException", { times = math.huge })
    w.table:fail("renew", "AccessDeniedException", { times = math.huge })
    local ok, err = a:sync(shards(2))
    assert.is_nil(ok)
    assert.equal("AccessDeniedException", err.code)
    w.now = D / 3
    local res
    res, err = a:tick()
    assert.is_nil(res)
    assert.equal("AccessDeniedException", err.code)
    assert.is_true(a:holds("shard-01")) -- until its local expiry
    w.now = D
    res, err = a:tick()
    assert.same({ "shard-01", "shard-02" }, res.lost) -- reported, with the error beside them
    assert.equal("AccessDeniedException", err.code)
    assert.equal("TRIM_HORIZON", w.table:item(ARN, "shard-01").checkpoint)
  end)
end)

describe("leases.coordinator races", function()
  it("race 1: two takers of one expired lease: exactly one wins, the loser skips without an error", function()
    local w = new_world()
    w.table:put(ARN, { shard_id = "s", owner = "dead", counter = 5, checkpoint = "100" })
    local a, b = add(w, "A"), add(w, "B")
    tick(w, "A") tick(w, "B")
    assert.is_false(a:holds("s"))
    assert.is_false(b:holds("s"))
    w.now = D
    local nested = false
    w.table:before("take", function()
      if not nested then nested = true tick(w, "B") end -- B scans and takes between A's scan and take
    end)
    local res, err = tick(w, "A")
    assert.is_nil(err)
    assert.same({}, res.acquired)
    assert.is_true(b:holds("s"))
    assert.is_false(a:holds("s"))
    assert.equal(1, a:stats().conflicts)
    assert.equal("B", w.table:item(ARN, "s").owner)
    assert.equal(6, w.table:item(ARN, "s").counter)
    assert.equal(1, w.table:item(ARN, "s").owner_switches)
  end)

  it("expiry is timed on the observer's clock from when it first saw the counter (leases.md 2.3)", function()
    local w = new_world()
    w.table:put(ARN, { shard_id = "s", owner = "dead", counter = 5, checkpoint = "100" })
    w.now = 1000 -- the counter has not moved for ages, but B only sees it now
    local b = add(w, "B")
    run(w, 1000 + D - 0.01)
    assert.is_false(b:holds("s"))
    run(w, 1000 + D + D / 4)
    assert.is_true(b:holds("s"))
    assert.is_true(w.log[1].t >= 1000 + D)
  end)

  it("race 2: a steal lands between the victim's renewals: it is lost at the next renewal, its checkpoint refused", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(4)))
    run(w, 1)
    assert.equal(4, a:stats().held)
    add(w, "B")
    local t0 = w.now
    run(w, t0 + 3 * D)
    local steal
    for _, e in ipairs(w.log) do if e.who == "B" and e.what == "acquired" then steal = steal or e end end
    assert.truthy(steal)
    local lost
    for _, e in ipairs(w.log) do if e.who == "A" and e.what == "lost" and e.shard == steal.shard then lost = e end end
    assert.truthy(lost)
    assert.is_true(lost.t - steal.t <= D / 3 + 1e-9)
    local stored = w.table:item(ARN, steal.shard)
    assert.is_nil((a:checkpoint(steal.shard, "999")))
    assert.same(stored, w.table:item(ARN, steal.shard))
    assert.same({ A = 2, B = 2 }, held(w))
  end)

  it("races 2/6: the victim renews between the stealer's scan and take: the stale take fails, one owner", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(3)))
    run(w, 1)
    local b = add(w, "B")
    w.table:before("take", function()
      w.table:before("take", nil)
      w.now = w.now + D / 3 -- A's renewal is due: it lands before B's take
      tick(w, "A")
    end)
    local res = tick(w, "B")
    assert.same({}, res.acquired)
    assert.equal(1, b:stats().conflicts)
    assert.equal(0, b:stats().steals)
    assert.equal(3, a:stats().held)
    check_single_owner(w, 3)
  end)

  it("a scan that shows the lease taken drops it at once, without a renewal", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1) -- taken at 0; next scan at D/4, next renewal at D/3
    local item = w.table:item(ARN, "shard-01")
    w.table:take(ARN, "shard-01", "B", item.counter, "A")
    local renewals = w.table:count("renew")
    w.now = D / 4
    local res = a:tick()
    assert.same({ "shard-01" }, res.lost)
    assert.is_false(a:holds("shard-01"))
    assert.equal(renewals, w.table:count("renew"))
  end)

  it("race 3: the owner pauses past the lease, the lease is taken, the owner's checkpoint is refused", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    assert.is_true(a:checkpoint("shard-01", "100"))
    local b = add(w, "B")
    w.alive.A = nil -- paused: no ticks
    run(w, 3 * D)
    assert.is_true(b:holds("shard-01"))
    assert.equal("100", b:lease("shard-01").checkpoint) -- resumes after A's last checkpoint
    assert.is_true(b:checkpoint("shard-01", "200"))
    w.alive.A = a -- resumes
    local writes = w.table:count("checkpoint")
    local ok, err = a:checkpoint("shard-01", "150")
    assert.is_nil(ok)
    assert.equal("LeaseLost", err.code)
    assert.equal(writes, w.table:count("checkpoint")) -- fenced locally: no write at all
    assert.equal("200", w.table:item(ARN, "shard-01").checkpoint)
    assert.equal("B", w.table:item(ARN, "shard-01").owner)
    assert.same({ "shard-01" }, (a:tick()).lost)
  end)

  it("a checkpoint by a worker that just lost its lease (not yet fenced) fails the condition", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    -- another worker's take lands (the table's condition is the only guard left)
    local item = w.table:item(ARN, "shard-01")
    assert.equal(item.counter + 1, w.table:take(ARN, "shard-01", "B", item.counter, "A"))
    assert.equal(item.counter + 2, w.table:checkpoint(ARN, "shard-01", "B", item.counter + 1, "300"))
    assert.is_true(a:holds("shard-01"))
    local ok, err = a:checkpoint("shard-01", "250")
    assert.is_nil(ok)
    assert.equal("LeaseLost", err.code)
    assert.is_false(a:holds("shard-01"))
    assert.equal("300", w.table:item(ARN, "shard-01").checkpoint)
    local res = a:tick()
    assert.same({ "shard-01" }, res.lost)
    assert.equal(1, a:stats().lost)
    assert.is_nil((a:checkpoint("shard-01", "400")))
  end)

  it("race 4: a renewal applied whose answer was lost keeps the lease", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    w.table:lose_response("renew")
    run(w, 3 * D)
    assert.is_true(a:holds("shard-01"))
    assert.equal(0, count_events(w, "lost"))
    assert.equal(0, a:stats().conflicts)
    assert.equal(a:lease("shard-01").counter, w.table:item(ARN, "shard-01").counter)
    assert.is_true(a:checkpoint("shard-01", "10"))
  end)

  it("race 5: a checkpoint applied whose answer was lost: no false loss, the next checkpoint goes on", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    local c0 = w.table:item(ARN, "shard-01").counter
    w.table:lose_response("checkpoint")
    local ok, err = a:checkpoint("shard-01", "100", { seq = "100" })
    assert.is_nil(ok)
    assert.equal("Timeout", err.code)
    assert.is_true(a:holds("shard-01"))
    assert.equal("100", w.table:item(ARN, "shard-01").checkpoint) -- it was stored
    assert.is_true(a:checkpoint("shard-01", "120")) -- a newer one, not a false LeaseLost
    assert.equal("120", w.table:item(ARN, "shard-01").checkpoint)
    assert.equal(c0 + 2, w.table:item(ARN, "shard-01").counter) -- each stored once
    -- the outcome was settled by one read; a backwards write is refused after it
    w.table:lose_response("checkpoint")
    assert.is_nil((a:checkpoint("shard-01", "130")))
    ok, err = a:checkpoint("shard-01", "125")
    assert.is_nil(ok)
    assert.equal("CheckpointBackwards", err.code)
    run(w, 3 * D)
    assert.equal(0, count_events(w, "lost"))
  end)

  it("race 7: renewals throttled longer than the lease: self-fenced, no write after, another takes it", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    local last = w.last_write.A
    add(w, "B")
    w.table:fail("renew", "ProvisionedThroughputExceededException", { times = math.huge, shard = "shard-01" })
    run(w, last + D - 0.01)
    assert.is_true(a:holds("shard-01")) -- kept until its local expiry
    w.now = last + D
    assert.is_false(a:holds("shard-01"))
    assert.is_false(a:readable("shard-01"))
    local writes = w.table:count("checkpoint")
    local ok, err = a:checkpoint("shard-01", "77")
    assert.is_nil(ok)
    assert.equal("LeaseLost", err.code)
    assert.equal(writes, w.table:count("checkpoint"))
    run(w, last + 2 * D)
    assert.is_true(w.alive.B:holds("shard-01"))
    assert.equal(1, count_events(w, "lost"))
    assert.equal("TRIM_HORIZON", w.table:item(ARN, "shard-01").checkpoint)
    check_single_owner(w, 1)
  end)

  it("races 9/15: 2 -> 3 workers on 16 shards converge to ceil(16/3), then no ping-pong", function()
    local w = new_world()
    local a, b = add(w, "A"), add(w, "B")
    assert.is_true(a:sync(shards(16)))
    run(w, 20 * D)
    local h = held(w)
    assert.equal(16, h.A + h.B)
    assert.equal(8, math.max(h.A, h.B))
    local c = add(w, "C")
    local joined = w.now
    run(w, joined + 10 * D) -- one steal per lease_duration: 6 steals are needed
    h = held(w)
    assert.equal(16, h.A + h.B + h.C)
    assert.is_true(math.max(h.A, h.B, h.C) <= 6, "max " .. math.max(h.A, h.B, h.C))
    assert.is_true(math.min(h.A, h.B, h.C) >= 5)
    local last_steal = {}
    for _, e in ipairs(w.log) do
      if e.what == "acquired" and e.t > joined then -- nothing was free: every take was a steal
        assert.is_true(e.t - (last_steal[e.who] or -math.huge) >= D, "two steals within a lease_duration")
        last_steal[e.who] = e.t
      end
    end
    assert.is_true(c:stats().steals >= 5)
    local settled = w.now
    run(w, settled + 50 * D)
    assert.equal(0, count_events(w, "acquired", settled + 1e-9))
    assert.equal(0, count_events(w, "lost", settled + 1e-9))
    check_single_owner(w, 16)
    assert.is_true(b:stats().renewals > 0)
  end)

  it("race 10: a new worker steals from workers at exactly the target only while it needs more than one", function()
    local w = new_world()
    local a = add(w, "A")
    add(w, "B")
    assert.is_true(a:sync(shards(4)))
    run(w, 20 * D)
    assert.same({ A = 2, B = 2 }, held(w))
    add(w, "C") -- target ceil(4/3) = 2: C needs 2, steals 1; then needs 1: no more
    local joined = w.now
    run(w, w.now + 20 * D)
    local h = held(w)
    assert.equal(1, h.C)
    assert.equal(3, h.A + h.B)
    assert.equal(1, count_events(w, "lost", joined))
  end)

  it("a worker that leaves: its leases expire and the others take them within 1.5 x lease_duration", function()
    local w = new_world()
    local a = add(w, "A")
    add(w, "B") add(w, "C")
    assert.is_true(a:sync(shards(16)))
    run(w, 40 * D)
    local gone_at, last = w.now, w.last_write.C
    local had = held(w).C
    assert.is_true(had > 0)
    w.alive.C = nil -- crashed
    run(w, gone_at + 3 * D)
    local h = held(w)
    assert.equal(16, h.A + h.B)
    assert.is_true(math.max(h.A, h.B) <= 8)
    local first, latest = math.huge, 0
    for _, e in ipairs(w.log) do
      if e.what == "acquired" and e.t > gone_at then first, latest = math.min(first, e.t), math.max(latest, e.t) end
    end
    assert.is_true(first >= last + D, "taken before the lease expired")
    assert.is_true(latest <= last + 1.5 * D, "failover " .. (latest - last))
  end)

  it("rolling kills: a worker that took a lease and died does not hold back the leases of one that died before", function()
    local w = new_world()
    local a = add(w, "A")
    add(w, "B") add(w, "V")
    assert.is_true(a:sync(shards(9)))
    run(w, 40 * D)
    local v_last, orphans = w.last_write.V, {}
    for _, lease in ipairs(assert(w.table:list(ARN))) do
      if lease.owner == "V" then orphans[lease.shard_id] = true end
    end
    w.alive.V = nil -- V dies; X joins and, nothing being expired yet, steals one lease
    local x = add(w, "X")
    run(w, w.now + D / 2)
    assert.is_true(x:stats().held >= 1)
    w.alive.X = nil -- and dies with that fresh lease
    for _, lease in ipairs(assert(w.table:list(ARN))) do
      if lease.owner == "X" then orphans[lease.shard_id] = nil end
    end
    run(w, v_last + 4 * D)
    local taken = {}
    for _, e in ipairs(w.log) do
      if e.what == "acquired" and orphans[e.shard] and e.t > v_last then taken[e.shard] = taken[e.shard] or e.t end
    end
    for shard in pairs(orphans) do
      assert.is_truthy(taken[shard], shard .. " never taken")
      assert.is_true(taken[shard] - v_last <= 1.5 * D, shard .. ": failover " .. (taken[shard] - v_last))
    end
  end)

  it("failover time over 20 kills: from the holder's last renewal to another's take, D <= t <= 1.5 D", function()
    local times = {}
    for k = 1, 20 do
      local w = new_world()
      local a = add(w, "A")
      assert.is_true(a:sync(shards(1)))
      run(w, 0.1)
      add(w, "B")
      run(w, 2 * D + k * D / 7) -- kills fall at every phase of the renewal and scan cycles
      local last = w.last_write.A
      w.alive.A = nil
      local killed = w.now
      run(w, killed + 2 * D)
      local taken
      for _, e in ipairs(w.log) do if e.who == "B" and e.what == "acquired" then taken = e.t end end
      times[k] = taken - last
    end
    table.sort(times)
    assert.is_true(times[1] >= D, "min " .. times[1])
    assert.is_true(times[#times] <= 1.5 * D, "max " .. times[#times])
  end)

  it("race 15: a graceful release is taken at the next scan, resuming after the final checkpoint", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(2)))
    run(w, 1)
    local b = add(w, "B")
    run(w, 3 * D)
    assert.same({ A = 1, B = 1 }, held(w))
    local mine = a:holds("shard-01") and "shard-01" or "shard-02"
    assert.is_true(a:checkpoint(mine, "300", { seq = "300" }))
    assert.is_true(a:release_all())
    w.alive.A = nil
    assert.is_nil(w.table:item(ARN, mine).owner)
    assert.equal(0, a:stats().held)
    assert.equal(1, a:stats().releases)
    local released = w.now
    run(w, released + D / 4)
    assert.is_true(b:holds(mine))
    assert.equal("300", b:lease(mine).checkpoint)
    assert.same({ seq = "300" }, b:lease(mine).position)
  end)

  it("race 11: a child stays blocked until its parent, taken back after a crash, reaches SHARD_END", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync({ { id = "p", closed = true }, { id = "c", parent = "p" } }))
    run(w, 1)
    assert.is_true(a:holds("p"))
    assert.is_true(a:holds("c"))
    assert.is_false(a:readable("c"))
    assert.is_true(a:readable("p"))
    w.alive.A = nil -- crashed before the SHARD_END checkpoint of p
    local b = add(w, "B")
    run(w, 3 * D)
    assert.is_true(b:readable("p"))
    assert.is_true(b:holds("c"))
    assert.is_false(b:readable("c"))
    assert.is_true(b:checkpoint("p", "SHARD_END"))
    assert.is_false(b:holds("p")) -- finished: released, not renewed any more
    assert.is_nil(w.table:item(ARN, "p").owner)
    assert.is_true(b:readable("c"))
    run(w, 6 * D)
    assert.is_false(b:holds("p")) -- nobody takes a finished lease
    assert.is_nil(w.table:item(ARN, "p").owner)
    assert.equal(0, count_events(w, "lost"))
  end)

  it("race 20: a parent finishing while the child is being taken: the gate opens at the next scan", function()
    local w = new_world()
    local a = add(w, "A", { max_leases = 1 })
    assert.is_true(a:sync({ { id = "p" } }))
    run(w, 1)
    w.table:put(ARN, { shard_id = "c", checkpoint = "TRIM_HORIZON", parents = { "p" } })
    local b = add(w, "B")
    w.table:before("take", function(_, shard_id)
      if shard_id == "c" then assert.is_true(a:checkpoint("p", "SHARD_END")) end
    end)
    tick(w, "B")
    assert.is_true(b:holds("c"))
    assert.is_false(b:readable("c")) -- B's scan saw p unfinished
    run(w, w.now + D / 4)
    assert.is_true(b:readable("c"))
  end)

  it("race 20: a write after the lease's deletion fails instead of creating an item", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    w.table:remove(ARN, "shard-01")
    local ok, err = a:checkpoint("shard-01", "5")
    assert.is_nil(ok)
    assert.equal("LeaseLost", err.code)
    assert.is_nil(w.table:item(ARN, "shard-01"))
    local t = FakeTable.new()
    t:put(ARN, { shard_id = "x", checkpoint = "5" })
    local deleted, derr = t:delete(ARN, "x")
    assert.is_nil(deleted)
    assert.equal("LeaseConflict", derr.code)
  end)

  it("race 18: a checkpoint during the same lease's renewal is refused as busy, no self-inflicted conflict", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    local inside
    w.table:before("renew", function() inside = { a:checkpoint("shard-01", "50") } end)
    run(w, D / 3 + 0.01)
    w.table:before("renew", nil)
    assert.is_nil(inside[1])
    assert.equal("LeaseBusy", inside[2].code)
    assert.is_true(inside[2].retryable)
    assert.is_true(a:checkpoint("shard-01", "50"))
    assert.equal(0, a:stats().conflicts)
    assert.is_true(a:holds("shard-01"))
  end)

  it("race 19: a jumping wall clock changes nothing; only the injected monotonic clock counts", function()
    local function scenario()
      local w = new_world()
      local a = add(w, "A")
      add(w, "B")
      assert.is_true(a:sync(shards(6)))
      run(w, 5 * D)
      w.alive.A = nil
      run(w, 10 * D)
      return w.log
    end
    local plain = scenario()
    local time, clock, date = os.time, os.clock, os.date
    local n = 0
    os.time = function() n = n + 1 return (n % 2 == 0) and 0 or 4e9 end ---@diagnostic disable-line
    os.clock = function() n = n + 1 return -n * 3600 end ---@diagnostic disable-line
    local ok, jumped = pcall(scenario)
    os.time, os.clock, os.date = time, clock, date
    assert.is_true(ok, tostring(jumped))
    assert.same(plain, jumped)
    assert.equal(0, n)
  end)

  it("a worker restarting under the same id takes its own leases back at once (leases.md 2.2)", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(2)))
    run(w, 1)
    w.alive.A = nil
    local switches = w.table:item(ARN, "shard-01").owner_switches
    local again = add(w, "A")
    local res = tick(w, "A")
    assert.same({ "shard-01", "shard-02" }, (function() table.sort(res.acquired) return res.acquired end)())
    assert.equal(0, again:stats().steals)
    assert.equal(switches, w.table:item(ARN, "shard-01").owner_switches) -- no change of owner
  end)

  it("race 8: a restart under the same id while the old one lives: the new one keeps them, the old stops", function()
    local w = new_world()
    local old = add(w, "A")
    assert.is_true(old:sync(shards(2)))
    run(w, 1)
    local new = Coordinator.new({ table = w.table, stream_arn = ARN, worker_id = "A", lease_duration = D,
      clock = w.clock })
    w.order[#w.order + 1] = "A2"
    w.alive.A2 = new
    w.now = 1.5
    tick(w, "A2") -- the new one takes them back at once
    assert.equal(2, new:stats().held)
    -- until the old one's next renewal, both read the shards: the overlap a unique id
    -- (the default worker_id) avoids
    assert.is_true(old:holds("shard-01") and new:holds("shard-01"))
    run(w, 5 * D)
    assert.equal(2, new:stats().held)
    assert.equal(0, old:stats().held)
    assert.equal(2, count_events(w, "lost"))
    assert.equal("LeaseLost", select(2, old:checkpoint("shard-01", "9")).code)
    run(w, 50 * D) -- the old one never takes them back: to it they look held by itself, renewed
    assert.equal(2, new:stats().held)
    assert.equal(2, count_events(w, "lost"))
  end)

  it("a take whose answer was lost: the lease waits for its expiry, then is taken; nothing hangs", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    w.table:lose_response("take")
    local res, err = a:tick()
    assert.is_nil(res)
    assert.equal("Timeout", err.code)
    assert.equal("A", w.table:item(ARN, "shard-01").owner)
    assert.is_false(a:holds("shard-01"))
    run(w, D - 0.01)
    assert.is_false(a:holds("shard-01"))
    run(w, D + D / 4)
    assert.is_true(a:holds("shard-01"))
  end)

  it("max_leases caps what a worker takes", function()
    local w = new_world()
    local a = add(w, "A", { max_leases = 3 })
    assert.is_true(a:sync(shards(10)))
    run(w, 5 * D)
    assert.equal(3, a:stats().held)
  end)

  it("checkpoints never move backwards (decimal comparison) and SHARD_END releases without a loss", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(1)))
    run(w, 1)
    assert.is_true(a:checkpoint("shard-01", "999"))
    assert.is_true(a:checkpoint("shard-01", "1000")) -- longer is larger, not string order
    assert.is_true(a:checkpoint("shard-01", "1000")) -- the same again: allowed
    for _, back in ipairs({ "998", "0999", "TRIM_HORIZON", "LATEST" }) do
      local ok, err = a:checkpoint("shard-01", back)
      assert.is_nil(ok)
      assert.equal("CheckpointBackwards", err.code)
    end
    assert.equal("1000", w.table:item(ARN, "shard-01").checkpoint)
    assert.is_true(a:checkpoint("shard-01", "SHARD_END"))
    assert.is_false(a:holds("shard-01"))
    assert.equal("SHARD_END", a:lease("shard-01").checkpoint)
    run(w, 5 * D)
    assert.equal(0, count_events(w, "lost"))
    local s = a:stats()
    assert.equal(4, s.checkpoints)
    assert.equal(1, s.releases)
    assert.equal(0, s.held)
  end)

  it("a parent missing from the scan is confirmed gone by one read before the gate opens", function()
    local w = new_world()
    local a = add(w, "A")
    w.table:put(ARN, { shard_id = "c", checkpoint = "TRIM_HORIZON", parents = { "p" } })
    run(w, 1)
    assert.is_true(a:readable("c"))
    assert.equal(1, w.table:count("get"))
    run(w, 5 * D)
    assert.equal(1, w.table:count("get"))
  end)

  it("next_due never passes a renewal, a scan or a local expiry; stats count the table's units", function()
    local w = new_world()
    local a = add(w, "A")
    assert.is_true(a:sync(shards(2)))
    assert.equal(0, a:next_due())
    tick(w, "A")
    assert.equal(D / 4, a:next_due())
    w.now = D / 4
    tick(w, "A")
    assert.equal(D / 3, a:next_due())
    local s = a:stats()
    assert.equal(2, s.held)
    assert.equal(2, s.takes)
    assert.equal(2, s.creates)
    assert.is_true(s.write_units >= 4)
    assert.is_true(s.read_units > 0)
  end)
end)
