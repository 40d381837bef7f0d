-- leases/table.lua refuses every bad argument with a clear message, raised at the caller,
-- before anything is sent.
local LeaseTable = require("dynamodb_stream.leases.table")
local ds = require("dynamodb_stream")

local NAME = "non-empty string without control characters"
local KEY_PART = NAME .. " or '|'"
local COUNTER = "counter must be a non-negative integer below 2^53"
local CHECKPOINT = "checkpoint must be a sequence number (digits), TRIM_HORIZON, LATEST or SHARD_END"
local POSITION = "position must be nil or a table that encodes as a JSON object"
local TABLE_NAME = "leases.table.new: table_name must be 3 to 255 characters of A-Z a-z 0-9 _ . -"

local unpack = table.unpack or unpack
local NIL = setmetatable({}, { __tostring = function() return "nil" end }) -- nil, in a list

local never = { call = function(_, operation) error("nothing may be sent, but " .. operation .. " was") end }
local ARN = "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"

-- f must call the method in a statement, not a tail call (which leaves no line to blame).
local function fails(f, message)
  local ok, err = pcall(f)
  assert.is_false(ok, "no error, expected: " .. message)
  assert.is_string(err)
  -- raised at the line of this file that called the method
  assert.matches("^spec/unit/leases/table_args_spec%.lua:%d+: ", err)
  local text = err:gsub("^[^:]+:%d+: ", "")
  assert.equal(message, text)
end

