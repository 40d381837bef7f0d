-- Prints the benchmark table from a results file written by bench/run.sh.
--   lua5.4 bench/report.lua RESULTS
-- Lines read:  META <key> <value...>
--              RESULT <name> <records/s> <MB/s> <records> <bytes> [<page>]  (gen_page.lua --page;
--              "orders" when absent)
--              KEPT <name> <records a filter kept> <page>  (a filtered decoder; every one must keep as many)
--              E2E <name> <user s> <sys s> <peak RSS KiB> <wall s> <events> <polls>
--              IDLE ..., LATENCY ... (bench/e2e/latency.lua)
--              POLL <serial|parallel> <shards> <median s> <min s> <max s>   (bench/poll_round.lua)
--              CONSUMER <shards> <median s> <min s> <max s> <first fetch s> (bench/consumer_round.lua)
--              MEM <records> <RSS KiB at 10%> <50%> <100%> <VmHWM KiB> <s> <Lua KiB at 10%> <100%>
--              VALGRIND <records> <exit status> <definitely lost B> <indirectly lost B> <errors> <s>
--              (both bench/mem/run.sh)
--              REPL <name> <items or changes> <user s> <sys s> <peak RSS KiB> <wall s> <DynamoDB Local CPU s | ->
--              (bench/replicate/run.sh)

