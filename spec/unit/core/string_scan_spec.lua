-- Strings read 16 bytes a step (SSE2) or 8 a word (json_lex.h,
-- ds_json_plain_end) by the records decoder (csrc/ds_decode.c) and the filter
-- (csrc/filter.c), and B values through the base64 decoder (csrc/base64.c:
-- 16 characters a step with SSSE3, then a table): every length and every
-- position of the byte that ends a plain run, checked against the value built
-- here, not only against json_decode.
local core = require("dynamodb_stream.core")
local helper = require("helper")

-- Under valgrind, the slowest phase (these loops took 73 s there), the first n
-- kinds of each list (helper.valgrind_subset): every position and length is
-- still read, and every other phase, ASan's included, runs every kind.
local kinds = helper.valgrind_subset

local function page(value_json, nsi_json)
  return '{"Records":[{"eventID":"1","eventName":"INSERT","dynamodb":{"Keys":{"k":{"S":"x"}},'
    .. '"NewImage":{"s":' .. value_json .. '},"SequenceNumber":"1"}}],"NextShardIterator":' .. nsi_json .. "}"
end

-- decode_records of text on its fast path (decode_stats tells): a fall back
-- to the exact path would hide a broken scanner behind json_decode.
local function decode_fast(text)
  local before = core.decode_stats()
  local recs, nsi, code = core.decode_records(text)
  local after = core.decode_stats()
  return recs, nsi, code, after.fast > before.fast
end

-- What ends a plain run, as JSON text and as the decoded bytes.
local SPECIALS = {
  { json = '\\"', bytes = '"' },
  { json = "\\\\", bytes = "\\" },
  { json = "\\n", bytes = "\n" },
  { json = "\\u001f", bytes = "\31" },
  { json = "\\u00e9", bytes = "\195\169" },
}
-- Plain bytes next to the limits of the word test: space, DEL, and '"',
-- '\\' and control bytes with the high bit set (UTF-8 continuation bytes).
local PLAIN = { " ", "\127", "\162", "\220", "\128", "\159", "\255", "~", "!", "[", "]" }

