--- The DynamoDB Streams consumer: the API and events of the npm package
-- dynamodb-stream 1.1.4, without its defects (see README, "Coming from npm").
--
--   local stream = Stream.new(client, stream_arn[, unmarshall | opts])
--   stream:on('insert record', function(new, keys, record) ... end)
--   local records, err = stream:fetch_stream_state()
--   stream:run{ checkpoint = 'state.json' }     -- polls until stream:stop()
--
-- Within a shard records are delivered in order; a child shard is read only
-- after its parent was read to its end. The parts, each a file of
-- lua/dynamodb_stream/stream/: shards.lua (the shard map and lineage),
-- reader.lua (iterators and pages, in rounds), checks.lua (what the service
-- answered), records.lua (skip, on_failure, delivery, stats), state.lua (the
-- saved and restored position), options.lua (option checks); this file holds
-- the public API, the fetch and run.
-- @classmod dynamodb_stream.stream
local Emitter = require("dynamodb_stream.emitter")
local errors = require("dynamodb_stream.errors")
local runtime = require("dynamodb_stream.runtime")
local core = require("dynamodb_stream.core")
local checks = require("dynamodb_stream.stream.checks")
local options = require("dynamodb_stream.stream.options")
local state = require("dynamodb_stream.stream.state")
local records = require("dynamodb_stream.stream.records")
local reader = require("dynamodb_stream.stream.reader")
local leases = require("dynamodb_stream.stream.leases")

local new_error, has_control = checks.new_error, checks.has_control

local Stream = setmetatable({}, { __index = Emitter })
Stream.__index = Stream

-- The methods of the parts: their private ones (named _x), and the public
-- ones named here.
local function mix_in(part, public)
  for name, fn in pairs(part) do
    if type(fn) == "function" and name:sub(1, 1) == "_" then
      assert(Stream[name] == nil, "two parts define " .. name)
      Stream[name] = fn
    end
  end
  for _, name in ipairs(public or {}) do Stream[name] = part[name] end
end
mix_in(require("dynamodb_stream.stream.shards"))
mix_in(reader)
mix_in(records)
mix_in(leases)
mix_in(require("dynamodb_stream.stream.metrics"))
mix_in(state, { "get_shard_state", "set_shard_state" })

local CLIENT_METHODS = {
  { "describe_stream", "describeStream" },
  { "get_shard_iterator", "getShardIterator" },
  { "get_records", "getRecords" },
}
-- Seconds between two lines about the same error repeating (see _report).
local REPORT_EVERY = 60

