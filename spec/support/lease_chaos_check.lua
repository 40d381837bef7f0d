-- The checker of spec/robustness/lease_chaos_spec.lua: reads the logs of
-- every worker (spec/support/lease_worker.lua) and the spec's own events, and
-- holds them against the changes the fake stream says it wrote.
--
-- Log lines (t: monotonic seconds, one clock for every process of the machine):
--   S <id> <t>   A <id> <t> <shard>...   L <id> <t> <shard>...   E <id> <t> <code>
--   X <id> <t> <ok> <err>   D <id> <shard> <key> <version> <seq> <t>
--   K <id> <t> [<t_dead>]  (the spec SIGKILLed id: t before the kill, from which a
--                           failover is measured; t_dead after it, when id's
--                           holdings end: it may deliver in between)
--   T <id> <t>   (the spec asked id to stop)
local M = {}

--- Parses log text into entries { kind, id, t, shards | shard, key, version, seq | ... }.
-- A last line without its newline (cut by a kill) is ignored; a malformed line raises.
function M.parse(text, name)
  local out, n = {}, 0
  for l in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local kind = l:sub(1, 1)
    local e
    if kind == "D" then
      local id, shard, key, version, seq, t = l:match("^D (%S+) (%S+) (%S+) (%d+) (%d+) ([%d.]+)$")
      if id then
        e = { kind = "D", id = id, shard = shard, key = key, version = tonumber(version), seq = seq, t = tonumber(t) }
      end
    elseif kind == "A" or kind == "L" then
      local id, t, rest = l:match("^[AL] (%S+) ([%d.]+) ?(.*)$")
      if id then
        e = { kind = kind, id = id, t = tonumber(t), shards = {} }
        for s in rest:gmatch("%S+") do e.shards[#e.shards + 1] = s end
      end
    elseif kind == "S" or kind == "K" or kind == "T" or kind == "X" or kind == "E" then
      local id, t, rest = l:match("^%u (%S+) ([%d.]+) ?(.*)$")
      if id then
        e = { kind = kind, id = id, t = tonumber(t), rest = rest }
        if kind == "K" then
          e.dead_at = tonumber(rest:match("^[%d.]+$") or t)
          if not e.dead_at or e.dead_at < e.t then e = nil end
        end
      end
    end
    if not e then error(string.format("%s:%d: bad line %q", name or "log", n, l), 2) end
    out[#out + 1] = e
  end
  return out
end

-- Holding intervals: holds[id][shard] = { {from, to}, ... }; an interval
-- ends at 'lease lost', the worker's SIGKILL, its exit, or `until` (the end
-- of the run) when none of these came.
local function holdings(entries, until_t)
  local holds, open = {}, {}
  local function close(id, shard, t)
    local iv = open[id] and open[id][shard]
    if iv then iv[2] = t open[id][shard] = nil end
  end
  local function close_all(id, t)
    for shard in pairs(open[id] or {}) do close(id, shard, t) end
  end
  local sorted = {}
  for i, e in ipairs(entries) do sorted[i] = e end
  table.sort(sorted, function(a, b) return a.t < b.t end)
  for _, e in ipairs(sorted) do
    if e.kind == "A" then
      holds[e.id], open[e.id] = holds[e.id] or {}, open[e.id] or {}
      for _, s in ipairs(e.shards) do
        if not open[e.id][s] then
          local iv = { e.t, nil }
          holds[e.id][s] = holds[e.id][s] or {}
          table.insert(holds[e.id][s], iv)
          open[e.id][s] = iv
        end
      end
    elseif e.kind == "L" then
      for _, s in ipairs(e.shards) do close(e.id, s, e.t) end
    elseif e.kind == "K" then
      close_all(e.id, e.dead_at)
    elseif e.kind == "X" then
      close_all(e.id, e.t)
    end
  end
  for id in pairs(open) do close_all(id, until_t) end
  return holds
end

local function held_at(holds, id, shard, t)
  for _, iv in ipairs((holds[id] or {})[shard] or {}) do
    if iv[1] <= t and t <= iv[2] then return true end
  end
  return false
end

-- The shards id held at time t.
local function held_by(holds, id, t)
  local out = {}
  for shard, ivs in pairs(holds[id] or {}) do
    for _, iv in ipairs(ivs) do
      if iv[1] <= t and t <= iv[2] then out[#out + 1] = shard break end
    end
  end
  table.sort(out)
  return out
end

-- For each shard id held at time t: the delay to the first delivery of that
-- shard by another worker after t (shards nobody delivered after t are left out).
local function resumed(deliveries_of, holds, id, t)
  local out = {}
  for _, shard in ipairs(held_by(holds, id, t)) do
    for _, d in ipairs(deliveries_of[shard] or {}) do
      if d.t > t and d.id ~= id then
        out[#out + 1] = { shard = shard, delay = d.t - t, by = d.id }
        break
      end
    end
  end
  return out
end

--- Checks the run. opts: changes ({ {key, version, shard, seq} } written),
-- entries (every parsed line of every log), window (seconds two workers may
-- both hold a shard: the zombie's notice of a lost lease), failover_bound and
-- graceful_bound (seconds). Returns a report whose `problems` (a list of
-- strings) is empty when everything held.
function M.check(opts)
  local entries, window = opts.entries, assert(opts.window, "window is required")
  local report = { problems = {}, missing = {}, order = {}, overlaps = {}, unheld = {},
                   failovers = {}, graceful = {}, duplicates = 0, delivered = 0 }
  local function problem(fmt, ...) report.problems[#report.problems + 1] = string.format(fmt, ...) end

  local last_t = 0
  for _, e in ipairs(entries) do if e.t > last_t then last_t = e.t end end
  local holds = holdings(entries, last_t)

  -- Deliveries: by change, by shard (in time order), by worker (in log order).
  local count, deliveries_of, by_worker = {}, {}, {}
  for _, e in ipairs(entries) do
    if e.kind == "D" then
      report.delivered = report.delivered + 1
      local change = e.key .. " " .. e.version
      count[change] = (count[change] or 0) + 1
      deliveries_of[e.shard] = deliveries_of[e.shard] or {}
      table.insert(deliveries_of[e.shard], e)
      by_worker[e.id] = by_worker[e.id] or {}
      table.insert(by_worker[e.id], e)
      if not held_at(holds, e.id, e.shard, e.t) then
        report.unheld[#report.unheld + 1] = e
        problem("%s delivered %s v%d of %s at %.3f without holding its lease", e.id, e.key, e.version, e.shard, e.t)
      end
    end
  end
  for _, list in pairs(deliveries_of) do table.sort(list, function(a, b) return a.t < b.t end) end

  -- Every change delivered; duplicates counted.
  local written = {}
  for _, c in ipairs(opts.changes) do
    local change = c.key .. " " .. c.version
    written[change] = true
    if not count[change] then report.missing[#report.missing + 1] = change end
  end
  for change, n in pairs(count) do
    if not written[change] then problem("%s was delivered but never written", change) end
    report.duplicates = report.duplicates + n - 1
  end
  table.sort(report.missing)
  if #report.missing > 0 then
    problem("%d of %d changes never delivered; first: %s", #report.missing, #opts.changes,
      table.concat(report.missing, ", ", 1, math.min(10, #report.missing)))
  end

  -- Per key, within one worker, versions only go up, except after that worker
  -- (re)acquired the change's shard, which restarts from its checkpoint.
  local acquired = {} -- id -> list of A entries
  for _, e in ipairs(entries) do
    if e.kind == "A" then acquired[e.id] = acquired[e.id] or {} table.insert(acquired[e.id], e) end
  end
  local function reacquired(id, shard, from, to)
    for _, a in ipairs(acquired[id] or {}) do
      if a.t > from and a.t <= to then
        for _, s in ipairs(a.shards) do if s == shard then return true end end
      end
    end
    return false
  end
  for id, list in pairs(by_worker) do
    local last = {}
    for _, d in ipairs(list) do
      local prev = last[d.key]
      if prev and d.version <= prev.version and not reacquired(id, d.shard, prev.t, d.t) then
        report.order[#report.order + 1] = { id = id, key = d.key, from = prev.version, to = d.version }
        problem("%s delivered %s v%d after v%d", id, d.key, d.version, prev.version)
      end
      last[d.key] = d
    end
  end

  -- No two workers hold one shard for longer than the window.
  local ids = {}
  for id in pairs(holds) do ids[#ids + 1] = id end
  table.sort(ids)
  for i = 1, #ids do
    for j = i + 1, #ids do
      for shard, a_ivs in pairs(holds[ids[i]]) do
        for _, a in ipairs(a_ivs) do
          for _, b in ipairs(holds[ids[j]][shard] or {}) do
            local both = math.min(a[2], b[2]) - math.max(a[1], b[1])
            if both > window then
              report.overlaps[#report.overlaps + 1] = { shard = shard, ids = { ids[i], ids[j] }, seconds = both }
              problem("%s and %s both held %s for %.3f s (more than %.3f s)", ids[i], ids[j], shard, both, window)
            end
          end
        end
      end
    end
  end

  -- Failover after each SIGKILL, resumption after each graceful stop.
  for _, e in ipairs(entries) do
    if e.kind == "K" or e.kind == "T" then
      local shards = resumed(deliveries_of, holds, e.id, e.t)
      local worst = 0
      for _, r in ipairs(shards) do worst = math.max(worst, r.delay) end
      local entry = { id = e.id, t = e.t, shards = shards, worst = worst }
      if e.kind == "K" then
        table.insert(report.failovers, entry)
        if opts.failover_bound and worst > opts.failover_bound then
          problem("after the SIGKILL of %s, its shards came back after %.3f s (bound %.3f s)", e.id, worst, opts.failover_bound)
        end
      else
        table.insert(report.graceful, entry)
        if opts.graceful_bound and worst > opts.graceful_bound then
          problem("after %s was stopped, its shards came back after %.3f s (bound %.3f s)", e.id, worst, opts.graceful_bound)
        end
      end
    end
  end
  return report
end

--- min / median / p90 / max of a list of numbers, as text.
function M.distribution(values)
  if #values == 0 then return "(none)" end
  local v = {}
  for i, x in ipairs(values) do v[i] = x end
  table.sort(v)
  local function at(q) return v[math.max(1, math.ceil(q * #v))] end
  return string.format("n=%d min=%.2f median=%.2f p90=%.2f max=%.2f s", #v, v[1], at(0.5), at(0.9), v[#v])
end

return M
