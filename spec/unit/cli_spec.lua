-- The dynamodb-stream command in process: cli.main with captured output,
-- its usage errors, its help, and list/describe/tail over fake clients.
local ds = require("dynamodb_stream")
local cli = require("dynamodb_stream.cli")
local Fake = require("fake_streams")

-- A file-like sink: write and flush, its text in .text.
local function sink()
  local s = { text = "" }
  function s.write(self, ...)
    for _, piece in ipairs({ ... }) do self.text = self.text .. piece end
    return self
  end
  function s.flush(self) return self end
  return s
end

local function run(argv, is_terminal)
  local out, err = sink(), sink()
  local status = cli.main(argv, { stdout = out, stderr = err, is_terminal = function() return is_terminal or false end })
  return status, out.text, err.text
end

-- ds.client / ds.dynamodb replaced for one test (cli looks them up at each call).
local saved
local function fake_clients(streams, dynamodb)
  saved = saved or { client = ds.client, dynamodb = ds.dynamodb }
  ds.client = function() return streams end
  ds.dynamodb = function() return dynamodb end
end
after_each(function()
  if saved then ds.client, ds.dynamodb, saved = saved.client, saved.dynamodb, nil end
end)

describe("dynamodb-stream: bad usage (exit 2, one line naming it, see --help)", function()
  local cases = {
    { {}, "a command is missing", "dynamodb-stream --help" },
    { { "frobnicate" }, "unknown command 'frobnicate'", "dynamodb-stream --help" },
    { { "--bogus" }, "unknown option '--bogus'", "dynamodb-stream --help" },
    { { "list", "--bogus" }, "unknown option '--bogus' for list", "dynamodb-stream list --help" },
    { { "list", "--from", "latest" }, "unknown option '--from' for list", "dynamodb-stream list --help" },
    { { "list", "extra" }, "list: unexpected argument 'extra'", "dynamodb-stream list --help" },
    { { "list", "--table" }, "--table needs a value", "dynamodb-stream list --help" },
    { { "list", "--table", "" }, "--table '': must not be empty", "dynamodb-stream list --help" },
    { { "list", "--table", "a", "--table", "b" }, "--table given twice", "dynamodb-stream list --help" },
    { { "describe" }, "describe: TABLE|ARN is missing", "dynamodb-stream describe --help" },
    { { "describe", "t", "u" }, "describe: unexpected argument 'u'", "dynamodb-stream describe --help" },
    { { "tail" }, "tail: TABLE|ARN is missing", "dynamodb-stream tail --help" },
    { { "tail", "t", "--from", "earliest" }, "--from 'earliest': must be latest or trim-horizon",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--from=now" }, "--from 'now': must be latest or trim-horizon", "dynamodb-stream tail --help" },
    { { "tail", "t", "--format", "xml" }, "--format 'xml': must be jsonl or pretty", "dynamodb-stream tail --help" },
    { { "tail", "t", "--duration", "0" }, "--duration '0': must be a number of seconds above 0",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--duration", "-1" }, "--duration '-1': must be a number of seconds above 0",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--duration", "soon" }, "--duration 'soon': must be a number of seconds above 0",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--duration", "inf" }, "--duration 'inf': must be a number of seconds above 0",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--duration", "0x10" }, "--duration '0x10': must be a number of seconds above 0",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--max-records", "0" }, "--max-records '0': must be a whole number above 0",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--max-records", "2.5" }, "--max-records '2.5': must be a whole number above 0",
      "dynamodb-stream tail --help" },
    { { "tail", "t", "--max-records", "99999999999999999999" },
      "--max-records '99999999999999999999': must be a whole number above 0", "dynamodb-stream tail --help" },
    { { "tail", "t", "--checkpoint", "" }, "--checkpoint '': must not be empty", "dynamodb-stream tail --help" },
    { { "tail", "t", "--checkpoint" }, "--checkpoint needs a value", "dynamodb-stream tail --help" },
    { { "tail", "t", "--checkpoint", "--from", "latest" }, "--checkpoint needs a value",
      "dynamodb-stream tail --help" },
    { { "describe", "t", "--region" }, "--region needs a value", "dynamodb-stream describe --help" },
    { { "--region", "", "list" }, "--region '': must not be empty", "dynamodb-stream --help" },
    { { "list", "--profile", "" }, "--profile '': must not be empty", "dynamodb-stream list --help" },
    { { "list", "--endpoint-url", "localhost:8000" }, "--endpoint-url 'localhost:8000': ",
      "dynamodb-stream list --help" },
    { { "list", "--endpoint-url", "http://u:p@localhost:8000" }, "--endpoint-url 'http://u:p@localhost:8000': ",
      "dynamodb-stream list --help" },
    { { "replicate", "a" }, "replicate: DST is missing", "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "c" }, "replicate: unexpected argument 'c'", "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "--segments", "0" }, "--segments '0': must be a whole number above 0",
      "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "--segments", "abc" }, "--segments 'abc': must be a whole number above 0",
      "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "--segments", "1000001" }, "--segments '1000001': must be at most 1000000",
      "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "--create-target=yes" }, "--create-target takes no value",
      "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "--until-caught-up=1" }, "--until-caught-up takes no value",
      "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "--duration", "-1" }, "--duration '-1': must be a number of seconds above 0",
      "dynamodb-stream replicate --help" },
    { { "replicate", "a", "b", "--from", "latest" }, "unknown option '--from' for replicate",
      "dynamodb-stream replicate --help" },
    { { "verify", "a" }, "verify: DST is missing", "dynamodb-stream verify --help" },
    { { "verify", "a", "b", "c" }, "verify: unexpected argument 'c'", "dynamodb-stream verify --help" },
    { { "verify", "a", "b", "--segments", "0" }, "--segments '0': must be a whole number above 0",
      "dynamodb-stream verify --help" },
    { { "verify", "a", "b", "--segments", "-3" }, "--segments '-3': must be a whole number above 0",
      "dynamodb-stream verify --help" },
    { { "verify", "a", "b", "--segments", "1000001" }, "--segments '1000001': must be at most 1000000",
      "dynamodb-stream verify --help" },
    { { "verify", "a", "b", "--segments" }, "--segments needs a value", "dynamodb-stream verify --help" },
    { { "verify", "a", "b", "--from", "latest" }, "unknown option '--from' for verify", "dynamodb-stream verify --help" },
    { { "help", "nothing" }, "no help on 'nothing'", "dynamodb-stream --help" },
    { { "tail", "t", "--from", "a\nb" }, "--from 'a\\010b': must be latest or trim-horizon",
      "dynamodb-stream tail --help" },
    { { "--\27[31m" }, "unknown option '--\\027[31m'", "dynamodb-stream --help" },
    { { "list\n" }, "unknown command 'list\\010'", "dynamodb-stream --help" },
  }
  for _, case in ipairs(cases) do
    local argv, message, see = case[1], case[2], case[3]
    it(table.concat(argv, " ") .. " -> " .. message, function()
      local status, out, err = run(argv)
      assert.equals(2, status)
      assert.equals("", out)
      assert.equals("dynamodb-stream: ", err:sub(1, 17))
      assert.truthy(err:find(message, 1, true), err)
      assert.truthy(err:find("(see " .. see .. ")\n", 1, true), err)
      assert.equals(1, select(2, err:gsub("\n", "")), "one line: " .. err)
    end)
  end
