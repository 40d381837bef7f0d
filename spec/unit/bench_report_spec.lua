-- bench/report.lua: section 1 (decode, every page of gen_page.lua against Node)
-- and section 7 (replication): the round of median rate of
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
      "RESULT luajit_ours_decode_records 50000 90.0 1000 1800000 orders",
      "RESULT node 10000 18.0 1000 1800000",
      "RESULT ours_decode_records 90000 54.0 1000 600000 small_items",
      "RESULT node 30000 18.0 1000 600000 small_items",
      "RESULT ours_decode_records 36000 64.8 1000 1800000 orders",
      "RESULT luajit_ours_decode_records 30000 54.0 1000 1800000 orders",
      "RESULT node 12000 21.6 1000 1800000 orders",
      "RESULT ours_decode_records 100000 60.0 1000 600000 small_items",
      "RESULT node 20000 12.0 1000 600000 small_items",
      "RESULT ours_decode_records 50000 90.0 1000 1800000 orders",
      "RESULT luajit_ours_decode_records 45000 81.0 1000 1800000 orders",
      "RESULT node 10000 18.0 1000 1800000 orders",
      "RESULT ours_decode_records 80000 48.0 1000 600000 small_items",
      "RESULT node 25000 15.0 1000 600000 small_items",
    })
  end)

  it("keeps the orders page's rows, LuaJIT's among them", function()
    assert.equal("40,000    72.0     35%", row(text, "ours: ds.decode_records(text)"))
    assert.equal("45,000    81.0     44%", row(text, "ours under LuaJIT"))
    -- rounds: 4.0, 3.0, 5.0
    assert.equal("4.00x   3.0-5.0   >= 4x  met", row(text, "ours / Node"))
    -- rounds: 5.0, 2.5, 4.5
    assert.equal("4.50x   2.5-5.0   >= 4x  met", row(text, "ours under LuaJIT / Node"))
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
