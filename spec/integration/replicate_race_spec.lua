-- ds.replicate against DynamoDB Local with writes interleaved with the scan
-- at the worst moments: right before and right after every Scan page is read
-- (a wrapper of the source client does them), so scanned copies go stale
-- while they are in hand. The copy must still converge exactly: every key at
-- its newest version, deleted keys gone. (A replicator that reads the pages
-- before the stream and lets the scanned copy win leaves stale items here.)
local ds = require("dynamodb_stream")
local helper = require("helper")

describe("ds.replicate with writes racing the scan", function()
  local opts, ddb

  setup(function()
    opts = helper.local_opts("replrace")
    ddb = ds.dynamodb(opts)
  end)

  -- key -> version of every item of a table
  local function versions(name)
    local all = assert(ddb:scan_all({ TableName = name, ConsistentRead = true }))
    local out = {}
    for _, item in ipairs(all.Items) do out[item.pk.S] = item.v.N end
    return out
  end

  for _, case in ipairs({ { seed = 1, segments = 1 }, { seed = 2, segments = 3 }, { seed = 3, segments = 2 } }) do
    it(("converges exactly (seed %d, %d segments)"):format(case.seed, case.segments), function()
      local tag = os.time() .. case.seed .. math.random(1000, 9999)
      local source, target = "race" .. tag, "racecopy" .. tag
      helper.create_stream_table(ddb, source)
      local n, version = 300, 0
      local requests = {}
      for i = 1, n do requests[i] = { PutRequest = { Item = ds.marshall({ pk = "k" .. i, v = 0 }) } } end
      assert(ddb:batch_write_all(source, requests))
      local random = math.random
      math.randomseed(case.seed)
      -- puts and deletes over the keys and some that do not exist yet
      local function mutate()
        for _ = 1, 12 do
          local key = { pk = "k" .. random(1, n + 40) }
          version = version + 1
          if random() < 0.2 then
            assert(ddb:delete_item({ TableName = source, Key = ds.marshall(key) }))
          else
            key.v = version
            assert(ddb:put_item({ TableName = source, Item = ds.marshall(key) }))
          end
        end
      end
      local scans = 0
      local racing = setmetatable({
        call = function(_, operation, params)
          if operation ~= "Scan" then return ddb:call(operation, params) end
          scans = scans + 1
          params.Limit = 20
          mutate()
          local page, err = ddb:call(operation, params)
          mutate()
          return page, err
        end,
        call_many = function(_, operation, list, ...)
          if operation ~= "Scan" then return ddb:call_many(operation, list, ...) end
          scans = scans + #list
          for _, params in ipairs(list) do params.Limit = 20 end
          mutate()
          local pages, errs = ddb:call_many(operation, list, ...)
          mutate()
          return pages, errs
        end,
      }, { __index = ddb })

      local ok, err = ds.replicate({ source = source, target = target, dynamodb = racing, target_dynamodb = ddb,
        client = opts, create_target = true, until_caught_up = true, segments = case.segments })
      assert.is_true(ok, tostring(err))
      assert.is_true(scans >= n / 20, "the scan took " .. scans .. " pages")
      local want, got = versions(source), versions(target)
      assert.same(want, got)
    end)
  end
end)
