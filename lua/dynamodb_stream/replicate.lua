--- Copies a table into another and keeps it in sync (`ds.replicate`): a
-- consistent Scan of the source written into the target while the source's
-- stream is followed from before the scan began, then the stream alone.
--
-- Why it converges: the stream is opened (LATEST) before the first page is
-- read, and every step reads the stream, then the next pages (consistent
-- reads), then writes both in one batch. So a scanned copy is read after
-- every change applied so far happened: it is never older than what the
-- target holds, and any change made after it was read is still ahead in the
-- stream, to be applied later, in order. The last write of every key is
-- therefore its newest version. One batch is in flight at a time and holds
-- one request per key (the last of the list: the scanned copy, newer than
-- the changes fetched before it), so writes for a key are never reordered.
-- The checkpoint (stream position and scan position) is saved only after
-- its batch is written; after a crash the stream replays from it, which
-- repeats changes in order and ends on the newest, and the scan goes on with
-- fresh reads.
-- @module dynamodb_stream.replicate
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local runtime = require("dynamodb_stream.runtime")
local retry = require("dynamodb_stream.retry")
local compat = require("dynamodb_stream.compat")
local pages = require("dynamodb_stream.pages")
local batch_write = require("dynamodb_stream.batch_write")
local checkpoint = require("dynamodb_stream.checkpoint")
local table_key = require("dynamodb_stream.table_key")

local M = {}

local VERSION = 1
local MAX_SEGMENTS = 1000000
local DESCRIBE_EVERY = 10   -- seconds between DescribeStream calls (new shards)
local IDLE_MIN, IDLE_MAX = 0.1, 1
local CREATE_WAIT = 300     -- seconds a created target may take to become ACTIVE
local IMAGE_VIEWS = { NEW_IMAGE = true, NEW_AND_OLD_IMAGES = true }

local OPTIONS = {
  source = "string", target = "string", checkpoint = "string", segments = "number",
  transform = "function", create_target = "boolean", dynamodb = "client", streams = "client",
  target_dynamodb = "client", client = "table", progress = "function", until_caught_up = "boolean",
  duration = "number", stop_on_signals = "boolean", on_error = "function",
}

local function fail(code, message)
  return nil, errors.new({ code = code, message = message, retryable = false })
end

local function checked_options(opts)
  if type(opts) ~= "table" then error("replicate: options table expected", 3) end
  for name, value in pairs(opts) do
    local want = OPTIONS[name]
    if not want then error("replicate: unknown option " .. tostring(name), 3) end
    local got = type(value)
    local ok = got == want or (want == "client" and (got == "table" or got == "userdata"))
    if not ok then error("replicate: opts." .. name .. " must be a " .. (want == "client" and "client" or want), 3) end
  end
  for _, name in ipairs({ "source", "target" }) do
    if opts[name] == nil or opts[name] == "" then error("replicate: opts." .. name .. " (a table name) is required", 3) end
  end
  local segments = opts.segments
  if segments ~= nil and (not compat.is_integer(segments) or segments < 1 or segments > MAX_SEGMENTS) then
    error("replicate: opts.segments must be an integer from 1 to " .. MAX_SEGMENTS, 3)
  end
  if opts.duration ~= nil and not (opts.duration > 0 and opts.duration < math.huge) then
    error("replicate: opts.duration must be a number of seconds above 0", 3)
  end
  if opts.stop_on_signals and runtime.in_nginx() then
    error("replicate: stop_on_signals is for plain Lua: inside nginx, nginx owns the signals", 3)
  end
  if opts.source == opts.target and opts.target_dynamodb == nil then
    error("replicate: source and target are the same table", 3)
  end
end

-- ------------------------------------------------------------------ the tables

