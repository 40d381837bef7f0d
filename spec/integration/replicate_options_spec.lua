-- ds.replicate as a library against DynamoDB Local: transform (changed items,
-- nil skips a scanned item and deletes a changed one, a raising or
-- key-changing transform stops with nothing written past it), the progress
-- it reports, and every bad option.
local ds = require("dynamodb_stream")
local helper = require("helper")

describe("ds.replicate", function()
  local opts, ddb

  setup(function()
    opts = helper.local_opts("replopts")
    ddb = ds.dynamodb(opts)
  end)

  local function fresh(n)
    local tag = os.time() .. math.random(100000, 999999)
    local source, target = "ropt" .. tag, "roptcopy" .. tag
    helper.create_stream_table(ddb, source)
    local requests = {}
    for i = 1, n do requests[i] = { PutRequest = { Item = ds.marshall({ pk = "k" .. i, n = i }) } } end
    if n > 0 then assert(ddb:batch_write_all(source, requests)) end
    return source, target
  end

  local function items(name)
    local out = {}
    for _, item in ipairs(assert(ddb:scan_all({ TableName = name, ConsistentRead = true })).Items) do
      out[item.pk.S] = ds.unmarshall(item)
    end
    return out
  end

  it("applies transform to scanned and streamed items; nil skips, and deletes a changed copy", function()
    local source, target = fresh(6)
    local checkpoint = helper.tmpdir() .. "/cp.json"
    local function transform(item)
      if item.n % 3 == 0 then return nil end -- multiples of 3 stay out
      item.doubled = item.n * 2
      return item
    end
    local run = { source = source, target = target, client = opts, create_target = true, transform = transform,
      checkpoint = checkpoint, until_caught_up = true }
    assert.is_true(ds.replicate(run))
    local copy = items(target)
    assert.same({ "k1", "k2", "k4", "k5" }, (function()
      local keys = {}
      for k in pairs(copy) do keys[#keys + 1] = k end
      table.sort(keys)
      return keys
    end)())
    assert.equals(8, copy.k4.doubled)
    -- changes: k1 becomes a multiple of 3 (its copy goes), k3 stops being one (it comes)
    assert(ddb:put_item({ TableName = source, Item = ds.marshall({ pk = "k1", n = 9 }) }))
    assert(ddb:put_item({ TableName = source, Item = ds.marshall({ pk = "k3", n = 7 }) }))
    assert(ddb:delete_item({ TableName = source, Key = ds.marshall({ pk = "k2" }) }))
    assert.is_true(ds.replicate(run))
    copy = items(target)
    assert.is_nil(copy.k1)
    assert.is_nil(copy.k2)
    assert.equals(14, copy.k3.doubled)
    assert.equals(10, copy.k5.doubled)
  end)

  local bad_transforms = {
    { "raises", function() error("boom") end, "transform raised: .*boom" },
    { "changes the key", function(item) item.pk = "other" return item end, "same key attributes" },
    { "drops the key", function(item) item.pk = nil return item end, "same key attributes" },
    { "returns a function", function() return print end, "same key attributes" },
    { "returns a string", function() return "x" end, "same key attributes" },
  }
  for _, case in ipairs(bad_transforms) do
    it("stops with TransformError, nothing written, when transform " .. case[1], function()
      local source, target = fresh(3)
      local checkpoint = helper.tmpdir() .. "/cp.json"
      local ok, err = ds.replicate({ source = source, target = target, client = opts, create_target = true,
        transform = case[2], checkpoint = checkpoint, until_caught_up = true })
      assert.is_nil(ok)
      assert.equals("TransformError", err.code)
      assert.matches(case[3], err.message)
      assert.same({}, items(target))
      -- nothing was checkpointed past the batch that failed
      local saved = ds.json_decode(helper.read_file(checkpoint) or "null")
      assert.is_true(saved == nil or saved == ds.null or saved.scan.scanned == 0)
    end)
  end

  it("reports progress: the scan against the estimate, then the changes and the lag, done last", function()
    local source, target = fresh(40)
    local seen = {}
    assert.is_true(ds.replicate({ source = source, target = target, client = opts, create_target = true,
      until_caught_up = true, progress = function(p) seen[#seen + 1] = p end }))
    local first, last = seen[1], seen[#seen]
    assert.equals("scan", first.phase)
    assert.equals(0, first.scanned)
    assert.equals(40, first.estimated)
    assert.equals("follow", last.phase)
    assert.equals(40, last.scanned)
    assert.equals(40, last.written)
    assert.equals(0, last.changes)
    assert.is_true(last.caught_up)
    assert.is_true(last.done)
    for k = 1, #seen - 1 do assert.is_false(seen[k].done) end
    assert.is_string(ds.json_encode(last)) -- serialisable
  end)

  local function raises(o, message)
    local ok, err = pcall(ds.replicate, o)
    assert.is_false(ok)
    assert.matches(message, tostring(err), 1, true)
  end

  it("raises on every bad option, before any call", function()
    local calls = 0
    local counting = { call = function() calls = calls + 1 end, call_many = function() calls = calls + 1 end }
    local base = { source = "a", target = "b", dynamodb = counting, streams = counting }
    local function with(k, v)
      local o = {}
      for key, value in pairs(base) do o[key] = value end
      o[k] = v
      return o
    end
    raises(nil, "replicate: options table expected")
    raises("a", "replicate: options table expected")
    raises(with("source", nil), "replicate: opts.source (a table name) is required")
    raises(with("target", ""), "replicate: opts.target (a table name) is required")
    raises(with("source", 3), "replicate: opts.source must be a string")
    raises(with("target", "a"), "replicate: source and target are the same table")
    raises(with("segments", 0), "replicate: opts.segments must be an integer from 1 to 1000000")
    raises(with("segments", 2.5), "replicate: opts.segments must be an integer from 1 to 1000000")
    raises(with("segments", 1000001), "replicate: opts.segments must be an integer from 1 to 1000000")
    raises(with("duration", 0), "replicate: opts.duration must be a number of seconds above 0")
    raises(with("duration", 0 / 0), "replicate: opts.duration must be a number of seconds above 0")
    raises(with("transform", "upper"), "replicate: opts.transform must be a function")
    raises(with("create_target", "yes"), "replicate: opts.create_target must be a boolean")
    raises(with("dynamodb", 1), "replicate: opts.dynamodb must be a client")
    raises(with("progress", {}), "replicate: opts.progress must be a function")
    raises(with("until_caught_up", 1), "replicate: opts.until_caught_up must be a boolean")
    raises(with("segment", 2), "replicate: unknown option segment")
    assert.equals(0, calls)
  end)
end)
