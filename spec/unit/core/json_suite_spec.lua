-- JSONTestSuite's test_parsing (spec/fixtures/JSONTestSuite, MIT): json_decode
-- accepts every y_ file, refuses every n_ file and survives every i_ file;
-- decode_records refuses what json_decode refuses, also with the file's text
-- inside a page (its fast path and json_decode must agree).
local core = require("dynamodb_stream.core")
local helper = require("helper")

local DIR = "spec/fixtures/JSONTestSuite/test_parsing/"

local function files()
  local names = {}
  local p = assert(io.popen("ls -1 " .. DIR))
  for name in p:lines() do
    if name:match("%.json$") then names[#names + 1] = name end
  end
  p:close()
  table.sort(names)
  return names
end

-- Where a value may stand in a GetRecords page: skipped beside Records, and
-- built as a field of a record.
-- (Concatenated, not formatted: Lua 5.1's %s stops at a NUL.)
local PAGES = { { '{"Records":[],"x":', "}" }, { '{"Records":[{"x":', "}]}" } }

-- json_decode's answer: accepted (a value, maybe false or core.null) or not,
-- and it must never raise.
local function json_accepts(text, name)
  local ok, v, err, code = pcall(core.json_decode, text)
  assert(ok, name .. ": json_decode raised: " .. tostring(v))
  if v == nil then
    assert.equals("InvalidJSON", code, name)
    assert.equals("InvalidJSON: ", err:sub(1, 13), name)
    return false
  end
  return true, v
end

local function records_of(text, name)
  local ok, recs, err, code = pcall(core.decode_records, text)
  assert(ok, name .. ": decode_records raised: " .. tostring(recs))
  if recs == nil then assert.is_true(code == "InvalidJSON" or code == "InvalidResponse", name) end
  return recs, code
end

describe("JSONTestSuite test_parsing", function()
  local names = files()

  it("is vendored whole (318 files)", function()
    assert.equals(318, #names)
  end)

  it("json_decode accepts every y_, refuses every n_, survives every i_", function()
    local wrong = {}
    for _, name in ipairs(names) do
      local accepted = json_accepts(helper.read_file(DIR .. name), name)
      local kind = name:sub(1, 2)
      if (kind == "y_" and not accepted) or (kind == "n_" and accepted) then wrong[#wrong + 1] = name end
    end
    assert.same({}, wrong)
  end)

  it("decode_records refuses each file as a page, with json_decode's code when that refuses it", function()
    for _, name in ipairs(names) do
      local text = helper.read_file(DIR .. name)
      local recs, code = records_of(text, name)
      assert.is_nil(recs, name) -- no file is an object with Records
      if not json_accepts(text, name) then assert.equals("InvalidJSON", code, name) end
    end
  end)

  it("decode_records agrees with json_decode on each file inside a page", function()
    for _, name in ipairs(names) do
      local value = helper.read_file(DIR .. name)
      for _, form in ipairs(PAGES) do
        local text = form[1] .. value .. form[2]
        local label = name .. " in " .. form[1]
        local accepted, body = json_accepts(text, label)
        local recs, code = records_of(text, label)
        if name:sub(1, 2) == "y_" then assert.is_true(accepted, label) end
        if name:sub(1, 2) == "n_" then assert.is_false(accepted, label) end
        if accepted then
          assert(recs, label .. ": refused by decode_records: " .. tostring(code))
          assert.same(body.Records, recs)
        else
          assert.is_nil(recs, label)
          assert.equals("InvalidJSON", code, label)
        end
      end
    end
  end)
end)
