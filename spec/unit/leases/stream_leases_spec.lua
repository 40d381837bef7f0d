-- The stream's side of the lease table (opts.leases), against the scripted
-- fake Streams client and a stub coordinator that keeps the coordinator's
-- contract (see the brief in HACKING.md's leases section): the stub is
-- scripted per test, so these specs prove what the stream does with what the
-- coordinator says, not the coordinator itself.
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local errors = require("dynamodb_stream.errors")

local TABLE_MODULE, COORDINATOR_MODULE = "dynamodb_stream.leases.table", "dynamodb_stream.leases.coordinator"

-- A coordinator that holds what its script says. Each tick takes the next
-- step of c.ticks: { acquired = ids, lost = ids, err = e } (lists and an
-- error come back together, as the coordinator's tick may return them), or
-- { err = e } alone (nil, e).
local function stub_coordinator()
  local c = { held = {}, leases = {}, log = {}, ticks = {}, due = math.huge, tick_calls = 0,
    refuse = {} }
  function c.sync(self, shards) self.synced = shards return true end
  function c.worker_id(self) return self.config.worker_id end
  function c.tick(self)
    self.tick_calls = self.tick_calls + 1
    if self.on_tick then self:on_tick() end
    local step = table.remove(self.ticks, 1) or {}
    if step.err and not (step.acquired or step.lost) then return nil, step.err end
    for _, id in ipairs(step.lost or {}) do self.held[id] = nil end
    for _, id in ipairs(step.acquired or {}) do
      self.held[id] = true
      self.leases[id] = self.leases[id] or { shard_id = id, checkpoint = "TRIM_HORIZON", parents = {} }
    end
    return { acquired = step.acquired or {}, lost = step.lost or {} }, step.err
  end
  function c.next_due(self) return self.due end
  function c.holds(self, id) return self.held[id] == true end
  function c.readable(self, id)
    if not self.held[id] then return false end
    for _, p in ipairs(self.leases[id].parents or {}) do
      if self.leases[p] and self.leases[p].checkpoint ~= "SHARD_END" then return false end
    end
    return true
  end
  function c.lease(self, id) return self.leases[id] end
  function c.checkpoint(self, id, checkpoint, position)
    if not self.held[id] or self.refuse[id] then
      self.held[id] = nil
      return nil, errors.new({ code = "LeaseLost", message = "lease of " .. id .. " lost" })
    end
    self.log[#self.log + 1] = "checkpoint " .. id .. " " .. checkpoint
    self.leases[id].checkpoint, self.leases[id].position = checkpoint, position
    return true
  end
  function c.release_all(self)
    self.log[#self.log + 1] = "release_all"
    self.held = {}
    return true
  end
  function c.stats(self)
    local n = 0
    for _ in pairs(self.held) do n = n + 1 end
    return { held = n, checkpoints = #self.log }
  end
  return c
end

describe("stream with opts.leases", function()
  local fake, coord, made, ensure_results, now, saved_modules
  local ddb = { call = function() end }

  local function new_stream(lease_opts, opts)
    local l = { dynamodb = ddb, table = "orders-leases", worker_id = "w1", checkpoint_interval = 5 }
    for k, v in pairs(lease_opts or {}) do l[k] = v end
    local o = { start_at = "TRIM_HORIZON", clock = function() return now end, leases = l }
    for k, v in pairs(opts or {}) do o[k] = v end
    return Stream.new(fake, fake.stream_arn, o)
  end

  -- The checkpoints written and releases, in order.
  local function writes() return coord.log end

  before_each(function()
    now = 100
    fake = Fake.new()
    coord = stub_coordinator()
    made, ensure_results = {}, {}
    saved_modules = { package.loaded[TABLE_MODULE], package.loaded[COORDINATOR_MODULE] }
    package.loaded[TABLE_MODULE] = { new = function(client, name)
      local lt = { client = client, name = name, ensures = 0 }
      function lt.ensure(self)
        self.ensures = self.ensures + 1
        local r = table.remove(ensure_results, 1)
        if r then return nil, r end
        return true
      end
      made.table = lt
      return lt
    end }
    package.loaded[COORDINATOR_MODULE] = { new = function(cfg)
      made.config, coord.config = cfg, cfg
      return coord
    end }
  end)

  after_each(function()
    package.loaded[TABLE_MODULE], package.loaded[COORDINATOR_MODULE] = saved_modules[1], saved_modules[2]
  end)

  describe("options", function()
    it("builds the lease table and the coordinator as the contracts say", function()
      now = 7
      local s = new_stream({ lease_duration = 4 }, { start_at = "LATEST" })
      assert.equals(ddb, made.table.client)
      assert.equals("orders-leases", made.table.name)
      local cfg = made.config
      assert.equals(made.table, cfg.table)
      assert.equals(fake.stream_arn, cfg.stream_arn)
      assert.equals("w1", cfg.worker_id)
      assert.equals(4, cfg.lease_duration)
      assert.equals("LATEST", cfg.initial_checkpoint)
      assert.equals(7, cfg.clock())
      assert.equals("w1", s.worker_id)
      new_stream()
      assert.equals(10, made.config.lease_duration)  -- the default
      assert.equals("TRIM_HORIZON", made.config.initial_checkpoint)
    end)

    it("gets the coordinator's default worker id: the host name, the pid and random hex, fresh each time",
      function()
      -- the real modules (nothing is sent before the first fetch)
      package.loaded[TABLE_MODULE], package.loaded[COORDINATOR_MODULE] = nil, nil
      local host = (io.open("/proc/sys/kernel/hostname"):read("*l"))
      local l = { dynamodb = ddb, table = "orders-leases" }
      local s1 = Stream.new(fake, fake.stream_arn, { leases = l })
      local s2 = Stream.new(fake, fake.stream_arn, { leases = l })
      local h, pid, hex = s1.worker_id:match("^(.+):(%d+):(%x+)$")
      assert.equals(host, h)
      assert.equals((io.open("/proc/self/stat"):read("*l"):match("^%d+")), pid)
      assert.equals(16, #hex)
      assert.are_not.equal(s1.worker_id, s2.worker_id)
    end)

    it("raises on every bad option with its message", function()
      local cases = {
        { 42, "opts.leases must be a table" },
        { { table = "t-1" }, "opts.leases.dynamodb must be a DynamoDB client (ds.dynamodb())" },
        { { dynamodb = {}, table = "t-1" }, "opts.leases.dynamodb must be a DynamoDB client (ds.dynamodb())" },
        { { dynamodb = "x", table = "t-1" }, "opts.leases.dynamodb must be a DynamoDB client (ds.dynamodb())" },
      }
      local table_msg = "opts.leases.table must be a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)"
      for _, name in ipairs({ false, 12, "", "ab", string.rep("a", 256), "has space", "a/b", "tab\tle" }) do
        cases[#cases + 1] = { { dynamodb = ddb, table = name or nil }, table_msg }
      end
      local id_msg = "opts.leases.worker_id must be a non-empty string of at most 256 bytes without control characters"
      for _, id in ipairs({ "", 12, true, "host\n1", "a\0b", "del\127", string.rep("w", 257) }) do
        cases[#cases + 1] = { { dynamodb = ddb, table = "t-1", worker_id = id }, id_msg }
      end
      for _, d in ipairs({ 0, -1, "10", 0 / 0, math.huge }) do
        cases[#cases + 1] = { { dynamodb = ddb, table = "t-1", lease_duration = d },
          "opts.leases.lease_duration must be a number of seconds > 0" }
      end
      for _, d in ipairs({ -0.5, "1", 0 / 0, math.huge, {} }) do
        cases[#cases + 1] = { { dynamodb = ddb, table = "t-1", checkpoint_interval = d },
          "opts.leases.checkpoint_interval must be a number of seconds >= 0" }
      end
      for i, case in ipairs(cases) do
        local ok, err = pcall(Stream.new, fake, fake.stream_arn, { leases = case[1] })
        assert(not ok, "case " .. i .. " was accepted")
        assert.equals(case[2], (err:gsub("^.-:%d+: ", "")), "case " .. i)
      end
      -- the edges that are allowed
      assert.truthy(Stream.new(fake, fake.stream_arn, { leases = { dynamodb = ddb, table = "a.b",
        checkpoint_interval = 0, lease_duration = 0.5, worker_id = "x" } }))
      assert.truthy(Stream.new(fake, fake.stream_arn, { leases = { dynamodb = ddb,
        table = "A_z-0." .. string.rep("x", 249), worker_id = string.rep("w", 256) } }))
    end)

    it("refuses the positions that the lease table holds: run's checkpoint, start_at positions, set_shard_state",
      function()
      local s = new_stream()
      assert.has_error(function() s:run({ checkpoint = "state.json" }) end,
        "run: opts.checkpoint cannot be used with opts.leases (the lease table is the checkpoint)")
      assert.has_error(function() s:set_shard_state({}) end,
        "set_shard_state: with opts.leases the lease table holds the positions")
      assert.has_error(function() new_stream(nil, { start_at = { A = { type = "TRIM_HORIZON" } } }) end,
        "opts.start_at positions cannot be used with opts.leases (the lease table holds the positions)")
      assert.equals(0, #fake.calls)
    end)
  end)

  describe("the lease table", function()
    it("is made ready by the first fetch; a failure is that fetch's failure, tried again next time", function()
      fake:add_shard("A")
      ensure_results[1] = errors.new({ code = "AccessDeniedException", message = "no CreateTable" })
      local s = new_stream()
      local got
      s:on("error", function(e) got = e end)
      local records, err = s:fetch_stream_state()
      assert.is_nil(records)
      assert.equals("AccessDeniedException", err.code)
      assert.equals(err, got)
      assert.equals(0, #fake.calls)        -- nothing read without the lease table
      assert.equals(0, coord.tick_calls)
      assert.truthy(s:fetch_stream_state())
      assert.truthy(s:fetch_stream_state())
      assert.equals(2, made.table.ensures) -- once more, then never again
    end)

    it("gets every DescribeStream's shards through sync, with lineage and closed", function()
      fake:add_shard("A", { closed = true })
      fake:add_shard("B", { parent = "A" })
      assert.truthy(new_stream():fetch_stream_shards())
      assert.same({ { id = "A", closed = true }, { id = "B", parent = "A", closed = false } }, coord.synced)
      assert.equals(1, coord.tick_calls)
    end)
  end)

  describe("reading", function()
    it("reads only the shards held; a shard acquired later starts from its lease", function()
      fake:add_shard("A")
      fake:add_shard("B")
      fake:insert("A", { pk = "a1" })
      fake:insert("B", { pk = "b1" })
      local s = new_stream()
      local log = Fake.recorder(s)
      s:on("lease acquired", function(ids) log[#log + 1] = "acquired " .. table.concat(ids, ",") end)
      coord.ticks = { { acquired = { "A" } } }
      assert.equals(1, #s:fetch_stream_state())
      fake:insert("B", { pk = "b2" })
      assert.equals(0, #s:fetch_stream_state())
      assert.equals(0, #fake:calls_on("B", "get_shard_iterator") + #fake:calls_on("B", "get_records"))
      coord.ticks = { { acquired = { "B" } } }
      assert.equals(2, #s:fetch_stream_state())
      assert.same({ "acquired A", "new A", "insert a1", "acquired B", "new B", "insert b1", "insert b2" }, log)
    end)

    it("starts a shard acquired from its lease's position, else from its checkpoint", function()
      fake:add_shard("P")                                  -- position
      fake:add_shard("D")                                  -- digits
      fake:add_shard("L")                                  -- LATEST
      fake:add_shard("E", { closed = true })               -- SHARD_END
      local seq = {}
      for i = 1, 3 do
        seq["P" .. i] = fake:insert("P", { pk = "p" .. i })
        seq["D" .. i] = fake:insert("D", { pk = "d" .. i })
        fake:insert("L", { pk = "l" .. i })
      end
      coord.leases = {
        P = { shard_id = "P", checkpoint = "TRIM_HORIZON", parents = {}, position = { shardId = "P",
          nextShardIterator = "another-workers-iterator",
          sequenceNumber = seq.P1, position = { type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = seq.P1 } } },
        D = { shard_id = "D", checkpoint = seq.D2, parents = {} },
        L = { shard_id = "L", checkpoint = "LATEST", parents = {} },
        E = { shard_id = "E", checkpoint = "SHARD_END", parents = {} },
      }
      coord.ticks = { { acquired = { "P", "D", "L", "E" } } }
      local s = new_stream()
      local log = Fake.recorder(s)
      s:fetch_stream_state()
      fake:insert("L", { pk = "l4" })
      s:fetch_stream_state()
      assert.same({ "new P,D,L", "insert p2", "insert p3", "insert d3", "insert l4" }, log)
      assert.equals(0, #fake:calls_on("E", "get_shard_iterator"))
      assert.is_true(s:get_shard_state().E.finished)
      -- the position is re-opened, not read through the old holder's iterator
      assert.equals(0, fake:count("get_records", function(p) return p.ShardIterator == "another-workers-iterator" end))
    end)

    it("writes SHARD_END for a lease whose position says finished without it", function()
      fake:add_shard("A", { closed = true })
      local a1 = "100000000000000000009"
      coord.leases.A = { shard_id = "A", checkpoint = a1, parents = {},
        position = { shardId = "A", sequenceNumber = a1, finished = true } }
      coord.ticks = { { acquired = { "A" } } }
      new_stream():fetch_stream_state()
      assert.same({ "checkpoint A SHARD_END" }, writes())
      assert.equals(0, #fake:calls_on("A", "get_shard_iterator"))
    end)

    it("reports a lease position that does not parse and starts from the checkpoint", function()
      fake:add_shard("A")
      local s1 = fake:insert("A", { pk = "1" })
      fake:insert("A", { pk = "2" })
      coord.leases.A = { shard_id = "A", checkpoint = s1, parents = {},
        position = { shardId = "A", sequenceNumber = "not digits" } }
      coord.ticks = { { acquired = { "A" } } }
      local s = new_stream()
      local log = Fake.recorder(s)
      s:fetch_stream_state()
      assert.same({ "error BadLeaseItem", "new A", "insert 2" }, log)
    end)

    it("starts from a sequence-number checkpoint that is ahead of the lease's position", function()
      fake:add_shard("A")
      local s1 = fake:insert("A", { pk = "1" })
      local s2 = fake:insert("A", { pk = "2" })
      fake:insert("A", { pk = "3" })
      coord.leases.A = { shard_id = "A", checkpoint = s2, parents = {}, position = { shardId = "A",
        sequenceNumber = s1, position = { type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = s1 } } }
      coord.ticks = { { acquired = { "A" } } }
      local s = new_stream()
      local log = Fake.recorder(s)
      s:fetch_stream_state()
      assert.same({ "new A", "insert 3" }, log)
    end)

    it("reads a shard lost and taken back in one tick once, from its lease", function()
      fake:add_shard("A")
      fake:insert("A", { pk = "1" })
      coord.ticks = { { acquired = { "A" } } }
      local s = new_stream({ checkpoint_interval = 0 })
      local log = Fake.recorder(s)
      s:fetch_stream_state()
      fake:insert("A", { pk = "2" })
      coord.ticks = { { lost = { "A" }, acquired = { "A" } } }
      local first = #fake.calls + 1
      s:fetch_stream_state()
      assert.same({ "new A", "insert 1", "new A", "insert 2" }, log)
      -- one reader of A: each iterator asked once (a page, then caught up)
      local asked = {}
      for i = first, #fake.calls do
        local call = fake.calls[i]
        if call.op == "get_records" then
          assert.is_nil(asked[call.params.ShardIterator], "iterator asked twice")
          asked[call.params.ShardIterator] = true
        end
      end
    end)

    it("stops delivering a shard at once when its lease is lost in the middle of a page", function()
      fake:add_shard("A")
      fake:add_shard("B")
      for i = 1, 5 do fake:insert("A", { pk = "a" .. i }) end
      fake:insert("B", { pk = "b1" })
      coord.ticks = { { acquired = { "A", "B" } } }
      local s = new_stream()
      local log = Fake.recorder(s)
      s:on("lease lost", function(ids) log[#log + 1] = "lost " .. table.concat(ids, ",") end)
      s:on("insert record", function(new) if new.pk.S == "a2" then coord.held.A = nil end end)
      s:fetch_stream_state()
      assert.same({ "new A,B", "insert a1", "insert a2", "insert b1" }, log)
      assert.is_nil(s:get_shard_state().A)              -- its local state forgotten
      for _, w in ipairs(writes()) do assert.not_matches("^checkpoint A", w) end
      coord.ticks = { { lost = { "A" } } }
      fake:insert("A", { pk = "a6" })
      local reads = #fake:calls_on("A", "get_records")
      s:fetch_stream_state()
      assert.equals("lost A", log[#log])
      assert.equals(reads, #fake:calls_on("A", "get_records"))
    end)

    it("ticks in the middle of a long page when due, and stops there when the tick says lost", function()
      fake:add_shard("A")
      for i = 1, 8 do fake:insert("A", { pk = "a" .. i }) end
      coord.due = now
      coord.on_tick = function(self) self.due = now + 2.5 end -- a renewal every 2.5 s
      coord.ticks = { { acquired = { "A" } }, {}, { lost = { "A" } } }
      local s = new_stream()
      local log = Fake.recorder(s)
      s:on("lease lost", function(ids) log[#log + 1] = "lost " .. table.concat(ids, ",") end)
      s:on("insert record", function() now = now + 1 end)   -- a slow listener: 1 s a record
      s:fetch_stream_state()
      -- ticks at 100 (acquired), before a4 at 103 (renewed), before a7 at 106 (lost)
      assert.same({ "new A", "insert a1", "insert a2", "insert a3", "insert a4", "insert a5", "insert a6",
        "lost A" }, log)
      assert.equals(3, coord.tick_calls)
    end)

    it("stops the page of a shard lost and taken back by a tick in its middle, and reads it from its lease",
      function()
      fake:add_shard("A")
      for i = 1, 4 do fake:insert("A", { pk = "a" .. i }) end
      coord.due = now
      coord.on_tick = function(self) self.due = self.tick_calls == 1 and now + 2.5 or math.huge end
      coord.ticks = { { acquired = { "A" } }, { lost = { "A" }, acquired = { "A" } } }
      local s = new_stream()
      local log = Fake.recorder(s)
      s:on("insert record", function() now = now + 1 end)
      s:fetch_stream_state()
      -- the second tick (before a4) hands A over anew: its lease still says TRIM_HORIZON
      assert.same({ "new A", "insert a1", "insert a2", "insert a3", "new A",
        "insert a1", "insert a2", "insert a3", "insert a4" }, log)
    end)

    it("drops a shard whose checkpoint is refused (LeaseLost) and a shard the tick says is lost", function()
      fake:add_shard("A")
      fake:add_shard("B")
      fake:insert("A", { pk = "a1" })
      fake:insert("B", { pk = "b1" })
      coord.ticks = { { acquired = { "A", "B" } } }
      coord.refuse.A = true
      local s = new_stream()
      local log = Fake.recorder(s)
      s:fetch_stream_state()
      assert.is_nil(s:get_shard_state().A)
      assert.truthy(s:get_shard_state().B)
      coord.ticks = { { lost = { "B" } } }
      fake:insert("A", { pk = "a2" })
      fake:insert("B", { pk = "b2" })
      s:fetch_stream_state()
      assert.same({ "new A,B", "insert a1", "insert b1" }, log)
      assert.same({ "checkpoint B " .. fake:shard("B").records[1].dynamodb.SequenceNumber }, writes())
      assert.same({}, s:get_shard_state())
    end)
  end)

  describe("checkpoints", function()
    it("writes a shard that advanced at most once per checkpoint_interval (the stream's clock)", function()
      fake:add_shard("A")
      coord.ticks = { { acquired = { "A" } } }
      local s = new_stream({ checkpoint_interval = 5 })
      s:fetch_stream_state()
      assert.same({}, writes())                          -- nothing moved yet
      local s1 = fake:insert("A", { pk = "1" })
      s:fetch_stream_state()
      assert.same({ "checkpoint A " .. s1 }, writes())  -- the first at once
      local s2 = fake:insert("A", { pk = "2" })
      now = now + 4.9
      s:fetch_stream_state()
      assert.equals(1, #writes())                        -- within the interval
      now = now + 0.1
      s:fetch_stream_state()                             -- nothing new read: the pending one
      assert.same({ "checkpoint A " .. s1, "checkpoint A " .. s2 }, writes())
      now = now + 60
      s:fetch_stream_state()
      assert.equals(2, #writes())                        -- nothing moved since
      local pos = coord.leases.A.position
      assert.same({ shardId = "A", sequenceNumber = s2,
        position = { type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = s2 } }, pos)
    end)

    it("with checkpoint_interval = 0, after every fetch that advanced", function()
      fake:add_shard("A")
      coord.ticks = { { acquired = { "A" } } }
      local s = new_stream({ checkpoint_interval = 0 })
      for i = 1, 3 do
        fake:insert("A", { pk = tostring(i) })
        s:fetch_stream_state()
        assert.equals(i, #writes())
      end
    end)

    it("checkpoints only what a batch acknowledged; a lease lost while a batch collects delivers none of it",
      function()
        fake:add_shard("A")
        local s1 = fake:insert("A", { pk = "1" })
        local s2 = fake:insert("A", { pk = "2" })
        fake:insert("A", { pk = "3" })
        coord.ticks = { { acquired = { "A" } } }
        local s = new_stream({ checkpoint_interval = 0 }, { batch_window = 10 })
        local batches = {}
        s:on("batch", function(records)
          batches[#batches + 1] = #records
          if #batches == 1 then return { failed = s2 } end
        end)
        s:fetch_stream_state()                       -- collecting: nothing acknowledged, nothing written
        assert.same({}, writes())
        now = now + 10
        s:fetch_stream_state()                       -- the batch: 1 acknowledged, 2 failed
        assert.same({ "checkpoint A " .. s1 }, writes())
        assert.same({ type = "AT_SEQUENCE_NUMBER", sequenceNumber = s2 }, coord.leases.A.position.position)
        s:fetch_stream_state()                       -- 2 and 3 collected again
        coord.ticks = { { lost = { "A" } } }
        now = now + 10
        s:fetch_stream_state()
        assert.same({ 3 }, batches)
        assert.same({ "checkpoint A " .. s1 }, writes())
      end)

    it("checkpoints past the records opts.filter refused, a page all filtered out included", function()
      fake:add_shard("A")
      fake:insert("A", { pk = "1" })
      local s2 = fake:insert("A", { pk = "2" })
      coord.ticks = { { acquired = { "A" } } }
      local s = new_stream({ checkpoint_interval = 0 }, { filter = '{"dynamodb":{"Keys":{"pk":{"S":["9"]}}}}' })
      s:fetch_stream_state()
      assert.same({ "checkpoint A " .. s2 }, writes())
      assert.same({ type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = s2 }, coord.leases.A.position.position)
      assert.equals(2, s:stats().filtered)
    end)

    it("checkpoints a LATEST start so that the next holder keeps it lossless", function()
      fake:add_shard("A")
      coord.leases.A = { shard_id = "A", checkpoint = "LATEST", parents = {} }
      coord.ticks = { { acquired = { "A" } } }
      local s = new_stream({}, { wall_clock = function() return 1700000000 end })
      s:fetch_stream_state()
      assert.same({ "checkpoint A LATEST" }, writes())
      assert.same({ shardId = "A", position = { type = "LATEST", openedAt = 1700000000, readAt = 1700000000 } },
        coord.leases.A.position)
    end)

    it("writes SHARD_END at a shard's end, whatever the interval, and its children wait for it", function()
      fake:add_shard("A")
      fake:add_shard("B", { parent = "A" })
      local a1 = fake:insert("A", { pk = "a1" })
      fake:close("A")
      fake:insert("B", { pk = "b1" })
      coord.leases.B = { shard_id = "B", checkpoint = "TRIM_HORIZON", parents = { "A" } }
      coord.leases.A = { shard_id = "A", checkpoint = "TRIM_HORIZON", parents = {} }
      coord.ticks = { { acquired = { "B" } } }          -- A is held by another worker
      local s = new_stream({ checkpoint_interval = 1000 })
      local log = Fake.recorder(s)
      s:fetch_stream_state()
      assert.equals(0, #fake:calls_on("B", "get_shard_iterator"))
      coord.ticks = { { acquired = { "A" } } }          -- the other worker is gone
      s:fetch_stream_state()
      -- read to its end in one fetch: SHARD_END says it all
      assert.same({ "checkpoint A SHARD_END", "checkpoint B " .. fake:shard("B").records[1].dynamodb.SequenceNumber },
        writes())
      assert.same({ "new B", "new A", "insert a1", "removed A", "insert b1" }, log)
      assert.same({ shardId = "A", sequenceNumber = a1, finished = true }, coord.leases.A.position)
    end)

    it("tries a SHARD_END that failed again after the next fetch", function()
      fake:add_shard("A", { closed = true })
      coord.ticks = { { acquired = { "A" } } }
      local fail = true
      local checkpoint = coord.checkpoint
      coord.checkpoint = function(self, ...)
        if fail then return nil, errors.new({ code = "ProvisionedThroughputExceededException", message = "slow" }) end
        return checkpoint(self, ...)
      end
      local s = new_stream()
      local log = Fake.recorder(s)
      s:fetch_stream_state()
      assert.same({}, writes())
      fail = false
      s:fetch_stream_state()
      assert.same({ "checkpoint A SHARD_END" }, writes())
      s:fetch_stream_state()
      assert.equals(1, #writes())
      assert.same({ "new A", "removed A", "error ProvisionedThroughputExceededException" }, log)
    end)
  end)

  describe("run", function()
    it("on stop: the final checkpoints, then release_all, in that order", function()
      fake:add_shard("A")
      fake:add_shard("B")
      local a, b = {}, {}
      a[1] = fake:insert("A", { pk = "a1" })
      b[1] = fake:insert("B", { pk = "b1" })
      coord.ticks = { { acquired = { "A", "B" } } }
      coord.due = 0
      local s = new_stream({ checkpoint_interval = 1000 })
      s:on("insert record", function(new) if new.pk.S == "a3" then s:stop() end end)
      -- the first fetch delivers a1 and b1 (checkpointed at once); the next
      -- is idle, and a2..a4 come during its pause
      assert.is_true(s:run({ sleep = function()
        for i = 2, 4 do a[i] = fake:insert("A", { pk = "a" .. i }) end
      end }))
      assert.same({ "checkpoint A " .. a[1], "checkpoint B " .. b[1], "checkpoint A " .. a[3], "release_all" },
        writes())
      assert.same({}, s:get_shard_state())
    end)

    it("does not call DescribeStream at every poll when this worker holds no shard", function()
      fake:add_shard("A")
      coord.due = math.huge                             -- never acquires anything
      local s = new_stream()
      local polls = 0
      assert.is_true(s:run({ describe_interval = 10, sleep = function(p)
        now = now + p
        polls = polls + 1
        if polls == 10 then s:stop() end                -- 7.5 s of idle pauses
      end }))
      assert.equals(1, fake:count("describe_stream"))
    end)

    it("ticks when due and sleeps no longer than the coordinator's next renew or scan", function()
      fake:add_shard("A")
      coord.ticks = { { acquired = { "A" } } }
      coord.due = now
      local early = 0
      coord.on_tick = function(self)
        if now < self.due - 1e-9 then early = early + 1 end
        self.due = now + 0.35
      end
      local s = new_stream()
      local pauses = {}
      assert.is_true(s:run({ interval = 0.1, max_interval = 2, sleep = function(p)
        pauses[#pauses + 1] = p
        now = now + p
        if #pauses == 12 then s:stop() end
      end }))
      local longest = 0
      for _, p in ipairs(pauses) do longest = math.max(longest, p) end
      assert.is_true(longest <= 0.35 + 1e-9, "slept " .. longest)
      -- idle doubling alone would have reached 1.6 s: the cap is what kept it short
      assert.is_true(longest >= 0.2)
      local elapsed = 0
      for _, p in ipairs(pauses) do elapsed = elapsed + p end
      assert.equals(0, early)
      assert.is_true(coord.tick_calls >= math.floor(elapsed / 0.35 / 2), "ticks: " .. coord.tick_calls)
      assert.same({ "release_all" }, writes())
    end)

    it("emits acquired and lost, and ends on a fatal lease-table error", function()
      fake:add_shard("A")
      local denied = errors.new({ code = "AccessDeniedException", message = "no UpdateItem" })
      coord.ticks = { { acquired = { "A" } }, { lost = { "A" } }, { err = denied } }
      coord.due = 0
      local s = new_stream()
      local events = {}
      s:on("lease acquired", function(ids) events[#events + 1] = "acquired " .. table.concat(ids, ",") end)
      s:on("lease lost", function(ids) events[#events + 1] = "lost " .. table.concat(ids, ",") end)
      s:on("error", function(e) events[#events + 1] = "error " .. e.code end)
      local ok, err = s:run({ sleep = function() end })
      assert.is_nil(ok)
      assert.equals(denied, err)
      assert.same({ "acquired A", "lost A", "error AccessDeniedException" }, events)
      assert.same({ "release_all" }, writes())
    end)
  end)

  it("stop() outside run checkpoints and releases; from a listener, at the end of that fetch", function()
    fake:add_shard("A")
    fake:insert("A", { pk = "1" })
    local a2 = fake:insert("A", { pk = "2" })
    coord.ticks = { { acquired = { "A" } } }
    local s = new_stream({ checkpoint_interval = 1000 })
    s:on("insert record", function(new) if new.pk.S == "2" then s:stop() end end)
    s:fetch_stream_state()
    assert.same({ "checkpoint A " .. a2, "release_all" }, writes())
    assert.same({}, s:get_shard_state())
    assert.is_true(s:stop())                            -- again: nothing held, nothing to write
    assert.same({ "checkpoint A " .. a2, "release_all", "release_all" }, writes())
  end)

  it("reports a tick that failed and goes on reading the shards held", function()
    fake:add_shard("A")
    coord.ticks = { { acquired = { "A" } },
      { err = errors.new({ code = "ProvisionedThroughputExceededException", message = "slow" }) } }
    local s = new_stream()
    local log = Fake.recorder(s)
    s:fetch_stream_state()
    fake:insert("A", { pk = "1" })
    assert.equals(1, #s:fetch_stream_state())
    assert.same({ "new A", "error ProvisionedThroughputExceededException", "insert 1" }, log)
  end)

  it("handles the lists of a tick that also returned an error", function()
    fake:add_shard("A")
    fake:insert("A", { pk = "1" })
    coord.ticks = { { acquired = { "A" }, err = errors.new({ code = "InternalServerError", message = "renew" }) } }
    local s = new_stream()
    local log = Fake.recorder(s)
    assert.equals(1, #s:fetch_stream_state())
    assert.same({ "new A", "error InternalServerError", "insert 1" }, log)
  end)

  it("shows the coordinator's stats in stream:stats().leases, and none without leases", function()
    fake:add_shard("A")
    coord.ticks = { { acquired = { "A" } } }
    local s = new_stream()
    s:fetch_stream_state()
    assert.same({ held = 1, checkpoints = 0 }, s:stats().leases)
    assert.is_nil(Stream.new(fake, fake.stream_arn):stats().leases)
  end)
end)

-- The stream with the real coordinator over the in-memory lease table
-- (spec/support/fake_lease_table.lua), on one injected clock: workers share
-- four shards and a split, one stops gracefully, one dies.
describe("stream with opts.leases, the real coordinator and the fake lease table", function()
  local FakeTable = require("fake_lease_table")
  local D = 10
  local fake, lease_table, now, saved

  before_each(function()
    now, fake, lease_table = 0, Fake.new(), FakeTable.new()
    for i = 1, 4 do fake:add_shard("S" .. i) end
    saved = package.loaded[TABLE_MODULE]
    package.loaded[TABLE_MODULE] = { new = function() return lease_table end }
  end)

  after_each(function() package.loaded[TABLE_MODULE] = saved end)

  local function worker(id)
    local s = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON", clock = function() return now end,
      leases = { dynamodb = { call = function() end }, table = "leases", worker_id = id, lease_duration = D } })
    s.got, s.errors = {}, {}
    s:on("insert record", function(_, _, record) s.got[#s.got + 1] = record.shardId .. ":" .. record.eventID end)
    s:on("error", function(e) s.errors[#s.errors + 1] = e end)
    return s
  end

  -- One change in every open shard.
  local function write_all()
    for _, shard in ipairs(fake.shards) do
      if not shard.closed then fake:insert(shard.id, { pk = shard.id }) end
    end
  end

  -- The changes nobody delivered, and how many were delivered twice.
  local function tally(workers)
    local seen, dups = {}, 0
    for _, w in ipairs(workers) do
      for _, key in ipairs(w.got) do
        if seen[key] then dups = dups + 1 end
        seen[key] = true
      end
    end
    local missing = 0
    for _, shard in ipairs(fake.shards) do
      for _, r in ipairs(shard.records) do
        if not seen[shard.id .. ":" .. r.eventID] then missing = missing + 1 end
      end
    end
    return missing, dups
  end

  it("split the shards, hand them over on stop and after a death, and lose nothing", function()
    local w1, w2 = worker("w1"), worker("w2")
    for round = 1, 30 do
      write_all()
      assert.truthy(w1:fetch_stream_state())
      assert.truthy(w2:fetch_stream_state())
      now = now + 1
      if round == 10 then
        fake:close("S1")
        fake:add_shard("S5", { parent = "S1" })
      end
    end
    assert.equals(2, w1:stats().leases.held)
    assert.equals(2, w2:stats().leases.held)
    local missing, dups_before_stop = tally({ w1, w2 })
    assert.equals(0, missing)

    -- graceful: w1 checkpoints and releases; w2 takes them at its next scan
    w1:stop()
    assert.equals(0, w1:stats().leases.held)
    local rounds = 0
    repeat
      write_all()
      assert.truthy(w2:fetch_stream_state())
      now, rounds = now + 1, rounds + 1
    until w2:stats().leases.held == 4 or rounds > D
    assert.is_true(rounds <= math.ceil(D / 4) + 1, "handed over in " .. rounds .. " s")
    local dups
    missing, dups = tally({ w1, w2 })
    assert.equals(0, missing)
    assert.equals(dups_before_stop, dups)          -- a graceful stop duplicates nothing

    -- death: w2 stops being called; w3 takes everything after expiry
    local w3 = worker("w3")
    rounds = 0
    repeat
      write_all()
      assert.truthy(w3:fetch_stream_state())
      now, rounds = now + 1, rounds + 1
    until w3:stats().leases.held == 4 or rounds > 3 * D
    assert.is_true(rounds <= 1.5 * D + 1, "failed over in " .. rounds .. " s")
    for _ = 1, 3 do
      write_all()
      assert.truthy(w3:fetch_stream_state())
      now = now + 1
    end
    missing = tally({ w1, w2, w3 })
    assert.equals(0, missing)
    assert.same({}, w1.errors)
    assert.same({}, w2.errors)
    assert.same({}, w3.errors)
  end)
end)
