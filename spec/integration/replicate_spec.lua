-- ds.replicate and `dynamodb-stream replicate` against DynamoDB Local: they
-- converge while spec/support/replicate_writer.lua keeps changing the source
-- (SIGKILLed twice, in the scan and in the follow phase), a scan that outlives
-- many iterator lifetimes loses nothing, SIGTERM saves the checkpoint, and bad
-- input is refused with a clear message and nothing written to the target.
-- Tables are compared item by item with a comparison of this file's own (sets
-- unordered, numbers by value), and with ds.verify.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local helper = require("helper")

local NAMESPACE = "replspec"
local q = helper.shell_quote

-- Values in wire form (AttributeValues, as DynamoDB answers) ---------------

-- A DynamoDB number in one canonical text: sign, significant digits without
-- leading or trailing zeros, and the exponent of the first digit
-- ("1E+3", "1000" and "1.000e3" -> "+1e3"; every zero -> "0").
local function canonical_number(text)
  local sign, int, frac, exp = text:match("^([+-]?)(%d*)%.?(%d*)[eE]?([+-]?%d*)$")
  assert(sign and (int ~= "" or frac ~= ""), "not a number: " .. text)
  local digits = int .. frac
  local point = #int + (tonumber(exp) or 0) -- the decimal point after this many digits
  local lead = digits:match("^0*")
  digits, point = digits:sub(#lead + 1), point - #lead
  digits = digits:gsub("0+$", "")
  if digits == "" then return "0" end
  return (sign == "-" and "-" or "+") .. digits .. "e" .. point
end

local function sorted(list, canon)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = canon and canon(v) or v end
  table.sort(copy)
  return copy
end

local function type_of(av)
  local kind = next(av)
  return kind
end

-- Nil when wire AttributeValues a and b hold the same value, else where and
-- how they differ.
local function difference(a, b, path)
  local ta, tb = type_of(a), type_of(b)
  if ta ~= tb then return path .. ": " .. tostring(ta) .. " against " .. tostring(tb) end
  local va, vb = a[ta], b[tb]
  local same
  if ta == "N" then
    same = canonical_number(va) == canonical_number(vb)
  elseif ta == "S" or ta == "B" or ta == "BOOL" or ta == "NULL" then
    same = va == vb
  elseif ta == "SS" or ta == "BS" or ta == "NS" then
    local ca, cb = sorted(va, ta == "NS" and canonical_number), sorted(vb, ta == "NS" and canonical_number)
    same = #ca == #cb
    for i = 1, #ca do same = same and ca[i] == cb[i] end
  elseif ta == "L" then
    if #va ~= #vb then return path .. ": a list of " .. #va .. " against " .. #vb end
    for i = 1, #va do
      local d = difference(va[i], vb[i], path .. "[" .. i .. "]")
      if d then return d end
    end
    same = true
  elseif ta == "M" then
    for k, v in pairs(va) do
      if vb[k] == nil then return path .. "." .. k .. ": missing in the second" end
      local d = difference(v, vb[k], path .. "." .. k)
      if d then return d end
    end
    for k in pairs(vb) do
      if va[k] == nil then return path .. "." .. k .. ": missing in the first" end
    end
    same = true
  else
    error("unknown AttributeValue type " .. tostring(ta) .. " at " .. path)
  end
  if same then return nil end
  local function show(v) return #ds.json_encode(v) > 80 and ds.json_encode(v):sub(1, 80) .. "..." or ds.json_encode(v) end
  return path .. ": " .. show(a) .. " against " .. show(b)
end

describe("the value comparison of this spec", function()
  it("sees numbers by value, sets unordered, maps without order, and every real difference", function()
    for _, pair in ipairs({ { "1E+3", "1000" }, { "1000", "1.000e3" }, { "2.50", "2.5" }, { "0", "-0.0" },
      { "00017", "17" }, { "-1E-130", "-0.1e-129" }, { "12345678901234567890123456789012345678", "1.2345678901234567890123456789012345678E37" } }) do
      assert.is_nil(difference({ N = pair[1] }, { N = pair[2] }, "n"), pair[1] .. " " .. pair[2])
    end
    for _, pair in ipairs({ { "1", "-1" }, { "1", "10" }, { "0.1", "1" }, { "12345678901234567890123456789012345678",
      "12345678901234567890123456789012345679" } }) do
      assert.truthy(difference({ N = pair[1] }, { N = pair[2] }, "n"), pair[1] .. " " .. pair[2])
    end
    assert.is_nil(difference({ NS = { "1", "2e1" } }, { NS = { "20", "1.0" } }, "s"))
    assert.is_nil(difference({ SS = { "a", "b" } }, { SS = { "b", "a" } }, "s"))
    assert.is_nil(difference({ M = { x = { S = "1" }, y = { BOOL = true } } }, { M = { y = { BOOL = true }, x = { S = "1" } } }, "m"))
    assert.truthy(difference({ SS = { "a", "b" } }, { SS = { "a" } }, "s"))
    assert.truthy(difference({ L = { { S = "a" }, { S = "b" } } }, { L = { { S = "b" }, { S = "a" } } }, "l"))
    assert.truthy(difference({ M = { x = { S = "1" } } }, { M = { x = { S = "1" }, y = { NULL = true } } }, "m"))
    assert.truthy(difference({ S = "1" }, { N = "1" }, "t"))
    assert.truthy(difference({ B = "AAE=" }, { B = "AAI=" }, "b"))
    assert.truthy(difference({ BOOL = true }, { BOOL = false }, "b"))
  end)
end)

describe("replicate against DynamoDB Local", function()
  local opts, ddb, dir

  setup(function()
    opts = helper.local_opts(NAMESPACE)
    ddb = ds.dynamodb(opts)
    dir = helper.tmpdir()
  end)
  teardown(function() helper.rmdir(dir) end)

  local function now() return core.monotime() end

  local function wait_for(pred, seconds)
    local deadline = now() + seconds
    while true do
      local v = pred()
      if v then return v end
      if now() > deadline then return nil end
      ds.sleep(0.05)
    end
  end

  local unique = 0
  local function name(prefix)
    unique = unique + 1
    return ("%s_%d_%d"):format(prefix, os.time() % 100000, unique)
  end

  local KEY_PK = { { AttributeName = "pk", KeyType = "HASH" } }
  local DEF_PK = { { AttributeName = "pk", AttributeType = "S" } }
  local KEY_PK_SK = { { AttributeName = "pk", KeyType = "HASH" }, { AttributeName = "sk", KeyType = "RANGE" } }
  local DEF_PK_SK = { { AttributeName = "pk", AttributeType = "S" }, { AttributeName = "sk", AttributeType = "N" } }

  -- Creates a table; view is a stream view type, or nil for no stream.
  local function create(table_name, view, key_schema, definitions)
    assert(ddb:create_table({
      TableName = table_name, KeySchema = key_schema or KEY_PK, AttributeDefinitions = definitions or DEF_PK,
      BillingMode = "PAY_PER_REQUEST",
      StreamSpecification = view and { StreamEnabled = true, StreamViewType = view } or nil,
    }))
    return table_name
  end

  -- Every item of a table, in wire form, by key text.
  local function items_of(table_name)
    local by_key = {}
    for page, err in ddb:scan_pages({ TableName = table_name, segments = 2 }) do
      assert(page, tostring(err))
      for _, item in ipairs(page.Items) do
        by_key[item.pk.S .. (item.sk and "|" .. canonical_number(item.sk.N) or "")] = item
      end
    end
    return by_key
  end

  local function count(table_name)
    local n = 0
    for page, err in ddb:scan_pages({ TableName = table_name, Select = "COUNT" }) do
      assert(page, tostring(err))
      n = n + page.Count
    end
    return n
  end

  local function exists(table_name)
    local res, err = ddb:describe_table({ TableName = table_name })
    if res then return true end
    assert(err.code == "ResourceNotFoundException", tostring(err))
    return false
  end

  local function ver_of(item)
    return item and item.ver and item.ver.N or "-"
  end

  -- Compares two tables item by item; fails with the first differences
  -- (missing, extra, different: with each side's `ver`, the writer's counter).
  local function assert_same_tables(source, target)
    local a, b = items_of(source), items_of(target)
    local problems, n = {}, 0
    for key, item in pairs(a) do
      n = n + 1
      local other = b[key]
      if not other then
        problems[#problems + 1] = "missing " .. key .. " (ver " .. ver_of(item) .. ")"
      else
        local d = difference({ M = item }, { M = other }, key)
        if d then problems[#problems + 1] = "different " .. d .. " (ver " .. ver_of(item) .. " in the source, "
          .. ver_of(other) .. " in the target)" end
      end
    end
    for key, item in pairs(b) do
      if not a[key] then problems[#problems + 1] = "extra " .. key .. " (ver " .. ver_of(item) .. ")" end
    end
    table.sort(problems)
    local kinds = {}
    for _, problem in ipairs(problems) do
      local kind = problem:match("^%a+")
      kinds[kind] = (kinds[kind] or 0) + 1
    end
    -- ds.verify must see the same
    local verified, verr = ds.verify({ source = source, target = target, dynamodb = ddb, segments = 2 })
    assert(verified, tostring(verr))
    local same_view = verified.missing == (kinds.missing or 0) and verified.extra == (kinds.extra or 0)
      and verified.different == (kinds.different or 0) and verified.source_items == n
    assert(#problems == 0, #problems .. " differences between " .. source .. " and " .. target .. " ("
      .. (kinds.missing or 0) .. " missing, " .. (kinds.extra or 0) .. " extra, " .. (kinds.different or 0)
      .. " different; ds.verify: " .. verified.missing .. ", " .. verified.extra .. ", " .. verified.different
      .. "):\n  " .. table.concat(problems, "\n  ", 1, math.min(#problems, 15)))
    assert(same_view, ("ds.verify disagrees: %d source items, %d missing, %d extra, %d different; this spec: %d"
      .. " items, equal"):format(verified.source_items, verified.missing, verified.extra, verified.different, n))
    return n
  end

  -- Writes n items of about size bytes (keys fill00001...), and the writer's
  -- keys (k001... and, with sort keys, each sk) so that its updates and
  -- deletes meet existing items during the scan.
  local function prefill(table_name, n, size, writer_keys, sort_keys)
    local requests = {}
    local pad = ("p"):rep(size)
    local function add(item) requests[#requests + 1] = { PutRequest = { Item = item } } end
    for i = 1, n do
      local item = { pk = { S = ("fill%05d"):format(i) }, ver = { N = "0" }, pad = { S = pad } }
      if sort_keys then item.sk = { N = "0" } end
      add(item)
    end
    for i = 1, writer_keys or 0 do
      for j = 1, sort_keys or 1 do
        local item = { pk = { S = ("k%03d"):format(i) }, ver = { N = "0" }, n = { N = "-0.5" }, l = { L = { { NULL = true } } } }
        if sort_keys then item.sk = { N = tostring(j) } end
        add(item)
      end
    end
    assert(ddb:batch_write_all(table_name, requests))
  end

  -- Processes ------------------------------------------------------------

  local function base_env()
    return {
      LUA_PATH = package.path, LUA_CPATH = package.cpath, PATH = os.getenv("PATH"), HOME = dir,
      AWS_ACCESS_KEY_ID = opts.credentials.access_key_id,
      AWS_SECRET_ACCESS_KEY = opts.credentials.secret_access_key,
    }
  end

  -- The command run against DynamoDB Local (helper.cli_command), and to its end.
  local function command_line(args) return helper.cli_command(opts, dir, args) end
  local function run(args) return helper.run_cli(opts, dir, args) end

  -- Starts a shell command in the background: { pid, out, err, status } (the
  -- files of its output and, once it ended, its exit status).
  local started = 0
  local function spawn(command)
    started = started + 1
    local p = { out = dir .. "/p" .. started .. ".out", err = dir .. "/p" .. started .. ".err",
      status = dir .. "/p" .. started .. ".status" }
    local pidfile = dir .. "/p" .. started .. ".pid"
    assert(helper.execute("(sh -c " .. q("echo $$ >" .. q(pidfile) .. "; exec " .. command) .. " >" .. q(p.out)
      .. " 2>" .. q(p.err) .. "; echo $? >" .. q(p.status) .. ") &"))
    p.pid = wait_for(function() return (helper.read_file(pidfile) or ""):match("%d+") end, 5)
    assert(p.pid, "no pid from " .. command)
    return p
  end

  -- The exit status of p once it ended (128 + n after signal n), or nil.
  local function exit_status(p)
    local text = helper.read_file(p.status)
    return text and tonumber(text:match("%d+"))
  end

  -- Waits for p's end (at most seconds); its exit status, or nil when it still runs.
  local function wait_exit(p, seconds)
    return wait_for(function() return exit_status(p) end, seconds)
  end

  local function signal(p, sig)
    assert(helper.execute("kill -" .. sig .. " " .. p.pid .. " 2>/dev/null"), "no process " .. p.pid)
  end

  -- Kills p if it still runs (cleanup after a failed assertion).
  local function reap(p)
    if p and not exit_status(p) then helper.execute("kill -KILL " .. p.pid .. " 2>/dev/null") wait_exit(p, 5) end
  end

  local function describe_process(p)
    return "stdout: " .. (helper.read_file(p.out) or ""):sub(-1500) .. "\nstderr: " .. (helper.read_file(p.err) or "")
  end

  local function replicate(args) return spawn(command_line(args)) end

  -- Starts replicate_writer.lua on table_name; stop it with stop_writer.
  local function start_writer(table_name, env)
    local e = base_env()
    e.DDB_LOCAL_ENDPOINT, e.WRITER_NAMESPACE, e.WRITER_TABLE = opts.endpoint, opts.credentials.access_key_id, table_name
    e.WRITER_STOP = dir .. "/writer" .. started .. ".stop" -- one per writer
    for k, v in pairs(env or {}) do e[k] = v end
    local w = spawn(helper.env_command(e, helper.lua .. " spec/support/replicate_writer.lua"))
    w.stop_file = e.WRITER_STOP
    return w
  end

  -- Stops the writer and returns how many changes it made.
  local function stop_writer(w)
    helper.write_file(w.stop_file, "")
    local code = wait_exit(w, 20)
    assert.equals(0, code, "the writer failed: " .. describe_process(w))
    local n = (helper.read_file(w.out) or ""):match("CHANGES (%d+)")
    return assert(tonumber(n), "the writer said nothing: " .. describe_process(w))
  end

  local function read_checkpoint(path)
    local text = helper.read_file(path)
    if not text or text == "" then return nil end
    return assert(ds.json_decode(text))
  end

  -- The checkpoint when pred(checkpoint) holds, waiting at most seconds.
  local function checkpoint_when(path, seconds, pred)
    return wait_for(function()
      local ok, cp = pcall(read_checkpoint, path) -- it may be caught while renamed into place
      return ok and cp and pred(cp) and cp
    end, seconds)
  end

  local function strip_escapes_check(p)
    local out = helper.read_file(p.out) or ""
    assert.is_nil(out:find("\27", 1, true), "an escape code in replicate's piped output: " .. out:sub(1, 300))
  end

  -- The SIGKILL run ------------------------------------------------------

  -- The two long runs (a writer, kills, a slowed scan: about 25 s) run in the main
  -- phases only (helper.main_phase); the other phases run the rest of this file and
  -- replicate_race_spec, over the same code.
  local long_it = helper.phase_it(it, pending, "main")

  long_it("converges while a writer changes the source, SIGKILLed once in the scan and once in the follow phase",
    function()
    local src, dst = create(name("kill_src"), "NEW_AND_OLD_IMAGES"), create(name("kill_dst"))
    -- enough that the scan takes a couple of seconds with three segments
    local t0 = now()
    prefill(src, 6000, 5000, 300)
    local filled = now() - t0
    local checkpoint = dir .. "/kill.json"
    -- one writer (keys k001-k150) during the scan, another (k151-k300) from
    -- the follow phase on: a copy the scan leaves stale is not mended later
    local scan_writer = start_writer(src, { WRITER_SEED = "7", WRITER_PAUSE = "0.002" })
    local args = { "replicate", src, dst, "--checkpoint", checkpoint, "--segments", "3" }
    local procs = { scan_writer }
    finally(function() for _, p in ipairs(procs) do reap(p) end end)

    -- 1: killed in the scan
    local scan_start = now()
    local first = replicate(args)
    procs[#procs + 1] = first
    local seen = checkpoint_when(checkpoint, 20, function(cp) return cp.phase ~= "scan" or (cp.scan.scanned or 0) >= 300 end)
    assert(seen, "no checkpoint with 300 items scanned after 20 s: " .. describe_process(first))
    signal(first, "KILL")
    assert.equals(137, wait_exit(first, 5))
    local cp = read_checkpoint(checkpoint)
    assert(cp == nil or cp.phase == "scan", "the scan had ended before the kill: fill the source more")
    local scanned_at_kill, misshapen = 0, nil
    if cp then
      assert.equals(src, cp.source)
      assert.equals(dst, cp.target)
      assert.equals(3, cp.scan.segments)
      -- positions["<segment>"] = LastEvaluatedKey | false (segments from 0)
      -- (checked at the end, after the convergence that matters more)
      local positions = cp.scan.positions
      for s = 0, 2 do
        local at = positions[tostring(s)]
        if not (at == false or (type(at) == "table" and type((at.pk or {}).S) == "string")) then
          misshapen = "checkpoint scan.positions[" .. s .. "] is " .. tostring(at) .. ": " .. helper.read_file(checkpoint)
        end
      end
      scanned_at_kill = cp.scan.scanned
      -- a scan in 3 segments cannot go on in 2: refused, nothing written
      local saved, copied = helper.read_file(checkpoint), count(dst)
      local code, _, err = run({ "replicate", src, dst, "--checkpoint", checkpoint, "--segments", "2", "--until-caught-up" })
      assert.equals(1, code, err)
      assert.matches("^dynamodb%-stream: replicate: .*segments", err)
      assert.equals(saved, helper.read_file(checkpoint))
      assert.equals(copied, count(dst))
    end

    -- 2: resumed, killed in the follow phase once it applied changes
    local second = replicate(args)
    procs[#procs + 1] = second
    local follow = checkpoint_when(checkpoint, 30, function(c) return c.phase == "follow" end)
    assert(follow, "no follow phase after 30 s: " .. describe_process(second))
    local scan_time = now() - scan_start
    local scan_changes = stop_writer(scan_writer)
    local follow_writer = start_writer(src, { WRITER_SEED = "8", WRITER_FIRST_KEY = "151", WRITER_PAUSE = "0.002" })
    procs[#procs + 1] = follow_writer
    assert(follow.scan.scanned >= scanned_at_kill, "the scan count went back")
    local scanned_positions = follow.scan.positions
    cp = checkpoint_when(checkpoint, 20, function(c) return c.phase == "follow" and c.changes >= follow.changes + 300 end)
    assert(cp, "no 300 changes applied in the follow phase in 20 s: " .. describe_process(second)
      .. "\nwriter: " .. describe_process(follow_writer) .. "\ncheckpoint: " .. helper.read_file(checkpoint))
    signal(second, "KILL")
    assert.equals(137, wait_exit(second, 5))
    assert.equals("follow", read_checkpoint(checkpoint).phase)

    -- 3: resumed while the writer goes on; then the writer stops, SIGTERM
    -- ends it (exit 0), and --until-caught-up finishes the copy
    local third = replicate(args)
    procs[#procs + 1] = third
    local changes_before = read_checkpoint(checkpoint).changes
    assert(checkpoint_when(checkpoint, 20, function(c) return c.changes >= changes_before + 300 end),
      "the third run applied no 300 changes in 20 s: " .. describe_process(third))
    local follow_changes = stop_writer(follow_writer)
    signal(third, "TERM")
    assert.equals(0, wait_exit(third, 10), describe_process(third))
    strip_escapes_check(third)
    local code, out, err = run({ "replicate", src, dst, "--checkpoint", checkpoint, "--segments", "3",
      "--until-caught-up" })
    assert.equals(0, code, err)
    assert.is_nil(out:find("\27", 1, true))

    print(("# replicate: 6000 items of 5 KB (filled in %.1f s), %d changes during the scan, %d after, scan+kill+resume"
      .. " %.1f s, %d changes applied"):format(filled, scan_changes, follow_changes, scan_time,
      read_checkpoint(checkpoint).changes))
    assert_same_tables(src, dst)
    assert(not misshapen, misshapen)
    assert.same({ ["0"] = false, ["1"] = false, ["2"] = false }, scanned_positions)
  end)

  -- The long scan ------------------------------------------------------

  -- A DynamoDB client with only call and call_many (as the contract allows),
  -- delegating to real, whose Scans are slow and hostile: each call (or
  -- round of parallel calls) waits delay seconds first; segment 0 gets pages
  -- of 60 items and the others pages of 15 (so that segments end far apart);
  -- and right after a page is read, each of its items is changed in the
  -- source (once per key: SET touched, or every fourth one deleted), so every
  -- scanned copy is already stale when it arrives, and only the stream has
  -- the newest version.
  local function hostile_scans(real, table_name, delay)
    local w = { pages = 0, touched = 0 }
    local seen = {}
    local function slowed(params)
      local p = {}
      for k, v in pairs(params) do p[k] = v end
      p.Limit = (p.Segment or 0) == 0 and 60 or 15
      return p
    end
    local function touch(page)
      if type(page) ~= "table" then return end
      w.pages = w.pages + 1
      for _, item in ipairs(page.Items or {}) do
        local key = { pk = item.pk, sk = item.sk }
        local id = item.pk.S .. "|" .. (item.sk and item.sk.N or "")
        if not seen[id] then
          seen[id], w.touched = true, w.touched + 1
          if w.touched % 4 == 0 then
            assert(real:delete_item({ TableName = table_name, Key = key }))
          else
            assert(real:update_item({ TableName = table_name, Key = key, UpdateExpression = "SET touched = :t",
              ExpressionAttributeValues = { [":t"] = { N = tostring(w.touched) } } }))
          end
        end
      end
    end
    function w.call(_, operation, params, ...)
      if operation ~= "Scan" then return real:call(operation, params, ...) end
      ds.sleep(delay)
      local page, err = real:call(operation, slowed(params), ...)
      touch(page)
      return page, err
    end
    function w.call_many(_, operation, list, ...)
      if operation ~= "Scan" then return real:call_many(operation, list, ...) end
      ds.sleep(delay)
      local copy = {}
      for i, params in ipairs(list) do copy[i] = slowed(params) end
      local answers, errs = real:call_many(operation, copy, ...)
      for i = 1, #copy do touch(answers[i]) end
      return answers, errs
    end
    return w
  end

  -- A streams client delegating to real whose shard iterators expire lifetime
  -- seconds after they were handed out: GetRecords then answers as the
  -- service does (ExpiredIteratorException, HTTP 400).
  local function expiring_iterators(real, lifetime)
    local w = { expired = 0 }
    local handed_out = {}
    local function expired(params)
      local at = handed_out[params.ShardIterator]
      if at and now() - at > lifetime then
        w.expired = w.expired + 1
        return errors.new({ code = "ExpiredIteratorException", status = 400, operation = "get_records",
          message = "Iterator expired. The iterator was created at time X while right now it's Y which is further"
            .. " in the future than the tolerated delay of 900000 milliseconds." })
      end
    end
    local function note(res)
      if type(res) == "table" and res.NextShardIterator then handed_out[res.NextShardIterator] = now() end
    end
    function w.describe_stream(_, params) return real:describe_stream(params) end
    function w.get_shard_iterator(_, params)
      local res, err = real:get_shard_iterator(params)
      if res and res.ShardIterator then handed_out[res.ShardIterator] = now() end
      return res, err
    end
    function w.get_records(_, params)
      local err = expired(params)
      if err then return nil, err end
      local res, e = real:get_records(params)
      note(res)
      return res, e
    end
    function w.get_records_unmarshalled(_, params)
      local err = expired(params)
      if err then return nil, err end
      local res, e = real:get_records_unmarshalled(params)
      note(res)
      return res, e
    end
    function w.get_records_many(_, list, unmarshalled, max_in_flight)
      local answers, errs, live, where = {}, {}, {}, {}
      for i, params in ipairs(list) do
        errs[i] = expired(params)
        if not errs[i] then live[#live + 1], where[#live + 1] = params, i end
      end
      if #live > 0 then
        local a, e = real:get_records_many(live, unmarshalled, max_in_flight)
        for k, i in ipairs(where) do
          answers[i], errs[i] = a[k], e[k]
          note(a[k])
        end
      end
      return answers, errs
    end
    return w
  end

  long_it("the long scan: slowed far beyond the iterator lifetime, every item changed as it is scanned, a writer"
    .. " running: nothing is lost (pk+sk, 3 segments)", function()
    local src = create(name("long_src"), "NEW_AND_OLD_IMAGES", KEY_PK_SK, DEF_PK_SK)
    local dst = create(name("long_dst"), nil, KEY_PK_SK, DEF_PK_SK)
    prefill(src, 300, 200, 40, 4) -- 300 + 160 items
    local writer = start_writer(src, { WRITER_SEED = "11", WRITER_KEYS = "40", WRITER_SORT_KEYS = "4",
      WRITER_PAUSE = "0.01" })
    finally(function() reap(writer) end)
    local LIFETIME = 0.5
    local source = hostile_scans(ddb, src, LIFETIME + 0.1)
    local streams = expiring_iterators(ds.client(opts), LIFETIME)
    local calls, scan_ended, written = {}, nil, nil
    local started_at = now()
    local ok, err = ds.replicate({
      source = src, target = dst, checkpoint = dir .. "/long.json", segments = 3, dynamodb = source,
      streams = streams, target_dynamodb = ddb, until_caught_up = true,
      progress = function(p)
        calls[#calls + 1] = p
        if p.phase == "follow" and not written then
          -- the scan is over: stop the writer, so that catching up means the end
          -- (and a copy left stale by the scan is not mended by a later change)
          scan_ended = now() - started_at
          written = stop_writer(writer)
        end
      end,
    })
    assert(ok, tostring(err))
    assert(written, "the scan never ended (no progress in phase follow)")
    print(("# long scan: %.1f s of scan, %d pages, %d iterators expired, %d items touched, %d changes written"
      ):format(scan_ended, source.pages, streams.expired, source.touched, written))
    -- the scan outlived many iterator lifetimes, and expired iterators were met
    assert(scan_ended > 8 * LIFETIME, ("the scan took only %.1f s"):format(scan_ended))
    assert(streams.expired > 0, "no iterator expired")
    assert(source.touched >= 300, "only " .. source.touched .. " items touched") -- the writer deletes some
    assert_same_tables(src, dst)

    -- progress: phases in order, counts that never go back, done at the end
    local last = calls[#calls]
    assert.is_true(last.done)
    assert.equals("follow", last.phase)
    assert.is_true(last.caught_up)
    local phase_rank, prev = { scan = 1, follow = 2 }, calls[1]
    for i, p in ipairs(calls) do
      assert(phase_rank[p.phase], "progress " .. i .. ": phase " .. tostring(p.phase))
      assert(phase_rank[p.phase] >= phase_rank[prev.phase], "progress " .. i .. ": the phase went back")
      for _, field in ipairs({ "scanned", "written", "changes" }) do
        assert(type(p[field]) == "number" and p[field] >= prev[field],
          "progress " .. i .. ": " .. field .. " " .. tostring(p[field]) .. " after " .. tostring(prev[field]))
      end
      assert(type(p.elapsed) == "number" and type(p.estimated) == "number", "progress " .. i)
      assert(p.done == true or i < #calls, "progress " .. i .. ": done before the end")
      assert(ds.json_encode(p))
      prev = p
    end
    assert(last.scanned >= 300, "scanned " .. last.scanned) -- 460 less what the writer deleted first
    assert(last.changes >= source.touched, "changes " .. last.changes .. " < " .. source.touched .. " touched")
    assert.is_number(last.lag)
  end)

  -- SIGTERM in the follow phase -----------------------------------------

  it("SIGTERM in the follow phase: exit 0, the checkpoint saved; the restart applies nothing again and converges",
    function()
    local src, dst = create(name("term_src"), "NEW_AND_OLD_IMAGES"), create(name("term_dst"))
    prefill(src, 20, 100, 10)
    local checkpoint = dir .. "/term.json"
    local p = replicate({ "replicate", src, dst, "--checkpoint", checkpoint })
    finally(function() reap(p) end)
    local base = checkpoint_when(checkpoint, 20, function(c) return c.phase == "follow" end)
    assert(base, describe_process(p))
    base = base.changes
    for i = 1, 10 do
      assert(ddb:put_item({ TableName = src, Item = { pk = { S = ("k%03d"):format(i) }, ver = { N = "1" } } }))
    end
    assert(ddb:delete_item({ TableName = src, Key = { pk = { S = "fill00001" } } }))
    assert(ddb:update_item({ TableName = src, Key = { pk = { S = "fill00002" } }, UpdateExpression = "SET ver = :v",
      ExpressionAttributeValues = { [":v"] = { N = "2" } } }))
    local cp = checkpoint_when(checkpoint, 20, function(c) return c.changes >= base + 12 end)
    assert(cp, "the 12 changes were not applied in 20 s: " .. describe_process(p))
    signal(p, "TERM")
    assert.equals(0, wait_exit(p, 10), describe_process(p))
    strip_escapes_check(p)
    cp = read_checkpoint(checkpoint)
    assert.equals("follow", cp.phase)
    assert.equals(base + 12, cp.changes)
    assert_same_tables(src, dst)

    -- Mark an item in the target whose change was applied before the SIGTERM:
    -- if the restart applied that change again, the mark would be gone.
    assert(ddb:update_item({ TableName = dst, Key = { pk = { S = "k001" } }, UpdateExpression = "SET marked = :t",
      ExpressionAttributeValues = { [":t"] = { BOOL = true } } }))
    assert(ddb:put_item({ TableName = src, Item = { pk = { S = "after" }, ver = { N = "3" } } }))
    assert(ddb:delete_item({ TableName = src, Key = { pk = { S = "k002" } } }))
    local code, _, err = run({ "replicate", src, dst, "--checkpoint", checkpoint, "--until-caught-up" })
    assert.equals(0, code, err)
    assert.equals(base + 14, read_checkpoint(checkpoint).changes)
    local target = items_of(dst)
    assert(target.k001.marked, "the restart applied k001's change again (it was applied before the SIGTERM)")
    assert(ddb:update_item({ TableName = dst, Key = { pk = { S = "k001" } }, UpdateExpression = "REMOVE marked" }))
    assert_same_tables(src, dst)
  end)

  it("SIGTERM in the scan: exit 0, the checkpoint saved in the scan; the restart finishes the copy", function()
    local src, dst = create(name("termscan_src"), "NEW_AND_OLD_IMAGES"), create(name("termscan_dst"))
    prefill(src, 2000, 5000, 50)
    local checkpoint = dir .. "/termscan.json"
    local p = replicate({ "replicate", src, dst, "--checkpoint", checkpoint, "--segments", "2" })
    finally(function() reap(p) end)
    assert(checkpoint_when(checkpoint, 20, function(c) return c.scan.scanned > 0 end), describe_process(p))
    signal(p, "TERM")
    assert.equals(0, wait_exit(p, 10), describe_process(p))
    local cp = read_checkpoint(checkpoint)
    assert.equals("scan", cp.phase, "the scan had ended before the SIGTERM: fill the source more")
    assert.equals(cp.scan.written, count(dst)) -- what the checkpoint counts is there, no more
    assert(ddb:put_item({ TableName = src, Item = { pk = { S = "k001" }, ver = { N = "9" } } }))
    local code, _, err = run({ "replicate", src, dst, "--checkpoint", checkpoint, "--until-caught-up" })
    assert.equals(0, code, err)
    assert_same_tables(src, dst)
  end)

  -- Bad input -----------------------------------------------------------

  local USAGE = "^dynamodb%-stream: .+ %(see dynamodb%-stream replicate %-%-help%)\n$"
  local FAILED = "^dynamodb%-stream: replicate: "

  -- A source with a few items and a stream (shared by the bad-input cases).
  local good_src
  local function source()
    if not good_src then
      good_src = create(name("bad_src"), "NEW_AND_OLD_IMAGES")
      prefill(good_src, 5, 10)
    end
    return good_src
  end

  it("bad usage: exit 2, the reason on stderr, nothing written", function()
    local src, dst = source(), create(name("usage_dst"))
    local cases = {
      { { "replicate", src, dst, "--bogus" }, "unknown option '%-%-bogus'" },
      { { "replicate", src, dst, "--segments", "0" }, "%-%-segments '0'" },
      { { "replicate", src, dst, "--segments", "abc" }, "%-%-segments 'abc'" },
      { { "replicate", src, dst, "--segments", "1.5" }, "%-%-segments '1%.5'" },
      { { "replicate", src, dst, "--segments", "-3" }, "%-%-segments" },
      { { "replicate", src, dst, "--segments", "1000001" }, "%-%-segments '1000001'" },
      { { "replicate", src, dst, "--segments" }, "%-%-segments needs a value" },
      { { "replicate", src, dst, "--checkpoint" }, "%-%-checkpoint needs a value" },
      { { "replicate", src, dst, "--checkpoint", "" }, "%-%-checkpoint" },
      { { "replicate", src, dst, "--duration", "-1" }, "%-%-duration" },
      { { "replicate", src, dst, "--duration", "soon" }, "%-%-duration" },
      { { "replicate", src, dst, "--create-target", "yes" }, "unexpected argument 'yes'" },
      { { "replicate", src }, "DST is missing" },
      { { "replicate" }, "SRC is missing" },
      { { "replicate", src, dst, "extra" }, "unexpected argument 'extra'" },
      { { "replicate", src, src }, "same table" },
    }
    for _, case in ipairs(cases) do
      local code, out, err = run(case[1])
      local what = table.concat(case[1], " ", 2)
      assert.equals(2, code, what .. ": " .. err)
      assert.equals("", out, what)
      assert.matches(USAGE, err, nil, what)
      assert.matches(case[2], err, nil, what)
    end
    assert.equals(0, count(dst))
    local code, out = run({ "replicate", "--help" })
    assert.equals(0, code)
    assert.matches("^Usage: dynamodb%-stream replicate SRC DST", out)
    for _, flag in ipairs({ "--checkpoint", "--segments", "--create-target", "--until-caught-up", "--duration" }) do
      assert.truthy(out:find(flag, 1, true), flag .. " is not in replicate --help")
    end
  end)

  -- A Lua pattern matching text exactly.
  local function literal(text) return (text:gsub("%p", "%%%0")) end

  -- Runs replicate expecting a failure whose message matches each pattern;
  -- returns stderr.
  local function refused(args, ...)
    local code, out, err = run(args)
    local what = table.concat(args, " ", 2)
    assert.equals(1, code, what .. ": " .. tostring(err))
    assert.matches(FAILED, err, nil, what)
    assert.equals(1, select(2, err:gsub("\n", "")), what .. ": not one line: " .. err)
    for _, pattern in ipairs({ ... }) do assert.matches(pattern, err, nil, what) end
    assert.is_nil(out:find("\27", 1, true))
    return err
  end

  it("missing tables: exit 1 naming the table; --create-target creates the target and fills it", function()
    local src = source()
    local dst = create(name("miss_dst"))
    refused({ "replicate", "no_such_source", dst }, "no_such_source")
    assert.equals(0, count(dst))
    local never = name("never_dst")
    refused({ "replicate", "no_such_source", never, "--create-target" }, "no_such_source")
    assert.is_false(exists(never), "a target created for a missing source")
    refused({ "replicate", src, "no_such_target", "--until-caught-up" }, "no_such_target")
    assert.is_false(exists("no_such_target"))

    -- --create-target, on a NEW_IMAGE stream: the same key schema, filled
    local src2 = create(name("newimg_src"), "NEW_IMAGE", KEY_PK_SK, DEF_PK_SK)
    prefill(src2, 30, 50, 3, 2)
    local created = name("created_dst")
    local code, _, err = run({ "replicate", src2, created, "--create-target", "--until-caught-up", "--segments", "2" })
    assert.equals(0, code, err)
    local t = assert(ddb:describe_table({ TableName = created })).Table
    assert.same(KEY_PK_SK, t.KeySchema)
    assert.equals(36, assert_same_tables(src2, created))
    -- and it is an ordinary target afterwards (no second create)
    code, _, err = run({ "replicate", src2, created, "--create-target", "--until-caught-up" })
    assert.equals(0, code, err)
  end)

  it("a target with another key schema, a source without a suitable stream: exit 1, nothing written", function()
    local src = source()
    local other_name = create(name("other_key"), nil, { { AttributeName = "id", KeyType = "HASH" } },
      { { AttributeName = "id", AttributeType = "S" } })
    local other_type = create(name("other_type"), nil, KEY_PK, { { AttributeName = "pk", AttributeType = "N" } })
    local extra_sort = create(name("extra_sort"), nil, KEY_PK_SK, DEF_PK_SK)
    for _, dst in ipairs({ other_name, other_type, extra_sort }) do
      -- the message names the target and the source's key
      refused({ "replicate", src, dst, "--until-caught-up" }, literal(dst), "key", "pk %(S%)")
      assert.equals(0, count(dst), dst)
    end
    local dst = create(name("nostream_dst"))
    for _, view in ipairs({ false, "KEYS_ONLY", "OLD_IMAGE" }) do
      local s = create(name("nostream_src"), view or nil)
      prefill(s, 3, 10)
      refused({ "replicate", s, dst, "--until-caught-up" }, "[Ss]tream")
      local never = name("never_dst")
      refused({ "replicate", s, never, "--until-caught-up", "--create-target" }, "[Ss]tream")
      assert.is_false(exists(never), "a target created for a source without a suitable stream")
      assert.equals(0, count(dst), tostring(view))
    end
  end)

  it("a checkpoint of another table, of a stream since re-enabled, or garbage: exit 1, nothing written", function()
    local src = source()
    local dst_a = create(name("cp_dst_a"))
    local checkpoint = dir .. "/other.json"
    local code, _, err = run({ "replicate", src, dst_a, "--checkpoint", checkpoint, "--until-caught-up" })
    assert.equals(0, code, err)
    local saved = helper.read_file(checkpoint)

    -- another source, another target
    local src_b = create(name("cp_src_b"), "NEW_AND_OLD_IMAGES")
    prefill(src_b, 4, 10)
    local dst_b = create(name("cp_dst_b"))
    refused({ "replicate", src_b, dst_b, "--checkpoint", checkpoint, "--until-caught-up" }, "[Cc]heckpoint")
    refused({ "replicate", src, dst_b, "--checkpoint", checkpoint, "--until-caught-up" }, "[Cc]heckpoint")
    assert.equals(0, count(dst_b))
    assert.equals(saved, helper.read_file(checkpoint), "a refused run changed the checkpoint")

    -- garbage, and JSON of another shape
    local arn = assert(ddb:describe_table({ TableName = src })).Table.LatestStreamArn
    local shaped = '{"version":1,"source":"' .. src .. '","target":"' .. dst_b .. '","phase":"scan","stream_arn":'
      .. ds.json_encode(arn) .. ','
    for _, text in ipairs({ "not json{", "", "[]", '{"version":99}', '{"version":1,"source":"' .. src .. '"}',
        shaped .. '"scan":{"segments":0},"shards":{}}', shaped .. '"scan":{"segments":"x"},"shards":{}}',
        shaped .. '"scan":{"segments":2,"positions":{"0":7}},"shards":{"s":5}}',
        shaped .. '"scan":{"segments":1},"shards":{"s":{"sequenceNumber":"12x"}}}' }) do
      local path = dir .. "/garbage.json"
      helper.write_file(path, text)
      refused({ "replicate", src, dst_b, "--checkpoint", path, "--until-caught-up" }, literal(path))
      assert.equals(0, count(dst_b), text)
      assert.equals(text, helper.read_file(path), "a refused run overwrote the checkpoint " .. text)
    end
    -- a bad checkpoint is refused before --create-target makes anything
    local never = "never" .. dst_b
    helper.write_file(dir .. "/garbage.json", '{"version":1,"source":"' .. src .. '","target":"' .. never
      .. '","phase":"scan","stream_arn":' .. ds.json_encode(arn) .. ',"scan":{"segments":1},"shards":{"s":5}}')
    refused({ "replicate", src, never, "--checkpoint", dir .. "/garbage.json", "--create-target" }, "shard state")
    local _, absent = ddb:describe_table({ TableName = never })
    assert.equals("ResourceNotFoundException", absent and absent.code)

    -- the source's stream disabled and enabled again: a new stream
    local old_arn = assert(ddb:describe_table({ TableName = src })).Table.LatestStreamArn
    assert(ddb:call("UpdateTable", { TableName = src, StreamSpecification = { StreamEnabled = false } }))
    local res, uerr = ddb:call("UpdateTable", { TableName = src,
      StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" } })
    assert(res, tostring(uerr))
    assert.are_not.equal(old_arn, assert(ddb:describe_table({ TableName = src })).Table.LatestStreamArn)
    assert(ddb:put_item({ TableName = src, Item = { pk = { S = "after_reenable" } } }))
    refused({ "replicate", src, dst_a, "--checkpoint", checkpoint, "--until-caught-up" }, "[Cc]heckpoint")
    assert.is_nil(items_of(dst_a).after_reenable, "written to the target with a checkpoint of an old stream")
    good_src = nil -- its stream changed: later cases get a fresh source
  end)

  it("--duration S: stops after about S seconds, exit 0", function()
    local src, dst = source(), create(name("duration_dst"))
    local t = now()
    local code, out, err = run({ "replicate", src, dst, "--duration", "1" })
    assert.equals(0, code, err)
    assert(now() - t < 8, ("--duration 1 took %.1f s"):format(now() - t))
    assert.is_nil(out:find("\27", 1, true))
    assert_same_tables(src, dst)
  end)

  it("a second replicate on a checkpoint in use: exit 1 (CheckpointLocked), the first goes on", function()
    local src, dst = source(), create(name("lock_dst"))
    local checkpoint = dir .. "/lock.json"
    local first = replicate({ "replicate", src, dst, "--checkpoint", checkpoint })
    finally(function() reap(first) end)
    assert(checkpoint_when(checkpoint, 20, function(c) return c.phase == "follow" end), describe_process(first))
    refused({ "replicate", src, dst, "--checkpoint", checkpoint, "--until-caught-up" }, "[Ll]ock")
    assert.is_nil(exit_status(first), "the first run ended: " .. describe_process(first))
    assert(ddb:put_item({ TableName = src, Item = { pk = { S = "while_locked" } } }))
    assert(wait_for(function() return items_of(dst).while_locked end, 10), "the first run stopped replicating")
    signal(first, "TERM")
    assert.equals(0, wait_exit(first, 10), describe_process(first))
  end)
end)