local function filler(n, salt)
  local t = {}
  for i = 1, n do
    t[i] = PLAIN[(i * 7 + salt) % #PLAIN + 1]
  end
  return table.concat(t)
end

describe("string scanning a word at a time", function()
  -- A string of len filler bytes decodes as itself, and with each of specials
  -- put at each position where at(pos, len) holds decodes as the bytes built
  -- here: as the last value of a record and as the text's last member (only
  -- '"}' after it); with in_maps, also as a map key and in a string set.
  local function check_escapes(len, seed, specials, at, in_maps)
    local plain = filler(len, seed)
    local recs, nsi, _, fast = decode_fast(page('{"S":"' .. plain .. '"}', '"' .. plain .. '"'))
    assert(recs, nsi)
    assert.is_true(fast)
    assert.equals(plain, recs[1].dynamodb.NewImage.s)
    assert.equals(plain, nsi)
    for pos = 0, len - 1 do
      if at(pos, len) then
        for _, sp in ipairs(specials) do
          local json = plain:sub(1, pos) .. sp.json .. plain:sub(pos + 1)
          local want = plain:sub(1, pos) .. sp.bytes .. plain:sub(pos + 1)
          recs, nsi, _, fast = decode_fast(page('{"S":"' .. json .. '"}', '"' .. json .. '"'))
          assert(recs, nsi)
          assert.is_true(fast)
          assert.equals(want, recs[1].dynamodb.NewImage.s)
          assert.equals(want, nsi)
          if in_maps then
            recs, nsi = decode_fast(page('{"M":{"' .. json .. '":{"SS":["' .. json .. '","' .. plain .. '"]}}}', "null"))
            assert(recs, nsi)
            local set = recs[1].dynamodb.NewImage.s[want]
            assert.equals(want, set[1])
            assert.equals(plain, set[2])
          end
        end
      end
    end
  end

  local function every_position() return true end

  it("decodes strings of every length 0..40 with an escape at every position, in records and at the text's end", function()
    for len = 0, 40 do check_escapes(len, len, kinds(SPECIALS, 2), every_position, true) end
  end)

  -- ds_json_plain_end passes a long string 64 bytes a test after its first
  -- 48 bytes (16 inline, two steps of 16), then finds the byte in the last
  -- 64 with 16-byte steps: lengths to 200 put the end in the first two
  -- blocks of 64, in their every 16-byte part, and in the tail after them.
  -- Under valgrind (which checks the loads against the text's end, set by the
  -- length) the escape goes at each 16-byte part's first and last byte only.
  local function escape_at(pos, len)
    return not helper.under_valgrind() or pos % 16 == 0 or pos % 16 == 15 or pos == len - 1
  end

  it("decodes strings of every length 0..200 with an escape at every position (the 64-byte steps)", function()
    for len = 0, 200 do check_escapes(len, len + 2, kinds({ SPECIALS[1], SPECIALS[3] }, 1), escape_at, false) end
  end)

  it("rejects a raw control byte at every position of a 200-byte string, as json_decode does", function()
    local plain = filler(200, 11)
    for pos = 0, 199 do
      local s = plain:sub(1, pos) .. "\31" .. plain:sub(pos + 2)
      for _, text in ipairs({ page('{"S":"' .. s .. '"}', "null"), page('{"S":"a"}', '"' .. s .. '"') }) do
        local recs, msg, code = core.decode_records(text)
        assert.is_nil(recs, "accepted a raw control byte at " .. pos)
        assert.equals("InvalidJSON", code)
        local _, want = core.json_decode(text)
        assert.equals(want, msg)
      end
    end
  end)

  it("rejects a raw control byte at every position of every length 0..40, as json_decode does", function()
    for len = 1, 40 do
      local plain = filler(len, 3 * len)
      for pos = 0, len - 1 do
        for _, ctl in ipairs(kinds({ "\0", "\n", "\31" }, 1)) do
          local s = plain:sub(1, pos) .. ctl .. plain:sub(pos + 2)
          for _, text in ipairs({ page('{"S":"' .. s .. '"}', "null"), page('{"S":"a"}', '"' .. s .. '"') }) do
            local recs, msg, code = core.decode_records(text)
            assert.is_nil(recs, "accepted a raw control byte at " .. pos .. " of " .. len)
            assert.equals("InvalidJSON", code)
            local _, want = core.json_decode(text)
            assert.equals(want, msg)
          end
        end
      end
    end
  end)

  it("rejects a string cut off at the text's end, at every length 0..40, escapes or not", function()
    for len = 0, 40 do
      local plain = filler(len, 5 * len)
      for _, s in ipairs({ plain, plain .. "\\", plain .. "\\u00", '\\"' .. plain }) do
        local text = '{"Records":[],"NextShardIterator":"' .. s
        local recs, msg, code = core.decode_records(text)
        assert.is_nil(recs)
        assert.equals("InvalidJSON", code)
        local _, want = core.json_decode(text)
        assert.equals(want, msg)
      end
    end
  end)

  it("lets the filter compare the same strings (filter.c reads them with the same scan)", function()
    local f_cache = {}
    local function filter_for(want)
      local pattern = core.json_encode({ dynamodb = { NewImage = { s = { S = { want } } } } })
      f_cache[want] = f_cache[want] or core.compile_filter({ Filters = { { Pattern = pattern } } })
      return f_cache[want]
    end
    for len = 0, 24 do
      local plain = filler(len, len + 1)
      for pos = 0, len do
        for _, sp in ipairs(kinds(SPECIALS, 1)) do
          local json = plain:sub(1, pos) .. sp.json .. plain:sub(pos + 1)
          local want = plain:sub(1, pos) .. sp.bytes .. plain:sub(pos + 1)
          local text = page('{"S":"' .. json .. '"}', "null")
          local recs, _, filtered = core.decode_records(text, { filter = filter_for(want) })
          assert.equals(1, #recs)
          assert.equals(0, filtered)
          recs, _, filtered = core.decode_records(text, { filter = filter_for(want .. "x") })
          assert.equals(0, #recs)
          assert.equals(1, filtered)
        end
      end
    end
  end)
end)

describe("base64 of B values", function()
  local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

  -- The strict decoder's first bad character (1-based), written out one
  -- character at a time from base64.h's contract; nil when text is good.
  local function first_bad(text)
    local n = #text
    if n % 4 ~= 0 then return n - n % 4 + 1 end
    for g = 1, n, 4 do
      local last = g + 3 == n
      local v, pad = {}, 0
      for j = 0, 3 do
        local c = text:sub(g + j, g + j)
        local d = ALPHABET:find(c, 1, true)
        if not d then
          if c == "=" and last and j >= 2 and (j == 3 or text:sub(g + 3, g + 3) == "=") then
            pad = 4 - j
            break
          end
          return g + j
        end
        v[j] = d - 1
      end
      if pad == 2 and v[1] % 16 ~= 0 then return g + 1 end
      if pad == 1 and v[2] % 4 ~= 0 then return g + 2 end
    end
    return nil
  end

  local function rand_bytes(n)
    local t = {}
    for i = 1, n do t[i] = string.char(math.random(0, 255)) end
    return table.concat(t)
  end

  local function b64_page(b64)
    return page('{"B":"' .. b64 .. '"}', "null")
  end

  -- base64 written here, independently of base64.c's encoder.
  local function encode(bytes)
    local out = {}
    for i = 1, #bytes, 3 do
      local a, b, c = bytes:byte(i, i + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local q = {}
      for j = 1, 4 do
        local d = math.floor(v / 64 ^ (4 - j)) % 64
        q[j] = ALPHABET:sub(d + 1, d + 1)
      end
      if c == nil then q[4] = "=" end
      if b == nil then q[3] = "=" end
      out[#out + 1] = table.concat(q)
    end
    return table.concat(out)
  end

  it("round-trips every length 0..64 through unmarshall, marshall and decode_records", function()
    math.randomseed(17)
    for n = 0, 64 do
      local bytes = rand_bytes(n)
      local b64 = encode(bytes)
      local item = core.unmarshall({ b = { B = b64 } })
      assert.equals(bytes, item.b)
      assert.equals(b64, core.marshall(item).b.B)
      local recs, nsi, _, fast = decode_fast(b64_page(b64))
      assert(recs, nsi)
      assert.is_true(fast)
      assert.equals(bytes, recs[1].dynamodb.NewImage.s)
      recs = decode_fast(page('{"BS":["' .. b64 .. '","' .. encode(bytes .. "x") .. '"]}', "null"))
      assert.equals(bytes, recs[1].dynamodb.NewImage.s[1])
      assert.equals(bytes .. "x", recs[1].dynamodb.NewImage.s[2])
    end
  end)

  it("takes exactly the alphabet at every position of a 16-character block", function()
    -- 48 characters: three blocks for the SSSE3 step, the last one also
    -- decoded by the table when a bad byte sends the text there
    math.randomseed(7)
    local b64 = encode(rand_bytes(36))
    for pos = 1, #b64 do
      if not helper.under_valgrind() or pos % 16 <= 1 or pos % 16 == 8 then
        for byte = 0, 255 do
          local c = string.char(byte)
          local text = b64:sub(1, pos - 1) .. c .. b64:sub(pos + 1)
          local ok, got = pcall(core.unmarshall, { b = { B = text } })
          local at = first_bad(text)
          if at == nil then
            assert(ok, got)
            assert.equals(text, encode(got.b)) -- every bit of each 6-bit value in place
          else
            assert.is_false(ok, text)
            assert.equals(("unmarshall: bad base64 in B (character %d of 48) at b"):format(at), got)
          end
        end
      end
    end
  end)

  it("reports every single-character corruption at the position base64.h defines", function()
    math.randomseed(42)
    local bad_chars = { "=", "*", " ", "-", "_", "\0", "\255", "A", "/", "+" }
    for n = 0, 64 do
      local b64 = encode(rand_bytes(n))
      for pos = 1, #b64 do
        for _, c in ipairs(kinds(bad_chars, 2)) do
          local text = b64:sub(1, pos - 1) .. c .. b64:sub(pos + 1)
          local at = first_bad(text)
          local ok, err = pcall(core.unmarshall, { b = { B = text } })
          if at == nil then
            assert(ok, err)
          else
            assert.is_false(ok, text)
            assert.equals(("unmarshall: bad base64 in B (character %d of %d) at b"):format(at, #text), err)
            -- decode_records reports the same (its exact path words the error)
            local recs, msg = core.decode_records(page('{"B":"' .. text:gsub("%c", function(ch)
              return ("\\u%04x"):format(ch:byte())
            end) .. '"}', "null"))
            assert.is_nil(recs)
            assert.equals(("InvalidResponse: unmarshall: bad base64 in B (character %d of %d) at NewImage.s (record 1)")
              :format(at, #text), msg)
          end
        end
      end
      -- cut short or with a character more: the incomplete final group
      for _, text in ipairs({ b64 .. "A", b64 .. "AB", b64:sub(1, -2) }) do
        if #text % 4 ~= 0 then
          local ok, err = pcall(core.unmarshall, { b = { B = text } })
          assert.is_false(ok)
          assert.equals(("unmarshall: bad base64 in B (character %d of %d) at b"):format(first_bad(text), #text), err)
        end
      end
    end
  end)
end)
