--- The dynamodb-stream command (bin/dynamodb-stream): list, describe, tail,
-- replicate and verify, from a shell, with the AWS CLI's conventions (--region,
-- --profile, --endpoint-url, the AWS_* environment variables; exit 0 on
-- success, 1 on failure, 2 on bad usage).
--
--   os.exit(require("dynamodb_stream.cli").main(arg, { stdout = io.stdout, stderr = io.stderr }))
-- @module dynamodb_stream.cli
local ds = require("dynamodb_stream")
local config = require("dynamodb_stream.config")

local M = {}

local NAME = "dynamodb-stream"
local NULL = ds.null

local MAIN_HELP = [[
Usage: dynamodb-stream [--region R] [--profile P] [--endpoint-url URL] COMMAND [ARGS]

Look at DynamoDB streams from a shell.

Commands:
  list [--table T]          the streams (table, stream label, ARN), one a line
  describe TABLE|ARN        status, view type and the shards as a lineage tree
  tail TABLE|ARN            the changes as they come, one a line (JSON or pretty)
  replicate SRC DST         copy table SRC into DST, then keep it in sync from SRC's stream
  verify SRC DST            compares two tables by value: the keys that differ, one a line
  help [COMMAND]            this text, or a command's

Options of every command:
  --region R                AWS region (else AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config)
  --profile P               profile of ~/.aws/config and ~/.aws/credentials (else AWS_PROFILE)
  --endpoint-url URL        endpoint of both DynamoDB and DynamoDB Streams (DynamoDB Local:
                            http://localhost:8000)
  -h, --help                help;  --version  the version

Credentials come from the usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles,
SSO, credential_process, container and instance roles).
Exit status: 0 success, 1 failure, 2 bad usage.
]]

local HELP = {
  list = [[
Usage: dynamodb-stream list [--table T]

The streams of the account and region (ListStreams, every page), one a line:
table name, stream label and stream ARN, separated by tabs.

  --table T                 only the streams of table T
]],
  describe = [[
Usage: dynamodb-stream describe TABLE|ARN

A stream (a table name stands for its latest stream: DescribeTable's
LatestStreamArn): its status and view type, then its shards as a lineage
tree (children indented under their parent; a shard whose parent is not
listed any more is a root), each with its sequence number range and whether
it is open (still written to).
]],
  tail = [[
Usage: dynamodb-stream tail TABLE|ARN [--from latest|trim-horizon] [--checkpoint FILE]
                           [--format jsonl|pretty] [--duration S] [--max-records N]

Prints the changes of a stream (a table name stands for its latest stream) as
they come, until SIGINT or SIGTERM (the checkpoint is saved, exit 0).

  --from latest|trim-horizon  where to start without a checkpoint (default latest:
                            only changes from now on; trim-horizon: the last 24 hours too)
  --checkpoint FILE         the position is saved there after each fetch, and the
                            next run resumes after the last change printed
  --format jsonl|pretty     jsonl: one JSON object a line, for jq: eventName, keys,
                            new, old (null when absent), sequenceNumber, shardId,
                            approximateCreationDateTime (ISO 8601, UTC); numbers are
                            exact (38 digits stay 38 digits), binary values are base64
                            strings, sets are arrays. pretty: one readable line per
                            change, coloured on a terminal. Default: pretty when
                            stdout is a terminal, else jsonl.
  --duration S              stop after S seconds
  --max-records N           stop after N changes
]],
  replicate = [[
Usage: dynamodb-stream replicate SRC DST [--checkpoint FILE] [--segments N] [--create-target]
                                 [--until-caught-up] [--duration S]

Copies table SRC into table DST (a Scan, while SRC's stream is followed from
before it began), then keeps DST in sync from the stream, until SIGINT or
SIGTERM (the batch in flight is written and the checkpoint saved, exit 0; a
second signal ends it at once). SRC needs a stream with view type NEW_IMAGE or
NEW_AND_OLD_IMAGES; DST needs the same key schema. Progress goes to stdout: a
line redrawn in place on a terminal, else a log line at each phase change and
every 10 s.

  --checkpoint FILE         where the copy stands, saved after every batch written;
                            a later run resumes from it (without it, every run
                            copies the whole table again)
  --segments N              scan in N parallel segments (default 1)
  --create-target           create DST (SRC's key schema, on-demand billing) if missing
  --until-caught-up         exit 0 once the copy is done and the stream has no new change
  --duration S              stop after S seconds
]],
  verify = [[
Usage: dynamodb-stream verify SRC DST [--segments N]

Compares table SRC with table DST by value (map keys in any order, sets in any
order, 1 and 1.0 one number; a type change is a difference), with consistent
reads, one page at a time. Prints each key that differs on stdout, one a line:

  missing<TAB>KEY           in SRC, not in DST
  extra<TAB>KEY             in DST, not in SRC
  different<TAB>KEY         in both, with other values

KEY is the item's key as a JSON object (attributes in name order, numbers exact,
binary as base64). Then a summary on stderr. Exit status: 0 when the tables are
equal, 1 when a difference is found or on failure, 2 on bad usage. The tables
must have the same key (names and types). Items written while it runs may show
as differences.

  --segments N              scan each table in N parallel segments (1 to 1000000,
                            default 1)
]],
}

