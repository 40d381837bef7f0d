-- Chaos for the lease table (issue 14): worker processes
-- (spec/support/lease_worker.lua) share a live 16-shard fake stream
-- (spec/support/fake_streams_server.py) through a lease table in DynamoDB
-- Local while a writer appends 20,000 changes; the spec SIGKILLs a worker
-- holding leases every 3.2 to 4 s and restarts it (20 kills), adds a fifth
-- worker, stops one gracefully (SIGTERM), and splits a shard and rolls every
-- shard over on the way. Then spec/support/lease_chaos_check.lua checks and
-- prints: every change delivered; per key, versions only go up within what each
-- worker delivered (between acquisitions); no shard held by two workers for
-- longer than a zombie's notice; no delivery without the lease; the
-- duplicates; the failover time after each kill (<= 1.5 x lease_duration) and
-- the handover after the graceful stop (< 2 s).
local ds = require("dynamodb_stream")
local helper = require("helper")
local live = require("live_streams")
local check = require("lease_chaos_check")
local monotime = require("dynamodb_stream.core").monotime

local HAVE_LEASES, WHY = pcall(require, "dynamodb_stream.leases.coordinator")
-- A 90 s timing spec runs where it measures something (helper.main_phase): Lua
-- 5.4 and LuaJIT, what OpenResty runs. The lease code is plain Lua, which the
-- lease unit specs cover under 5.3 and 5.1; the sanitizers look at C code this
-- spec adds none of; under valgrind its timings would mean nothing.

local SEED = 1414
local SHARDS = 16
local CHANGES, KEYS, RATE = 20000, 400, 250 -- 80 s of writing, past the last kill
local LEASE_DURATION = 2
local KILLS = 20
-- Seconds between kills: each failover is over before the next kill. Closer
-- kills measure something else: a replacement killed while its fresh lease is
-- unexpired counts as a live worker, so the survivors, at their target, leave
-- the first victim's expired leases to the next newcomer (seen with 2.2-3 s).
local MIN_GAP, MAX_GAP = 1.5 * LEASE_DURATION + 0.2, 1.5 * LEASE_DURATION + 1
local FIFTH_AT, SPLIT_AT, ROLLOVER_AT, STOP_AT = 6, 4, 11, 15 -- after that many kills
local FAILOVER_BOUND = 1.5 * LEASE_DURATION
local GRACEFUL_BOUND = 2
-- How long two workers may both hold a shard: a thief's take lands between
-- the victim's renewals, which notices at its next (every lease_duration / 3),
-- plus one pass of its run loop (a fetch and a pause of at most 0.2 s).
local WINDOW = LEASE_DURATION / 3 + 0.5
local CATCH_UP = 30

local q = helper.shell_quote

