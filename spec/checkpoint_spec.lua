-- The file checkpoint store and stream:run{ checkpoint = path }.
local checkpoint = require("dynamodb_stream.checkpoint")
local Stream = require("dynamodb_stream.stream")
local Fake = require("fake_streams")
local helper = require("helper")

local codec = {} -- the default: core.json_encode / core.json_decode

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

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

  it("replaces the file by rename: a leftover temporary file from a crash changes nothing", function()
    local store = checkpoint.file(path, codec)
    assert.is_true(store:save({ A = { shardId = "A" } }))
    helper.write_file(path .. ".tmp", '{"A": {"shardId": "tor') -- a write cut short by a crash
    assert.same({ A = { shardId = "A" } }, store:load())
    assert.is_true(store:save({ B = { shardId = "B" } }))
    assert.same({ B = { shardId = "B" } }, store:load())
    assert.is_nil(io.open(path .. ".tmp"))  -- reused and renamed: crashes do not pile files up
  end)

  it("does not write through a symlink planted at the temporary name", function()
    local target = dir .. "/elsewhere"
    helper.write_file(target, "untouched")
    os.execute("ln -s " .. helper.shell_quote(target) .. " " .. helper.shell_quote(path .. ".tmp"))
    local ok, err = checkpoint.file(path, codec):save({ A = { shardId = "A" } })
    assert.is_nil(ok)
    assert.equals("CheckpointError", err.code)
    local f = assert(io.open(target))
    assert.equals("untouched", f:read("*a"))
    f:close()
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

  it("writes the checkpoint with mode 0600 and leaves no temporary file", function()
    assert.is_true(checkpoint.file(path, codec):save({}))
    assert.is_true(checkpoint.file(path, codec):save({ A = { shardId = "A" } }))
    local lfs = require("lfs")
    assert.equals("rw-------", lfs.attributes(path, "permissions"))
    local names = {}
    for name in lfs.dir(dir) do
      if name ~= "." and name ~= ".." then names[#names + 1] = name end
    end
    assert.same({ path:match("[^/]+$") }, names)
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
end)
