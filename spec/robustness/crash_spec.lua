-- Crash safety: a consumer using the file checkpoint (spec/support/crash_consumer.lua)
-- is killed with SIGKILL at random moments while a writer keeps writing, and
-- restarted each time from its checkpoint; then a last run catches up and stops.
-- Across all runs every change is delivered at least once; a change is
-- delivered again only when it lay after the last checkpoint of the run that
-- delivered it before; the checkpoint file is never torn and has mode 0600.
local ds = require("dynamodb_stream")
local helper = require("helper")

-- Letters and digits only (DynamoDB Local's access key ids). A namespace of
-- its own per run: DynamoDB Local's writes slow down many times over as a
-- namespace accumulates tables and stream records (16 s instead of 0.4 s for
-- 1,000 puts after a few runs against the same instance).
local NAMESPACE = "crashspec" .. os.time()
local SEED = 7130
local KILLS = 12
local MIN_LIFE, MAX_LIFE = 0.2, 1.5 -- seconds a consumer lives before its SIGKILL
local CATCH_UP = 40                  -- seconds the last run may take to deliver the rest

local q = helper.shell_quote
local monotime = require("dynamodb_stream.core").monotime

local alive = helper.alive

local read_file = helper.read_file

-- Sequence numbers are digit strings too long for numbers: compare them as
-- strings (here independently of dynamodb_stream.seqnum, which is under test).
local function seq_cmp(a, b)
  a, b = a:gsub("^0+", ""), b:gsub("^0+", "")
  if #a ~= #b then return #a < #b and -1 or 1 end
  return a == b and 0 or (a < b and -1 or 1)
end

-- Starts `<helper.lua> script args...` in the background; returns { proc, pid }.
-- The shell prints its pid and execs the interpreter, so pid is the Lua process, our child.
local function spawn(script, args, stderr)
  local parts = { "echo $$; exec env", q("LUA_PATH=" .. package.path), q("LUA_CPATH=" .. package.cpath),
    helper.lua, q(script) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  parts[#parts + 1] = "2>" .. q(stderr)
  local proc = assert(helper.popen(table.concat(parts, " ")))
  local pid = helper.tointeger(tonumber(proc:read("*l")))
  assert(pid, "no pid from " .. script)
  return { proc = proc, pid = pid }
end

-- SIGKILL (if still running) and reap; returns what close() says.
local function kill(p)
  if not p.proc then return end
  if alive(p.pid) then os.execute("kill -9 " .. p.pid .. " 2>/dev/null") end
  local ok, how, code = p.proc:close()
  p.proc = nil
  return ok, how, code
end

-- The checkpoint file: nil when absent, else the decoded state. Fails the
-- spec when the file is torn (not JSON) or has not the shape we expect: one
-- shard (DynamoDB Local has one per stream) with digits for sequence numbers.
local function read_checkpoint(path, shard_id, when)
  local text = read_file(path)
  if text == nil then return nil end
  local state, err = ds.json_decode(text)
  assert(type(state) == "table", when .. ": checkpoint is torn or not JSON (" .. tostring(err) .. "): "
    .. text:sub(1, 200))
  local ids = {}
  for id in pairs(state) do ids[#ids + 1] = id end
  assert(#ids == 1 and ids[1] == shard_id, when .. ": checkpoint should hold exactly " .. shard_id .. ": " .. text)
  local entry = state[shard_id]
  assert(type(entry) == "table" and entry.shardId == shard_id and entry.finished == nil,
    when .. ": bad entry: " .. text)
  local seq = entry.sequenceNumber
  assert(seq == nil or (type(seq) == "string" and seq:match("^%d+$")), when .. ": bad sequenceNumber: " .. text)
  local pos = entry.position
  assert(type(pos) == "table", when .. ": no position: " .. text)
  if seq then
    assert(pos.type == "AFTER_SEQUENCE_NUMBER" and pos.sequenceNumber == seq,
      when .. ": position should be after the last delivered record: " .. text)
  else
    assert(pos.type == "TRIM_HORIZON", when .. ": nothing delivered yet, position should be TRIM_HORIZON: " .. text)
  end
  return state, seq
end

local function file_mode(path)
  local p = assert(io.popen("stat -c %a " .. q(path)))
  local mode = p:read("*l")
  p:close()
  return mode
end

-- One consumer log: { records = { {seq, event_id, event, id, line} }, checkpoints =
-- { {seq, line} }, errors = n, stopped = bool }. A last line without its newline
-- (cut by the kill) is ignored.
local function read_log(path)
  local run = { records = {}, checkpoints = {}, errors = 0, stopped = false }
  local n = 0
  for l in (read_file(path) or ""):gmatch("([^\n]*)\n") do
    n = n + 1
    local kind = l:sub(1, 1)
    if kind == "R" then
      local seq, event_id, event, key, ord = l:match("^R (%d+) (%S+) (%u+) (%S+) (%d+)$")
      assert(seq, path .. ":" .. n .. ": bad line " .. l)
      run.records[#run.records + 1] = { seq = seq, event_id = event_id, event = event,
        id = key .. " " .. ord, line = n }
    elseif kind == "C" then
      local seq = l:match("^C (%S+)$")
      run.checkpoints[#run.checkpoints + 1] = { seq = seq ~= "-" and seq or nil, line = n }
    elseif kind == "E" then
      run.errors = run.errors + 1
    elseif kind == "X" then
      run.stopped = true
    end
  end
  return run
end

describe("crash safety: SIGKILL a consumer with a file checkpoint", function()
  local tmp, writer, consumer

  setup(function()
    tmp = helper.tmpdir()
  end)

  teardown(function()
    if consumer then kill(consumer) end
    if writer then kill(writer) end
    if tmp then helper.rmdir(tmp) end
  end)

  it("loses nothing, repeats only what followed the last checkpoint, never tears it", function()
    math.randomseed(SEED)
    local endpoint = helper.ddb_local_endpoint()
    local ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
    local table_name = "crash_" .. os.time()
    local arn = helper.create_stream_table(ddb, table_name)
    local streams = ds.client(helper.local_opts(NAMESPACE))
    local shard_id = assert(streams:describe_stream({ StreamArn = arn })).StreamDescription.Shards[1].ShardId

    local cp = tmp .. "/checkpoint.json"
    local journal, done = tmp .. "/journal", tmp .. "/done"
    local t0 = monotime()

    -- Writes batches of 10 changes 50 ms apart (~100-150 changes/s) over 300 keys until told to stop.
    writer = spawn("spec/support/soak_writer.lua", {
      "endpoint=" .. endpoint, "namespace=" .. NAMESPACE, "table=" .. table_name,
      "journal=" .. journal, "done=" .. done, "keys=300", "changes=1000000", "batch=10",
      "pause=0.05", "seed=" .. SEED, "stop_file=" .. tmp .. "/writer.stop",
    }, tmp .. "/writer.stderr")

    local function consumer_args(k, extra)
      local a = { "endpoint=" .. endpoint, "namespace=" .. NAMESPACE, "arn=" .. arn,
        "checkpoint=" .. cp, "log=" .. tmp .. "/run" .. k .. ".log",
        -- 4 ms of work per record, fetches of at most 2 pages of 50: a checkpoint
        -- every <= 0.4 s, so kills often land between deliveries and their save.
        "delay=0.004", "limit=50", "max_pages=2" }
      if extra then a[#a + 1] = extra end
      return a
    end

    local starts = {}   -- run k -> sequence number in the checkpoint it started from (or false)
    local saved_any = false
    for k = 1, KILLS do
      local _, seq = read_checkpoint(cp, shard_id, "before run " .. k)
      starts[k] = seq or false
      consumer = spawn("spec/support/crash_consumer.lua", consumer_args(k), tmp .. "/run" .. k .. ".stderr")
      ds.sleep(MIN_LIFE + math.random() * (MAX_LIFE - MIN_LIFE))
      assert(alive(writer.pid), "the writer stopped early: " .. tostring(read_file(tmp .. "/writer.stderr")))
      assert(alive(consumer.pid), "run " .. k .. " died before its SIGKILL: "
        .. tostring(read_file(tmp .. "/run" .. k .. ".stderr")))
      local _, how, code = kill(consumer)
      assert(how == "signal" and code == 9, "run " .. k .. " ended by " .. tostring(how) .. " " .. tostring(code))
      consumer = nil
      -- Never torn: absent before the first save, else whole JSON of the right shape.
      local state = read_checkpoint(cp, shard_id, "after the kill of run " .. k)
      if state then
        saved_any = true
        assert.equals("600", file_mode(cp), "checkpoint mode after run " .. k)
      else
        assert(not saved_any, "the checkpoint vanished after run " .. k)
      end
    end

    -- Stop writing, then let a last run catch up and stop cleanly.
    helper.write_file(tmp .. "/writer.stop", "")
    local writer_out = writer.proc:read("*a")
    local writer_ok = writer.proc:close()
    writer.proc = nil
    assert(writer_ok, "the writer failed: " .. tostring(read_file(tmp .. "/writer.stderr")))
    local total = assert(helper.tointeger(tonumber(writer_out:match("TOTAL (%d+)"))), "no total: " .. writer_out)
    local ops, list = {}, {}
    for key, ord, op in read_file(journal):gmatch("(%S+) (%d+) (%u)\n") do
      ops[key .. " " .. ord] = op
      list[#list + 1] = key .. " " .. ord
    end
    assert.equals(total, #list)

    local final = KILLS + 1
    local _, seq = read_checkpoint(cp, shard_id, "before the last run")
    starts[final] = seq or false
    consumer = spawn("spec/support/crash_consumer.lua",
      consumer_args(final, "stop_file=" .. tmp .. "/consumer.stop"), tmp .. "/run" .. final .. ".stderr")
    local runs = {}
    local function covered()
      local seen = {}
      for k = 1, final do
        runs[k] = read_log(tmp .. "/run" .. k .. ".log")
        for _, r in ipairs(runs[k].records) do seen[r.id] = true end
      end
      local missing = {}
      for _, id in ipairs(list) do
        if not seen[id] then missing[#missing + 1] = id end
      end
      return missing
    end
    local deadline = monotime() + CATCH_UP
    local missing = covered()
    while #missing > 0 and monotime() < deadline and alive(consumer.pid) do
      ds.sleep(0.2)
      missing = covered()
    end
    helper.write_file(tmp .. "/consumer.stop", "")
    local stop_deadline = monotime() + 10
    while alive(consumer.pid) and monotime() < stop_deadline do ds.sleep(0.05) end
    local stopped_in_time = not alive(consumer.pid)
    local ok_final, how, code = kill(consumer)
    consumer = nil
    runs[final] = read_log(tmp .. "/run" .. final .. ".log")
    local elapsed = monotime() - t0

    local nrecords, nerrors, nkeys, keys = 0, 0, 0, {}
    for k = 1, final do
      nrecords = nrecords + #runs[k].records
      nerrors = nerrors + runs[k].errors
    end
    for _, id in ipairs(list) do
      local key = id:match("^%S+")
      if not keys[key] then keys[key], nkeys = true, nkeys + 1 end
    end
    -- How often the checkpoint moved between restarts, and the temporaries a
    -- kill during a save left beside it (harmless: never read).
    local advanced = 0
    for k = 2, final do
      if starts[k] and (not starts[k - 1] or seq_cmp(starts[k], starts[k - 1]) > 0) then advanced = advanced + 1 end
    end
    local p = assert(io.popen("ls -a " .. q(tmp)))
    local leftovers = 0
    for name in p:lines() do
      if name:match("^checkpoint%.json%.tmp") then leftovers = leftovers + 1 end
    end
    p:close()
    io.stderr:write(string.format("\n# crash: %d changes over %d keys; %d SIGKILLs; %d deliveries in %d runs "
      .. "(%d repeats); the checkpoint moved before %d of %d restarts; %d temporary files left by kills; "
      .. "%d 'error' events; %.1f s\n", total, nkeys, KILLS, nrecords, final, nrecords - total, advanced,
      final - 1, leftovers, nerrors, elapsed))

    assert(leftovers <= 1, leftovers .. " temporary checkpoint files: kills must leave at most one, reused next save")
    assert(#missing == 0, string.format("%d of %d changes never delivered (after %d s of the last run); first: %s",
      #missing, total, CATCH_UP, table.concat(missing, ", ", 1, math.min(#missing, 10))))
    assert(stopped_in_time and ok_final and runs[final].stopped,
      "the last run did not stop cleanly: " .. tostring(how) .. " " .. tostring(code) .. " "
      .. tostring(read_file(tmp .. "/run" .. final .. ".stderr")))
    assert.is_true(total > 0 and KILLS >= 10)
    -- The kills did land both before and after saves: the checkpoint moved
    -- between many restarts (not only at the end), and some changes came again.
    assert(advanced >= math.floor(KILLS / 3), "the checkpoint moved before only " .. advanced .. " restarts")
    assert(nrecords > total, "no change was delivered twice: no kill landed after a delivery and before its save")

    -- Every delivered change is one the writer made, as the right event.
    local want = { I = "INSERT", M = "MODIFY", D = "REMOVE" }
    for k = 1, final do
      for _, r in ipairs(runs[k].records) do
        assert(ops[r.id], "run " .. k .. " delivered " .. r.id .. ", which the writer never made")
        assert.equals(want[ops[r.id]], r.event, "event of " .. r.id)
      end
    end

    -- The checkpoints, run by run.
    local max_seq
    for k = 1, final do
      local run, start = runs[k], starts[k]
      -- A restart starts from at least what the previous run said it had saved.
      if k > 1 and #runs[k - 1].checkpoints > 0 then
        local last_c = runs[k - 1].checkpoints[#runs[k - 1].checkpoints].seq
        if last_c then
          assert(start and seq_cmp(start, last_c) >= 0, string.format(
            "run %d started from %s, but run %d had saved %s", k, tostring(start), k - 1, last_c))
        end
      end
      -- Checkpoints only move forward.
      if k > 1 and starts[k - 1] then
        assert(start and seq_cmp(start, starts[k - 1]) >= 0, "the checkpoint went back before run " .. k)
      end
      -- Nothing at or before the checkpoint a run started from is delivered
      -- again, and within one run nothing is delivered twice.
      local seen_event, seen_id = {}, {}
      for _, r in ipairs(run.records) do
        assert(not start or seq_cmp(r.seq, start) > 0, string.format(
          "run %d delivered %s (%s) at or before its checkpoint %s", k, r.id, r.seq, tostring(start)))
        assert(not seen_event[r.event_id] and not seen_id[r.id],
          string.format("run %d delivered %s (%s) twice", k, r.id, r.seq))
        seen_event[r.event_id], seen_id[r.id] = true, true
        if not max_seq or seq_cmp(r.seq, max_seq) > 0 then max_seq = r.seq end
      end
    end

    -- A repeat comes only from the window after the last checkpoint of the
    -- run that delivered it before (the latest such run).
    local last_run_of, repeats = {}, 0
    for k = 1, final do
      local run = runs[k]
      for _, r in ipairs(run.records) do
        local before = last_run_of[r.id]
        if before then
          repeats = repeats + 1
          local prev = runs[before.run]
          local last_c = prev.checkpoints[#prev.checkpoints]
          assert(not last_c or before.line > last_c.line, string.format(
            "%s (%s) delivered in run %d before that run's last checkpoint (line %d), and again in run %d",
            r.id, r.seq, before.run, last_c and last_c.line or 0, k))
          assert(not (last_c and last_c.seq) or seq_cmp(r.seq, last_c.seq) > 0, string.format(
            "%s (%s) was covered by run %d's last checkpoint %s, yet delivered again in run %d",
            r.id, r.seq, before.run, tostring(last_c and last_c.seq), k))
        end
        last_run_of[r.id] = { run = k, line = r.line }
      end
    end
    assert.equals(nrecords - total, repeats)

    -- The last run stopped caught up, and saved where it was.
    local _, final_seq = read_checkpoint(cp, shard_id, "after the last run")
    assert.equals(max_seq, final_seq)
    assert.equals("600", file_mode(cp))
  end)
end)