--- Makes a stream consumer.
-- opts: unmarshall (function; ds.unmarshall has the pages unmarshalled in C
-- as they are parsed, with a client that can: see below), start_at ('LATEST' |
-- 'TRIM_HORIZON' | { [shard_id] = { sequence_number =, type =
-- 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER' } }), limit (GetRecords
-- Limit, 1..1000), max_pages_per_shard (GetRecords calls per shard per fetch,
-- default 10), max_in_flight (GetRecords at once, 1..1024, default 64), clock
-- (function returning seconds, default core.monotime: the throttle backoff and
-- run() use it), wall_clock (function returning epoch seconds, default
-- os.time: when a shard was opened at LATEST, the age of records),
-- max_record_attempts, max_record_age and on_failure (see
-- records.failure_handler), batch_size (records of a 'batch', 1..10000,
-- default 100), batch_window (seconds a batch may collect records, 0..300,
-- default 0: what one fetch read), bisect (a batch whose listener raises is
-- split in two to find the record that fails; default false), filter
-- (Lambda's FilterCriteria { Filters = { { Pattern = json }, ... } }, or one
-- pattern as a JSON string or a Lua table: only the records it passes reach
-- the listeners, the others are acknowledged; see README, "Filters"; an
-- invalid pattern raises, naming the part), leases (many workers share the
-- stream through a lease table in DynamoDB: { dynamodb = ds.dynamodb(), table = name,
-- worker_id, lease_duration = 10, checkpoint_interval = 1 }, see
-- stream/leases.lua and README). Bad arguments raise.
-- @param client a DynamoDB Streams client (ds.client(), or any table with
-- describe_stream, get_shard_iterator and get_records, snake_case or camelCase)
-- @tparam string stream_arn
-- @tparam[opt] function|table opts the unmarshall function, or the options
-- @return the stream
-- @usage local stream = Stream.new(ds.client(), arn, { unmarshall = ds.unmarshall })
function Stream.new(client, stream_arn, opts)
  local ct = type(client)
  if ct ~= "table" and ct ~= "userdata" then error("client (a DynamoDB Streams client) expected", 2) end
  local methods = {}
  for _, names in ipairs(CLIENT_METHODS) do
    local fn = client[names[1]] or client[names[2]]
    if fn == nil then error("client has no " .. names[1] .. " (or " .. names[2] .. ") method", 2) end
    methods[names[1]] = fn
  end
  if type(stream_arn) ~= "string" or stream_arn == "" then error("stream_arn (a string) expected", 2) end
  if has_control(stream_arn) then error("stream_arn contains a control character", 2) end
  if type(opts) == "function" then opts = { unmarshall = opts } end
  if opts ~= nil and type(opts) ~= "table" then error("third argument must be a function or a table", 2) end
  opts = opts or {}

  local self = Emitter.new()
  self.client, self.stream_arn = client, stream_arn
  self._call = methods
  self._unmarshall = options.fn(opts, "unmarshall")
  -- The one place where it is decided that pages are unmarshalled in C as
  -- they are parsed (core.decode_records, through the client's
  -- get_records_unmarshalled or get_records_many(list, true)): asked for with
  -- opts.unmarshall = ds.unmarshall, given by a client that can (ds.client()).
  self._decode_in_c = self._unmarshall == core.unmarshall and type(client.get_records_unmarshalled) == "function"
  self._filter = records.compile_filter(opts.filter, 3)
  -- what get_records_many and get_records_unmarshalled are given: pages
  -- decoded in C are filtered there, before any Lua value of a dropped record
  self._decode_opts = self._decode_in_c and (self._filter and { filter = self._filter } or true)
  -- The reader sends its GetRecords through get_records_many: a client that
  -- can send many at once (ds.client()) gets a round of every readable shard,
  -- any other one a round of one shard at a time.
  if type(client.get_records_many) == "function" then
    methods.get_records_many, self._round_width = client.get_records_many, math.huge
  else
    local get_records = methods.get_records
    if self._decode_in_c then
      local decode_opts = self._filter and self._decode_opts or nil
      get_records = function(c, params) return c:get_records_unmarshalled(params, decode_opts) end
    end
    methods.get_records_many, self._round_width = reader.get_records_many_from(get_records), 1
  end
  self._max_in_flight = options.integer(opts, "max_in_flight", 1, 1024) or 64
  self._limit = options.integer(opts, "limit", 1, 1000)
  self._max_pages = options.integer(opts, "max_pages_per_shard", 1, 1000000) or 10
  self._shards, self._order = {}, {}  -- tracked shards by id; ids in reading order
  self._retired = {}                  -- finished shard ids still listed -> summary
  self._listed = {}                   -- ids in the last DescribeStream
  self._initial = true                -- next describe is the first since new/set_shard_state
  self._start_type = "LATEST"
  self._clock = options.fn(opts, "clock", core.monotime)
  self._wall_clock = options.fn(opts, "wall_clock", os.time)
  self._max_attempts = options.integer(opts, "max_record_attempts", 1, 1000000000)
  self._max_age = options.seconds(opts, "max_record_age", nil, 0, true)
  self._on_failure = records.failure_handler(opts.on_failure, self._max_attempts or self._max_age, self._wall_clock)
  self._batch_size = options.integer(opts, "batch_size", 1, 10000) or 100
  self._batch_window = options.seconds(opts, "batch_window", 0, 0, false, nil, 300)
  self._bisect = options.boolean(opts, "bisect", false)
  self._stats = { delivered = 0, failed_attempts = 0, retries = 0, failed_over = 0, on_failure_errors = 0,
    skipped = 0, gaps = 0, filtered = 0, pages = 0, empty_polls = 0, throttles = 0, errors = 0 }
  setmetatable(self, Stream)

  local start = opts.start_at
  if start == nil or start == "LATEST" or start == "TRIM_HORIZON" then
    self._start_type = start or "LATEST"
  elseif type(start) == "table" then
    self._start_type = "TRIM_HORIZON"  -- shards not named in start_at (new since) lose nothing
    local ids = {}
    for id in pairs(start) do
      if type(id) ~= "string" or id == "" then error("opts.start_at keys must be shard ids", 2) end
      if has_control(id) then error("opts.start_at: a shard id contains a control character", 2) end
      ids[#ids + 1] = id
    end
    table.sort(ids)
    for _, id in ipairs(ids) do
      local sh = self:_track(id, nil, state.check_position(start[id], "opts.start_at." .. id))
      sh.announce = true
    end
    self._restored = #ids > 0
  else
    error("opts.start_at must be 'LATEST', 'TRIM_HORIZON' or a table of shard positions", 2)
  end
  if opts.leases ~= nil then
    if type(start) == "table" then
      error("opts.start_at positions cannot be used with opts.leases (the lease table holds the positions)", 2)
    end
    local ok, checked = pcall(leases.options, opts.leases)
    if not ok then error(checked, 2) end
    self:_lease_setup(checked)
  end
  return self
end

-- ------------------------------------------------------------------- reporting

-- Emits 'error' when someone listens (a raising error listener is ignored);
-- inside run, with no listener, reports it (see _report). Returns nil, err
-- for the caller.
function Stream:_fail(err)
  if self:listener_count("error") > 0 then
    pcall(self.emit, self, "error", err)
  elseif self._running then
    self:_report(err)
  end
  return nil, err
end

-- One line on stderr, or in nginx's error log.
local function write_report(line)
  local ngx = runtime.ngx()
  if ngx then
    ngx.log(ngx.ERR, line)
  else
    io.stderr:write(line, "\n")
  end
end

local function report_line(err)
  local text = tostring(err)
  if text:find("^table: ") then text = tostring(err.code) .. ": " .. tostring(err.message) end
  if err.shard_id then text = text .. " [shard " .. tostring(err.shard_id) .. "]" end
  return "dynamodb_stream: " .. text
end

local function write_repeats(seen)
  write_report(seen.line .. " repeated " .. seen.count .. (seen.count == 1 and " time" or " times"))
  seen.count = 0
end

-- run() with no 'error' listener is never silent, and never floods the log:
-- an error is written once; the same again (same operation, code and shard:
-- messages may hold an iterator) is counted, and the count is written at most
-- every REPORT_EVERY seconds, and when run returns.
function Stream:_report(err)
  local key = tostring(err.operation) .. "|" .. tostring(err.code) .. "|" .. tostring(err.shard_id)
  local reported, t = self._reported, self._clock()
  local seen = reported[key]
  if seen then
    seen.count = seen.count + 1
    if t - seen.at >= REPORT_EVERY then write_repeats(seen) seen.at = t end
    return
  end
  seen = { line = report_line(err), count = 0, at = t }
  reported[key], reported[#reported + 1] = seen, seen
  write_report(seen.line .. " (no 'error' listener)")
end

-- At the end of run: the counts not written yet, in the order the errors came.
function Stream:_report_repeats()
  for _, seen in ipairs(self._reported) do
    if seen.count > 0 then write_repeats(seen) end
  end
  self._reported = {}
end

-- Emits a shard event; a raising listener is reported, not fatal.
function Stream:_notify(event, ids)
  if #ids == 0 then return end
  local ok, raised = pcall(self.emit, self, event, ids)
  if not ok then
    self:_fail(new_error("ListenerError", tostring(raised), { event = event, cause = raised }))
  end
end

-- ------------------------------------------------------------------- fetching

local WEAK_VALUES = { __mode = "v" }

-- The holder of a fetch or of run: the running coroutine, kept weakly so that
-- a coroutine dropped while suspended in a listener or a sleep can be
-- collected. The main thread never dies.
local function holder()
  local co, main = coroutine.running()
  if co == nil or main then return { main = true } end
  return setmetatable({ co = co }, WEAK_VALUES)
end

local function holder_alive(h)
  return h.main or (h.co ~= nil and coroutine.status(h.co) ~= "dead")
end

-- Releases what a dead coroutine held (it was closed, or dropped and
-- collected, while suspended in a listener or a sleep: the fetch never
-- finished), then tells whether a fetch is running.
function Stream:_fetch_held()
  if self._running and not holder_alive(self._run_holder) then
    self._running, self._stop_requested, self._clock = false, false, self._run_clock
  end
  if self._fetching and not holder_alive(self._fetching) then self._fetching = false end
  return self._fetching ~= false and self._fetching ~= nil
end

-- What a fetch does, by kind: "shards" (DescribeStream only), "records" (read,
-- after a first DescribeStream), "state" (both). With leases, the shards held
-- are checkpointed after the read.
local function fetch_body(self, kind, fetch)
  if self._coordinator then
    local ok, err = self:_lease_ensure()
    if not ok then return nil, err end
  end
  if kind ~= "records" or not self._described then
    local ok, err = self:_describe()
    if not ok then return nil, err end
  end
  if self._coordinator then
    -- the tick: at each fetch outside run, when it is due inside run
    local ok, err = self:_lease_tick_due(not self._running)
    if not ok then return nil, err end
    self:_lease_retry_ends()
  end
  if kind == "shards" then return true end
  local ok, err = self:_read(fetch)
  local compact = {}
  for _, id in ipairs(self._order) do
    if self._shards[id] then compact[#compact + 1] = id end
  end
  self._order = compact
  if self._coordinator then self:_lease_checkpoints(false) end
  return ok, err
end

-- One fetch of the given kind (see fetch_body), under the stream's fetch
-- lock. Returns its summary: { advanced = records moved past (delivered,
-- handed to on_failure or skipped), more = whether a shard stopped with its
-- page budget spent, shards_changed = whether a shard was retired, records =
-- the delivered records (outside run only), since = the wall clock at its
-- start }; or nil, err and the summary of what it did before the error.
function Stream:_fetch(kind)
  if self:_fetch_held() then
    return self:_fail(new_error("FetchInProgress",
      "a fetch is already running on this stream (called from a listener or a timer?)"))
  end
  local hold = holder()
  self._fetching = hold
  -- the pages it gets were asked for after since (see the reader's _page)
  local fetch = { advanced = 0, more = false, shards_changed = false, since = self._wall_clock(),
    records = not self._running and {} or nil }
  local ok, res, err = pcall(fetch_body, self, kind, fetch)
  if self._fetching == hold then self._fetching = false end
  if self._release_requested then -- stop() in this fetch, outside run
    self._release_requested = nil
    self:_lease_release()
  end
  if not ok then err = new_error("InternalError", tostring(res)) end
  if not ok or res == nil then
    self:_fail(err)
    return nil, err, fetch
  end
  return fetch
end

-- What fetch_stream_records and fetch_stream_state return: the records
-- delivered (none kept while run() runs), or nil, err.
local function delivered(fetch, err)
  if not fetch then return nil, err end
  return fetch.records or {}
end

--- DescribeStream (every page); emits 'new shards'.
-- @return true, or nil and an error
function Stream:fetch_stream_shards()
  local fetch, err = self:_fetch("shards")
  if not fetch then return nil, err end
  return true
end

--- Reads every shard until caught up; emits the record events.
-- @return the raw records delivered (a list, maybe empty), or nil and an error
function Stream:fetch_stream_records() return delivered(self:_fetch("records")) end

--- fetch_stream_shards then fetch_stream_records.
-- @return the raw records delivered (a list, maybe empty), or nil and an error
function Stream:fetch_stream_state() return delivered(self:_fetch("state")) end

--- Counters since the stream was made, and how far behind it is (JSON-serialisable;
-- cheap: a copy of counters kept as it goes). Overall: records delivered (every
-- listener returned), failed_attempts (a listener or unmarshall raised), retries
-- (attempts at a record that had failed), failed_over (handed to on_failure),
-- on_failure_errors, skipped (created before a lost LATEST start), gaps,
-- filtered (refused by opts.filter, acknowledged); pages (GetRecords answers), empty_polls (answers without a record: caught up),
-- throttles and errors (failed GetRecords calls); lag (seconds, as Lambda's
-- IteratorAge: how old the newest record read was when its page was read, the
-- largest over the shards; absent before any record), caught_up (every shard
-- tracked answered its last call with no record); shards (shard id -> the same per shard:
-- delivered, filtered, pages, empty_polls, throttles, errors, lag, caught_up,
-- newest_record_at, epoch seconds); with opts.leases, leases (the
-- coordinator's stats: held, renewals, takes, steals, checkpoints, releases,
-- creates, deletes, conflicts, lost, read_units, write_units).
-- @treturn table a copy
function Stream:stats()
  local copy = {}
  for k, v in pairs(self._stats) do copy[k] = v end
  copy.shards, copy.lag, copy.caught_up = self:_shard_stats()
  if self._coordinator then copy.leases = self._coordinator:stats() end
  return copy
end

-- ------------------------------------------------------------------- poll loop

-- The checkpoint option: a file path, or a store with load and save methods.
local function checkpoint_store(store)
  if store == nil then return nil end
  if type(store) == "string" and store ~= "" then return require("dynamodb_stream.checkpoint").file(store) end
  local ok = (type(store) == "table" or type(store) == "userdata")
    and type(store.load) == "function" and type(store.save) == "function"
  if not ok then
    error("run: opts.checkpoint must be a file path or a store with load() and save(state) methods", 3)
  end
  return store
end

--- Polls until stop(): fetches again at once while records flow, backs off when
-- idle or failing. The fetches inside run count the records they deliver but
-- do not keep them, so memory does not grow with the page size. opts:
--   interval (s, > 0, default 0.1): first idle sleep, doubling while idle up to
--   max_interval (s, default 1), so an idle shard costs about one GetRecords a
--   second while a change that follows activity is seen within ~0.1 s
--   describe_interval (s, default 10): DescribeStream at least this often (and
--     at once when a shard ended or vanished)
--   checkpoint: a file path, or a store with load() and save(state); loaded at
--     the start, saved after every fetch (not with opts.leases: the lease
--     table is the checkpoint; then run ends by checkpointing the shards held
--     and releasing their leases)
--   duration (s): stop after this long;  sleep: function(seconds) (default ds.sleep:
--     ngx.sleep inside nginx, else core.sleep)
--   stop_on_signals (plain Lua only): SIGTERM and SIGINT stop run as stop() does
--     (with leases: final checkpoints, then the leases released), at the end of
--     the fetch in progress or at once in an idle pause; the process's own
--     handlers are back when run returns
-- Returns true when stopped (or at the end of duration), or nil, err on a
-- fatal error (errors.class: wrong credentials, no permission, the stream is
-- gone; the checkpoint cannot be read). Errors are emitted as 'error', or with
-- no listener written to stderr (see _report). Bad options raise.
-- @tparam[opt] table opts
-- @return true, or nil and the fatal error
-- @usage stream:run({ checkpoint = "state.json", interval = 0.1 })
function Stream:run(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("run: options table expected", 2) end
  local interval = options.seconds(opts, "interval", 0.1, 0, true, "run: ") -- 0 would poll without a pause
  local max_interval = options.seconds(opts, "max_interval", math.max(1, interval), interval, false, "run: ")
  local describe_interval = options.seconds(opts, "describe_interval", 10, 0, false, "run: ")
  local duration = options.seconds(opts, "duration", nil, 0, false, "run: ")
  local sleep = options.fn(opts, "sleep", runtime.sleep, "run: ")
  local stop_on_signals = opts.stop_on_signals
  if stop_on_signals ~= nil and type(stop_on_signals) ~= "boolean" then
    error("run: stop_on_signals must be a boolean", 2)
  end
  if stop_on_signals and runtime.in_nginx() then
    error("run: stop_on_signals is for plain Lua: inside nginx, nginx owns the signals", 2)
  end
  if opts.checkpoint ~= nil and self._coordinator then
    error("run: opts.checkpoint cannot be used with opts.leases (the lease table is the checkpoint)", 2)
  end
  if self:_fetch_held() or self._running then
    return self:_fail(new_error("FetchInProgress", "run: the stream is already being read"))
  end

  -- a store made here from a path is closed here (its file lock released)
  local own_store = type(opts.checkpoint) == "string"
  local store = checkpoint_store(opts.checkpoint)
  if store ~= nil then
    local saved, err = store:load()
    if err then
      if own_store then store:close() end
      return self:_fail(err)
    end
    if saved then
      local ok, bad = pcall(self.set_shard_state, self, saved)
      if not ok then
        if own_store then store:close() end
        return self:_fail(new_error("BadCheckpoint", tostring(bad)))
      end
    end
  end

  -- For the throttle backoff, time inside run is the stream's clock but never
  -- less than the time run has slept, so that a sleep function that advances
  -- a virtual time (or returns early) lets backed-off shards come back.
  -- duration and describe_interval follow the stream's clock alone.
  local clock = self._clock
  local now = clock
  local start, slept = clock(), 0
  self._clock = function() return math.max(clock(), start + slept) end
  local deadline = duration and now() + duration
  self._running, self._stop_requested = true, false
  self._run_holder, self._run_clock, self._reported = holder(), clock, {}
  local wait, last_describe = interval, nil
  local result, fatal = true, nil
  local shards_changed = false
  if stop_on_signals then
    local watching, werr = core.watch_stop_signals(true)
    if not watching then self:_fail(new_error("SignalError", werr)) end
  end
  local function signalled()
    if stop_on_signals and core.stop_signal() then self._stop_requested = true end
    return self._stop_requested
  end
  while not signalled() do
    -- (with leases, holding no shard is no reason: the shards are there, held by others)
    local describe = last_describe == nil or shards_changed
      or now() - last_describe >= describe_interval or (next(self._shards) == nil and not self._coordinator)
    if describe then last_describe = now() end
    -- New credentials ahead of their expiry, between fetches rather than in one.
    if self.client.refresh_credentials then
      local renewed, cerr = self.client:refresh_credentials()
      if not renewed then self:_fail(cerr) end
    end
    -- the summary of the fetch, also when it failed (partial)
    local ok, err, partial = self:_fetch(describe and "state" or "records")
    local summary = ok or partial or { advanced = 0 }
    shards_changed = summary.shards_changed
    if store then
      local saved, serr = store:save(self:get_shard_state())
      if not saved then self:_fail(serr) end
    end
    if not ok and errors.class(err) == "fatal" then
      result, fatal = nil, err  -- wrong credentials, no permission, the stream is gone
      break
    end
    if signalled() then break end
    local pause
    -- Again at once only after a fetch that moved past records: one that
    -- took nothing (idle, or a shard that never advances) pauses. A fetch
    -- that only failed because some shards back off counts by the records the
    -- other shards took.
    if (ok or err.backoff) and summary.advanced > 0 then
      wait, pause = interval, 0
    else
      pause, wait = wait, math.min(wait * 2, max_interval)
    end
    if self._coordinator then
      -- awake for the coordinator's next renew or scan (late by at most interval)
      pause = math.min(pause, math.max(self._coordinator:next_due() - self._clock(), interval))
    end
    local batch_due = self:_batch_due()
    if batch_due then
      -- awake when a collected batch's window ends (late by at most interval)
      pause = math.min(pause, math.max(batch_due - self._clock(), interval))
    end
    if deadline then
      local left = deadline - now()
      if left <= 0 then break end
      pause = math.min(pause, left)
    end
    if pause > 0 then
      sleep(pause)
      slept = slept + pause
    end
    if deadline and now() >= deadline then break end -- no extra poll at the deadline
  end
  if self._coordinator then self:_lease_release() end
  if stop_on_signals then core.watch_stop_signals(false) end
  self:_report_repeats()
  self._running, self._stop_requested = false, false
  self._clock = clock
  if own_store then store:close() end
  return result, fatal
end

--- Ends run() after the record being delivered (callable from a listener).
-- With opts.leases, outside run, it checkpoints the shards held and releases
-- their leases (at the end of the fetch when called from one).
-- @return true
function Stream:stop()
  if self._running then
    self._stop_requested = true
  elseif self._coordinator then
    if self:_fetch_held() then self._release_requested = true else self:_lease_release() end
  end
  return true
end

Stream.fetchStreamState = Stream.fetch_stream_state
Stream.fetchStreamShards = Stream.fetch_stream_shards
Stream.fetchStreamRecords = Stream.fetch_stream_records
Stream.getShardState = Stream.get_shard_state
Stream.setShardState = Stream.set_shard_state

return Stream