describe("lease chaos: workers killed, added and stopped over a live stream", function()
  if not HAVE_LEASES then
    pending("the lease code is not there yet (require dynamodb_stream.leases.coordinator: "
      .. (tostring(WHY):match("^[^\n]*"):gsub(":$", "")) .. ")")
    return
  end
  if not helper.main_phase() then
    pending("a timing spec of 90 s: run in the Lua 5.4 and LuaJIT phases only")
    return
  end

  local tmp, srv, keep
  local workers = {} -- slot -> { id, shell, pid, proc, log }

  setup(function()
    tmp = helper.tmpdir()
  end)

  teardown(function()
    for _, w in pairs(workers) do
      if w.proc then
        if helper.alive(w.pid) then os.execute("kill -9 " .. w.pid .. " 2>/dev/null") end
        w.proc:close()
      end
    end
    if srv then srv.stop() end
    if tmp and not keep then helper.rmdir(tmp) end
  end)

  it("loses nothing, keeps per-key order, fails over within 1.5 x lease_duration", function()
    math.randomseed(SEED)
    local namespace = "leasechaos" .. os.time()
    local table_name = "chaos_leases"
    local events = assert(io.open(tmp .. "/spec.log", "w"))
    local function event(kind, id, t)
      events:write(string.format("%s %s %.6f\n", kind, id, t))
      events:flush()
    end

    srv = live.start({ "--shards", tostring(SHARDS), "--records", "0", "--seed", tostring(SEED) }, 400)
    local incarnation, logs = {}, {}

    -- Starts (or restarts) the worker of a slot, in the background of a shell
    -- that reports both pids and then the worker's exit status.
    local function start(slot)
      incarnation[slot] = (incarnation[slot] or 0) + 1
      local id = "w" .. slot .. "." .. incarnation[slot]
      local w = { id = id, log = tmp .. "/" .. id .. ".log" }
      local cmd = table.concat({
        "echo $$;",
        "env", q("LUA_PATH=" .. package.path), q("LUA_CPATH=" .. package.cpath), helper.lua,
        "spec/support/lease_worker.lua",
        q("endpoint=" .. srv.endpoint), q("arn=" .. srv.arn), q("ddb=" .. helper.ddb_local_endpoint()),
        q("namespace=" .. namespace), q("table=" .. table_name), "lease_duration=" .. LEASE_DURATION,
        q("id=" .. id), q("log=" .. w.log),
        ">/dev/null 2>" .. q(tmp .. "/" .. id .. ".stderr") .. " & echo $!;",
        "exec 2>/dev/null; wait $!", -- no "Killed" from the shell
      }, " ")
      w.proc = assert(helper.popen(cmd))
      w.shell = helper.tointeger(tonumber(w.proc:read("*l")))
      w.pid = helper.tointeger(tonumber(w.proc:read("*l")))
      assert(w.shell and w.pid, "no pids for " .. id)
      workers[slot] = w
      logs[#logs + 1] = w.log
      return w
    end

    local function stderr_of(w) return tostring(helper.read_file(tmp .. "/" .. w.id .. ".stderr")) end

    -- The shards a worker holds now, by its log's A and L lines.
    local function holding(w)
      local held, n = {}, 0
      for _, e in ipairs(check.parse(helper.read_file(w.log) or "", w.log)) do
        for _, s in ipairs(e.shards or {}) do held[s] = e.kind == "A" or nil end
      end
      for _ in pairs(held) do n = n + 1 end
      return n
    end

    local function kill(slot)
      local w = workers[slot]
      assert(helper.alive(w.pid), w.id .. " died before its SIGKILL: " .. stderr_of(w))
      -- Before the kill: a failover is never measured short; after it: the
      -- worker may deliver until then.
      local before = monotime()
      os.execute("kill -9 " .. w.pid)
      events:write(string.format("K %s %.6f %.6f\n", w.id, before, monotime()))
      events:flush()
      w.proc:close()
      w.proc = nil
    end

    -- Asks a worker to stop (SIGTERM: run{ stop_on_signals = true }) and waits for it.
    local function stop(slot, logged)
      local w = workers[slot]
      if logged then event("T", w.id, monotime()) end
      os.execute("kill -TERM " .. w.pid)
      local deadline = monotime() + 10
      while helper.alive(w.pid) and monotime() < deadline do ds.sleep(0.05) end
      local stopped = not helper.alive(w.pid)
      if not stopped then os.execute("kill -9 " .. w.pid) end
      local exited, how, code = w.proc:close() -- the shell's status is the worker's
      w.proc = nil
      workers[slot] = nil
      assert(stopped, w.id .. " did not stop within 10 s of its SIGTERM")
      assert(exited, w.id .. " ended by " .. tostring(how) .. " " .. tostring(code) .. " after its SIGTERM: " .. stderr_of(w))
      local log = helper.read_file(w.log) or ""
      assert(log:match("\nX " .. w.id:gsub("%.", "%%.") .. " [%d.]+ true nil\n$"),
        w.id .. " did not end its run cleanly: " .. log:sub(-300) .. stderr_of(w))
    end

    local t0 = monotime()
    for slot = 1, 4 do start(slot) end
    -- The fleet holds every shard before the writer starts.
    local deadline, held = monotime() + 30, 0
    repeat
      ds.sleep(0.2)
      held = 0
      for _, w in pairs(workers) do
        assert(helper.alive(w.pid), w.id .. " died at its start: " .. stderr_of(w))
        held = held + holding(w)
      end
    until held >= SHARDS or monotime() > deadline
    assert(held >= SHARDS, "the fleet holds " .. held .. " of " .. SHARDS .. " shards after 30 s")
    srv.start_writer(CHANGES, KEYS, RATE, SEED)

    local stopped_slot
    for k = 1, KILLS do
      ds.sleep(MIN_GAP + math.random() * (MAX_GAP - MIN_GAP))
      -- A random worker that holds leases (a kill of an empty one measures nothing).
      local candidates = {}
      for slot, w in pairs(workers) do
        if holding(w) > 0 then candidates[#candidates + 1] = slot end
      end
      table.sort(candidates)
      for _, w in pairs(workers) do assert(helper.alive(w.pid), w.id .. " died: " .. stderr_of(w)) end
      assert(#candidates > 0, "no worker holds a lease at kill " .. k)
      local slot = candidates[math.random(#candidates)]
      kill(slot)
      start(slot)
      if k == SPLIT_AT then srv.split() end
      if k == FIFTH_AT then start(5) end
      if k == ROLLOVER_AT then srv.rollover() end
      if k == STOP_AT then
        local others = {}
        for s, w in pairs(workers) do if s ~= slot and holding(w) > 0 then others[#others + 1] = s end end
        table.sort(others)
        stopped_slot = others[math.random(#others)]
        stop(stopped_slot, true)
      end
    end
    assert(stopped_slot, "no graceful stop happened")

    -- The writer ends; the fleet catches up; then every worker stops.
    local written
    deadline = monotime() + 120
    repeat
      ds.sleep(0.5)
      written = srv.writer()
    until not written.running or monotime() > deadline
    assert.same({ written = CHANGES, target = CHANGES, running = false }, written)
    local changes = srv.changes()
    local function entries()
      local all = check.parse(helper.read_file(tmp .. "/spec.log") or "", "spec.log")
      for _, path in ipairs(logs) do
        for _, e in ipairs(check.parse(helper.read_file(path) or "", path)) do all[#all + 1] = e end
      end
      return all
    end
    local function missing()
      local seen, n = {}, 0
      for _, e in ipairs(entries()) do if e.kind == "D" then seen[e.key .. " " .. e.version] = true end end
      for _, c in ipairs(changes) do if not seen[c.key .. " " .. c.version] then n = n + 1 end end
      return n
    end
    deadline = monotime() + CATCH_UP
    while missing() > 0 and monotime() < deadline do ds.sleep(1) end
    local slots = {}
    for slot in pairs(workers) do slots[#slots + 1] = slot end
    for _, slot in ipairs(slots) do stop(slot, false) end
    local elapsed = monotime() - t0
    events:close()

    local report = check.check({
      changes = changes, entries = entries(), window = WINDOW,
      failover_bound = FAILOVER_BOUND, graceful_bound = GRACEFUL_BOUND,
    })
    local per_kill, per_shard, measured = {}, {}, 0
    for _, f in ipairs(report.failovers) do
      if #f.shards > 0 then
        measured = measured + 1
        per_kill[#per_kill + 1] = f.worst
        for _, s in ipairs(f.shards) do per_shard[#per_shard + 1] = s.delay end
      end
    end
    local graceful = report.graceful[1]
    local errors_seen = 0
    for _, e in ipairs(entries()) do if e.kind == "E" then errors_seen = errors_seen + 1 end end
    io.stderr:write(string.format("\n# lease chaos: %d changes over %d keys on %d shards (+ a split, a rollover), "
      .. "%d worker processes, %d SIGKILLs, 1 SIGTERM, %.0f s; lease_duration %g s\n"
      .. "#   delivered %d, missing %d, duplicates %d, order violations %d, overlaps %d (window %.2f s), "
      .. "deliveries without the lease %d, 'error' events %d\n"
      .. "#   failover per kill (worst shard; %d of %d kills measured): %s\n"
      .. "#   failover per shard: %s\n"
      .. "#   graceful stop of %s: its %d shards resumed after %s\n",
      #changes, KEYS, SHARDS, #logs, KILLS, elapsed, LEASE_DURATION,
      report.delivered, #report.missing, report.duplicates, #report.order, #report.overlaps, WINDOW,
      #report.unheld, errors_seen,
      measured, KILLS, check.distribution(per_kill), check.distribution(per_shard),
      graceful.id, #graceful.shards, check.distribution((function()
        local d = {}
        for i, s in ipairs(graceful.shards) do d[i] = s.delay end
        return d
      end)())))
    for i = 1, math.min(20, #report.problems) do io.stderr:write("#   ", report.problems[i], "\n") end
    if #report.problems > 0 then
      keep = true
      io.stderr:write("#   the logs are kept in ", tmp, "\n")
    end

    assert(#report.problems == 0, #report.problems .. " problems, first: " .. tostring(report.problems[1]))
    assert.equals(CHANGES, #changes)
    -- The measurements measured something: most kills hit shards that had
    -- records to go on with, and the stopped worker held some.
    assert(measured >= KILLS / 2, "only " .. measured .. " kills were followed by records of the killed worker's shards")
    assert(#graceful.shards > 0, "the stopped worker's shards got no record after its stop")
    assert(report.duplicates > 0, "no duplicates: no kill landed after a delivery and before its checkpoint")
  end)
end)
