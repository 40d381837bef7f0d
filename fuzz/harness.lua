-- fuzz/harness.lua: the properties fuzz_lua.c checks, one function per target,
-- called as harness[target](core, input) in a fresh Lua state per input.
--
-- A clean rejection (json_decode's nil, "InvalidJSON: ...", "InvalidJSON", or
-- a raised string that names the function) returns normally. A broken
-- property calls error(), which fuzz_lua.c turns into an abort.
-- FUZZ_STRICT=1 also treats a clean raise on a round trip as broken (the value
-- came out of our own decoder, so it should go back in); CI does not set it.
local H = {}

local strict = os.getenv("FUZZ_STRICT") == "1"

local function fail(fmt, ...)
  error("BROKEN: " .. string.format(fmt, ...), 0)
end

-- A raise is clean when it is a string naming the function that raised it
-- (or the Lua runtime's own memory / stack messages).
local function clean(fn, err)
  if type(err) ~= "string" then
    fail("%s raised a %s, not a message", fn, type(err))
  end
  if not (err:find(fn, 1, true) or err:find("not enough memory", 1, true) or err:find("stack overflow", 1, true)) then
    fail("%s raised an unclear message: %q", fn, err)
  end
end

-- Structural equality of decoded / unmarshalled values. Metatables: shared
-- markers compare by identity, per-table ones (__binary) by content,
-- decimal boxes by value (their __eq).
local deep_equal
local function meta_equal(ma, mb)
  if ma == mb then return true end
  if type(ma) ~= "table" or type(mb) ~= "table" then return false end
  if rawget(ma, "__ddb") ~= rawget(mb, "__ddb") then return false end
  return deep_equal(rawget(ma, "__binary"), rawget(mb, "__binary"), 0)
end

-- Numbers: json_encode prints a float in its shortest form, so a float of
-- 2^53 or more with a fraction in its source text (-192233720368547807.1)
-- prints as integral digits ("-192233720368547800") that json_decode reads
-- as that exact integer, 8 away from the float's own value. Equal as doubles,
-- which is all JSON promises, so this passes unless FUZZ_STRICT=1
-- (fuzz/regressions/json/float-above-2p53.json).
function deep_equal(a, b, depth)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" and math.type(a) ~= math.type(b) and not strict then
    return a + 0.0 == b + 0.0
  end
  if type(a) ~= "table" then return a == b end
  if depth > 2000 then fail("deep_equal: deeper than any decoder allows") end
  local ma, mb = getmetatable(a), getmetatable(b)
  if not meta_equal(ma, mb) then return false end
  if ma ~= nil and rawget(ma, "__ddb") == "N" then return a == b end
  local n = 0
  for k, v in next, a do
    n = n + 1
    local w = rawget(b, k)
    if w == nil or not deep_equal(v, w, depth + 1) then return false end
  end
  for _ in next, b do n = n - 1 end
  return n == 0
end

local function describe(v)
  local core = package.loaded["dynamodb_stream.core"]
  local ok, s = pcall(core.json_encode, v)
  return ok and s:sub(1, 300) or ("<" .. tostring(v) .. ">")
end

-- json_decode never raises on a string; returns a value or the InvalidJSON triple.
local function decode(core, text)
  local ok, v, err, code = pcall(core.json_decode, text)
  if not ok then
    clean("json_decode", v)
    return nil
  end
  if v == nil then
    if type(err) ~= "string" or code ~= "InvalidJSON" or err:sub(1, 13) ~= "InvalidJSON: " then
      fail("json_decode failure is not nil, 'InvalidJSON: ...', 'InvalidJSON': %s, %s", tostring(err), tostring(code))
    end
    return nil
  end
  return v
end

-- (a) json_decode of arbitrary bytes; json_encode of the result succeeds or
-- raises cleanly, and decoding the encoding gives the same value back.
function H.json(core, text)
  local v = decode(core, text)
  if v == nil then return end
  local ok, s = pcall(core.json_encode, v)
  if not ok then
    if strict then fail("json_encode raised on a decoded value: %s", tostring(s)) end
    return clean("json_encode", s)
  end
  if type(s) ~= "string" then fail("json_encode returned a %s", type(s)) end
  local v2, err = core.json_decode(s)
  if v2 == nil then fail("json_decode rejects json_encode's output (%s): %s", tostring(err), s:sub(1, 300)) end
  if not deep_equal(v, v2, 0) then fail("json round trip changed the value: %s", s:sub(1, 300)) end
end

-- unmarshall (or unmarshall_value) of t; when it succeeds, marshall of the
-- result unmarshalls to the same value, and its JSON decodes to the same AVs.
local function round_trip(core, t, opts, un, mar)
  local ok, u = pcall(core[un], t, opts)
  if not ok then return clean(un, u) end
  if un == "unmarshall" and type(u) ~= "table" then fail("unmarshall returned a %s", type(u)) end
  local ok2, m = pcall(core[mar], u)
  if not ok2 then
    if strict then fail("%s raised on %s's result: %s (input %s)", mar, un, tostring(m), describe(t)) end
    return clean(mar, m)
  end
  local ok3, u2 = pcall(core[un], m, opts)
  if not ok3 then fail("%s rejects %s's output: %s (input %s)", un, mar, tostring(u2), describe(t)) end
  if not deep_equal(u, u2, 0) then fail("%s(%s(x)) ~= x for input %s", un, mar, describe(t)) end
  local ok4, s = pcall(core.json_encode, m)
  if not ok4 then fail("json_encode rejects %s's output: %s", mar, tostring(s)) end
  local back = core.json_decode(s)
  local ok5, u3 = pcall(core[un], back, opts)
  if not ok5 then fail("%s rejects %s's output after JSON: %s (%s)", un, mar, tostring(u3), s:sub(1, 300)) end
  if not deep_equal(u, u3, 0) then fail("JSON round trip of %s's output changed it: %s", mar, s:sub(1, 300)) end
end

local STRING_NUMBERS = { numbers = "string" }
local MAX_TABLES = 64

-- (b) every table inside the decoded response (breadth first, at most
-- MAX_TABLES) is tried as an item (unmarshall) and as one AttributeValue
-- (unmarshall_value), with both number modes, so AVs under Records[i].dynamodb,
-- Items[i], Keys, LastEvaluatedKey... are all reached.
function H.av(core, text)
  local v = decode(core, text)
  if type(v) ~= "table" then
    if v ~= nil then round_trip(core, v, nil, "unmarshall_value", "marshall_value") end
    return
  end
  local queue, head, seen = { v }, 1, { [v] = true }
  while queue[head] and head <= MAX_TABLES do
    local t = queue[head]
    head = head + 1
    round_trip(core, t, nil, "unmarshall", "marshall")
    round_trip(core, t, STRING_NUMBERS, "unmarshall", "marshall")
    round_trip(core, t, nil, "unmarshall_value", "marshall_value")
    round_trip(core, t, STRING_NUMBERS, "unmarshall_value", "marshall_value")
    for _, c in next, t do
      if type(c) == "table" and not seen[c] then
        seen[c] = true
        queue[#queue + 1] = c
      end
    end
  end
end

-- (c) core.decode_records(text[, opts]) (issue 5): the one-pass GetRecords
-- decoder. Its result is defined as json_decode + unmarshall of each record's
-- Keys / NewImage / OldImage (ds_decode.c's exact path); exact() below is that
-- definition in Lua. For every input, with both number modes, decode_records
-- must agree with it: the same records and NextShardIterator, or a failure
-- with the same code (InvalidJSON / InvalidResponse). It is called twice, with
-- a full collection between, so its reused parse arena is exercised too.
local IMAGES = { "Keys", "NewImage", "OldImage" }

local function exact(core, text, opts)
  local body, err, code = core.json_decode(text)
  if body == nil then return nil, err, code end
  local function is_object(v) return type(v) == "table" and getmetatable(v) == nil end
  local function is_array(v) return type(v) == "table" and getmetatable(v) == core.list_mt end
  local function bad(msg) return nil, "InvalidResponse: " .. msg, "InvalidResponse" end
  if not is_object(body) then return bad("the body is not a JSON object") end
  local recs = body.Records
  if recs == nil then return bad("the body has no Records") end
  if not is_array(recs) then return bad("Records is not an array") end
  local nsi = body.NextShardIterator
  if nsi == core.null then
    nsi = nil
  elseif nsi ~= nil and type(nsi) ~= "string" then
    return bad("NextShardIterator is not a string")
  end
  for i = 1, #recs do
    local rec = recs[i]
    if not is_object(rec) then return bad("record is not an object") end
    local d = rec.dynamodb
    if d ~= nil then
      if not is_object(d) then return bad("dynamodb is not an object") end
      for _, name in ipairs(IMAGES) do
        local image = d[name]
        if image ~= nil then
          if not is_object(image) then return bad("image is not an object") end
          local ok, u = pcall(core.unmarshall, image, opts)
          if not ok then
            clean("unmarshall", u)
            return bad(u)
          end
          d[name] = u
        end
      end
    end
  end
  return recs, nsi
end

local function records_once(core, text, opts, want_recs, want_nsi, want_code)
  local ok, recs, nsi, code = pcall(core.decode_records, text, opts)
  if not ok then
    clean("decode_records", recs)
    if want_recs ~= nil then fail("decode_records raised where the exact path succeeds: %s", tostring(recs)) end
    return
  end
  if want_recs == nil then
    if recs ~= nil then fail("decode_records accepts what the exact path rejects (%s): %q", want_code, text:sub(1, 200)) end
    if type(nsi) ~= "string" or code ~= want_code or nsi:sub(1, #code + 2) ~= code .. ": " then
      fail("decode_records failed with %s / %s, the exact path with %s", tostring(nsi), tostring(code), want_code)
    end
    return
  end
  if recs == nil then
    fail("decode_records rejects what the exact path accepts: %s (%q)", tostring(nsi), text:sub(1, 200))
  end
  if nsi ~= want_nsi then fail("NextShardIterator %q, exact path %q", tostring(nsi), tostring(want_nsi)) end
  if not deep_equal(recs, want_recs, 0) then
    fail("decode_records differs from json_decode + unmarshall: %s vs %s", describe(recs), describe(want_recs))
  end
end

-- The text with the first letter of every key written as a \u escape
-- ("Records" -> "\u0052ecords", {"S": -> {"\u0053":): such keys are decoded
-- into decode_records' scratch buffer, which the escaped strings after them
-- grow and move (issue 11 item 1). Whatever it gives is checked as any input,
-- first, while the scratch buffer of this input's fresh Lua state is cold.
local function escape_keys(text)
  return (text:gsub('"(%a)([^"\\]*"%s*:)', function(c, rest) return ('"\\u%04x'):format(c:byte()) .. rest end))
end

-- (d) With opts.filter (issue 16) the filter runs on each record's text on
-- both paths; one that passes every record must change nothing: the same
-- records and NextShardIterator, or a failure with the same code.
local PASS_ALL = '{"$or":[{"f":[{"exists":true}]},{"f":[{"exists":false}]}]}'

function H.records(core, text)
  if core.decode_records == nil then return end
  local escaped = escape_keys(text)
  local pass_all = core.compile_filter and core.compile_filter(PASS_ALL)
  for _, t in ipairs(escaped ~= text and { escaped, text } or { text }) do
    for _, opts in ipairs({ false, STRING_NUMBERS }) do
      local o = opts or nil
      local want_recs, want_nsi, want_code = exact(core, t, o)
      records_once(core, t, o, want_recs, want_nsi, want_code)
      collectgarbage()
      records_once(core, t, o, want_recs, want_nsi, want_code)
      if pass_all then
        records_once(core, t, { numbers = o and o.numbers, filter = pass_all }, want_recs, want_nsi, want_code)
      end
    end
  end
end

return H
