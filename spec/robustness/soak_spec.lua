-- Soak: a writer process makes thousands of changes to a table in DynamoDB
-- Local while stream:run consumes its stream through spec/support/fault_proxy.py
-- injecting faults into 20% of the consumer's requests. Every change must be
-- delivered, none twice, each key's changes in order, and run must keep going
-- (failures are 'error' events, never fatal) until stopped.
--
-- The writer (spec/support/soak_writer.lua) talks to DynamoDB Local directly;
-- only the consumer goes through the proxy. Each change is identified by its
-- key and a per-key ordinal (2*v for a put of version v, 2*v+1 for the delete
-- of version v), which the writer journals after each successful write.
local ds = require("dynamodb_stream")
local helper = require("helper")
local fault_proxy = require("fault_proxy")

-- Letters and digits only (DynamoDB Local's access key ids). A namespace of
-- its own per run: DynamoDB Local's writes slow down many times over as a
-- namespace accumulates tables and stream records (16 s instead of 0.4 s for
-- 1,000 puts after a few runs against the same instance).
local NAMESPACE = "soakspec" .. os.time()
local SEED = 20240611
local KEYS, CHANGES = 600, 6000
local DEADLINE = 150      -- seconds for the whole consumption; it takes ~20
local CATCH_UP = 45       -- seconds, once the writer is done, to deliver the rest
local FAULT_RATE = 0.2
local WRITER_PAUSE = 0.05 -- s between batches of 25: the writing lasts ~15 s, the consumer keeps up
local LIMIT = 10          -- GetRecords Limit: many small pages (600+), so many requests meet faults
local FAULT_KINDS = { -- equal weights; "expired" applies to GetRecords only
  "throttle", "500", "503", "reset", "reset_after", "slow", "truncate", "expired",
}

local q = helper.shell_quote
local monotime = require("dynamodb_stream.core").monotime

local alive = helper.alive

local read_file = helper.read_file

-- The writer's journal: id ("key ord") -> op, plus the list in write order.
local function read_journal(path)
  local ops, list = {}, {}
  for key, ord, op in (read_file(path) or ""):gmatch("(%S+) (%d+) (%u)\n") do
    local id = key .. " " .. ord
    ops[id] = op
    list[#list + 1] = id
  end
  return ops, list
end

local function sorted_pairs_text(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    out[#out + 1] = k .. "=" .. (type(v) == "table" and ("{" .. sorted_pairs_text(v) .. "}") or tostring(v))
  end
  return table.concat(out, " ")
end

describe("soak: stream:run through 20% injected faults", function()
  local tmp, proxy, writer

  setup(function()
    tmp = helper.tmpdir()
  end)

  teardown(function()
    if writer and writer.proc then
      if alive(writer.pid) then os.execute("kill -9 " .. writer.pid .. " 2>/dev/null") end
      writer.proc:close()
      writer.proc = nil
    end
    if proxy then proxy:stop() end
    if tmp then helper.rmdir(tmp) end
  end)

  it("delivers every change once and in order per key, and never dies", function()
    local ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
    local table_name = "soak_" .. os.time()
    local arn = helper.create_stream_table(ddb, table_name)

    proxy = fault_proxy.start({
      upstream = helper.ddb_local_endpoint(), seed = SEED, rate = FAULT_RATE,
      kinds = FAULT_KINDS, cycle = true, slow_ms = 800, stderr = tmp .. "/proxy.stderr",
    })
    local copts = helper.local_opts(NAMESPACE)
    copts.endpoint = proxy.endpoint
    copts.timeout = 0.5 -- the proxy's "slow" answers take 0.8 s
    -- Two attempts, not the default three: about 4% of the calls then fail
    -- past the client's retries, so the consumer's own recovery ('error',
    -- backoff, the same iterator again) is exercised as well as the retries.
    copts.max_attempts = 2
    local client = ds.client(copts)

    -- TRIM_HORIZON on the still empty shard: DynamoDB Local answers the first
    -- GetRecords after records arrive with TrimmedDataAccessException, which
    -- the consumer handles by re-opening at TRIM_HORIZON (no 'gap').
    local stream = ds.new(client, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON", limit = LIMIT })

    local journal, done = tmp .. "/journal", tmp .. "/done"
    local t0 = monotime()
    local cmd = table.concat({
      "echo $$; exec env",
      q("LUA_PATH=" .. package.path), q("LUA_CPATH=" .. package.cpath),
      helper.lua .. " spec/support/soak_writer.lua",
      q("endpoint=" .. helper.ddb_local_endpoint()), q("namespace=" .. NAMESPACE),
      q("table=" .. table_name), q("journal=" .. journal), q("done=" .. done),
      "keys=" .. KEYS, "changes=" .. CHANGES, "batch=25", "pause=" .. WRITER_PAUSE, "seed=" .. SEED,
      "2>" .. q(tmp .. "/writer.stderr"),
    }, " ")
    writer = { proc = assert(helper.popen(cmd)) }
    writer.pid = assert(helper.tointeger(tonumber(writer.proc:read("*l"))), "writer pid")

    -- What the consumer saw.
    local delivered = {}          -- id -> { event, seq }
    local ndelivered, nrecords = 0, 0
    local event_ids, seqs = {}, {}
    local duplicates, out_of_order, malformed = {}, {}, {}
    local last_ord = {}           -- key -> last ord delivered
    local events = { ["insert record"] = 0, ["modify record"] = 0, ["remove record"] = 0 }
    local errors_by_code, nerrors, gaps = {}, 0, 0
    local total, writer_died, done_at = nil, false, nil
    local stopping = false
    local function stop()
      stopping = true
      stream:stop()
    end

    local function check_done()
      if total == nil then
        local running = alive(writer.pid) -- before reading: it writes the file, then exits
        local text = read_file(done)
        total = text and helper.tointeger(tonumber(text:match("%d+")))
        if total then done_at = monotime() end
        if total == nil and not running then
          writer_died = true
          stop()
        end
      end
      if total and (ndelivered >= total or monotime() - done_at > CATCH_UP) then stop() end
    end

    local function deliver(event, image, record)
      events[event] = events[event] + 1
      local seq = record.dynamodb.SequenceNumber
      if event_ids[record.eventID] or seqs[seq] then
        duplicates[#duplicates + 1] = record.eventID .. " " .. seq
        return
      end
      event_ids[record.eventID], seqs[seq] = true, true
      if type(image) ~= "table" or type(image.pk) ~= "string" or helper.math_type(image.v) ~= "integer" then
        malformed[#malformed + 1] = record.eventID
        return
      end
      local ord = event == "remove record" and 2 * image.v + 1 or 2 * image.v
      local id = image.pk .. " " .. ord
      if delivered[id] then
        duplicates[#duplicates + 1] = id
        return
      end
      delivered[id] = { event = event, seq = seq }
      ndelivered = ndelivered + 1
      if last_ord[image.pk] and last_ord[image.pk] >= ord then
        out_of_order[#out_of_order + 1] = string.format("%s: %d after %d", image.pk, ord, last_ord[image.pk])
      end
      last_ord[image.pk] = ord
      if total or ndelivered % 250 == 0 then check_done() end
    end

    stream:on("record", function() nrecords = nrecords + 1 end)
    stream:on("insert record", function(new, _, record) deliver("insert record", new, record) end)
    stream:on("modify record", function(new, _, _, record) deliver("modify record", new, record) end)
    stream:on("remove record", function(old, _, record) deliver("remove record", old, record) end)
    stream:on("gap", function() gaps = gaps + 1 end)
    stream:on("error", function(err)
      nerrors = nerrors + 1
      local code = type(err) == "table" and tostring(err.code) or "?"
      errors_by_code[code] = (errors_by_code[code] or 0) + 1
    end)

    local ok_run, run_result, run_err = pcall(stream.run, stream, {
      interval = 0.05, max_interval = 0.4, duration = DEADLINE,
      sleep = function(s)
        check_done()
        if not stopping then ds.sleep(s) end
      end,
    })
    local elapsed = monotime() - t0

    local writer_out = writer.proc:read("*a")
    local writer_ok = writer.proc:close()
    writer.proc = nil
    local stats = proxy:stats()
    local client_stats = type(client.stats) == "function" and client:stats() or nil
    proxy:stop()
    proxy = nil

    io.stderr:write(string.format(
      "\n# soak: %d of %s changes delivered in %.1f s, the writer done after %s s"
      .. " (%d record events: %d insert, %d modify, %d remove)\n"
      .. "# soak: proxy saw %d requests (%s), injected %d faults: %s\n"
      .. "# soak: client stats: %s\n"
      .. "# soak: %d 'error' events: %s; %d 'gap' events\n",
      ndelivered, tostring(total), elapsed, done_at and string.format("%.1f", done_at - t0) or "?", nrecords, events["insert record"], events["modify record"],
      events["remove record"], stats.total, sorted_pairs_text(stats.requests),
      (function() local n = 0 for _, v in pairs(stats.faults) do n = n + v end return n end)(),
      sorted_pairs_text(stats.faults),
      client_stats and sorted_pairs_text(client_stats) or "(client:stats() not available)",
      nerrors, sorted_pairs_text(errors_by_code), gaps))

    -- The process never died: run returned normally, because we stopped it.
    assert(ok_run, "stream:run raised: " .. tostring(run_result))
    assert.is_true(run_result, "stream:run returned " .. tostring(run_result) .. ", " .. tostring(run_err))

    assert(writer_ok and not writer_died, "the writer failed: " .. tostring(writer_out)
      .. " " .. tostring(read_file(tmp .. "/writer.stderr")))
    assert.equals("TOTAL " .. total, writer_out:match("TOTAL %d+"))
    local ops, list = read_journal(journal)
    assert.equals(total, #list, "journal and writer disagree")

    -- What the writer made: the mix the issue asks for.
    local counts, keys_touched = { I = 0, M = 0, D = 0 }, {}
    for _, id in ipairs(list) do
      counts[ops[id]] = counts[ops[id]] + 1
      keys_touched[id:match("^%S+")] = true
    end
    local nkeys = 0
    for _ in pairs(keys_touched) do nkeys = nkeys + 1 end
    assert.is_true(total >= 5000, "only " .. total .. " changes written")
    assert.is_true(nkeys >= 500, "only " .. nkeys .. " keys changed")
    assert.is_true(counts.I > 0 and counts.M > 0 and counts.D > 0, "no mix: " .. sorted_pairs_text(counts))

    -- The faults really were injected, of every kind.
    for _, kind in ipairs(FAULT_KINDS) do
      assert.is_true((stats.faults[kind] or 0) > 0, "no " .. kind .. " fault was injected")
    end

    -- Every change delivered once, as the right event, in order per key. All
    -- the violations are reported together.
    local problems = {}
    local function problem(list_, what)
      if #list_ > 0 then
        problems[#problems + 1] = string.format("%d %s; first: %s", #list_, what,
          table.concat(list_, ", ", 1, math.min(#list_, 10)))
      end
    end
    local missing, wrong_event, extra = {}, {}, {}
    for _, id in ipairs(list) do
      if not delivered[id] then missing[#missing + 1] = id end
    end
    local want_event = { I = "insert record", M = "modify record", D = "remove record" }
    for id, d in pairs(delivered) do
      if not ops[id] then
        extra[#extra + 1] = id
      elseif want_event[ops[id]] ~= d.event then
        wrong_event[#wrong_event + 1] = id .. " as " .. d.event
      end
    end
    problem(missing, string.format("of %d changes never delivered (stopped after %.1f s, %s)", total, elapsed,
      elapsed >= DEADLINE and "the deadline" or string.format("%d s after the writer was done", CATCH_UP)))
    problem(duplicates, "changes delivered twice (eventID and sequence number, or key and ord)")
    problem(out_of_order, "changes out of order for their key")
    problem(malformed, "records without pk or v (eventID)")
    problem(extra, "changes delivered that the writer never made")
    problem(wrong_event, "changes delivered as the wrong event")
    if nrecords ~= ndelivered + #duplicates + #malformed then
      problems[#problems + 1] = string.format("%d 'record' events for %d typed ones", nrecords,
        ndelivered + #duplicates + #malformed)
    end
    if gaps > 0 then problems[#problems + 1] = gaps .. " 'gap' events" end
    assert(#problems == 0, table.concat(problems, "\n"))

    -- Both layers of recovery were exercised: the client retried, and some
    -- failures got past its retries to the consumer (as 'error' events).
    if client_stats then
      assert.is_true(client_stats.retries > 0, "the client never retried")
    end
    -- A failure gets past max_attempts = 2 when a retry is faulted too (p = 0.2
    -- each): certain over the ~140 faults of a normal run, not over the ~20 of
    -- a run under valgrind, where this check would only flake.
    local injected = 0
    for _, n in pairs(stats.faults) do injected = injected + n end
    if injected >= 60 then
      assert.is_true(nerrors > 0, "no failure reached the consumer: its recovery was not exercised")
    end
  end)
end)