-- ---------------------------------------------------------------- arguments

-- A word of the command line in a message: quoted, control bytes escaped
-- (the message stays one line).
local function quoted(word)
  return "'" .. word:gsub("%c", function(c) return ("\\%03d"):format(c:byte()) end) .. "'"
end

-- A bad usage: main writes it on one line with "see --help", exit 2.
local function usage_error(command, message)
  error({ usage = message, command = command }, 0)
end

local function nonempty(value)
  if value == "" then return nil, "must not be empty" end
  return value
end

local function choice(...)
  local allowed = { ... }
  return function(value)
    for _, a in ipairs(allowed) do
      if value == a then return value end
    end
    return nil, "must be " .. table.concat(allowed, " or ")
  end
end

local function positive_number(value)
  local n = tonumber(value)
  if not n or n ~= n or n <= 0 or n == math.huge or not value:match("^[%d.eE+-]+$") then
    return nil, "must be a number of seconds above 0"
  end
  return n
end

local function positive_integer(value)
  local n = value:match("^%d+$") and #value <= 15 and tonumber(value)
  if not n or n < 1 then return nil, "must be a whole number above 0" end
  return n
end

local MAX_SEGMENTS = 1000000 -- DynamoDB's limit on TotalSegments

local function segment_count(value)
  local n, why = positive_integer(value)
  if n and n > MAX_SEGMENTS then return nil, "must be at most " .. MAX_SEGMENTS end
  return n, why
end

local function endpoint_url(value)
  local parts, why = config.parse_endpoint(value)
  if not parts then return nil, why end
  return value
end

local GLOBAL_OPTIONS = {
  ["--region"] = { key = "region", check = nonempty },
  ["--profile"] = { key = "profile", check = nonempty },
  ["--endpoint-url"] = { key = "endpoint", check = endpoint_url },
}

local COMMANDS -- below the commands

