-- bin/dynamodb-stream run as a subprocess against DynamoDB Local: list,
-- describe, tail (exactly the changes written, lossless JSON, SIGTERM with a
-- checkpoint that resumes, a pseudo-terminal), and a missing table.
local ds = require("dynamodb_stream")
local helper = require("helper")

local NAMESPACE = "clispec"
local q = helper.shell_quote

describe("dynamodb-stream against DynamoDB Local", function()
  local ddb, dir, opts

  setup(function()
    opts = helper.local_opts(NAMESPACE)
    ddb = ds.dynamodb(opts)
    dir = helper.tmpdir()
  end)
  teardown(function() helper.rmdir(dir) end)

  local function command_line(args) return helper.cli_command(opts, dir, args) end
  local function run(args) return helper.run_cli(opts, dir, args) end

  local function lines(text)
    local t = {}
    for line in text:gmatch("[^\r\n]+") do t[#t + 1] = line end
    return t
  end

  local function wait_for(pred, seconds)
    local deadline = os.time() + seconds
    while not pred() do
      if os.time() > deadline then return false end
      ds.sleep(0.05)
    end
    return true
  end

  local function new_table(prefix)
    local name = prefix .. os.time() .. math.random(1000, 9999)
    return name, helper.create_stream_table(ddb, name)
  end

  it("list shows the table's stream; describe shows its shard, open", function()
    local name, arn = new_table("cli_list")
    local code, out, err = run({ "list", "--table", name })
    assert.equals(0, code, err)
    assert.equals(name .. "\t" .. arn:match("/stream/(.+)$") .. "\t" .. arn .. "\n", out)
    code, out = run({ "list" })
    assert.equals(0, code)
    assert.truthy(out:find(arn, 1, true))

    code, out, err = run({ "describe", name })
    assert.equals(0, code, err)
    local l = lines(out)
    assert.equals("Stream  " .. arn, l[1])
    assert.equals("Table   " .. name, l[2])
    assert.equals("Status  ENABLED", l[3])
    assert.equals("View    NEW_AND_OLD_IMAGES", l[4])
    assert.matches("^Shards  %d+ %(1 open%)$", l[5])
    assert.matches("^  shardId%-[%w-]+  open    %d+ %.%.$", l[#l])
    local by_arn
    code, by_arn = run({ "describe", arn })
    assert.equals(0, code)
    assert.equals(out, by_arn)
  end)

  it("a missing table: exit 1 with a clear message, nothing on stdout", function()
    for _, command in ipairs({ "describe", "tail" }) do
      local code, out, err = run({ command, "no_such_table" })
      assert.equals(1, code)
      assert.equals("", out)
      assert.equals("dynamodb-stream: " .. command .. ": table 'no_such_table' not found\n", err)
    end
  end)

  local BIG = "1234567890123456789012345678901234567800" -- 40 digits (38 significant)

  -- Writes the changes tail must print: puts, an update, a delete, a 40-digit
  -- number, binary and sets. Returns what each should print.
  local function write_changes(name)
    assert(ddb:put_item({ TableName = name, Item = {
      pk = { S = "a" }, big = { N = BIG }, bin = { B = "AAEC/w==" }, tags = { SS = { "x", "y" } },
      nums = { NS = { "1", "2.5" } },
    } }))
    assert(ddb:put_item({ TableName = name, Item = { pk = { S = "b" }, n = { N = "1" } } }))
    assert(ddb:update_item({ TableName = name, Key = { pk = { S = "b" } }, UpdateExpression = "SET n = :v",
      ExpressionAttributeValues = { [":v"] = { N = "2" } } }))
    assert(ddb:delete_item({ TableName = name, Key = { pk = { S = "a" } } }))
    return { { "INSERT", "a" }, { "INSERT", "b" }, { "MODIFY", "b" }, { "REMOVE", "a" } }
  end

  local function sorted(list)
    local copy = {}
    for i, v in ipairs(list) do copy[i] = v end
    table.sort(copy, function(x, y) return tostring(x) < tostring(y) end)
    return copy
  end

  it("tail --from trim-horizon --format jsonl --max-records N prints exactly the changes written", function()
    local name, arn = new_table("cli_tail")
    local expected = write_changes(name)
    local code, out, err = run({ "tail", name, "--from", "trim-horizon", "--format", "jsonl", "--max-records", "4",
      "--duration", "20" })
    assert.equals(0, code, err)
    local l = lines(out)
    assert.equals(4, #l, out)
    local changes = {}
    for i, line in ipairs(l) do
      changes[i] = assert(ds.json_decode(line))
      assert.equals(expected[i][1], changes[i].eventName)
      assert.equals(expected[i][2], changes[i].keys.pk)
      assert.matches("^shardId%-", changes[i].shardId)
      assert.matches("^%d+$", changes[i].sequenceNumber)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z$", changes[i].approximateCreationDateTime)
    end
    assert.truthy(arn)
    -- lossless: the 40 digits as they were written, in the JSON text itself
    assert.truthy(l[1]:find('"big":' .. BIG, 1, true), l[1])
    assert.truthy(l[4]:find('"big":' .. BIG, 1, true), l[4])
    local new = changes[1].new
    assert.equals("AAEC/w==", new.bin)                -- binary: base64
    assert.same({ "x", "y" }, sorted(new.tags))        -- a set: an array
    assert.same({ 1, 2.5 }, sorted(new.nums))
    assert.equals(ds.null, changes[1].old)
    assert.same({ pk = "b", n = 1 }, changes[3].old)
    assert.same({ pk = "b", n = 2 }, changes[3].new)
    assert.equals(ds.null, changes[4].new)
    assert.equals("a", changes[4].old.pk)
  end)

  it("tail stopped by SIGTERM exits 0; its checkpoint resumes after the last change printed", function()
    local name = new_table("cli_sig")
    write_changes(name)
    local checkpoint, out, pidfile, status = dir .. "/sig.json", dir .. "/sig.out", dir .. "/sig.pid", dir .. "/sig.status"
    os.remove(status)
    assert(helper.execute("(sh -c " .. q("echo $$ >" .. q(pidfile) .. "; exec " .. command_line({ "tail", name,
      "--from", "trim-horizon", "--format", "jsonl", "--checkpoint", checkpoint })) .. " >" .. q(out) .. " 2>&1; echo $? >"
      .. q(status) .. ") &"))
    assert.is_true(wait_for(function() return #lines(helper.read_file(out) or "") >= 4 end, 20),
      helper.read_file(out))
    local pid = helper.read_file(pidfile):match("%d+")
    assert(helper.execute("kill -TERM " .. pid))
    -- the shell creates the status file before it writes the status into it
    local function exit_status() return (helper.read_file(status) or ""):match("%d+") end
    assert.is_truthy(wait_for(exit_status, 10), "tail did not end after SIGTERM")
    assert.equals("0", exit_status(), helper.read_file(out))
    assert.equals(4, #lines(helper.read_file(out)))

    assert(ddb:put_item({ TableName = name, Item = { pk = { S = "c" } } }))
    -- It stops at its first change (not after a fixed time): an old one printed
    -- again would be that first change.
    local code, again, err = run({ "tail", name, "--format", "jsonl", "--checkpoint", checkpoint,
      "--max-records", "1", "--duration", "20" })
    assert.equals(0, code, err)
    local l = lines(again)
    assert.equals(1, #l, again)                        -- nothing printed before, once more
    local change = ds.json_decode(l[1])
    assert.equals("INSERT", change.eventName)
    assert.equals("c", change.keys.pk)
  end)

  it("tail --format pretty on a pseudo-terminal shows coloured lines", function()
    if not helper.execute("command -v script >/dev/null 2>&1") then
      pending("script (util-linux) is not installed: no pseudo-terminal")
      return
    end
    local name = new_table("cli_tty")
    write_changes(name)
    local out = dir .. "/tty.out"
    -- script runs the command on a pseudo-terminal: the default format is pretty, in colour
    local _, _, code = helper.execute("script -qec " .. q(command_line({ "tail", name, "--from", "trim-horizon",
      "--max-records", "4", "--duration", "20" })) .. " /dev/null >" .. q(out) .. " 2>&1 </dev/null")
    local text = helper.read_file(out)
    assert.equals(0, code, text)
    local l = lines(text)
    assert.equals(4, #l, text)
    assert.matches("\27%[32mINSERT\27%[0m", l[1])
    assert.matches("\27%[33mMODIFY\27%[0m", l[3])
    assert.matches("\27%[31mREMOVE\27%[0m", l[4])
    assert.truthy(l[1]:find('"big":' .. BIG, 1, true), l[1])
  end)
end)
