-- bench/report.lua: section 1 (decode, every page of gen_page.lua against Node,
-- our values alone on every page under Lua 5.4 and LuaJIT, the filtered decode) and section 7 (replication): the round of median rate of
-- each copier, the range of its rounds, the ratios, and what was not run.

local helper = require("helper")

-- bench/report.lua's whole output for these results lines (written in dir).
local function full_report(dir, lines)
  local results = dir .. "/results.txt"
  helper.write_file(results, table.concat(lines, "\n") .. "\n")
  local out = assert(helper.popen("lua5.4 bench/report.lua " .. results .. " 2>&1"))
  local text = out:read("*a")
  assert.is_true(out:close(), text)
  return text
end

-- What follows a row's label in text (a report or a part of one).
local function row(text, label)
  return ("\n" .. text):match("\n   " .. label:gsub("%p", "%%%0") .. "%s+([^\n]*)")
end

describe("bench/report.lua, section 7", function()
  local dir
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.rmdir(dir) end)

  local function report(lines)
    local text = full_report(dir, lines)
    return assert(text:match("\n(7%. Replication.*)$"), text)
  end

  it("shows each copier's round of median rate, the range of its rounds, and the ratios", function()
    local text = report({
      "META repl_items 20000", "META repl_item_bytes 1094", "META repl_changes 10000",
      "META repl_rounds 3", "META repl_check verify",
      -- name, n, user, sys, peak RSS KiB, wall, DynamoDB Local CPU: rates 2,000 / 4,000 / 5,000 per s
      "REPL ours_bootstrap_1 20000 0.50 0.10 40960 10.00 3.00",
      "REPL ours_bootstrap_1 20000 0.70 0.10 40960 4.00 3.50",
      "REPL ours_bootstrap_1 20000 0.80 0.20 40960 5.00 4.00",
      "REPL node_copy_1 20000 2.00 0.50 131072 8.00 5.00",
      "REPL ours_follow 10000 0.40 0.10 102400 2.00 -",
      "REPL node_follow 10000 1.50 0.50 131072 5.00 1.50",
    })
    -- median round: 4,000/s (wall 5.00, CPU 1.00 s = 50 us per item, 40 MB, DynamoDB Local 4.00 s)
    assert.equal("4,000   2,000-5,000   5.00  1.00      50    40  4.00",
      row(text, "ours: replicate --until-caught-up, 1 segment"))
    assert.equal("2,500   2,500-2,500   8.00  2.50     125   128  5.00",
      row(text, "Node: Scan + BatchWrite of 25 (AWS's guide), 1 segment"))
    assert.equal("not run", row(text, "ours: the same, --segments 4"))
    assert.equal("5,000   5,000-5,000   2.00  0.50      50   100     -",
      row(text, "ours: replicate from its checkpoint --until-caught-up"))
    assert.equal("1.60x", row(text, "bootstrap rate, ours / Node, 1 segment each"))
    assert.equal("2.50x", row(text, "follow rate, ours / Node"))
    assert.is_nil(row(text, "bootstrap rate, ours / Node, 4 segments each"))
    assert.matches("to equal SRC (dynamodb-stream verify)", text, 1, true)
    assert.matches("20,000 items of about 1094 bytes", text, 1, true)
  end)

  it("says when the section did not run", function()
    assert.equal("7. Replication throughput:                                   not run\n",
      report({ "META date x" }))
  end)
end)