-- argv -> command name, positional arguments, options; or a help or version
-- request. Raises a usage_error.
local function parse(argv)
  local command, args, opts, seen = nil, {}, {}, {}
  local i, only_args = 1, false
  while argv[i] ~= nil do
    local word = argv[i]
    if type(word) ~= "string" then usage_error(command, "argument " .. i .. " is not a string") end
    if only_args or word == "-" or word:sub(1, 1) ~= "-" then
      if command == nil then
        command = word
        if not COMMANDS[word] and word ~= "help" then usage_error(nil, "unknown command " .. quoted(word)) end
      else
        args[#args + 1] = word
      end
    elseif word == "--" then
      only_args = true
    elseif word == "-h" or word == "--help" then
      return { help = true, command = command }
    elseif word == "--version" then
      return { version = true }
    else
      local name, value = word:match("^(%-%-[^=]+)=(.*)$")
      name = name or word
      local spec = GLOBAL_OPTIONS[name] or (COMMANDS[command] and COMMANDS[command].options[name])
      if not spec then
        usage_error(command, "unknown option " .. quoted(name) .. (command and " for " .. command or ""))
      end
      if spec.flag then
        if value ~= nil then usage_error(command, name .. " takes no value") end
        value = ""
      elseif value == nil then
        value = argv[i + 1]
        if value == nil or (type(value) == "string" and value:sub(1, 2) == "--") then
          usage_error(command, name .. " needs a value")
        end
        i = i + 1
      end
      if seen[name] then usage_error(command, name .. " given twice") end
      seen[name] = true
      local checked, why = spec.check(value)
      if checked == nil then usage_error(command, name .. " " .. quoted(value) .. ": " .. why) end
      opts[spec.key] = checked
    end
    i = i + 1
  end
  if command == "help" then
    local topic = args[1]
    if topic ~= nil and not COMMANDS[topic] then usage_error(nil, "no help on " .. quoted(topic)) end
    if args[2] ~= nil then usage_error(nil, "unexpected argument " .. quoted(args[2])) end
    return { help = true, command = topic }
  end
  if command == nil then usage_error(nil, "a command is missing") end
  local wanted = COMMANDS[command].args
  if #args < #wanted then usage_error(command, command .. ": " .. wanted[#args + 1] .. " is missing") end
  if #args > #wanted then usage_error(command, command .. ": unexpected argument " .. quoted(args[#wanted + 1])) end
  return { command = command, args = args, opts = opts }
end

-- ---------------------------------------------------------------- the commands

-- Failures at run time: main writes "dynamodb-stream: <command>: <message>", exit 1.
local function failure(message)
  error({ failure = message }, 0)
end

local function client_options(opts)
  return { region = opts.region, profile = opts.profile, endpoint = opts.endpoint }
end

-- A client, or a failure (no region, no credentials...).
local function make_client(maker, opts)
  local ok, client = pcall(maker, client_options(opts))
  if not ok then failure(tostring(client):gsub("^[^:]*:%d+: ", "")) end
  return client
end

-- A table name or a stream ARN (table names cannot hold ':') -> the stream ARN.
local function stream_arn(target, opts)
  if target:find("^arn:") then return target end
  local ddb = make_client(ds.dynamodb, opts)
  local answer, err = ddb:describe_table({ TableName = target })
  if not answer then
    if type(err) == "table" and err.code == "ResourceNotFoundException" then
      failure("table " .. quoted(target) .. " not found")
    end
    failure("table " .. quoted(target) .. ": " .. tostring(err))
  end
  local arn = answer.Table and answer.Table.LatestStreamArn
  if type(arn) ~= "string" then
    failure("table " .. quoted(target) .. " has no stream (enable one: StreamSpecification)")
  end
  return arn
end

-- Calls operation page after page: params[start] = the answer's last key (found by
-- last_of(answer)) until there is none; each answer goes to on_page. A page that names
-- the key it started from would loop: a failure. what names the call in messages.
local function each_page(client, operation, what, params, start, last_of, on_page)
  local name = what:match("^%S+")
  repeat
    local answer, err = client[operation](client, params)
    if not answer then failure(what .. ": " .. tostring(err)) end
    on_page(answer)
    local last = last_of(answer)
    if last == NULL or last == "" then last = nil end
    if last ~= nil and last == params[start] then
      failure(name .. " returned the same page again (" .. start:gsub("^ExclusiveStart", "LastEvaluated")
        .. " " .. tostring(last) .. ")")
    end
    params[start] = last
  until last == nil
end

local function list(io, _, opts)
  local client = make_client(ds.client, opts)
  each_page(client, "list_streams", "ListStreams", { TableName = opts.table }, "ExclusiveStartStreamArn",
    function(answer) return answer.LastEvaluatedStreamArn end,
    function(answer)
      for _, s in ipairs(answer.Streams or {}) do
        io.write_line(table.concat({ tostring(s.TableName), tostring(s.StreamLabel), tostring(s.StreamArn) }, "\t"))
      end
    end)
  return 0
end