describe("leases.table arguments", function()
  describe("new", function()
    local cases = {
      { "no client", function() local _ = LeaseTable.new(nil, "leases") end,
        "leases.table.new: ddb must be a DynamoDB client (ds.dynamodb())" },
      { "a table without call", function() local _ = LeaseTable.new({}, "leases") end,
        "leases.table.new: ddb must be a DynamoDB client (ds.dynamodb())" },
      { "a string client", function() local _ = LeaseTable.new("ddb", "leases") end,
        "leases.table.new: ddb must be a DynamoDB client (ds.dynamodb())" },
      { "no table name", function() local _ = LeaseTable.new(never, nil) end, TABLE_NAME },
      { "a number table name", function() local _ = LeaseTable.new(never, 123) end, TABLE_NAME },
      { "a 2-character name", function() local _ = LeaseTable.new(never, "ab") end, TABLE_NAME },
      { "a 256-character name", function() local _ = LeaseTable.new(never, ("a"):rep(256)) end, TABLE_NAME },
      { "a space", function() local _ = LeaseTable.new(never, "my leases") end, TABLE_NAME },
      { "a newline", function() local _ = LeaseTable.new(never, "leases\n") end, TABLE_NAME },
      { "opts not a table", function() local _ = LeaseTable.new(never, "leases", "x") end,
        "leases.table.new: opts must be a table" },
      { "sleep not a function", function() local _ = LeaseTable.new(never, "leases", { sleep = 1 }) end,
        "leases.table.new: opts.sleep must be a function" },
    }
    for _, wait in ipairs({ -1, 0 / 0, math.huge, "5" }) do
      cases[#cases + 1] = { "wait_timeout " .. tostring(wait),
        function() local _ = LeaseTable.new(never, "leases", { wait_timeout = wait }) end,
        "leases.table.new: opts.wait_timeout must be a finite number of seconds >= 0" }
    end
    for _, case in ipairs(cases) do
      it(case[1], function() fails(case[2], case[3]) end)
    end

    it("takes a client, a valid name and good options (the edges of each)", function()
      assert.is_table(LeaseTable.new(never, "abc"))
      assert.is_table(LeaseTable.new(never, ("a"):rep(255)))
      assert.is_table(LeaseTable.new(never, "my-leases_v1.0", { wait_timeout = 0, sleep = function() end }))
      assert.is_table(LeaseTable.new(ds.dynamodb({ region = "us-east-1", endpoint = "http://127.0.0.1:9",
        credentials = { access_key_id = "AKID", secret_access_key = "secret" } }), "leases"))
    end)
  end)

  describe("methods", function()
    local lt = LeaseTable.new(never, "leases")
    -- Each method with good arguments; a case replaces one of them.
    local good = {
      list = { ARN },
      get = { ARN, "s1" },
      renew = { ARN, "s1", "w", 1 },
      take = { ARN, "s1", "w", 1, "v" },
      checkpoint = { ARN, "s1", "w", 1, "100", { at = "100" } },
      release = { ARN, "s1", "w", 1 },
      delete = { ARN, "s1" },
      create = { ARN, { shard_id = "s1", checkpoint = "TRIM_HORIZON" } },
    }
    local bad_key_parts = { NIL, "", "a\nb", "a\0b", "tab\there", "del\127", "a|b", 5, {} }
    local bad_names = { NIL, "", "w\n", "w\r", "w\0", "\27[31m", 7, true }
    local bad_counters = { NIL, -1, 1.5, "1", 2 ^ 53, math.huge, 0 / 0, true }
    local bad_checkpoints = { NIL, "", "abc", "12a", " 12", "-12", "1.5", "AT_TIMESTAMP", "latest", 12 }
    local bad_positions = { "x", 5, true, { 1, 2 }, ds.empty_list, { f = print }, { [1] = 1, x = 2 } }

    local cases = {}
    local function case(method, index, values, message)
      for _, value in ipairs(values) do cases[#cases + 1] = { method, index, value, message } end
    end
    for method, args in pairs(good) do
      case(method, 1, bad_key_parts, method .. ": stream_arn must be a " .. KEY_PART)
      if #args >= 2 and method ~= "create" then
        case(method, 2, bad_key_parts, method .. ": shard_id must be a " .. KEY_PART)
      end
      if #args >= 3 then case(method, 3, bad_names, method .. ": owner must be a " .. NAME) end
      if #args >= 4 then case(method, 4, bad_counters, method .. ": " .. COUNTER) end
    end
    case("take", 5, { "", "v\n", 9 }, "take: previous_owner must be a " .. NAME)
    case("checkpoint", 5, bad_checkpoints, "checkpoint: " .. CHECKPOINT)
    case("checkpoint", 6, bad_positions, "checkpoint: " .. POSITION)

    for method, args in pairs(good) do
      it(method .. " with the good arguments gets as far as the client", function()
        local ok, err = pcall(lt[method], lt, unpack(args, 1, #args))
        assert.is_false(ok)
        assert.matches("nothing may be sent, but %a+ was", err)
      end)
    end

    for _, c in ipairs(cases) do
      local method, index, value, message = c[1], c[2], c[3], c[4]
      it(method .. " argument " .. index .. " = " .. (tostring(value):gsub("%c", "?")), function()
        local args = {}
        for i, v in ipairs(good[method]) do args[i] = v end
        if value == NIL then args[index] = nil else args[index] = value end
        fails(function() local _ = lt[method](lt, unpack(args, 1, #good[method])) end, message)
      end)
    end

    local function lease(fields)
      local l = { shard_id = "s1", checkpoint = "TRIM_HORIZON" }
      for k, v in pairs(fields) do l[k] = v end
      return l
    end
    local create_cases = {
      { "not a table", "x", "create: lease must be a table" },
      { "no lease", nil, "create: lease must be a table" },
      { "no shard_id", { checkpoint = "LATEST" }, "create: lease.shard_id must be a " .. KEY_PART },
      { "a shard_id with '|'", lease({ shard_id = "a|b" }), "create: lease.shard_id must be a " .. KEY_PART },
      { "no checkpoint", { shard_id = "s1" }, "create: " .. CHECKPOINT },
      { "a garbage checkpoint", lease({ checkpoint = "abc" }), "create: " .. CHECKPOINT },
      { "an empty owner", lease({ owner = "" }), "create: lease.owner must be a " .. NAME },
      { "an owner with a newline", lease({ owner = "w\n" }), "create: lease.owner must be a " .. NAME },
      { "a negative counter", lease({ counter = -1 }), "create: " .. COUNTER },
      { "a fractional counter", lease({ counter = 0.5 }), "create: " .. COUNTER },
      { "fractional owner_switches", lease({ owner_switches = 1.5 }),
        "create: lease.owner_switches must be a non-negative integer" },
      { "parents not a table", lease({ parents = "p" }), "create: lease.parents must be a list of shard ids" },
      { "an empty parent", lease({ parents = { "" } }), "create: each of lease.parents must be a " .. KEY_PART },
      { "a parent with '|'", lease({ parents = { "p|q" } }),
        "create: each of lease.parents must be a " .. KEY_PART },
      { "a list position", lease({ position = { 1 } }), "create: " .. POSITION },
    }
    for _, c in ipairs(create_cases) do
      it("create with " .. c[1], function()
        fails(function() local _ = lt:create(ARN, c[2]) end, c[3])
      end)
    end
  end)
end)