describe("bench/report.lua, section 1", function()
  local dir, text
  teardown(function() helper.rmdir(dir) end)

  local function report(lines) return full_report(dir, lines) end

  -- Three rounds of every decoder; lines without a page are the "orders" page's.
  setup(function()
    dir = helper.tmpdir()
    text = report({
      "RESULT ours_decode_records 40000 72.0 1000 1800000",
      "RESULT lua_build 44000 79.2 1000 1800000",
      "RESULT luajit_ours_decode_records 50000 90.0 1000 1800000 orders",
      "RESULT luajit_lua_build 60000 108.0 1000 1800000 orders",
      "RESULT node 10000 18.0 1000 1800000",
      "RESULT cjson_arena 300000 540.0 1000 1800000 orders",
      "RESULT ours_filtered 200000 360.0 1000 1800000 orders",
      "KEPT ours_filtered 98 orders",
      "RESULT luajit_ours_filtered 250000 450.0 1000 1800000 orders",
      "KEPT luajit_ours_filtered 98 orders",
      "RESULT node_filtered 10000 18.0 1000 1800000 orders",
      "KEPT node_filtered 98 orders",
      "RESULT ours_decode_records 90000 54.0 1000 600000 small_items",
      "RESULT lua_build 130000 78.0 1000 600000 small_items",
      "RESULT node 30000 18.0 1000 600000 small_items",
      "RESULT ours_decode_records 36000 64.8 1000 1800000 orders",
      "RESULT lua_build 45000 81.0 1000 1800000 orders",
      "RESULT luajit_ours_decode_records 30000 54.0 1000 1800000 orders",
      "RESULT luajit_lua_build 36000 64.8 1000 1800000 orders",
      "RESULT node 12000 21.6 1000 1800000 orders",
      "RESULT cjson_arena 300000 540.0 1000 1800000 orders",
      "RESULT ours_filtered 180000 324.0 1000 1800000 orders",
      "KEPT ours_filtered 98 orders",
      "RESULT luajit_ours_filtered 150000 270.0 1000 1800000 orders",
      "KEPT luajit_ours_filtered 98 orders",
      "RESULT node_filtered 15000 27.0 1000 1800000 orders",
      "KEPT node_filtered 98 orders",
      "RESULT ours_decode_records 100000 60.0 1000 600000 small_items",
      "RESULT lua_build 140000 84.0 1000 600000 small_items",
      "RESULT node 20000 12.0 1000 600000 small_items",
      "RESULT ours_decode_records 50000 90.0 1000 1800000 orders",
      "RESULT lua_build 55000 99.0 1000 1800000 orders",
      "RESULT luajit_ours_decode_records 45000 81.0 1000 1800000 orders",
      "RESULT luajit_lua_build 63000 113.4 1000 1800000 orders",
      "RESULT node 10000 18.0 1000 1800000 orders",
      "RESULT cjson_arena 300000 540.0 1000 1800000 orders",
      "RESULT ours_filtered 240000 432.0 1000 1800000 orders",
      "KEPT ours_filtered 98 orders",
      "RESULT luajit_ours_filtered 300000 540.0 1000 1800000 orders",
      "KEPT luajit_ours_filtered 98 orders",
      "RESULT node_filtered 20000 36.0 1000 1800000 orders",
      "KEPT node_filtered 98 orders",
      "RESULT ours_decode_records 80000 48.0 1000 600000 small_items",
      "RESULT lua_build 110000 66.0 1000 600000 small_items",
      "RESULT node 25000 15.0 1000 600000 small_items",
    })
  end)

  it("keeps the orders page's rows, LuaJIT's among them", function()
    assert.equal("40,000    72.0     35%", row(text, "ours: ds.decode_records(text)"))
    assert.equal("45,000    81.0     44%", row(text, "ours under LuaJIT"))
    -- rounds: 4.0, 3.0, 5.0
    assert.equal("4.00x   3.0-5.0    >= 4x  met", row(text, "ours / Node"))
    -- rounds: 5.0, 2.5, 4.5
    assert.equal("4.50x   2.5-5.0    >= 4x  met", row(text, "ours under LuaJIT / Node"))
    -- rounds: 1.10, 1.25, 1.10
    assert.equal("1.10x   1.1-1.2 <= 1.25x  met", row(text, "values alone / ours (= ours' time / the values' time)"))
  end)

  it("shows our values alone on every page: against Node (info) and against ours", function()
    local part = assert(text:match("\n   Our result's values alone(.-)\n   The same under LuaJIT"), text)
    -- Node: rounds 4.4, 3.75, 5.5; ours: 1.10, 1.25, 1.10
    assert.equal("45,000    4.40x   3.8-5.5             1.10x   1.1-1.2  met", row(part, "orders"))
    -- Node: rounds 4.33, 7.0, 4.4; ours: 1.44, 1.40, 1.375
    assert.equal("130,000    4.40x   4.3-7.0             1.40x   1.4-1.4  NOT MET", row(part, "small_items"))
  end)

  it("shows our values alone under LuaJIT: against Node and against ours under LuaJIT, both info", function()
    local part = assert(text:match("\n   The same under LuaJIT(.-)\n\n"), text)
    -- Node: rounds 6.0, 3.0, 6.3; ours under LuaJIT: 1.2, 1.2, 1.4
    assert.equal("60,000    6.00x   3.0-6.3             1.20x   1.2-1.4", row(part, "orders"))
    assert.is_nil(row(part, "small_items"))  -- no LuaJIT rows for this page
  end)

  it("shows the filtered decode against Node and against the cJSON-arena floor", function()
    local part = assert(text:match("\n(1c%..-)\n\n"), text)
    assert.matches("a filter that keeps 98 of its 1,000 records", part, 1, true)
    assert.equal("200,000   360.0     30%", row(part, "ours: ds.decode_records(text, { filter = pattern })"))
    assert.equal("250,000   450.0     60%", row(part, "ours under LuaJIT"))
    assert.equal("15,000    27.0     67%", row(part, "Node: JSON.parse + unmarshall, then the condition in JavaScript"))
    -- rounds: 20, 12, 12
    assert.equal("12.00x 12.0-20.0   >= 15x  NOT MET", row(part, "ours / Node, filtered"))
    -- rounds: 25, 10, 15
    assert.equal("15.00x 10.0-25.0   >= 15x  met", row(part, "ours under LuaJIT / Node, filtered"))
    -- rounds: 1.5, 1.67, 1.25
    assert.equal("1.50x   1.2-1.7    <= 2x  met", row(part, "cJSON-arena floor / ours filtered (times slower than floor)"))
    -- rounds: 1.2, 2.0, 1.0
    assert.equal("1.20x   1.0-2.0    <= 2x  met", row(part, "cJSON-arena floor / ours under LuaJIT, filtered"))
  end)

  it("fails when the filtered decoders kept different numbers of records", function()
    helper.write_file(dir .. "/kept.txt", table.concat({
      "RESULT ours_filtered 200000 360.0 1000 1800000 orders", "KEPT ours_filtered 98 orders",
      "RESULT node_filtered 10000 18.0 1000 1800000 orders", "KEPT node_filtered 97 orders",
    }, "\n") .. "\n")
    local out = assert(helper.popen("lua5.4 bench/report.lua " .. dir .. "/kept.txt 2>&1"))
    local said = out:read("*a")
    assert.is_falsy(out:close(), said)
    assert.matches("page orders: the filtered decoders kept different numbers of records: "
      .. "node_filtered kept 97, ours_filtered kept 98", said, 1, true)
  end)

  it("shows every page's ratio to Node, the median of the rounds' ratios", function()
    assert.equal("1800     40,000     45,000     10,000    4.00x   3.0-5.0  met        4.50x   2.5-5.0  met",
      row(text, "orders"))
    -- rounds: 3.0, 5.0, 3.2; no LuaJIT rows for this page
    assert.equal("600     90,000          -     25,000    3.20x   3.0-5.0  NOT MET  n/a",
      row(text, "small_items"))
  end)
end)

