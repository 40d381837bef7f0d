-- http:post_many against the loopback server (spec/support/http_server.py):
-- parallel POSTs over one libcurl multi handle. Also run under valgrind by
-- scripts/run-specs, so keep it quick.
local core = require("dynamodb_stream.core")
local helper = require("helper")
local start_server, stop_server = helper.http_server, helper.stop_http_server
local parse_echo = helper.parse_echo

local SECRET = "AKIA-SECRET-multi-1a2b3c4d"
local AUTH = "Authorization: AWS4-HMAC-SHA256 Credential=" .. SECRET

local function elapsed(f)
  local t0 = core.monotime()
  local r = f()
  return core.monotime() - t0, r
end

-- A result of post_many that is a transport failure with the given code.
local function assert_failed(code, r, label)
  assert.is_nil(r[1], label .. ": expected a failure, got status " .. tostring(r[1]))
  assert.equals(code, r[3], label .. ": " .. tostring(r[2]))
  assert.equals(code, r[2]:match("^(%w+): "), label)
  assert.is_nil(r[2]:find(SECRET, 1, true), label .. ": error message leaks a header value")
end

describe("core.http post_many", function()
  local srv, base, http

  setup(function()
    srv = start_server()
    assert(srv.http and srv.refused, "the loopback server did not start")
    base = "http://127.0.0.1:" .. srv.http
  end)

  teardown(function()
    stop_server(srv)
  end)

  before_each(function()
    http = core.http({ timeout = 5, connect_timeout = 2 })
  end)

  after_each(function()
    http:close()
  end)

  it("returns an empty sequence for no requests", function()
    local results = http:post_many({})
    assert.same({}, results)
    assert.same({}, http:post_many({}, 1))
  end)

  it("returns the results in the order of the requests, headers and bodies intact", function()
    local reqs = {}
    for i = 1, 12 do
      if i % 3 == 0 then
        reqs[i] = { base .. "/status/" .. (500 + i) }
      else
        local body = ("req %d \0 \255 {\"i\":%d}"):format(i, i) .. ("x"):rep(i * 100)
        reqs[i] = { base .. "/echo", { "X-Amz-Target: Test.Op" .. i, AUTH }, body }
      end
    end
    local results = http:post_many(reqs, 5)
    assert.equals(#reqs, #results)
    for i, r in ipairs(results) do
      if i % 3 == 0 then
        assert.equals(500 + i, r[1])
        assert.equals("status " .. (500 + i), r[2])
      else
        assert.equals(200, r[1])
        assert.equals("table", type(r[3]))
        local echo = parse_echo(r[2])
        assert.equals("POST", echo.method)
        assert.equals(reqs[i][3], echo.body)
        assert.equals("Test.Op" .. i, echo.headers["x-amz-target"])
        assert.equals(AUTH:match(": (.*)$"), echo.headers["authorization"])
        assert.is_nil(echo.headers["expect"])
      end
    end
  end)

  it("runs 64 slow requests at once in about the time of one", function()
    local reqs = {}
    for i = 1, 64 do reqs[i] = { base .. "/slow/200", {}, "{}" } end
    local t, results = elapsed(function() return http:post_many(reqs, 64) end)
    for i, r in ipairs(results) do assert.equals(200, r[1], "request " .. i .. ": " .. tostring(r[2])) end
    assert.is_true(t >= 0.2, t)
    assert.is_true(t < 2, ("64 x 200 ms took %.2f s"):format(t))
  end)

  it("keeps at most max_in_flight requests in flight (16 by default)", function()
    local reqs = {}
    for i = 1, 8 do reqs[i] = { base .. "/slow/200" } end
    local t, results = elapsed(function() return http:post_many(reqs, 4) end)
    for _, r in ipairs(results) do assert.equals(200, r[1]) end
    assert.is_true(t >= 0.4, ("8 x 200 ms, 4 at once, took %.2f s"):format(t))
    assert.is_true(t < 2, t)
    for i = 9, 32 do reqs[i] = { base .. "/slow/200" } end
    t = elapsed(function() return http:post_many(reqs) end)
    assert.is_true(t >= 0.4 and t < 2, ("32 x 200 ms, 16 at once, took %.2f s"):format(t))
  end)

  it("puts each failure, with its code, in its own slot", function()
    local h = core.http({ timeout = 1, connect_timeout = 1, max_body = 1000 })
    finally(function() h:close() end)
    local reqs = {
      { base .. "/echo", { AUTH }, "first" },
      { "http://127.0.0.1:" .. srv.refused .. "/x", { AUTH }, "{}" },
      { base .. "/slow/3000", { AUTH }, "{}" },
      { base .. "/status/503", { AUTH }, "{}" },
      { base .. "/truncated", { AUTH }, "{}" },
      { base .. "/reset", { AUTH }, "{}" },
      { base .. "/big/5000", { AUTH }, "" },
      { base .. "/big?bytes=3000&chunked=1", { AUTH }, "" },
      { base .. "/echo", { AUTH }, "last" },
    }
    local t, results = elapsed(function() return h:post_many(reqs, 16) end)
    assert.is_true(t < 2.5, t)
    assert.equals(#reqs, #results)
    assert.equals("first", parse_echo(results[1][2]).body)
    assert_failed("ConnectionRefused", results[2], "refused")
    assert.matches("127.0.0.1:" .. srv.refused, results[2][2], 1, true)
    assert_failed("Timeout", results[3], "slow")
    assert.equals(503, results[4][1])
    assert.equals("status 503", results[4][2])
    assert_failed("ConnectionReset", results[5], "truncated")
    assert_failed("ConnectionReset", results[6], "reset")
    assert_failed("ResponseTooLarge", results[7], "big")
    assert_failed("ResponseTooLarge", results[8], "big chunked")
    assert.equals(200, results[9][1])
    assert.equals("last", parse_echo(results[9][2]).body)
    -- Unpacked, a result is what post returns.
    local status, err, code = (table.unpack or unpack)(results[2], 1, 3)
    assert.is_nil(status)
    assert.equals("ConnectionRefused", code)
    assert.equals("string", type(err))
  end)

  it("reuses kept-alive connections across calls, and for post", function()
    local reqs = {}
    for i = 1, 8 do reqs[i] = { base .. "/conn" } end
    local first, ports = {}, 0
    for _, r in ipairs(http:post_many(reqs, 8)) do
      assert.equals(200, r[1])
      if not first[r[2]] then ports = ports + 1 end
      first[r[2]] = true
    end
    assert.is_true(ports >= 2, "8 requests at once used one connection")
    -- No more at once than there are idle connections: each one is reused.
    for _, r in ipairs(http:post_many(reqs, ports)) do
      assert.equals(200, r[1])
      assert.is_true(first[r[2]], "port " .. r[2] .. " is a new connection")
    end
    local status, port = http:post(base .. "/conn", {}, "")
    assert.equals(200, status)
    assert.is_true(first[port], "post opened a new connection")
  end)

  it("keeps bodies intact when some are large", function()
    local reqs = {}
    for i = 1, 12 do reqs[i] = { base .. "/big/" .. (i % 2 == 0 and 600000 or 100 * i) } end
    for _ = 1, 2 do
      for i, r in ipairs(http:post_many(reqs, 6)) do
        assert.equals(200, r[1])
        assert.is_true(r[2] == ("x"):rep(i % 2 == 0 and 600000 or 100 * i), "body " .. i)
      end
    end
  end)

  -- The transport knows nothing of DynamoDB (issue 12): a GetRecords page is
  -- a body like any other, whatever else the request table holds, and the
  -- caller decodes it.
  it("returns every answer as { status, body, headers }, decoding nothing", function()
    local page = '{"Records":[{"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},'
      .. '"NewImage":{"pk":{"S":"a"},"n":{"N":"7"},"b":{"B":"AQI="}},"SequenceNumber":"1"}}],'
      .. '"NextShardIterator":"it-2"}'
    local stats = core.decode_stats()
    local results = http:post_many({
      { base .. "/reflect/200", {}, page, true }, -- the GetRecords flag of issue 5: ignored
      { base .. "/reflect/200", {}, page },
      { base .. "/reflect/400", {}, page, true },
    })
    local after = core.decode_stats()
    assert.same({ stats.fast, stats.exact }, { after.fast, after.exact })
    for i, status in ipairs({ 200, 200, 400 }) do
      local r = results[i]
      assert.same({ status, page }, { r[1], r[2] })
      assert.equals("table", type(r[3]))
      assert.is_nil(next(r, 3), "result " .. i .. " has more than status, body, headers")
    end
    local records, nsi = core.decode_records(results[1][2])
    assert.equals("it-2", nsi)
    assert.equals("\1\2", records[1].dynamodb.NewImage.b)
    assert.equals(7, records[1].dynamodb.NewImage.n)
  end)

  -- Issue 11 item 1 after the curl multi path: an escaped "Records" key, then
  -- strings long enough to move the decoder's scratch buffer (ASan/valgrind).
  it("returns records pages that decode_records reads, escaped keys and long escaped strings too", function()
    local long = ("a\\n"):rep(600000)
    local page = '{"Rec\\u006frds":[{"dynamod\\u0062":{"NewIm\\u0061ge":{"k":{"\\u0053":"' .. long
      .. '"}}}},{"dynamodb":{"Keys":{"k":{"S":"b"}}}}],"NextShardIterator":"it-3"}'
    local stats = core.decode_stats()
    local results = http:post_many({ { base .. "/reflect/200", {}, page }, { base .. "/reflect/200", {}, page } })
    for _, r in ipairs(results) do
      assert.equals(200, r[1])
      local records, nsi = core.decode_records(r[2])
      assert.equals("it-3", nsi)
      assert.equals(("a\n"):rep(600000), records[1].dynamodb.NewImage.k)
      assert.equals("b", records[2].dynamodb.Keys.k)
    end
    assert.equals(stats.fast + 2, core.decode_stats().fast)
  end)

  it("raises on bad arguments, naming the request, and stays usable", function()
    local u = base .. "/echo"
    local bad = {
      { nil, "table expected, got nil" },
      { "x", "table expected, got string" },
      { { "x" }, "request 1: must be a table" },
      { { { u }, 42 }, "request 2: must be a table" },
      { { {} }, "request 1: URL must be a string" },
      { { { 42 } }, "request 1: URL must be a string" },
      { { { u }, { "ftp://127.0.0.1/x" } }, "request 2: URL scheme must be http:// or https://" },
      { { { "http://a\0b" } }, "request 1: URL contains a NUL byte" },
      { { { u, "X-A: b" } }, "request 1: headers must be a table" },
      { { { u, { 42 } } }, "request 1: header 1 must be a string" },
      { { { u }, { u, { "X-Ok: 1", AUTH .. "\r\nX-Injected: 1" } } }, "request 2: header 2 contains CR, LF or NUL" },
      { { { u, {}, 42 } }, "request 1: body must be a string" },
      { { { u, {}, {} } }, "request 1: body must be a string" },
    }
    for i, case in ipairs(bad) do
      local ok, err = pcall(http.post_many, http, case[1])
      assert.is_false(ok, "case " .. i)
      assert.matches(case[2], err, 1, true)
      assert.is_nil(err:find(SECRET, 1, true))
    end
    for _, n in ipairs({ 0, -1, 1025, 1.5 }) do
      assert.has_error(function() http:post_many({ { u } }, n) end)
    end
    assert.has_error(function() http:post_many({ { u } }, "many") end)
    assert.has_error(function() http.post_many({}, { { u } }) end)
    local results = http:post_many({ { u, {}, "after" } }, 1)
    assert.equals("after", parse_echo(results[1][2]).body)
    local status, text = http:post(u, {}, "post after post_many")
    assert.equals(200, status)
    assert.equals("post after post_many", parse_echo(text).body)
  end)

  it("is busy for finalizers that run while it pushes results", function()
    -- A finalizer running inside post_many (pushing large results allocates,
    -- which steps the collector) may use the handle: a call raises "busy", a
    -- close waits for the end of the call.
    local reqs = {}
    for i = 1, 8 do reqs[i] = { base .. "/big/300000" } end
    local inside, phase, seen = false, nil, {}
    local h = core.http()
    local function garbage(action)
      for _ = 1, 100 do
        require("helper").on_gc(function() -- a __gc table, or a userdata under LuaJIT
          -- only in its own phase: a left-over post finalizer must not
          -- run after the close phase has closed the handle
          if not inside or phase ~= action or seen[action] then return end
          if action == "post" then
            local ok, err = pcall(h.post, h, base .. "/echo", {}, "")
            seen.post = ok and "ok" or err
          else
            h:close()
            seen.close = tostring(h)
          end
        end)
      end
    end
    require("helper").gc_tune(0, 1000) -- collect as often as possible
    for _, action in ipairs({ "post", "close" }) do
      phase = action
      for _ = 1, 500 do
        garbage(action)
        inside = true
        local ok, results = pcall(h.post_many, h, reqs, 8)
        inside = false
        assert.is_true(ok, tostring(results))
        for _, r in ipairs(results) do assert.equals(300000, #r[2]) end
        if seen[action] then break end
      end
    end
    require("helper").gc_tune(200, 100)
    collectgarbage()
    assert.matches("busy", seen.post, 1, true)
    assert.matches("closed$", seen.close)
    assert.matches("closed$", tostring(h))
    assert.has_error(function() h:post(base .. "/echo") end, "http handle is closed")
  end)

  it("raises on a closed handle; close and collection free everything", function()
    local h = core.http()
    assert.equals(200, h:post_many({ { base .. "/echo" }, { base .. "/echo" } })[2][1])
    h:close()
    assert.has_error(function() h:post_many({ { base .. "/echo" } }) end, "http handle is closed")
    for i = 1, 10 do
      local g = core.http()
      if i % 2 == 0 then g:post_many({ { base .. "/echo", { "X-N: " .. i }, "gc" }, { base .. "/conn" } }) end
    end
    collectgarbage()
    collectgarbage()
  end)
end)

-- core.http{ body = "buffer" }: each answer's body is a body object (the
-- bytes libcurl read, handed over without a copy into a Lua string) that
-- decode_records reads as it reads a string. Generic: any answer, any status.
describe("core.http body objects", function()
  local srv, base, http
  local page = '{"Records":[{"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},'
    .. '"NewImage":{"pk":{"S":"a"},"n":{"N":"7"},"b":{"B":"AQI="},"l":{"L":[{"S":"x\\n"}]}},'
    .. '"SequenceNumber":"1"}}],"NextShardIterator":"it-2"}'

  setup(function()
    srv = start_server()
    base = "http://127.0.0.1:" .. srv.http
  end)
  teardown(function() stop_server(srv) end)
  before_each(function() http = core.http({ body = "buffer", timeout = 5, connect_timeout = 2 }) end)
  after_each(function() http:close() end)

  it("gives bodies as objects with their bytes: tostring, :string(), #", function()
    local results = http:post_many({
      { base .. "/reflect/200", {}, page },
      { base .. "/reflect/200", {}, "" },
      { base .. "/reflect/200", {}, "a\0b\255" },
    })
    for i, want in ipairs({ page, "", "a\0b\255" }) do
      local body = results[i][2]
      assert.equals(200, results[i][1])
      assert.equals("userdata", type(body))
      assert.equals(want, tostring(body))
      assert.equals(want, body:string())
      assert.equals(#want, #body)
      assert.equals("table", type(results[i][3]))
    end
    local status, body, headers = http:post(base .. "/headers")
    assert.same({ 200, "ok", "1" }, { status, tostring(body), headers["x-one"] })
  end)

  it("is read by decode_records as its string is, on either path", function()
    local bad_av = page:gsub('{"N":"7"}', '{"N":"seven"}')
    for _, text in ipairs({ page, bad_av, "{not json", '{"Records":{}}' }) do
      local _, b = http:post(base .. "/reflect/200", {}, text)
      assert.same({ core.decode_records(text) }, { core.decode_records(b) })
      assert.same({ core.decode_records(text, { numbers = "string" }) },
        { core.decode_records(b, { numbers = "string" }) })
      assert.equals(text, tostring(b), "the body is unchanged by decoding")
    end
    local _, b = http:post(base .. "/reflect/200", {}, page)
    local records, nsi = core.decode_records(b)
    assert.equals("it-2", nsi)
    assert.equals("\1\2", records[1].dynamodb.NewImage.b)
    assert.equals("x\n", records[1].dynamodb.NewImage.l[1])
    assert.has_error(function() core.decode_records(http) end) -- another userdata
  end)

  it("gives error statuses as bodies too, and transport failures as strings", function()
    local results = http:post_many({
      { base .. "/status/503" },
      { base .. "/html" },
      { "http://127.0.0.1:" .. srv.refused .. "/" },
    })
    assert.same({ 503, "status 503" }, { results[1][1], tostring(results[1][2]) })
    assert.same({ 502, "<html><body><h1>502 Bad Gateway</h1></body></html>" },
      { results[2][1], tostring(results[2][2]) })
    assert_failed("ConnectionRefused", results[3], "refused")
    assert.equals("string", type(results[3][2]))
  end)

  it("raises once closed; close is idempotent; the default stays strings", function()
    local _, b = http:post(base .. "/reflect/200", {}, page)
    b:close()
    b:close()
    for _, f in ipairs({ tostring, b.string, function(x) return #x end, core.decode_records }) do
      local ok, err = pcall(f, b)
      assert.is_false(ok)
      assert.matches("body is closed", err, 1, true)
    end
    local plain = core.http()
    local _, text = plain:post(base .. "/reflect/200", {}, page)
    assert.equals(page, text)
    plain:close()
    assert.equals(page, tostring(select(2, core.http({ body = "string" }):post(base .. "/reflect/200", {}, page))))
    for _, bad in ipairs({ "buffers", 1, true }) do
      assert.has_error(function() core.http({ body = bad }) end, 'option \'body\' must be "string" or "buffer"')
    end
  end)

  it("keeps every body intact across calls, closed or kept, large and chunked", function()
    local kept = {}
    local sizes = { 600000, 100, 2500000, 70000 }
    for round = 1, 3 do
      local reqs = {}
      for i, n in ipairs(sizes) do
        reqs[i] = { base .. "/big/" .. n .. (i % 2 == 0 and "?chunked=1" or "") }
      end
      for i, r in ipairs(http:post_many(reqs, 2)) do
        assert.equals(200, r[1])
        assert.equals(sizes[i], #r[2], "round " .. round .. " body " .. i)
        assert.is_true(tostring(r[2]) == ("x"):rep(sizes[i]), "round " .. round .. " body " .. i)
        if i % 2 == 0 then kept[#kept + 1] = { r[2], sizes[i] } else r[2]:close() end
      end
    end
    for _, k in ipairs(kept) do assert.is_true(tostring(k[1]) == ("x"):rep(k[2])) end
  end)

  it("lets a finalizer close a body that decode_records is reading: the close waits", function()
    local record = page:match("^{\"Records\":%[(.*)%],")
    local text = '{"Records":[' .. (record .. ","):rep(300) .. record .. '],"NextShardIterator":"it-2"}'
    local want = core.decode_records(text)
    local current, inside, closed_inside, other = nil, false, false, nil
    require("helper").gc_tune(0, 1000)
    for _ = 1, 100 do
      local _, b = http:post(base .. "/reflect/200", {}, text)
      current = b
      for _ = 1, 50 do
        require("helper").on_gc(function()
          if inside and current and not closed_inside then
            current:close()
            closed_inside = true
            -- an answer now would get the block of a body closed at once
            other = select(2, http:post(base .. "/big/" .. #text))
          end
        end)
      end
      inside = true
      local records = core.decode_records(b)
      inside = false
      assert.same(want, records)
      if closed_inside then
        assert.has_error(function() return #b end, "body is closed")
        assert.is_true(tostring(other) == ("x"):rep(#text))
        break
      end
    end
    require("helper").gc_tune(200, 100)
    collectgarbage()
    assert.is_true(closed_inside, "no finalizer ran during decode_records")
  end)

  it("frees bodies left to the collector and at close", function()
    for i = 1, 20 do
      local status, b = http:post(base .. "/big/" .. (i * 50000))
      assert.equals(200, status, b)
      assert.equals(i * 50000, #b)
      if i % 3 == 0 then b:close() end
    end
    collectgarbage()
    collectgarbage()
  end)
end)