local meta, pages, e2e, idle, latency = {}, {}, {}, nil, nil
local kept = {}  -- kept[page]: { [count] = name of a decoder that kept that many }
local idle_steady
local poll, consumer, mem, vg = { serial = {}, parallel = {} }, {}, nil, nil
local repl = {}
for line in io.lines((assert(arg[1], "usage: report.lua RESULTS"))) do
  local w = {}
  for x in line:gmatch("%S+") do w[#w + 1] = x end
  if w[1] == "META" then
    meta[w[2]] = line:match("^META%s+%S+%s+(.*)$")
  elseif w[1] == "RESULT" then
    -- One line per round; the median round is reported (see the end of the loop).
    local page = w[7] or "orders"
    pages[page] = pages[page] or {}
    local d = pages[page][w[2]] or { samples = {}, n = tonumber(w[5]), bytes = tonumber(w[6]) }
    pages[page][w[2]] = d
    d.samples[#d.samples + 1] = tonumber(w[3])
  elseif w[1] == "KEPT" then
    local page = w[4] or "orders"
    kept[page] = kept[page] or {}
    kept[page][tonumber(w[3])] = w[2]
  elseif w[1] == "IDLE" then
    idle = { rate = tonumber(w[2]), shards = tonumber(w[3]), secs = tonumber(w[4]), calls = tonumber(w[5]) }
  elseif w[1] == "IDLE_STEADY" then
    idle_steady = { rate = tonumber(w[2]), gap = tonumber(w[3]), polls = tonumber(w[4]) }
  elseif w[1] == "LATENCY" then
    latency = { p50 = tonumber(w[2]), p99 = tonumber(w[3]), max = tonumber(w[4]), n = tonumber(w[5]) }
  elseif w[1] == "POLL" and poll[w[2]] then
    poll[w[2]][tonumber(w[3])] = { tonumber(w[4]), tonumber(w[5]), tonumber(w[6]) }
  elseif w[1] == "CONSUMER" then
    consumer[tonumber(w[2])] = { tonumber(w[3]), tonumber(w[4]), tonumber(w[5]), first = tonumber(w[6]) }
  elseif w[1] == "MEM" then
    mem = { n = tonumber(w[2]), rss = { tonumber(w[3]), tonumber(w[4]), tonumber(w[5]) }, hwm = tonumber(w[6]),
            secs = tonumber(w[7]), heap = { tonumber(w[8]), tonumber(w[9]) } }
  elseif w[1] == "VALGRIND" then
    vg = { n = tonumber(w[2]), rc = tonumber(w[3]), definite = tonumber(w[4]), indirect = tonumber(w[5]),
           errors = tonumber(w[6]), secs = tonumber(w[7]) }
  elseif w[1] == "REPL" then
    -- One line per round; the round of median rate is reported (after the loop).
    local runs = repl[w[2]] or {}
    repl[w[2]] = runs
    runs[#runs + 1] = { n = tonumber(w[3]), cpu = tonumber(w[4]) + tonumber(w[5]), rss = tonumber(w[6]) / 1024,
                        wall = tonumber(w[7]), ddb = tonumber(w[8]) }
  elseif w[1] == "E2E" then
    e2e[w[2]] = { user = tonumber(w[3]), sys = tonumber(w[4]), rss = tonumber(w[5]) / 1024,
                  wall = tonumber(w[6]), events = tonumber(w[7]), polls = tonumber(w[8]) }
  end
end

-- The filtered decoders of a page must agree, or their rates compare different work.
for page, counts in pairs(kept) do
  local seen = {}
  for count, name in pairs(counts) do seen[#seen + 1] = name .. " kept " .. count end
  if #seen > 1 then
    table.sort(seen)
    error("page " .. page .. ": the filtered decoders kept different numbers of records: "
      .. table.concat(seen, ", "), 0)
  end
end

local function median(sorted)
  local k = #sorted
  return k % 2 == 1 and sorted[(k + 1) // 2] or (sorted[k // 2] + sorted[k // 2 + 1]) / 2
end

local rounds = 0
for _, dec in pairs(pages) do for _, d in pairs(dec) do
  local sorted = table.move(d.samples, 1, #d.samples, 1, {})  -- d.samples stays in round order
  table.sort(sorted)
  rounds = math.max(rounds, #sorted)
  d.rps = median(sorted)
  d.mbs = d.rps * d.bytes / d.n / 1e6
  d.spread = (sorted[#sorted] - sorted[1]) / d.rps
end end
local dec = pages.orders or {}

local function commas(n)
  local s = string.format("%.0f", n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end
local function verdict(ok) return ok and "met" or "NOT MET" end
local out = {}
local function p(fmt, ...) out[#out + 1] = string.format(fmt, ...) end

p("dynamodb_stream benchmark: %s", meta.date or "")
p("machine: %s; load average at start: %s, at end: %s", meta.machine or "?", meta.load or "?",
  meta.load_end or "?")
p("")

-- 1. Decode
local page = dec.node or dec.lua_cjson or next(dec) and select(2, next(dec))
p("1. Decode one GetRecords page (gen_page.lua --seed %s --page orders: %s MODIFY records, NEW_AND_OLD_IMAGES, %.2f MB,",
  meta.seed or "?", page and commas(page.n) or "?", page and page.bytes / 1e6 or 0)
p("   %.0f bytes/record). Per CPU second of the process (user+sys, so steal on a busy machine does not", page and page.bytes / page.n or 0)
p("   count; Node's GC threads do); each round runs every decoder in turn (warm-up, then the median")
p("   of %s timed runs); the median of %d rounds is shown, spread = (max - min) / median over rounds.", meta.runs or "?", rounds)
p("   A ratio is taken within each round (decoders run minutes apart can see a machine twice as fast)")
p("   and the median of the rounds' ratios is shown, with the lowest and highest.")
p("   %-68s %10s %7s %7s", "", "records/s", "MB/s", "spread")
local rows = {
  { "ours_decode_records", "ours: ds.decode_records(text)" },
  { "luajit_ours_decode_records", "ours under LuaJIT" },
  { "node", "Node " .. (meta.node or "") .. ": JSON.parse + @aws-sdk/util-dynamodb unmarshall" },
  { "lua_cjson", "Lua 5.4: lua-cjson decode + plain-Lua unmarshall" },
  { "lua_build", "Lua 5.4: our result's values alone, built from a tape (no JSON read)" },
  { "cjson_malloc", "C: cJSON parse only, default malloc/free" },
  { "cjson_arena", "C: cJSON parse only, bump arena reset per parse (floor)" },
}
-- Each row {name, label} of a page's decoders: its median round and spread.
local function rate_rows(rows)
  for _, r in ipairs(rows) do
    local d = dec[r[1]]
    if d then p("   %-68s %10s %7.1f %6.0f%%", r[2], commas(d.rps), d.mbs, d.spread * 100)
    else p("   %-68s %10s", r[2], "not run") end
  end
end
rate_rows(rows)
local ours = dec.ours_decode_records
p("   %-60s %10s %9s %8s", "ratios (same run: median of the rounds' ratios)", "measured", "rounds", "target")
-- num / den of the same round, over the rounds both ran in: the median,
-- lowest and highest, or nothing when they never ran together.
local function round_ratios(num, den)
  local per_round = {}
  for i = 1, math.min(num and #num.samples or 0, den and #den.samples or 0) do
    per_round[i] = num.samples[i] / den.samples[i]
  end
  if #per_round == 0 then return nil end
  table.sort(per_round)
  return median(per_round), per_round[1], per_round[#per_round]
end
local function ratio(label, num, den, target, ok)
  local r, lo, hi = round_ratios(num, den)
  if not r then
    p("   %-60s %10s %9s %8s", label, "n/a", "", target)
    return
  end
  p("%s", (string.format("   %-60s %9.2fx %9s %8s  %s", label, r,
    string.format("%.1f-%.1f", lo, hi), target, ok and verdict(ok(r)) or "")
    :gsub("%s+$", "")))
end
-- The issue's decode targets.
local function at_least_4(r) return r >= 4 end
local function at_most_2(r) return r <= 2 end
local function at_most_1_25(r) return r <= 1.25 end
local function at_least_15(r) return r >= 15 end
ratio("ours / Node", ours, dec.node, ">= 4x", at_least_4)
ratio("ours under LuaJIT / Node", dec.luajit_ours_decode_records, dec.node, ">= 4x", at_least_4)
ratio("ours / lua-cjson + plain Lua", ours, dec.lua_cjson, ">= 8x", function(r) return r >= 8 end)
ratio("cJSON-arena floor / ours (times slower than the floor)", dec.cjson_arena, ours, "<= 2x", at_most_2)
ratio("cJSON-arena floor / our values alone (no JSON read)", dec.cjson_arena, dec.lua_build, "(info)")
ratio("values alone / ours (= ours' time / the values' time)", dec.lua_build, ours, "<= 1.25x", at_most_1_25)
ratio("ours / cJSON with malloc", ours, dec.cjson_malloc, "-")
p("")
p("1b. Every page of gen_page.lua (--list), ours against Node: records per CPU second (median round) and")
p("   the median of the rounds' ratios (lowest-highest); target >= 4x on every page, under LuaJIT too")
p("%s", (string.format("   %-13s %6s %10s %10s %10s  %-26s  %-26s", "page", "B/rec", "ours", "LuaJIT", "Node",
  "ours / Node", "LuaJIT / Node"):gsub("%s+$", "")))
local names = {}
for name in pairs(pages) do names[#names + 1] = name end
table.sort(names)
-- A page's num / den cell, with the verdict of ok (none for an info column).
local function page_ratio(num, den, ok)
  local r, lo, hi = round_ratios(num, den)
  if not r then return "n/a" end
  return string.format("%6.2fx %9s  %-7s", r, string.format("%.1f-%.1f", lo, hi), ok and verdict(ok(r)) or "")
end
for _, name in ipairs(names) do
  local d = pages[name]
  local any = d.ours_decode_records or d.node or d.luajit_ours_decode_records
  if any then
    local function rps(x) return x and commas(x.rps) or "-" end
    p("%s", (string.format("   %-13s %6.0f %10s %10s %10s  %-26s  %-26s", name, any.bytes / any.n,
      rps(d.ours_decode_records), rps(d.luajit_ours_decode_records), rps(d.node),
      page_ratio(d.ours_decode_records, d.node, at_least_4),
      page_ratio(d.luajit_ours_decode_records, d.node, at_least_4)):gsub("%s+$", "")))
  end
end
p("   Our result's values alone (lua_build_floor.c, Lua 5.4: built from a tape, no JSON read) on every page.")
p("   'values alone / Node' is the best ours / Node any decoder of this output shape can reach under Lua 5.4")
p("   (under 4x, the 4x target is out of reach on that page in this shape); 'values alone / ours' is ours'")
p("   time over the values' time: the decoder's cost beyond building the Lua values, target <= 1.25x")
-- Every page's values alone (records/s of the build) against Node and against
-- ours under the same interpreter.
local function values_alone_rows(build, decoder, head_node, head_ours, ours_ok)
  p("%s", (string.format("   %-13s %10s  %-26s  %-26s", "page", "values", head_node, head_ours):gsub("%s+$", "")))
  for _, name in ipairs(names) do
    local d = pages[name]
    if d[build] then
      p("%s", (string.format("   %-13s %10s  %-26s  %-26s", name, commas(d[build].rps),
        page_ratio(d[build], d.node), page_ratio(d[build], d[decoder], ours_ok)):gsub("%s+$", "")))
    end
  end
end
values_alone_rows("lua_build", "ours_decode_records", "values alone / Node (info)", "values alone / ours",
  at_most_1_25)
p("   The same under LuaJIT (lua_build_floor.c built for it; both columns info): 'LuaJIT values alone / Node'")
p("   bounds ours under LuaJIT / Node in this shape; the other is ours under LuaJIT's time over the values' time")
values_alone_rows("luajit_lua_build", "luajit_ours_decode_records", "LuaJIT values alone / Node",
  "LuaJIT values alone / LuaJIT ours")
p("")

local kept_orders = kept.orders and next(kept.orders)
p("1c. Filtered decode of the orders page: a filter that keeps %s of its %s records (eventName MODIFY and",
  kept_orders and commas(kept_orders) or "?", page and commas(page.n) or "?")
p("   NewImage customer.age >= 84). Ours: ds.decode_records(text, { filter = pattern }), the filter run in C")
p("   while decoding (a refused record builds no Lua value); Node: JSON.parse + unmarshall of every record, then")
p("   the same condition in JavaScript, the matching records kept in an array. Records per CPU second count")
p("   every record of the page, kept or not; rounds, medians and ratios as in 1.")
p("   %-68s %10s %7s %7s", "", "records/s", "MB/s", "spread")
rate_rows({
  { "ours_filtered", "ours: ds.decode_records(text, { filter = pattern })" },
  { "luajit_ours_filtered", "ours under LuaJIT" },
  { "node_filtered", "Node: JSON.parse + unmarshall, then the condition in JavaScript" },
  { "cjson_arena", "C: cJSON parse only, bump arena reset per parse (floor, as in 1)" },
})
p("   %-60s %10s %9s %8s", "ratios (same run: median of the rounds' ratios)", "measured", "rounds", "target")
ratio("ours / Node, filtered", dec.ours_filtered, dec.node_filtered, ">= 15x", at_least_15)
ratio("ours under LuaJIT / Node, filtered", dec.luajit_ours_filtered, dec.node_filtered, ">= 15x", at_least_15)
ratio("cJSON-arena floor / ours filtered (times slower than floor)", dec.cjson_arena, dec.ours_filtered,
  "<= 2x", at_most_2)
ratio("cJSON-arena floor / ours under LuaJIT, filtered", dec.cjson_arena, dec.luajit_ours_filtered, "<= 2x",
  at_most_2)
p("")

-- 2. End to end
local n = (e2e.node_dynamodb_stream or e2e.ours or {}).events
if not n then
  p("2. End to end: not run (BENCH_SKIP_E2E=1, or it failed: see the messages above)")
  p("")
end
if n then
p("2. End to end: consume %s pre-written changes (inserts/modifies/deletes) from DynamoDB Local, of",
  n and commas(n) or "?")
p("   small items and then of large ones (a table each),")
p("   TRIM_HORIZON to the last one; each consumer process under /usr/bin/time. CPU = user+sys of the")
p("   whole process; 'net of startup' subtracts a run of the same script with N = 0")
p("   %-50s %7s %10s %10s %9s %7s %5s", "", "CPU s", "us/record", "net of", "peak RSS", "wall s", "polls")
p("   %-50s %7s %10s %10s %9s %7s %5s", "", "", "", "startup", "MB", "", "")
local function cpu(e) return e.user + e.sys end
local function net(e, start) return start and (cpu(e) - cpu(start)) / e.events * 1e6 end
local function e2e_row(label, e, start)
  if not e then p("   %-50s %7s", label, "not run"); return end
  if e.events == 0 then
    p("   %-50s %7.2f %10s %10s %9.1f %7.2f %5s", label, cpu(e), "-", "-", e.rss, e.wall, "-")
    return
  end
  local nt = net(e, start)
  p("   %-50s %7.2f %10.1f %10s %9.1f %7.2f %5d", label, cpu(e), cpu(e) / e.events * 1e6,
    nt and string.format("%.1f", nt) or "-", e.rss, e.wall, e.polls)
end
-- Each item size: its rows, then the ratios to Node of the same items.
for _, size in ipairs({ { "", "small items (~500 B)" }, { "_large", "large items (~4.5 KB)" } }) do
  local sfx = size[1]
  local nd, ours_run = e2e["node_dynamodb_stream" .. sfx], e2e["ours" .. sfx]
  if sfx == "" or nd or ours_run then
    p("   %s:", size[2])
    e2e_row("ours: ds.new + stream:run, defaults (Lua 5.4)", ours_run, e2e.ours_startup)
    e2e_row("ours: fetch_stream_state loop (holds each fetch)", e2e["ours_fetch" .. sfx], e2e.ours_startup)
    e2e_row("ours: stream:run, max_pages_per_shard = 1", e2e["ours_pages1" .. sfx], e2e.ours_startup)
    e2e_row("ours: fetch loop, max_pages_per_shard = 1", e2e["ours_fetch_pages1" .. sfx], e2e.ours_startup)
    e2e_row("ours under LuaJIT: stream:run", e2e["ours_luajit" .. sfx])
    e2e_row("ours under LuaJIT: fetch_stream_state loop", e2e["ours_fetch_luajit" .. sfx])
    if sfx == "" then e2e_row("ours, startup only (N = 0)", e2e.ours_startup) end
    e2e_row("Node " .. (meta.node or "") .. ": dynamodb-stream 1.1.4 + SDK v3", nd, e2e.node_startup)
    if sfx == "" then e2e_row("Node, startup only (N = 0)", e2e.node_startup) end
    if nd then
      p("   %-50s %8s %9s", "ratios (same run)", "measured", "target")
      local function ratios(what, e)
        if not e then return end
        local cr = (cpu(e) / e.events) / (cpu(nd) / nd.events)
        p("   %-50s %7.2fx %9s  %s", "CPU per record, " .. what .. " / Node", cr, "<= 0.20x", verdict(cr <= 0.2))
        local rr = e.rss / nd.rss
        p("   %-50s %7.2fx %9s  %s", "peak RSS, " .. what .. " / Node", rr, "<= 0.25x", verdict(rr <= 0.25))
      end
      ratios("run", ours_run)
      if sfx == "" then
        local nm, nn = net(ours_run, e2e.ours_startup), net(nd, e2e.node_startup)
        if nm and nn then
          p("   %-50s %7.2fx %9s", "CPU per record net of startup, run / Node", nm / nn, "(info)")
        end
      end
      ratios("fetch loop", e2e["ours_fetch" .. sfx])
      ratios("run, 1 page a fetch", e2e["ours_pages1" .. sfx])
      ratios("fetch loop, 1 page a fetch", e2e["ours_fetch_pages1" .. sfx])
      ratios("LuaJIT run", e2e["ours_luajit" .. sfx])
      ratios("LuaJIT fetch loop", e2e["ours_fetch_luajit" .. sfx])
    end
  end
end
p("")
end
if latency then
  p("3. Latency from a PutItem (stamped just before the call) to its 'insert record' listener, stream:run")
  p("   defaults, %d writes about %s ms apart, DynamoDB Local: p50 %.0f ms, p99 %.0f ms, max %.0f ms   p50 target <= 300 ms  %s",
    latency.n, meta.lat_interval or "?", latency.p50, latency.p99, latency.max, verdict(latency.p50 <= 300))
else
  p("3. Latency write -> event (default stream:run), p50 / p99:   not measured (target p50 <= 300 ms)")
end
if idle then
  -- Idle means idle for a while: the target is read on the steady state, once
  -- run()'s back-off ramp after the last change (0.1, 0.2, 0.4, 0.8 s) is over.
  if idle_steady then
    p("4. Idle polling, stream:run defaults, %d shard(s), steady idle (%d polls from 2 s on): median gap %.3f s",
      idle.shards, idle_steady.polls, idle_steady.gap)
    p("   = %.2f GetRecords per shard per second   (target <= 1)  %s", idle_steady.rate,
      verdict(idle_steady.rate <= 1))
  end
  p("   (info) the whole %.0f s idle window including the ramp after the last change: %d GetRecords = %.2f per"
    .. " shard per second", idle.secs, idle.calls, idle.rate)
else
  p("4. Idle polling, GetRecords per shard per second:            not measured (target <= 1)")
end
-- 5. Many shards
local sizes = {}
for n in pairs(poll.parallel) do sizes[#sizes + 1] = n end
for n in pairs(consumer) do if not poll.parallel[n] then sizes[#sizes + 1] = n end end
table.sort(sizes)
if #sizes == 0 then
  p("5. One poll round over 1 / 16 / 64 shards (fake endpoint):   not run (target 64 <= 3x of 1)")
else
  local lo, hi = sizes[1], sizes[#sizes]
  p("5. One poll round (one GetRecords of 10 records per shard) over %s shards, against",
    table.concat(sizes, " / "))
  p("   spec/support/fake_streams_server.py --latency-ms %s; median of %s rounds, wall clock, ms",
    meta.poll_latency_ms or "?", meta.poll_rounds or "?")
  local head = { string.format("   %-55s", "") }
  for _, n in ipairs(sizes) do head[#head + 1] = string.format("%10s", n == 1 and "1 shard" or n .. " shards") end
  head[#head + 1] = string.format(" %8s %7s", hi .. "/" .. lo, "target")
  out[#out + 1] = table.concat(head)
  local function row(label, get, target, ok)
    local cells = { string.format("   %-55s", label) }
    for _, n in ipairs(sizes) do
      local v = get(n)
      cells[#cells + 1] = v and string.format("%10.1f", v * 1e3) or string.format("%10s", "-")
    end
    local a, b = get(lo), get(hi)
    if a and b then
      local r = b / a
      cells[#cells + 1] = string.format(" %7.2fx %7s", r, target)
      if ok then cells[#cells + 1] = "  " .. verdict(ok(r)) end
    else
      cells[#cells + 1] = string.format(" %8s %7s", "n/a", target)
    end
    out[#out + 1] = table.concat(cells)
  end
  local function at(t, k) return function(n) return t[n] and t[n][k] end end
  row("GetRecords one after the other (client:call)", at(poll.serial, 1), "-")
  row("GetRecords at once (client:call_many, curl multi)", at(poll.parallel, 1), "<= 3x",
    function(r) return r <= 3 end)
  row("consumer: one stream:fetch_stream_records() round", at(consumer, 1), "<= 3x",
    function(r) return r <= 3 end)
  row("consumer: first fetch (+ GetShardIterator per shard)", at(consumer, "first"), "(info)")
  p("   (consumer: ds.new(ds.client{...}, arn, {unmarshall = ds.unmarshall, start_at = 'TRIM_HORIZON',")
  p("   max_pages_per_shard = 1, limit = 10}); every round checked to deliver 10 events per shard)")
end
p("")

-- 6. Memory
if mem then
  local mb = function(k) return k / 1024 end
  local r10, r50, r100 = mem.rss[1], mem.rss[2], mem.rss[3]
  local flat = r100 - r50 <= 0.05 * r50
  p("6. Memory: stream:run (defaults) consuming %s records from 4 shards of the fake endpoint",
    commas(mem.n))
  p("   (bench/mem/fake_many.py), ds.client + ds.unmarshall, own VmRSS sampled as records arrive")
  p("   %-55s %9s %9s %9s", "", "at 10%", "at 50%", "at 100%")
  p("   %-55s %9.1f %9.1f %9.1f", "VmRSS, MiB", mb(r10), mb(r50), mb(r100))
  p("   %-55s %9.1f %9s %9.1f", "Lua heap (collectgarbage 'count'), MiB", mb(mem.heap[1]), "", mb(mem.heap[2]))
  p("   growth 10%%->100%%: %+.1f MiB (%+.1f%%), 50%%->100%%: %+.1f MiB; peak (VmHWM) %.1f MiB; %.1f s (%s records/s)",
    mb(r100 - r10), (r100 - r10) / r10 * 100, mb(r100 - r50), mb(mem.hwm), mem.secs, commas(mem.n / mem.secs))
  p("   target: flat (RSS at 100%% within 5%% of RSS at 50%%)  %s", verdict(flat))
else
  p("6. Memory flat over 200,000 records:                          not run")
end
if vg then
  local clean = vg.rc == 0 and vg.definite == 0 and vg.indirect == 0
  if clean then
    p("   valgrind memcheck (--leak-check=full, definite+indirect are errors), same script, %s records:", commas(vg.n))
    p("   no leak (definitely lost 0 B, indirectly lost 0 B, %s errors; %.0f s)  %s", tostring(vg.errors), vg.secs,
      verdict(true))
  else
    p("   valgrind memcheck, same script, %s records: exit %d, definitely lost %s B, indirectly lost %s B,",
      commas(vg.n), vg.rc, commas(vg.definite), commas(vg.indirect))
    p("   %s errors (bench/out/valgrind.log)  %s", tostring(vg.errors), verdict(false))
  end
else
  p("   valgrind leak check:                                      not run")
end
p("")

-- 7. Replication: each copier's round of median rate (the lower middle one of
-- an even number), with the lowest and highest rate of its rounds.
for name, runs in pairs(repl) do
  for _, r in ipairs(runs) do r.rate = r.n / r.wall end
  table.sort(runs, function(a, b) return a.rate < b.rate end)
  local mid = runs[(#runs + 1) // 2]
  mid.low, mid.high, mid.rounds = runs[1].rate, runs[#runs].rate, #runs
  repl[name] = mid
end
if next(repl) then
  p("7. Replication throughput against DynamoDB Local (one in-memory instance on this machine): a table of")
  p("   %s items of about %s bytes (JSON on the wire, every attribute type) copied into an empty one, then",
    commas(tonumber(meta.repl_items) or 0), meta.repl_item_bytes or "?")
  p("   %s changes (20%% new keys, 40%% puts, 20%% UpdateItem, 20%% deletes) written with every copier stopped",
    commas(tonumber(meta.repl_changes) or 0))
  p("   and drained; %s rounds, each copier in turn, the round of median rate shown with the range of the",
    meta.repl_rounds or "?")
  p("   rates. Each copier is a process under /usr/bin/time (startup included); 'DDB Local CPU' is the CPU")
  p("   time DynamoDB Local's JVM spent meanwhile. Every target is checked to hold SRC's item count%s.",
    meta.repl_check == "verify" and " and\n   to equal SRC (dynamodb-stream verify)" or "")
  p("   %-55s %7s %13s %6s %5s %7s %5s %5s", "", "per s", "range", "wall s", "CPU s", "CPU us", "RSS", "DDB")
  p("   %-55s %7s %13s %6s %5s %7s %5s %5s", "", "", "", "", "", "per one", "MB", "CPU s")
  local function row(label, r)
    if not r then p("   %-55s %7s", label, "not run"); return end
    p("   %-55s %7s %13s %6.2f %5.2f %7.0f %5.0f %5s", label, commas(r.rate),
      commas(r.low) .. "-" .. commas(r.high), r.wall, r.cpu, r.cpu / r.n * 1e6, r.rss,
      r.ddb and string.format("%.2f", r.ddb) or "-")
  end
  p("   bootstrap, items per second:")
  row("ours: replicate --until-caught-up, 1 segment", repl.ours_bootstrap_1)
  row("ours: the same, --segments 4", repl.ours_bootstrap_4)
  row("Node: Scan + BatchWrite of 25 (AWS's guide), 1 segment", repl.node_copy_1)
  row("Node: the same, 4 parallel scan segments", repl.node_copy_4)
  row("Node: 4 segments, 8 BatchWrites in flight each", repl.node_copy_4x8)
  p("   follow, changes per second:")
  row("ours: replicate from its checkpoint --until-caught-up", repl.ours_follow)
  row("Node: dynamodb-stream 1.1.4 + BatchWrite per fetch", repl.node_follow)
  local function ratio(label, a, b)
    if a and b then p("   %-55s %6.2fx", label, a.rate / b.rate) end
  end
  ratio("bootstrap rate, ours / Node, 1 segment each", repl.ours_bootstrap_1, repl.node_copy_1)
  ratio("bootstrap rate, ours / Node, 4 segments each", repl.ours_bootstrap_4, repl.node_copy_4)
  ratio("follow rate, ours / Node", repl.ours_follow, repl.node_follow)
else
  p("7. Replication throughput:                                   not run")
end
print(table.concat(out, "\n"))