end)

describe("dynamodb-stream: help", function()
  for _, argv in ipairs({ { "--help" }, { "-h" }, { "help" }, { "--region", "x", "--help" } }) do
    it(table.concat(argv, " ") .. " prints the command's help, exit 0", function()
      local status, out, err = run(argv)
      assert.equals(0, status)
      assert.equals("", err)
      for _, command in ipairs({ "list", "describe", "tail", "replicate", "verify" }) do
        assert.matches("\n  " .. command .. " ", out)
      end
      assert.matches("%-%-endpoint%-url", out)
    end)
  end
  for _, command in ipairs({ "list", "describe", "tail", "replicate", "verify" }) do
    for _, argv in ipairs({ { command, "--help" }, { command, "-h" }, { "help", command } }) do
      it(table.concat(argv, " ") .. " prints its own usage, exit 0", function()
        local status, out, err = run(argv)
        assert.equals(0, status)
        assert.equals("", err)
        assert.equals("Usage: dynamodb-stream " .. command, out:sub(1, 23 + #command))
      end)
    end
  end
  it("tail --help says how values come out in JSON", function()
    local _, out = run({ "tail", "--help" })
    assert.matches("base64", out)
    assert.matches("sets are arrays", out)
    assert.matches("exact", out)
  end)
  it("--version prints the module's version", function()
    local status, out = run({ "--version" })
    assert.equals(0, status)
    assert.equals("dynamodb-stream " .. ds._VERSION .. "\n", out)
  end)
end)

describe("dynamodb-stream list", function()
  it("prints every page of ListStreams, one tab-separated line each, with the table filter", function()
    local calls = {}
    local pages = {
      { Streams = { { TableName = "t", StreamLabel = "L1", StreamArn = "arn:1" } }, LastEvaluatedStreamArn = "arn:1" },
      { Streams = { { TableName = "t", StreamLabel = "L2", StreamArn = "arn:2" } } },
    }
    fake_clients({ list_streams = function(_, params)
      calls[#calls + 1] = { TableName = params.TableName, ExclusiveStartStreamArn = params.ExclusiveStartStreamArn }
      return pages[#calls]
    end })
    local status, out, err = run({ "list", "--table", "t" })
    assert.equals(0, status, err)
    assert.equals("t\tL1\tarn:1\nt\tL2\tarn:2\n", out)
    assert.same({ { TableName = "t" }, { TableName = "t", ExclusiveStartStreamArn = "arn:1" } }, calls)
  end)

  it("fails (exit 1) on a service error, and on a page that repeats itself instead of looping", function()
    fake_clients({ list_streams = function() return nil, "AccessDeniedException: no" end })
    local status, _, err = run({ "list" })
    assert.equals(1, status)
    assert.equals("dynamodb-stream: list: ListStreams: AccessDeniedException: no\n", err)
    fake_clients({ list_streams = function() return { Streams = {}, LastEvaluatedStreamArn = "arn:x" } end })
    status, _, err = run({ "list" })
    assert.equals(1, status)
    assert.matches("same page again", err)
  end)

  it("a client that cannot be made (no region) fails with its message, exit 1", function()
    fake_clients({})
    ds.client = function() error("no region: set AWS_REGION or opts.region", 0) end
    local status, _, err = run({ "list" })
    assert.equals(1, status)
    assert.equals("dynamodb-stream: list: no region: set AWS_REGION or opts.region\n", err)
  end)
end)

describe("dynamodb-stream describe", function()
  it("prints status, view type and the lineage tree of every DescribeStream page", function()
    local fake = Fake.new()
    fake:add_shard("A", { closed = true })
    fake:add_shard("B", { parent = "A", closed = true })
    fake:add_shard("C", { parent = "B" })
    fake:add_shard("D", { parent = "A" })
    fake:add_shard("E", { parent = "gone" })   -- its parent trimmed away: a root
    for i = 1, 100 do fake:add_shard(("F%03d"):format(i), { parent = "E", closed = true }) end
    fake_clients(fake)
    local status, out, err = run({ "describe", fake.stream_arn })
    assert.equals(0, status, err)
    assert.is_true(fake:count("describe_stream") >= 2, "every page")
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equals("Stream  " .. fake.stream_arn, lines[1])
    assert.equals("Status  ENABLED", lines[3])
    assert.equals("View    NEW_AND_OLD_IMAGES", lines[4])
    assert.equals("Shards  105 (3 open)", lines[5])
    local a, b, c, d = fake:shard("A"), fake:shard("B"), fake:shard("C"), fake:shard("D")
    assert.equals("  A  closed  " .. a.starting .. " .. " .. a.ending, lines[6])
    assert.equals("    B  closed  " .. b.starting .. " .. " .. b.ending, lines[7])
    assert.equals("      C  open    " .. c.starting .. " ..", lines[8])
    assert.equals("    D  open    " .. d.starting .. " ..", lines[9])
    assert.equals("  E  open    ", lines[10]:sub(1, 13))
    assert.equals("    F001  closed", lines[11]:sub(1, 16))
    assert.equals("    F100  closed", lines[110]:sub(1, 16))
    assert.equals(110, #lines)
  end)

  it("shards whose parents form a cycle (a broken answer) are each printed once", function()
    fake_clients({ describe_stream = function()
      return { StreamDescription = { StreamStatus = "ENABLED", Shards = {
        { ShardId = "X", ParentShardId = "Y", SequenceNumberRange = { StartingSequenceNumber = "1" } },
        { ShardId = "Y", ParentShardId = "X", SequenceNumberRange = { StartingSequenceNumber = "2" } },
      } } }
    end })
    local status, out = run({ "describe", "arn:aws:dynamodb:x" })
    assert.equals(0, status)
    assert.equals(1, select(2, out:gsub("\n  X ", "")))
    assert.equals(1, select(2, out:gsub("\n    Y ", "")))
  end)

  it("a table name is resolved to its LatestStreamArn; no table or no stream fails clearly, exit 1", function()
    local asked
    local fake = Fake.new()
    fake:add_shard("A")
    local tables = {
      t = { Table = { TableName = "t", LatestStreamArn = fake.stream_arn } },
      plain = { Table = { TableName = "plain" } },
    }
    fake_clients(fake, { describe_table = function(_, params)
      asked = params.TableName
      if tables[params.TableName] then return tables[params.TableName] end
      return nil, setmetatable({ code = "ResourceNotFoundException", message = "Requested resource not found" },
        { __tostring = function(e) return e.code .. ": " .. e.message end })
    end })
    local status, out = run({ "describe", "t" })
    assert.equals(0, status)
    assert.equals("t", asked)
    assert.matches("Stream  " .. fake.stream_arn:gsub("%p", "%%%0"), out)
    local err
    status, out, err = run({ "describe", "missing" })
    assert.equals(1, status)
    assert.equals("", out)
    assert.equals("dynamodb-stream: describe: table 'missing' not found\n", err)
    status, _, err = run({ "tail", "plain" })
    assert.equals(1, status)
    assert.equals("dynamodb-stream: tail: table 'plain' has no stream (enable one: StreamSpecification)\n", err)
    status, _, err = run({ "describe", "arn:aws:dynamodb:us-east-1:1:table/x/stream/none" })
    assert.equals(1, status)
    assert.matches("^dynamodb%-stream: describe: DescribeStream arn:.*ResourceNotFoundException", err)
  end)
end)

describe("dynamodb-stream tail", function()
  local function fake_with_changes()
    local fake = Fake.new()
    fake:add_shard("A")
    fake:insert("A", { pk = "1", n = 5 })
    fake:modify("A", { pk = "1", n = 6 }, { pk = "1", n = 5 })
    fake:remove("A", { pk = "1", n = 6 })
    return fake
  end

  it("jsonl: one JSON object per change, then stops after --max-records", function()
    local fake = fake_with_changes()
    fake_clients(fake)
    local status, out, err = run({ "tail", fake.stream_arn, "--from", "trim-horizon", "--max-records", "2",
      "--format", "jsonl" })
    assert.equals(0, status, err)
    local changes = {}
    for line in out:gmatch("[^\n]+") do changes[#changes + 1] = ds.json_decode(line) end
    assert.equals(2, #changes)
    assert.equals("INSERT", changes[1].eventName)
    assert.same({ pk = "1" }, changes[1].keys)
    assert.same({ pk = "1", n = 5 }, changes[1].new)
    assert.equals(ds.null, changes[1].old)
    assert.equals("A", changes[1].shardId)
    assert.equals(fake:shard("A").records[1].dynamodb.SequenceNumber, changes[1].sequenceNumber)
    assert.equals(os.date("!%Y-%m-%dT%H:%M:%SZ", fake:wall()), changes[1].approximateCreationDateTime)
    assert.equals("MODIFY", changes[2].eventName)
    assert.same({ pk = "1", n = 5 }, changes[2].old)
    assert.same({ pk = "1", n = 6 }, changes[2].new)
  end)

  it("the default format is jsonl off a terminal, pretty (coloured) on one", function()
    local fake = fake_with_changes()
    fake_clients(fake)
    local _, piped = run({ "tail", fake.stream_arn, "--from", "trim-horizon", "--max-records", "3" }, false)
    assert.equals("{", piped:sub(1, 1))
    assert.is_nil(piped:find("\27", 1, true))
    fake = fake_with_changes()
    fake_clients(fake)
    local status, shown = run({ "tail", fake.stream_arn, "--from", "trim-horizon", "--max-records", "3" }, true)
    assert.equals(0, status)
    local lines = {}
    for line in shown:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equals(3, #lines)
    assert.matches("\27%[32mINSERT\27%[0m", lines[1])
    assert.matches("\27%[33mMODIFY\27%[0m", lines[2])
    assert.matches("\27%[31mREMOVE\27%[0m", lines[3])
    assert.matches('was {', lines[3])
  end)

  it("--format pretty into a pipe has no colour", function()
    local fake = fake_with_changes()
    fake_clients(fake)
    local _, out = run({ "tail", fake.stream_arn, "--from", "trim-horizon", "--max-records", "1", "--format", "pretty" },
      false)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ  INSERT  {\"pk\":\"1\"}  ", out)
    assert.is_nil(out:find("\27", 1, true))
  end)

  it("errors go to stderr once each; a fatal one ends tail with exit 1", function()
    local fake = fake_with_changes()
    fake:fail("get_shard_iterator", "AccessDeniedException", { times = 1000 })
    fake_clients(fake)
    local status, out, err = run({ "tail", fake.stream_arn, "--from", "trim-horizon" })
    assert.equals(1, status)
    assert.equals("", out)
    assert.equals(1, select(2, err:gsub("\n", "")), err)
    assert.matches("^dynamodb%-stream: tail: .*AccessDeniedException", err)
  end)

  it("a write that fails stops tail with exit 1, its change not checkpointed", function()
    local fake = fake_with_changes()
    fake_clients(fake)
    local dir = os.tmpname()
    os.remove(dir)
    local broken = { write = function() return nil, "Broken pipe" end, flush = function(s) return s end }
    local err = sink()
    local status = cli.main({ "tail", fake.stream_arn, "--from", "trim-horizon", "--checkpoint", dir },
      { stdout = broken, stderr = err, is_terminal = function() return false end })
    assert.equals(1, status)
    assert.equals("dynamodb-stream: tail: cannot write to stdout: Broken pipe\n", err.text)
    -- the next run starts at the first change again
    fake_clients(fake)
    local out
    status, out = run({ "tail", fake.stream_arn, "--checkpoint", dir, "--max-records", "1", "--format", "jsonl" })
    os.remove(dir)
    os.remove(dir .. ".lock")
    assert.equals(0, status)
    assert.equals("INSERT", ds.json_decode(out).eventName)
  end)
end)

describe("dynamodb-stream verify", function()
  -- A DynamoDB (call and call_many) whose table "src" holds items and "dst" none;
  -- keys pk (B) and sk (N).
  local function fake_dynamodb(items)
    local fake = {}
    function fake.call(_, operation, params)
      if operation == "DescribeTable" then
        return { Table = {
          KeySchema = { { AttributeName = "pk", KeyType = "HASH" }, { AttributeName = "sk", KeyType = "RANGE" } },
          AttributeDefinitions = { { AttributeName = "sk", AttributeType = "N" }, { AttributeName = "pk", AttributeType = "B" } },
        } }
      elseif operation == "Scan" then
        return { Items = params.TableName == "src" and items or {} }
      end
      return { Responses = {} } -- BatchGetItem: nothing in dst
    end
    function fake.call_many(self, operation, list)
      local answers = {}
      for i, params in ipairs(list) do answers[i] = self:call(operation, params) end
      return answers, {}
    end
    return fake
  end

  it("prints each key as JSON in name order (binary as base64, numbers exact); exit 1", function()
    fake_clients(nil, fake_dynamodb({
      { sk = { N = "12345678901234567890123456789012345678" }, pk = { B = "AAEC/w==" }, v = { S = "x" } },
      { pk = { B = "AQ==" }, sk = { N = "-1.5" } },
    }))
    local status, out, err = run({ "verify", "src", "dst" })
    assert.equals(1, status, err)
    assert.equals('missing\t{"pk":"AAEC/w==","sk":12345678901234567890123456789012345678}\n'
      .. 'missing\t{"pk":"AQ==","sk":-1.5}\n', out)
    assert.equals("dynamodb-stream: verify: 2 items in src, 0 in dst: 2 missing, 0 extra, 0 different\n", err)
  end)

  it("a write to stdout that fails: exit 1, said once", function()
    fake_clients(nil, fake_dynamodb({ { pk = { B = "AQ==" }, sk = { N = "1" } }, { pk = { B = "Ag==" }, sk = { N = "1" } } }))
    local broken = { write = function() return nil, "Broken pipe" end, flush = function(s) return s end }
    local err = sink()
    local status = cli.main({ "verify", "src", "dst" }, { stdout = broken, stderr = err })
    assert.equals(1, status)
    assert.equals("dynamodb-stream: verify: cannot write to stdout: Broken pipe\n", err.text)
  end)

  it("a failed call: exit 1 with its error", function()
    fake_clients(nil, { call = function() return nil, "InternalServerError: down" end, call_many = function() end })
    local status, out, err = run({ "verify", "src", "dst" })
    assert.equals(1, status)
    assert.equals("", out)
    assert.equals("dynamodb-stream: verify: InternalServerError: down\n", err)
  end)
end)
