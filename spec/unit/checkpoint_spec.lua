-- The file checkpoint store and stream:run{ checkpoint = path }.
local checkpoint = require("dynamodb_stream.checkpoint")
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local helper = require("helper")

local codec = {} -- the default: core.json_encode / core.json_decode

describe("dynamodb_stream.checkpoint", function()
  local dir, path
  before_each(function()
    dir = helper.tmpdir()
    path = dir .. "/state.json"
  end)
  after_each(function() helper.rmdir(dir) end)

  it("returns nil (no error) when there is no checkpoint yet", function()
    local state, err = checkpoint.file(path, codec):load()
    assert.is_nil(state)
    assert.is_nil(err)
  end)

  it("saves and loads a shard state", function()
    local store = checkpoint.file(path, codec)
    local state = { A = { shardId = "A", sequenceNumber = "100000000000000000001", nextShardIterator = "it",
      position = { type = "AFTER_SEQUENCE_NUMBER", sequenceNumber = "100000000000000000001" } } }
    assert.is_true(store:save(state))
    assert.same(state, store:load())
    assert.is_true(store:save({}))
    assert.same({}, store:load())
  end)

  it("replaces the file by rename: temporary files left by a killed process change nothing", function()
    local store = checkpoint.file(path, codec)
    assert.is_true(store:save({ A = { shardId = "A" } }))
    -- writes cut short by a crash, under the old fixed name and the per-save names
    local stale = { path .. ".tmp", path .. ".tmp.1.1", path .. ".tmp." .. "99999.abc" }
    for _, name in ipairs(stale) do helper.write_file(name, '{"A": {"shardId": "tor') end
    assert.same({ A = { shardId = "A" } }, store:load())
    assert.is_true(store:save({ B = { shardId = "B" } }))
    assert.same({ B = { shardId = "B" } }, store:load())
    for _, name in ipairs(stale) do assert.equals('{"A": {"shardId": "tor', helper.read_file(name)) end
    store:close()
  end)

  it("does not write through a symlink planted at a temporary name or at the path", function()
    local target = dir .. "/elsewhere"
    helper.write_file(target, "untouched")
    for _, name in ipairs({ path .. ".tmp", path }) do
      os.execute("ln -s " .. helper.shell_quote(target) .. " " .. helper.shell_quote(name))
    end
    local store = checkpoint.file(path, codec)
    assert.is_true(store:save({ A = { shardId = "A" } }))
    assert.equals("untouched", helper.read_file(target))
    assert.same({ A = { shardId = "A" } }, store:load()) -- the symlink at path was replaced
    store:close()
  end)

  it("reports an unreadable or corrupt checkpoint as CheckpointError", function()
    helper.write_file(path, "{not json")
    local state, err = checkpoint.file(path, codec):load()
    assert.is_nil(state)
    assert.equals("CheckpointError", err.code)
    local ok, werr = checkpoint.file(dir .. "/missing/dir/state.json", codec):save({})
    assert.is_nil(ok)
    assert.equals("CheckpointError", werr.code)
  end)

  it("writes the checkpoint with mode 0600 and leaves no temporary file, only its lock file", function()
    local store = checkpoint.file(path, codec)
    assert.is_true(store:save({}))
    assert.is_true(store:save({ A = { shardId = "A" } }))
    store:close()
    local lfs = require("lfs")
    assert.equals("rw-------", lfs.attributes(path, "permissions"))
    assert.equals("rw-------", lfs.attributes(path .. ".lock", "permissions"))
    local names = {}
    for name in lfs.dir(dir) do
      if name ~= "." and name ~= ".." then names[#names + 1] = name end
    end
    table.sort(names)
    assert.same({ "state.json", "state.json.lock" }, names)
  end)

  it("stream:run{ checkpoint = path } saves after each fetch and resumes from it", function()
    local fake = Fake.new()
    fake:add_shard("A")
    local s1 = Stream.new(fake, fake.stream_arn)
    local store = checkpoint.file(path, codec)
    local log1 = Fake.recorder(s1)
    s1:on("insert record", function() s1:stop() end)
    -- first run: the LATEST bookmark, then two records arrive; stop after the first
    local rounds = 0
    s1:run({ checkpoint = store, sleep = function()
      rounds = rounds + 1
      if rounds == 1 then fake:insert("A", { pk = "1" }); fake:insert("A", { pk = "2" }) end
      if rounds > 5 then s1:stop() end
    end })
    assert.same({ "new A", "insert 1" }, log1)
    local saved = store:load()
    assert.equals(fake.by_id.A.records[1].dynamodb.SequenceNumber, saved.A.sequenceNumber)
    -- a new process: resumes after record 1, long after its iterators expired
    fake:advance(3600)
    local s2 = Stream.new(fake, fake.stream_arn)
    local log2 = Fake.recorder(s2)
    s2:run({ checkpoint = store, sleep = function() s2:stop() end })
    assert.same({ "insert 2" }, log2)
    assert.equals(fake.by_id.A.records[2].dynamodb.SequenceNumber, store:load().A.sequenceNumber)
  end)

  it("run with a corrupt checkpoint fails at once", function()
    helper.write_file(path, "[1,2")
    local fake = Fake.new()
    local r, err = Stream.new(fake, fake.stream_arn):run({ checkpoint = checkpoint.file(path, codec) })
    assert.is_nil(r)
    assert.equals("CheckpointError", err.code)
    assert.equals(0, fake:count())
  end)

  -- A second Lua process (the interpreter running this spec) running code;
  -- returns its stdout pipe after reading the first line it prints.
  local function child(code)
    local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s -e %s"):format(helper.shell_quote(package.path),
      helper.shell_quote(package.cpath), helper.lua, helper.shell_quote(code))
    local proc = assert(helper.popen(cmd, "r"))
    return proc, proc:read("*l")
  end

  -- Holds the lock of path (a store that loaded it) until the file stop exists.
  local HOLDER = [[
    local core = require("dynamodb_stream.core")
    local store = require("dynamodb_stream.checkpoint").file(%q)
    local _, err = store:load()
    print(err and tostring(err) or "locked")
    io.stdout:flush()
    for _ = 1, 3000 do -- at most 30 s if the spec dies
      if io.open(%q) then break end
      core.sleep(0.01)
    end
  ]]

  it("a second process on the same file fails at start with CheckpointLocked", function()
    local stop = dir .. "/stop"
    local proc, first = child(HOLDER:format(path, stop))
    assert.equals("locked", first)
    local fake = Fake.new()
    fake:add_shard("A")
    local second = Stream.new(fake, fake.stream_arn)
    local r, err = second:run({ checkpoint = path, sleep = function() second:stop() end })
    assert.is_nil(r)
    assert.equals("CheckpointLocked", err.code)
    assert.matches(path .. ": in use by another process", err.message, 1, true)
    assert.equals(0, fake:count()) -- nothing was asked of the service
    helper.write_file(stop, "")
    assert.is_true(proc:close())
    -- the holder is gone: its lock went with it
    local s = Stream.new(fake, fake.stream_arn)
    assert.is_true(s:run({ checkpoint = path, sleep = function() s:stop() end }))
    -- and run released it on return: another process takes it at once
    proc, first = child(HOLDER:format(path, stop))
    assert.equals("locked", first)
    assert.is_true(proc:close())
  end)

  it("a second store in this process is refused while the first is open, not after it is closed or dropped", function()
    local first = checkpoint.file(path, codec)
    assert.is_true(first:save({}))
    local ok, err = checkpoint.file(path, codec):load()
    assert.is_nil(ok)
    assert.equals("CheckpointLocked", err.code)
    assert.matches("another store of this process", err.message, 1, true)
    first:close()
    local second = checkpoint.file(path, codec)
    assert.same({}, second:load())
    second = nil -- luacheck: ignore 311
    assert.same({}, checkpoint.file(path, codec):load()) -- the dropped one was collected
  end)

  -- A writer that saves a JSON document of its own 150 times, as fast as it
  -- can, bypassing the lock; creates the file done, then prints its failed saves.
  local WRITER = [[
    local core = require("dynamodb_stream.core")
    local doc = core.json_encode({ writer = %q, pad = ("%s"):rep(20000) })
    print("ready")
    io.stdout:flush()
    local failed = 0
    for _ = 1, 150 do
      if not core.write_file_atomic(%q, doc) then failed = failed + 1 end
    end
    io.open(%q, "w"):close()
    print(failed)
  ]]

  it("two processes saving the same file at once never leave it torn, and no save fails", function()
    local core = require("dynamodb_stream.core")
    assert.is_true(core.write_file_atomic(path, core.json_encode({ writer = "start" })))
    local a = child(WRITER:format("a", "a", path, dir .. "/done-a"))
    local b = child(WRITER:format("b", "bb", path, dir .. "/done-b"))
    -- read while they write, until both are done
    local reads, torn = 0, {}
    repeat
      local text = helper.read_file(path)
      reads = reads + 1
      if type(text and core.json_decode(text)) ~= "table" then torn[#torn + 1] = text and #text or "missing" end
    until helper.exists(dir .. "/done-a") and helper.exists(dir .. "/done-b")
    local failed = { tonumber(a:read("*l")), tonumber(b:read("*l")) }
    a:close()
    b:close()
    assert.same({}, torn)
    assert.same({ 0, 0 }, failed)
    assert.is_true(reads > 0)
    local left = {}
    for name in require("lfs").dir(dir) do
      if name:find(".tmp", 1, true) then left[#left + 1] = name end
    end
    assert.same({}, left) -- every temporary file was renamed
  end)

  it("refuses a path with a NUL byte (it would be cut there)", function()
    local core = require("dynamodb_stream.core")
    assert.has_error(function() checkpoint.file(dir .. "/a\0b") end, "checkpoint.file: path contains a NUL byte")
    assert.error_matches(function() core.write_file_atomic(dir .. "/a\0b", "{}") end, "path contains a NUL byte")
    assert.error_matches(function() core.lock_file(dir .. "/a\0b") end, "path contains a NUL byte")
    local fake = Fake.new()
    assert.error_matches(function() Stream.new(fake, fake.stream_arn):run({ checkpoint = dir .. "/a\0b" }) end,
      "NUL byte")
    assert.is_nil(io.open(dir .. "/a"))
  end)

  it("says a directory given as the path is a directory", function()
    local state, err = checkpoint.file(dir, codec):load()
    assert.is_nil(state)
    assert.equals("CheckpointError", err.code)
    assert.equals(dir .. ": is a directory, not a file", err.message)
    local fake = Fake.new()
    local r, rerr = Stream.new(fake, fake.stream_arn):run({ checkpoint = dir })
    assert.is_nil(r)
    assert.matches("is a directory", rerr.message, 1, true)
    assert.is_nil(io.open(dir .. ".lock")) -- no lock file made beside it
  end)
end)