-- Every DescribeStream page -> the description, its Shards those of every page.
local function describe_stream(client, arn)
  local shards, description = {}, nil
  each_page(client, "describe_stream", "DescribeStream " .. arn, { StreamArn = arn }, "ExclusiveStartShardId",
    function(answer) return (answer.StreamDescription or {}).LastEvaluatedShardId end,
    function(answer)
      description = answer.StreamDescription or {}
      for _, shard in ipairs(description.Shards or {}) do shards[#shards + 1] = shard end
    end)
  description.Shards = shards
  return description
end

local function shard_line(shard, depth)
  local range = shard.SequenceNumberRange or {}
  local ending = range.EndingSequenceNumber
  local from = tostring(range.StartingSequenceNumber or "?")
  return ("%s%s  %s  %s"):format(("  "):rep(depth), tostring(shard.ShardId), ending == nil and "open  " or "closed",
    ending == nil and from .. " .." or from .. " .. " .. tostring(ending))
end

local function describe(io, args, opts)
  local arn = stream_arn(args[1], opts)
  local d = describe_stream(make_client(ds.client, opts), arn)
  local open, by_id, children = 0, {}, {}
  for _, shard in ipairs(d.Shards) do
    by_id[shard.ShardId] = shard
    if not (shard.SequenceNumberRange or {}).EndingSequenceNumber then open = open + 1 end
  end
  for _, shard in ipairs(d.Shards) do
    local parent = shard.ParentShardId
    if parent ~= nil and by_id[parent] and parent ~= shard.ShardId then
      children[parent] = children[parent] or {}
      table.insert(children[parent], shard)
    end
  end
  io.write_line("Stream  " .. tostring(d.StreamArn or arn))
  io.write_line("Table   " .. tostring(d.TableName))
  io.write_line("Status  " .. tostring(d.StreamStatus))
  io.write_line("View    " .. tostring(d.StreamViewType))
  io.write_line(("Shards  %d (%d open)"):format(#d.Shards, open))
  local printed = {}
  local function tree(shard, depth)
    if printed[shard] then return end -- a cycle of parents (a broken answer) prints each shard once
    printed[shard] = true
    io.write_line(shard_line(shard, depth + 1))
    for _, child in ipairs(children[shard.ShardId] or {}) do tree(child, depth + 1) end
  end
  for _, shard in ipairs(d.Shards) do
    if shard.ParentShardId == nil or not by_id[shard.ParentShardId] then tree(shard, 0) end
  end
  for _, shard in ipairs(d.Shards) do tree(shard, 0) end -- parents in a cycle: not reached from a root
  return 0
end

-- Epoch seconds (a number, or a decimal box) -> ISO 8601 UTC.
local function iso8601(t)
  t = tonumber(tostring(t))
  if not t then return NULL end
  local whole = math.floor(t)
  local text = os.date("!%Y-%m-%dT%H:%M:%S", whole)
  local ms = math.floor((t - whole) * 1000 + 0.5)
  if ms > 0 and ms < 1000 then text = text .. (".%03d"):format(ms) end
  return text .. "Z"
end

--- One change as tail's jsonl prints it (a table for ds.json_encode).
-- @tparam table record a record delivered by a stream made with ds.unmarshall
-- @tparam string shard_id its shard
-- @treturn table eventName, keys, new, old (ds.null when absent), sequenceNumber,
-- shardId, approximateCreationDateTime (ISO 8601 UTC)
function M.change(record, shard_id)
  local d = type(record.dynamodb) == "table" and record.dynamodb or {}
  return {
    eventName = record.eventName or NULL,
    keys = d.Keys or NULL,
    new = d.NewImage or NULL,
    old = d.OldImage or NULL,
    sequenceNumber = d.SequenceNumber or NULL,
    shardId = shard_id,
    approximateCreationDateTime = d.ApproximateCreationDateTime and iso8601(d.ApproximateCreationDateTime) or NULL,
  }
end

local COLOURS = { INSERT = "32", MODIFY = "33", REMOVE = "31" }

-- One readable line: time, event, keys, then the new image (or the old one
-- for a REMOVE); ANSI colours when colour is true.
local function pretty_line(change, colour)
  local function paint(code, text)
    return colour and ("\27[" .. code .. "m" .. text .. "\27[0m") or text
  end
  local event = tostring(change.eventName)
  local parts = {
    paint("2", change.approximateCreationDateTime ~= NULL and change.approximateCreationDateTime or "-"),
    paint(COLOURS[event] or "35", ("%-6s"):format(event)),
    paint("1", change.keys ~= NULL and ds.json_encode(change.keys) or "-"),
  }
  if change.new ~= NULL then parts[#parts + 1] = ds.json_encode(change.new) end
  if change.old ~= NULL then parts[#parts + 1] = paint("2", "was " .. ds.json_encode(change.old)) end
  return table.concat(parts, "  ")
end

local function tail(io, args, opts)
  local arn = stream_arn(args[1], opts)
  local client = make_client(ds.client, opts)
  local terminal = io.is_terminal()
  local format = opts.format or (terminal and "pretty" or "jsonl")
  local stream = ds.new(client, arn, {
    unmarshall = ds.unmarshall,
    start_at = opts.from == "trim-horizon" and "TRIM_HORIZON" or "LATEST",
  })
  local printed, write_failed = 0, nil
  stream:on("record", function(record, shard_id)
    local change = M.change(record, shard_id)
    local line = format == "jsonl" and ds.json_encode(change) or pretty_line(change, terminal)
    local ok, err = io.write_line(line)
    if not ok then
      -- not delivered: the checkpoint stays before it
      write_failed = err
      stream:stop()
      error("cannot write to stdout: " .. tostring(err), 0)
    end
    printed = printed + 1
    if opts.max_records and printed >= opts.max_records then stream:stop() end
  end)
  -- Errors on stderr, each kind (operation, code, shard) once: run retries
  -- the passing ones, and ends on a fatal one.
  local reported = {}
  stream:on("error", function(e)
    local kind = type(e) == "table" and (tostring(e.operation) .. "|" .. tostring(e.code) .. "|" .. tostring(e.shard_id))
      or tostring(e)
    if reported[kind] or (write_failed and e.code == "ListenerError") then return end
    reported[kind], reported[e] = true, true
    io.write_error("tail: " .. tostring(e))
  end)
  local ok, err = stream:run({ checkpoint = opts.checkpoint, duration = opts.duration, stop_on_signals = true })
  if write_failed then failure("cannot write to stdout: " .. tostring(write_failed)) end
  if not ok then
    if reported[err] then return 1 end
    failure(tostring(err))
  end
  return 0
end

-- What a failure says: a service error with its operation and code, one of
-- ours by its message alone.
local function message_of(err)
  if type(err) == "table" and err.operation == nil and err.message then return tostring(err.message) end
  return tostring(err)
end

local function replicate(io, args, opts)
  local display = require("dynamodb_stream.cli_progress").new({ write = io.write_text, terminal = io.is_terminal() })
  local reported = {}
  local ok, err = ds.replicate({
    source = args[1], target = args[2], checkpoint = opts.checkpoint, segments = opts.segments,
    create_target = opts.create_target, until_caught_up = opts.until_caught_up, duration = opts.duration,
    stop_on_signals = true,
    dynamodb = make_client(ds.dynamodb, opts), streams = make_client(ds.client, opts),
    progress = function(p)
      if p.done then display:finish(p) else display:update(p) end
    end,
    -- errors that are retried: each kind once, on a line of its own
    on_error = function(e)
      local kind = tostring(e.operation) .. "|" .. tostring(e.code)
      if reported[kind] then return end
      reported[kind] = true
      display:interrupt()
      io.write_error("replicate: " .. tostring(e) .. " (retrying)")
    end,
  })
  if not ok then
    display:interrupt()
    failure(message_of(err))
  end
  return 0
end

local function flag() return true end

-- A key as one JSON object with its attributes in name order (the order of a
-- table's fields may change from run to run): numbers exact, binary as base64.
local function key_json(key)
  local wire, names, parts = ds.marshall(key), {}, {}
  for name in pairs(wire) do names[#names + 1] = name end
  table.sort(names)
  for i, name in ipairs(names) do
    parts[i] = ds.json_encode(name) .. ":" .. ds.json_encode(wire[name].B or key[name])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function verify(io, args, opts)
  local source, target = args[1], args[2]
  local summary, err = ds.verify({
    source = source, target = target, segments = opts.segments,
    dynamodb = make_client(ds.dynamodb, opts),
    on_difference = function(kind, key)
      local ok, why = io.write_line(kind .. "\t" .. key_json(key))
      if not ok then failure("cannot write to stdout: " .. tostring(why)) end
    end,
  })
  if not summary then
    local code = type(err) == "table" and err.code
    local own = code == "ResourceNotFoundException" or code == "KeySchemaMismatch"
    failure(own and err.message or tostring(err))
  end
  io.write_error(("verify: %d items in %s, %d in %s: %d missing, %d extra, %d different"):format(
    summary.source_items, source, summary.target_items, target, summary.missing, summary.extra, summary.different))
  return summary.missing + summary.extra + summary.different == 0 and 0 or 1
end

COMMANDS = {
  replicate = { args = { "SRC", "DST" }, run = replicate, options = {
    ["--checkpoint"] = { key = "checkpoint", check = nonempty },
    ["--segments"] = { key = "segments", check = segment_count },
    ["--create-target"] = { key = "create_target", flag = true, check = flag },
    ["--until-caught-up"] = { key = "until_caught_up", flag = true, check = flag },
    ["--duration"] = { key = "duration", check = positive_number },
  } },
  list = { args = {}, run = list, options = {
    ["--table"] = { key = "table", check = nonempty },
  } },
  describe = { args = { "TABLE|ARN" }, run = describe, options = {} },
  tail = { args = { "TABLE|ARN" }, run = tail, options = {
    ["--from"] = { key = "from", check = choice("latest", "trim-horizon") },
    ["--checkpoint"] = { key = "checkpoint", check = nonempty },
    ["--format"] = { key = "format", check = choice("jsonl", "pretty") },
    ["--duration"] = { key = "duration", check = positive_number },
    ["--max-records"] = { key = "max_records", check = positive_integer },
  } },
  verify = { args = { "SRC", "DST" }, run = verify, options = {
    ["--segments"] = { key = "segments", check = segment_count },
  } },
}

-- Whether the process's stdout is a terminal (test -t 1 sees the same fd 1).
local function stdout_is_terminal()
  local status = os.execute("test -t 1")
  return status == true or status == 0
end

--- Runs the command.
-- @tparam table argv the arguments (as the global `arg`: argv[1] is the first)
-- @tparam[opt] table sys `stdout`, `stderr` (files, or anything with write and
-- flush), `is_terminal` (function: whether stdout is a terminal; default asks
-- `test -t 1`)
-- @treturn integer the exit status: 0 success, 1 failure, 2 bad usage
function M.main(argv, sys)
  sys = sys or {}
  local stdout, stderr = sys.stdout or io.stdout, sys.stderr or io.stderr
  local out = {
    is_terminal = sys.is_terminal or stdout_is_terminal,
    write_error = function(line) stderr:write(NAME, ": ", line, "\n") end,
    -- text as it is, flushed (the progress display)
    write_text = function(text)
      stdout:write(text)
      stdout:flush()
    end,
    -- one line, flushed at once (a pipe into jq sees each line as it comes)
    write_line = function(line)
      local ok, err = stdout:write(line, "\n")
      if ok then ok, err = stdout:flush() end
      return ok, err
    end,
  }
  local parsed
  local ok, err = pcall(function() parsed = parse(argv or {}) end)
  if not ok then
    if type(err) ~= "table" or not err.usage then error(err, 0) end
    local see = err.command and COMMANDS[err.command] and (NAME .. " " .. err.command .. " --help") or (NAME .. " --help")
    stderr:write(NAME, ": ", err.usage, " (see ", see, ")\n")
    return 2
  end
  if parsed.version then
    stdout:write(NAME, " ", tostring(ds._VERSION), "\n")
    return 0
  end
  if parsed.help then
    stdout:write(HELP[parsed.command] or MAIN_HELP)
    return 0
  end
  local status
  ok, err = pcall(function() status = COMMANDS[parsed.command].run(out, parsed.args, parsed.opts) end)
  if not ok then
    local message = type(err) == "table" and err.failure or ("internal error: " .. tostring(err))
    stderr:write(NAME, ": ", parsed.command, ": ", message, "\n")
    return 1
  end
  return status
end

return M