describe("bench/report.lua, section 2", function()
  local dir
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.rmdir(dir) end)

  local function report(lines)
    local text = full_report(dir, lines)
    return assert(text:match("\n(2%. End to end.-)\n3%."), text)
  end

  it("shows small and large items, each against Node of the same items, run and fetch loop alike", function()
    local text = report({
      -- name, user, sys, peak RSS KiB, wall, events, polls
      "E2E node_startup 0.10 0.00 51200 0.30 0 0",
      "E2E node_dynamodb_stream 1.80 0.20 102400 2.00 20000 20",
      "E2E ours_startup 0.00 0.00 10240 0.01 0 0",
      "E2E ours 0.30 0.10 20480 0.50 20000 2",
      "E2E ours_fetch 0.40 0.10 40960 0.60 20000 2",
      "E2E ours_luajit 0.20 0.00 15360 0.40 20000 2",
      "E2E node_dynamodb_stream_large 4.00 0.00 204800 4.00 20000 40",
      "E2E ours_fetch_large 0.80 0.00 102400 1.00 20000 4",
    })
    local small, large = text:match("small items.-\n(.-)\n   large items.-\n(.*)$")
    assert.equal("0.40       20.0       20.0      20.0    0.50     2",
      row(small, "ours: ds.new + stream:run, defaults (Lua 5.4)"))
    assert.equal("0.20       10.0          -      15.0    0.40     2", row(small, "ours under LuaJIT: stream:run"))
    assert.equal("0.20x  <= 0.20x  met", row(small, "CPU per record, run / Node"))
    assert.equal("0.20x  <= 0.25x  met", row(small, "peak RSS, run / Node"))
    assert.equal("0.40x  <= 0.25x  NOT MET", row(small, "peak RSS, fetch loop / Node"))
    assert.equal("0.15x  <= 0.25x  met", row(small, "peak RSS, LuaJIT run / Node"))
    assert.equal("not run", row(large, "ours: ds.new + stream:run, defaults (Lua 5.4)"))
    assert.equal("0.20x  <= 0.20x  met", row(large, "CPU per record, fetch loop / Node"))
    assert.equal("0.50x  <= 0.25x  NOT MET", row(large, "peak RSS, fetch loop / Node"))
    assert.is_nil(row(large, "peak RSS, run / Node"))
  end)
end)