-- Creates the target with the source's key, on demand, and waits until it is ACTIVE.
local function create_target(client, name, source, key)
  local definitions = {}
  for _, d in ipairs(source.AttributeDefinitions) do
    for _, n in ipairs(key.names) do
      if d.AttributeName == n then definitions[#definitions + 1] = d end
    end
  end
  local _, err = client:call("CreateTable", { TableName = name, KeySchema = source.KeySchema,
    AttributeDefinitions = definitions, BillingMode = "PAY_PER_REQUEST" })
  if err and err.code ~= "ResourceInUseException" then return nil, err end
  local deadline = core.monotime() + CREATE_WAIT
  while true do
    local description, derr = table_key.describe(client, name, "target")
    if description and description.TableStatus == "ACTIVE" then return description end
    if not description and derr.code ~= "ResourceNotFoundException" then return nil, derr end
    if core.monotime() > deadline then
      return fail("TargetNotActive", "target table '" .. name .. "' did not become ACTIVE in " .. CREATE_WAIT .. " s")
    end
    runtime.sleep(0.2)
  end
end

-- The source checked: its description and key, or nil, err.
local function source_table(opts, source_client)
  local key, source = table_key.read(source_client, opts.source, "source")
  if not key then return nil, source end
  local spec = source.StreamSpecification or {}
  local view = spec.StreamViewType
  if spec.StreamEnabled ~= true or type(source.LatestStreamArn) ~= "string" then
    return fail("NoStream", "source table '" .. opts.source .. "' has no stream: enable one with StreamViewType"
      .. " NEW_IMAGE or NEW_AND_OLD_IMAGES")
  end
  if not IMAGE_VIEWS[view] then
    return fail("NoStream", "source table '" .. opts.source .. "' has a " .. tostring(view) .. " stream;"
      .. " replication needs NEW_IMAGE or NEW_AND_OLD_IMAGES")
  end
  return source, key
end

-- The target checked against the source's key (and made when asked): true, or nil, err.
local function target_table(opts, target_client, source, key)
  local target, err = table_key.describe(target_client, opts.target, "target")
  if not target and err.code == "ResourceNotFoundException" and opts.create_target then
    target, err = create_target(target_client, opts.target, source, key)
  end
  if not target then
    if err.code == "ResourceNotFoundException" and not opts.create_target then
      err.message = err.message .. " (create_target, or --create-target, makes it)"
    end
    return nil, err
  end
  local target_key = table_key.of(target)
  if not target_key or target_key.text ~= key.text then
    return fail("KeySchemaMismatch", "target table '" .. opts.target .. "' has the key " .. tostring(target_key
      and target_key.text) .. "; the source's is " .. key.text)
  end
  return true
end

-- ------------------------------------------------------------------ checkpoint

-- The loaded checkpoint checked against this replication: the state, false
-- when there is none, or nil, err. Its stream is checked once the source's is
-- known (arn given).
local function saved_state(saved, opts, arn)
  if saved == nil then return false end
  local what = "checkpoint " .. opts.checkpoint
  if type(saved) ~= "table" or saved.version ~= VERSION or type(saved.scan) ~= "table"
      or type(saved.shards) ~= "table" or (saved.phase ~= "scan" and saved.phase ~= "follow")
      or not (compat.is_integer(saved.scan.segments) and saved.scan.segments >= 1
        and saved.scan.segments <= MAX_SEGMENTS) then
    return fail("BadCheckpoint", what .. " is not a replication checkpoint (of this version)")
  end
  if saved.source ~= opts.source or saved.target ~= opts.target then
    return fail("CheckpointMismatch", what .. " is of the replication of '" .. tostring(saved.source) .. "' into '"
      .. tostring(saved.target) .. "'")
  end
  if arn and saved.stream_arn ~= arn then
    return fail("CheckpointMismatch", what .. " follows the stream " .. tostring(saved.stream_arn)
      .. "; the source's stream is now " .. arn .. " (disabled and enabled again? what changed in between"
      .. " is not in either: delete the checkpoint to copy the table again)")
  end
  if saved.phase == "scan" and opts.segments and opts.segments ~= saved.scan.segments then
    return fail("CheckpointMismatch", what .. " is in the middle of a scan in " .. tostring(saved.scan.segments)
      .. " segments; run with that many, or delete it to start again")
  end
  return saved
end

-- Scan positions: in memory by segment number (0 on), in the file by its text.
local function positions_from(saved)
  local positions = {}
  for s, key in pairs(type(saved) == "table" and saved or {}) do
    local n = tonumber(s)
    if n and (key == false or type(key) == "table") then positions[n] = key end
  end
  return positions
end

local function positions_to(positions)
  local out = {}
  for s, key in pairs(positions) do out[tostring(s)] = key end
  return out
end

-- ------------------------------------------------------------------ the run

local function newest_time(records)
  local newest
  for _, record in ipairs(records) do
    local t = tonumber(tostring((record.dynamodb or {}).ApproximateCreationDateTime))
    if t and (not newest or t > newest) then newest = t end
  end
  return newest
end

--- Copies `opts.source` into `opts.target` and follows the source's stream (see the
-- module's summary and README, "Replication").
-- @tparam table opts `source`, `target` (table names; required), `checkpoint` (file
-- path: saved after every batch written, resumed from), `segments` (parallel scan,
-- default 1), `transform` (function(item) -> item or nil; Lua values; must keep the
-- key), `create_target`, `dynamodb`, `target_dynamodb`, `streams` (clients), `client`
-- (options for the clients made when not given), `progress` (function(p)),
-- `until_caught_up`, `duration` (seconds), `stop_on_signals`, `on_error` (function(err)
-- for errors that are retried; default: one line on stderr per kind)
-- @return true when stopped (signal, duration, caught up), or nil and an error; bad
-- options raise
function M.replicate(opts)
  checked_options(opts)
  local ds = require("dynamodb_stream")
  local source_client = opts.dynamodb or ds.dynamodb(opts.client)
  local target_client = opts.target_dynamodb or source_client
  local streams = opts.streams or ds.client(opts.client)
  local store = opts.checkpoint and checkpoint.file(opts.checkpoint)
  local watching = false

  local reported = {}
  local function report(err)
    if opts.on_error then return opts.on_error(err) end
    local kind = tostring(err.operation) .. "|" .. tostring(err.code)
    if reported[kind] then return end
    reported[kind] = true
    io.stderr:write("dynamodb_stream: replicate: ", tostring(err), " (retrying)\n")
  end

  local function body()
    local loaded
    if store then
      -- the lock first: a second replication on this checkpoint writes nothing
      local lerr
      loaded, lerr = store:load()
      if lerr then return nil, lerr end
    end
    -- every check before the target is touched
    local saved, err = saved_state(loaded, opts)
    if saved == nil then return nil, err end
    local source, key = source_table(opts, source_client)
    if not source then return nil, key end
    local arn = source.LatestStreamArn
    saved, err = saved_state(loaded, opts, arn)
    if saved == nil then return nil, err end
    local Stream = require("dynamodb_stream.stream")
    local stream = Stream.new(streams, arn, { start_at = "LATEST" })
    if saved then
      local ok, bad = pcall(stream.set_shard_state, stream, saved.shards)
      if not ok then return fail("BadCheckpoint", "checkpoint " .. opts.checkpoint .. ": " .. tostring(bad)) end
    end
    local made
    made, err = target_table(opts, target_client, source, key)
    if not made then return nil, err end
    local pending = {}
    stream:on("record", function(record) pending[#pending + 1] = record end)

    local scan = saved and saved.scan or {}
    local segments = scan.segments or opts.segments or 1
    local positions = positions_from(scan.positions)
    local phase = saved and saved.phase or "scan"
    local counts = { scanned = tonumber(scan.scanned) or 0, written = tonumber(scan.written) or 0,
      changes = saved and tonumber(saved.changes) or 0 }
    local estimated = tonumber(source.ItemCount) or 0
    local pages_of, caught_up, lag = nil, false, nil
    local names = key.names

    local function identity(map)
      local id, why = batch_write.identity(map, names)
      if not id then error({ replicate_error = errors.new({ code = "InvalidRecord", retryable = false,
        message = "an item without its key: " .. why }) }) end
      return id
    end

    -- The request that leaves the target with image (a wire item) as transform
    -- makes it; nil when a scanned item is skipped.
    local function put_request(image, from_stream)
      if not opts.transform then return { PutRequest = { Item = image } } end
      local ok, value = pcall(opts.transform, core.unmarshall(image))
      if not ok then
        error({ replicate_error = errors.new({ code = "TransformError", retryable = false,
          message = "transform raised: " .. tostring(value) }) })
      end
      if value == nil then
        if not from_stream then return nil end
        local k = {}
        for _, n in ipairs(names) do k[n] = image[n] end
        return { DeleteRequest = { Key = k } }
      end
      local marshalled, item = pcall(core.marshall, value)
      if not marshalled or type(item) ~= "table" or batch_write.identity(item, names) ~= identity(image) then
        error({ replicate_error = errors.new({ code = "TransformError", retryable = false,
          message = "transform must return a table with the same key attributes (or nil)"
            .. (marshalled and "" or ": " .. tostring(item)) }) })
      end
      return { PutRequest = { Item = item } }
    end

    local function change_request(record)
      local d = type(record.dynamodb) == "table" and record.dynamodb or {}
      if type(d.Keys) ~= "table" then
        error({ replicate_error = errors.new({ code = "InvalidRecord", retryable = false,
          message = "a stream record without Keys: " .. tostring(d.SequenceNumber) }) })
      end
      identity(d.Keys)
      if record.eventName == "REMOVE" then return { DeleteRequest = { Key = d.Keys } } end
      if (record.eventName ~= "INSERT" and record.eventName ~= "MODIFY") or type(d.NewImage) ~= "table" then
        error({ replicate_error = errors.new({ code = "InvalidRecord", retryable = false,
          message = "a stream record that is no INSERT, MODIFY or REMOVE with its image: "
            .. tostring(record.eventName) .. " " .. tostring(d.SequenceNumber) }) })
      end
      return put_request(d.NewImage, true)
    end

    local signalled
    if opts.stop_on_signals then
      local ok, werr = core.watch_stop_signals(true)
      if not ok then return fail("SignalError", tostring(werr)) end
      watching = true
      signalled = core.stop_signal
    end
    local started = core.monotime()
    local deadline = opts.duration and started + opts.duration
    local function stopping()
      return (signalled and signalled() ~= nil) or (deadline and core.monotime() >= deadline)
    end

    -- Writes every request, retrying while the failure is worth it; false
    -- when stopped first (nothing saved: the next run does it again).
    local policy = retry.policy({ sleep = runtime.sleep })
    local function write(requests)
      local attempt = 0
      while #requests > 0 do
        local done, werr = batch_write.all(target_client, opts.target, requests, { key = names })
        if done then return true end
        if not (werr.retryable or errors.retryable(werr)) then return nil, werr end
        report(werr)
        requests, attempt = werr.unprocessed, attempt + 1
        if stopping() then return false end
        runtime.sleep(policy:backoff(math.min(attempt, 10)))
      end
      return true
    end

    local function save()
      if not store then return true end
      return store:save({ version = VERSION, source = opts.source, target = opts.target, stream_arn = arn,
        phase = phase, changes = counts.changes, shards = stream:get_shard_state(),
        scan = { segments = segments, positions = positions_to(positions), scanned = counts.scanned,
          written = counts.written } })
    end

    local function tell(done)
      if not opts.progress then return end
      opts.progress({ phase = phase, scanned = counts.scanned, estimated = estimated, written = counts.written,
        changes = counts.changes, lag = lag, caught_up = caught_up, elapsed = core.monotime() - started,
        done = done or false })
    end

    -- One step: the stream, then the next pages, then one batch of both.
    -- -> true, "stopped" (a stop while writing, or caught up when asked), or nil, err.
    local last_describe, idle = nil, IDLE_MIN
    local function step()
      pending = {}
      local following = phase == "follow" -- caught up counts only in a step wholly after the scan
      local now = core.monotime()
      local fetch = stream.fetch_stream_records
      if not last_describe or now - last_describe >= DESCRIBE_EVERY then
        fetch, last_describe = stream.fetch_stream_state, now
      end
      local fetched, ferr = fetch(stream)
      local fatal = nil
      if not fetched then
        if errors.class(ferr) == "fatal" then fatal = ferr else report(ferr) end
      end

      local items, reached, scan_failed = {}, {}, nil
      -- no page is read before the stream was opened (and is read) in this step
      if phase == "scan" and fetched then
        pages_of = pages_of or pages.scan(source_client, { TableName = opts.source, ConsistentRead = true,
          segments = segments }, "replicate", positions)
        -- one whole round of calls, sent after the fetch: no page read before it
        -- may wait in the iterator for a later step (it would be older than
        -- that step's changes, and written after them)
        repeat
          local page, segment, round_done = pages_of()
          if page == nil then break end
          if page == false then
            scan_failed, pages_of = segment, nil -- (segment is the error) resumed from positions
            break
          end
          for _, item in ipairs(page.Items or {}) do items[#items + 1] = item end
          reached[segment] = page.LastEvaluatedKey or false
        until round_done
      end

      local requests = {}
      for _, record in ipairs(pending) do requests[#requests + 1] = change_request(record) end
      local scan_requests = 0
      for _, item in ipairs(items) do
        local request = put_request(item, false)
        if request then requests[#requests + 1], scan_requests = request, scan_requests + 1 end
      end
      local written, werr = write(requests)
      if written == false then return "stopped" end
      if not written then return nil, werr end

      counts.scanned, counts.written = counts.scanned + #items, counts.written + scan_requests
      counts.changes = counts.changes + #pending
      for segment, at in pairs(reached) do positions[segment] = at end
      if phase == "scan" and not scan_failed then
        local left = false
        for s = 0, segments - 1 do left = left or positions[s] ~= false end
        if not left then phase, pages_of = "follow", nil end
      end
      caught_up = following and fetched ~= nil and #pending == 0
      local newest = newest_time(pending)
      if caught_up then lag = lag and 0 elseif newest then lag = math.max(0, os.time() - newest) end
      local saved_ok, serr = save()
      if not saved_ok then return nil, serr end
      tell(false)
      if fatal then return nil, fatal end
      if opts.until_caught_up and caught_up then return "stopped" end
      if scan_failed then
        if not errors.retryable(scan_failed) then return nil, scan_failed end
        report(scan_failed)
      end
      if #items == 0 and #pending == 0 then
        runtime.sleep(idle)
        idle = math.min(idle * 2, IDLE_MAX)
      else
        idle = IDLE_MIN
      end
      return true
    end

    tell(false)
    while not stopping() do
      local ok, serr = step()
      if ok == nil then return nil, serr end
      if ok == "stopped" then break end
    end
    tell(true)
    return true
  end

  local ok, result, err = pcall(body)
  if watching then core.watch_stop_signals(false) end
  if store then store:close() end
  if not ok then
    if type(result) == "table" and result.replicate_error then return nil, result.replicate_error end
    error(result, 0)
  end
  return result, err
end

return M
