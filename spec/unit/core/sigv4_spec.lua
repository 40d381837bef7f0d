-- SigV4: core.signer, core.sha256_hex, core.hmac_sha256, core.hex, core.sigv4_signing_key.
--
-- Expected values come from outside this code: the AWS SigV4 test suite
-- (spec/fixtures/sigv4/aws_suite.lua), RFC/FIPS vectors for the primitives,
-- botocore (Debian's python3-botocore, spec/support/sigv4_botocore.py) and
-- curl's --aws-sigv4 for requests the suite does not cover.
local core = require("dynamodb_stream.core")

local SUITE = dofile("spec/fixtures/sigv4/aws_suite.lua")
local PYTHON = "/usr/bin/python3" -- Debian's, which has botocore (not the pyenv one on PATH)
local BOTOCORE = "spec/support/sigv4_botocore.py"

-- Independent of core.hex, so the helper under test never checks itself.
local function tohex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = type(v) == "table" and copy(v) or v end
  return c
end

-- pcall(fn) must fail with a message containing fragment (plain text).
local function raises(fragment, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error containing: " .. fragment)
  err = tostring(err)
  assert(err:find(fragment, 1, true), ("error %q does not contain %q"):format(err, fragment))
  return err
end

local function suite_signer(token)
  return core.signer({
    access_key_id = SUITE.access_key_id, secret_access_key = SUITE.secret_access_key,
    session_token = token, region = SUITE.region, service = SUITE.service,
  })
end

-- Signs every job with botocore in one python run. A job is
-- { creds = {access_key_id, secret_access_key, session_token, region, service},
--   req = {method, path, query, headers, body, amz_date} }
-- and gets back { authorization = ..., token = <x-amz-security-token sent or nil> }.
local function botocore_sign(jobs)
  local lines = {}
  local function put(key, value) lines[#lines + 1] = key .. " " .. tohex(value) end
  for _, job in ipairs(jobs) do
    local c, r = job.creds, job.req
    put("access_key_id", c.access_key_id)
    put("secret_access_key", c.secret_access_key)
    if c.session_token then put("session_token", c.session_token) end
    put("region", c.region)
    put("service", c.service)
    put("method", r.method)
    local query = (r.query and r.query ~= "") and ("?" .. r.query) or ""
    put("url", "https://" .. (r.headers.host or r.headers.Host) .. r.path .. query)
    put("amz_date", r.amz_date)
    put("body", r.body or "")
    for name, value in pairs(r.headers) do
      lines[#lines + 1] = "header " .. tohex(name) .. " " .. tohex(value)
    end
    lines[#lines + 1] = "end"
  end
  local input = os.tmpname()
  local f = assert(io.open(input, "wb"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local p = assert(io.popen(PYTHON .. " " .. BOTOCORE .. " < " .. input .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  os.remove(input)
  assert(ok, "botocore reference failed:\n" .. out)
  local results = {}
  for line in out:gmatch("[^\n]+") do
    local authz, token = line:match("^(AWS4%-HMAC%-SHA256 [^\t]+)\t(.*)$")
    assert(authz, "unexpected botocore output: " .. line)
    results[#results + 1] = { authorization = authz, token = token ~= "-" and token or nil }
  end
  assert.equals(#jobs, #results, out)
  return results
end

describe("sigv4 primitives", function()
  it("sha256_hex matches the FIPS 180-2 vectors", function()
    assert.equals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.sha256_hex(""))
    assert.equals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.sha256_hex("abc"))
    assert.equals("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      core.sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    assert.equals("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      core.sha256_hex(string.rep("a", 1000000)))
  end)

  it("sha256_hex hashes embedded NUL bytes", function()
    -- computed with `printf '\0a\0' | sha256sum` and `printf '\0' | sha256sum`
    assert.equals("98fb63f7212bb7a738d1cd6d6d51d3e96169b23710ae5113c65123f029074860", core.sha256_hex("\0a\0"))
    assert.equals("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", core.sha256_hex("\0"))
  end)

  it("hmac_sha256 matches RFC 4231", function()
    local mac = core.hmac_sha256(string.rep("\11", 20), "Hi There")
    assert.equals(32, #mac)
    assert.equals("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", tohex(mac))
    assert.equals("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      tohex(core.hmac_sha256("Jefe", "what do ya want for nothing?")))
    -- test case 6: a key longer than the block size is hashed first
    assert.equals("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      tohex(core.hmac_sha256(string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First")))
  end)

  it("hex gives lower-case hex of any bytes", function()
    assert.equals("", core.hex(""))
    assert.equals("00017f80ff6162", core.hex("\0\1\127\128\255ab"))
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    assert.equals(tohex(all), core.hex(all))
  end)

  it("derives the signing key of the AWS documentation", function()
    local key = core.sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
    assert.equals(32, #key)
    assert.equals("c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9", core.hex(key))
  end)

  it("derives the signing key as the HMAC chain of the spec", function()
    local function h(k, m) return core.hmac_sha256(k, m) end
    local expect = h(h(h(h("AWS4secret", "20240229"), "eu-west-1"), "dynamodb"), "aws4_request")
    assert.equals(tohex(expect), tohex(core.sigv4_signing_key("secret", "20240229", "eu-west-1", "dynamodb")))
  end)

  it("raises on bad helper arguments", function()
    raises("bad argument #1 to 'sha256_hex' (string expected, got nil)", function() core.sha256_hex(nil) end)
    raises("bad argument #2 to 'hmac_sha256' (string expected, got no value)", function() core.hmac_sha256("k") end)
    raises("bad argument #1 to 'hex' (string expected, got table)", function() core.hex({}) end)
    raises("date must be YYYYMMDD", function() core.sigv4_signing_key("s", "2015-08-30", "us-east-1", "iam") end)
    raises("date must be YYYYMMDD", function() core.sigv4_signing_key("s", "20150830T123600Z", "us-east-1", "iam") end)
    raises("region must be a non-empty string", function() core.sigv4_signing_key("s", "20150830", "", "iam") end)
    raises("bad argument #4 to 'sigv4_signing_key' (string expected, got no value)",
      function() core.sigv4_signing_key("s", "20150830", "us-east-1") end)
  end)
end)

describe("sigv4 AWS test suite", function()
  local scope = "20150830/us-east-1/service/aws4_request"
  local key = core.sigv4_signing_key(SUITE.secret_access_key, "20150830", SUITE.region, SUITE.service)

  for _, case in ipairs(SUITE.cases) do
    describe(case.name, function()
      it("canonical request hashes to the suite's string-to-sign hash", function()
        assert.equals(case.sts, core.sha256_hex(case.creq))
      end)

      it("suite's string to sign, signed with the helpers, gives the suite's signature", function()
        local sts = "AWS4-HMAC-SHA256\n" .. SUITE.amz_date .. "\n" .. scope .. "\n" .. case.sts
        local signature = core.hex(core.hmac_sha256(key, sts))
        assert.equals(case.authz:match("Signature=(%x+)$"), signature)
      end)

      it("signer:sign gives the suite's Authorization header", function()
        local signer = suite_signer(case.session_token)
        local req = copy(case)
        req.amz_date = SUITE.amz_date
        assert.equals(case.authz, signer:sign(req))
        if case.session_token then
          assert.equals(case.session_token, req.headers["x-amz-security-token"])
        else
          assert.is_nil(req.headers["x-amz-security-token"])
        end
      end)
    end)
  end

  it("the botocore reference agrees with the suite (so it can be trusted below)", function()
    local jobs, expected = {}, {}
    for _, case in ipairs(SUITE.cases) do
      -- botocore encodes path and query itself; feed it only cases with nothing to encode
      if not (case.path .. case.query):find("%", 1, true) then
        local req = copy(case)
        req.amz_date = SUITE.amz_date
        jobs[#jobs + 1] = {
          creds = {
            access_key_id = SUITE.access_key_id, secret_access_key = SUITE.secret_access_key,
            session_token = case.session_token, region = SUITE.region, service = SUITE.service,
          },
          req = req,
        }
        expected[#expected + 1] = case.authz
      end
    end
    assert.is_true(#jobs >= 9)
    for i, result in ipairs(botocore_sign(jobs)) do
      assert.equals(expected[i], result.authorization)
    end
  end)
end)

describe("sigv4 against botocore", function()
  local creds = {
    access_key_id = "AKIAIOSFODNN7EXAMPLE",
    secret_access_key = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY+x=",
    region = "eu-west-1",
    service = "dynamodb",
  }
  local session = copy(creds)
  session.session_token = "IQoJb3JpZ2luX2VjEJr//////////wEaCWV1LXdlc3QtMSJHMEUCIQD6+test/token=="
    .. string.rep("AbCdEf0123+/", 30) .. "=="
  local ITERATOR = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2024-02-29T23:59:59.999"
    .. "|1|AAAAAAAAAAFm2Rx1Jxr8Y6A7nmXmR9VP8cmO3UyVsZq+KnhErs3tW2P4Bw=="

  local function streams_req(target, body, amz_date, extra)
    local headers = {
      host = "streams.dynamodb.eu-west-1.amazonaws.com",
      ["content-type"] = "application/x-amz-json-1.0",
      ["x-amz-date"] = amz_date,
      ["x-amz-target"] = "DynamoDBStreams_20120810." .. target,
    }
    for k, v in pairs(extra or {}) do headers[k] = v end
    return { method = "POST", path = "/", query = "", headers = headers, body = body, amz_date = amz_date }
  end

  local many = {}
  for i = 1, 40 do
    many[(i % 2 == 0 and "X-Many-" or "x-many-") .. string.format("%02d", i)] = "value " .. i
  end

  local cases = {
    { "GetRecords", creds, streams_req("GetRecords",
        '{"ShardIterator":"' .. ITERATOR .. '","Limit":1000}', "20240229T235959Z") },
    { "GetRecords with a session token", session, streams_req("GetRecords",
        '{"ShardIterator":"' .. ITERATOR .. '"}', "20240301T000000Z") },
    { "DescribeStream", creds, streams_req("DescribeStream",
        '{"StreamArn":"arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/x","Limit":100}',
        "20251231T120000Z") },
    { "an empty body", creds, streams_req("ListStreams", "", "20240101T000001Z") },
    { "an empty body with a session token", session, streams_req("ListStreams", "", "20240101T000001Z") },
    { "a UTF-8 body", creds, streams_req("GetRecords",
        '{"TableName":"T\u{e4}bl\u{20ac}","Key":{"pk":{"S":"\u{65e5}\u{672c}\u{8a9e} \u{2713} \u{1f600}"}}}',
        "20240615T081500Z") },
    { "binary bytes in the body", creds, streams_req("GetRecords", "\0\1\2\255\254{}\r\n", "20240615T081500Z") },
    { "many headers of mixed case", session, streams_req("GetRecords", "{}", "20240615T081500Z", many) },
    { "header values with extra spaces and tabs", creds, streams_req("GetRecords", "{}", "20240615T081500Z", {
        ["X-Spaces"] = "  a   b    c  ", ["x-tabs"] = "\tone\t\t two \t", ["x-empty"] = "",
        ["x-only-spaces"] = "   ",
      }) },
    { "host with a port and a path and query", creds, {
        method = "POST", path = "/some/path", query = "a=1&b=2",
        headers = { Host = "localhost:8000", ["Content-Type"] = "application/x-amz-json-1.0",
                    ["X-Amz-Date"] = "20240615T081500Z" },
        body = "{}", amz_date = "20240615T081500Z",
      } },
  }

  it("signs DynamoDB Streams shaped requests exactly as botocore does", function()
    local jobs, ours = {}, {}
    for i, case in ipairs(cases) do
      local c, req = case[2], copy(case[3])
      ours[i] = { authorization = core.signer(c):sign(req), token = req.headers["x-amz-security-token"] }
      jobs[i] = { creds = c, req = case[3] }
    end
    for i, ref in ipairs(botocore_sign(jobs)) do
      assert.equals(ref.authorization, ours[i].authorization, cases[i][1])
      assert.equals(ref.token, ours[i].token, cases[i][1])
      assert.matches("^AWS4%-HMAC%-SHA256 Credential=%w+/%d+/[%w-]+/dynamodb/aws4_request, SignedHeaders=[%w;-]+, "
        .. "Signature=%x+$", ours[i].authorization)
      assert.equals(64, #ours[i].authorization:match("Signature=(%x+)$"))
    end
    -- the session-token requests really carry (and sign) the token
    assert.equals(session.session_token, ours[2].token)
    assert.truthy(ours[2].authorization:find("x-amz-security-token", 1, true))
    assert.is_nil(ours[1].token)
  end)

  it("agrees with botocore on random requests", function()
    local rng_state = 20150830
    local function rand(n) -- small LCG: reproducible whatever math.random does
      rng_state = (rng_state * 1103515245 + 12345) % 2147483648
      return rng_state % n + 1
    end
    local function pick(chars) local i = rand(#chars); return chars:sub(i, i) end
    local NAME = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    local VALUE = "abcXYZ019 \t,;:=/+!\"'()*&%$#@[]{}<>?~`^|\\."
    local jobs, ours = {}, {}
    for i = 1, 60 do
      local amz_date = string.format("20%02d%02d%02dT%02d%02d%02dZ", 10 + rand(20), rand(12), rand(28),
        rand(24) - 1, rand(60) - 1, rand(60) - 1)
      local headers = { host = "h" .. i .. ".example.com", ["x-amz-date"] = amz_date }
      for _ = 1, rand(8) - 1 do
        local name, value = {"x-r-"}, {}
        for _ = 1, rand(12) do name[#name + 1] = pick(NAME) end
        for _ = 1, rand(30) - 1 do value[#value + 1] = pick(VALUE) end
        name = table.concat(name)
        if not headers[name:lower()] and not headers[name] then headers[name] = table.concat(value) end
      end
      local body = {}
      for _ = 1, rand(200) - 1 do body[#body + 1] = string.char(rand(256) - 1) end
      local c = i % 3 == 0 and session or creds
      local req = { method = i % 4 == 0 and "GET" or "POST", path = "/", query = "", headers = headers,
                    body = table.concat(body), amz_date = amz_date }
      jobs[i] = { creds = c, req = copy(req) }
      ours[i] = core.signer(c):sign(req)
    end
    for i, ref in ipairs(botocore_sign(jobs)) do
      assert.equals(ref.authorization, ours[i], "random request " .. i)
    end
  end)
end)

describe("sigv4 against curl --aws-sigv4", function()
  local socket_ok, socket = pcall(require, "socket")
  local curl_ok = os.execute("curl --help all 2>/dev/null | grep -q aws-sigv4")

  -- Serves one request on a loopback socket while curl sends it; returns the
  -- request line, the headers (lower-case name -> value as received) and the body.
  local function capture(curl_args)
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    server:settimeout(10)
    local p = assert(io.popen("curl -s -o /dev/null " .. curl_args:gsub("PORT", port) .. " 2>&1"))
    local conn = assert(server:accept())
    conn:settimeout(10)
    local request_line = assert(conn:receive("*l"))
    local headers = {}
    while true do
      local line = assert(conn:receive("*l"))
      if line == "" then break end
      local name, value = line:match("^([^:]+):(.*)$")
      headers[name:lower()] = value
    end
    local body = conn:receive(tonumber(headers["content-length"] or "0")) or ""
    conn:send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    conn:close()
    server:close()
    p:read("*a")
    p:close()
    return request_line, headers, body
  end

  it("verifies the Authorization header curl computed", function()
    if not (socket_ok and curl_ok) then
      pending("needs luasocket and a curl with --aws-sigv4")
      return
    end
    local body = '{"ShardIterator":"arn:aws:dynamodb:eu-west-1:1:table/T/stream/x|1|AAAA","Limit":5}'
    local line, received, got_body = capture(table.concat({
      "--aws-sigv4 aws:amz:eu-west-1:dynamodb",
      "--user 'AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'",
      "-H 'content-type: application/x-amz-json-1.0'",
      "-H 'x-amz-target: DynamoDBStreams_20120810.GetRecords'",
      "-H 'X-Custom:  a   b '",
      "--data-binary '" .. body .. "'",
      "http://127.0.0.1:PORT/",
    }, " "))
    assert.equals("POST / HTTP/1.1", line)
    assert.equals(body, got_body)
    local authorization = received.authorization:gsub("^%s+", "")
    local signed = authorization:match("SignedHeaders=([%w;-]+)")
    assert.truthy(signed:find("x-amz-target", 1, true))
    -- Sign the very headers curl signed, with the date curl used.
    local headers = {}
    for name in signed:gmatch("[^;]+") do headers[name] = received[name] end
    local amz_date = received["x-amz-date"]:match("%d+T%d+Z")
    local signer = core.signer({
      access_key_id = "AKIAIOSFODNN7EXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      region = "eu-west-1", service = "dynamodb",
    })
    assert.equals(authorization, signer:sign({
      method = "POST", path = "/", query = "", headers = headers, body = got_body, amz_date = amz_date,
    }))
  end)
end)

describe("sigv4 signing-key cache", function()
  local function req(amz_date, target)
    return {
      method = "POST", path = "/", query = "", body = '{"Limit":1}', amz_date = amz_date,
      headers = { host = "streams.dynamodb.us-east-1.amazonaws.com", ["x-amz-date"] = amz_date,
                  ["x-amz-target"] = "DynamoDBStreams_20120810." .. target },
    }
  end

  it("stays right across requests on the same date and on a new date", function()
    local creds = {
      access_key_id = SUITE.access_key_id, secret_access_key = SUITE.secret_access_key,
      region = "us-east-1", service = "dynamodb",
    }
    local signer = core.signer(creds)
    local sequence = {
      req("20150830T123600Z", "GetRecords"),
      req("20150830T235959Z", "GetShardIterator"), -- same date: cached key
      req("20150831T000000Z", "GetRecords"),       -- new date: new key
      req("20150831T000001Z", "DescribeStream"),
      req("20150830T123600Z", "GetRecords"),       -- back to the first date
    }
    local ours, jobs = {}, {}
    for i, r in ipairs(sequence) do
      ours[i] = signer:sign(copy(r))
      -- a fresh signer has nothing cached
      assert.equals(core.signer(creds):sign(copy(r)), ours[i])
      jobs[i] = { creds = creds, req = r }
    end
    for i, ref in ipairs(botocore_sign(jobs)) do
      assert.equals(ref.authorization, ours[i], "request " .. i)
    end
    assert.equals(ours[1], ours[5])
    assert.are_not.equals(ours[1]:match("Signature=(%x+)"), ours[3]:match("Signature=(%x+)"))
    assert.truthy(ours[3]:find("Credential=AKIDEXAMPLE/20150831/us-east-1/dynamodb/aws4_request", 1, true))

    -- the key of the new date really differs, and the signatures follow from it
    local k30 = core.sigv4_signing_key(SUITE.secret_access_key, "20150830", "us-east-1", "dynamodb")
    local k31 = core.sigv4_signing_key(SUITE.secret_access_key, "20150831", "us-east-1", "dynamodb")
    assert.are_not.equals(k30, k31)
  end)

  it("signs the suite vectors after a date change (the cache is keyed by date)", function()
    local signer = suite_signer()
    local case = SUITE.cases[1]
    local other = copy(case)
    other.amz_date = "20200101T000000Z"
    other.headers["X-Amz-Date"] = "20200101T000000Z"
    signer:sign(other)
    local again = copy(case)
    again.amz_date = SUITE.amz_date
    assert.equals(case.authz, signer:sign(again))
  end)
end)

describe("sigv4 session token", function()
  local TOKEN = "FwoGZXIvYXdzEBYaDH+secret/token=="

  local function req()
    return {
      method = "POST", path = "/", query = "", body = "{}", amz_date = "20240101T000000Z",
      headers = { host = "example.amazonaws.com", ["x-amz-date"] = "20240101T000000Z" },
    }
  end

  it("is set on req.headers, replacing any other spelling", function()
    local signer = core.signer({ access_key_id = "AKID", secret_access_key = "s", session_token = TOKEN,
                                 region = "us-east-1", service = "dynamodb" })
    local r = req()
    r.headers["X-Amz-Security-Token"] = "stale"
    local authz = signer:sign(r)
    assert.equals(TOKEN, r.headers["x-amz-security-token"])
    assert.is_nil(r.headers["X-Amz-Security-Token"])
    assert.truthy(authz:find("SignedHeaders=host;x-amz-date;x-amz-security-token,", 1, true))
    -- same as signing the token header explicitly without a session token
    local plain = core.signer({ access_key_id = "AKID", secret_access_key = "s",
                                region = "us-east-1", service = "dynamodb" })
    local r2 = req()
    r2.headers["x-amz-security-token"] = TOKEN
    assert.equals(plain:sign(r2), authz)
  end)

  it("is not added when empty (as botocore treats an empty token)", function()
    local signer = core.signer({ access_key_id = "AKID", secret_access_key = "s", session_token = "",
                                 region = "us-east-1", service = "dynamodb" })
    local r = req()
    assert.truthy(signer:sign(r):find("SignedHeaders=host;x-amz-date,", 1, true))
    assert.is_nil(r.headers["x-amz-security-token"])
  end)
end)

describe("sigv4 errors", function()
  local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
  local TOKEN = "IQoJb3JpZ2luX2VjEJrSECRETTOKEN=="
  local function opts(over)
    local o = { access_key_id = "AKIAIOSFODNN7EXAMPLE", secret_access_key = SECRET, session_token = TOKEN,
                region = "eu-west-1", service = "dynamodb" }
    for k, v in pairs(over or {}) do o[k] = v end
    return o
  end
  local function req(over)
    local r = { method = "POST", path = "/", query = "", body = "{}", amz_date = "20240101T000000Z",
                headers = { host = "example.amazonaws.com", ["x-amz-date"] = "20240101T000000Z" } }
    for k, v in pairs(over or {}) do r[k] = v end
    return r
  end

  it("core.signer raises on missing or bad options", function()
    raises("bad argument #1 to 'signer' (table expected, got no value)", function() core.signer() end)
    for _, field in ipairs({ "access_key_id", "secret_access_key", "region", "service" }) do
      local o = opts()
      o[field] = nil
      raises("opts." .. field .. " must be a string, got nil", function() core.signer(o) end)
    end
    raises("opts.region must be a string, got number", function() core.signer(opts({ region = 5 })) end)
    raises("opts.session_token must be a string, got boolean",
      function() core.signer(opts({ session_token = true })) end)
    raises("opts.secret_access_key must not be empty", function() core.signer(opts({ secret_access_key = "" })) end)
    raises("opts.access_key_id must not be empty", function() core.signer(opts({ access_key_id = "" })) end)
    raises("opts.region must not contain '/'", function() core.signer(opts({ region = "eu/west" })) end)
    raises("opts.service must not contain '/', spaces", function() core.signer(opts({ service = "dynamo db" })) end)
    raises("opts.secret_access_key contains a NUL byte",
      function() core.signer(opts({ secret_access_key = "a\0b" })) end)
    raises("opts.session_token must not contain CR or LF",
      function() core.signer(opts({ session_token = "abc\r\nX-Evil: 1" })) end)
  end)

  it("signer:sign raises on missing or bad request fields", function()
    local signer = core.signer(opts())
    for _, field in ipairs({ "method", "path", "amz_date" }) do
      local r = req()
      r[field] = nil
      raises("req." .. field .. " must be a string, got nil", function() signer:sign(r) end)
    end
    raises("bad argument #1 to 'sign' (table expected, got nil)", function() signer:sign(nil) end)
    local no_headers = req()
    no_headers.headers = nil
    raises("req.headers must be a table, got nil", function() signer:sign(no_headers) end)
    raises("req.headers must be a table, got string", function() signer:sign(req({ headers = "host: x" })) end)
    raises("req.body must be a string, got table", function() signer:sign(req({ body = {} })) end)
    raises("req.query must be a string, got number", function() signer:sign(req({ query = 1 })) end)
    raises("amz_date must look like YYYYMMDDTHHMMSSZ",
      function() signer:sign(req({ amz_date = "2024-01-01T00:00:00Z" })) end)
    raises("amz_date must look like YYYYMMDDTHHMMSSZ", function() signer:sign(req({ amz_date = "20240101" })) end)
    raises("path must start with '/'", function() signer:sign(req({ path = "x" })) end)
    raises("path must start with '/' and contain no spaces",
      function() signer:sign(req({ path = "/a b" })) end)
    raises("method must be a non-empty token", function() signer:sign(req({ method = "" })) end)
    raises("req.headers['x-bad'] must not contain CR, LF or NUL", function()
      signer:sign(req({ headers = { host = "h", ["x-bad"] = "a\r\nX-Injected: 1" } }))
    end)
    raises("req.headers['x-num'] must be a string, got number",
      function() signer:sign(req({ headers = { host = "h", ["x-num"] = 13 } })) end)
    raises("req.headers: names must be strings, got number",
      function() signer:sign(req({ headers = { host = "h", "positional" } })) end)
    raises("req.headers: invalid header name 'bad name'",
      function() signer:sign(req({ headers = { host = "h", ["bad name"] = "v" } })) end)
    raises("req.headers: empty header name", function() signer:sign(req({ headers = { host = "h", [""] = "v" } })) end)
    raises("header 'host' given twice",
      function() signer:sign(req({ headers = { host = "a", Host = "b" } })) end)
    raises("req.headers['x-amz-date'] differs from req.amz_date",
      function() signer:sign(req({ headers = { host = "h", ["x-amz-date"] = "20230101T000000Z" } })) end)
    local plain = core.signer(opts({ session_token = "" }))
    raises("req.headers must not be empty", function() plain:sign(req({ headers = {} })) end)
  end)

  it("signer:sign checks its self", function()
    local sign = getmetatable(core.signer(opts())).__index.sign
    raises("dynamodb_stream.signer expected, got table", function() sign({}, req()) end)
  end)

  it("a closed signer forgets its secrets and refuses to sign", function()
    local outer
    require("helper").with_close(core.signer(opts()), function(signer)
      outer = signer
      assert.truthy(signer:sign(req()))
    end)
    assert.equals("dynamodb_stream.signer (closed)", tostring(outer))
    raises("signer is closed", function() outer:sign(req()) end)
    getmetatable(outer).__gc(outer) -- closing twice is harmless
  end)

  it("tostring shows neither the secret, the token nor the whole key id", function()
    local s = tostring(core.signer(opts()))
    assert.equals("dynamodb_stream.signer (AKIA..., eu-west-1/dynamodb, session token)", s)
    assert.is_nil(s:find(SECRET, 1, true))
    assert.is_nil(s:find(TOKEN, 1, true))
    assert.is_nil(s:find("AKIAIOSFODNN7EXAMPLE", 1, true))
    local no_token = opts()
    no_token.session_token = nil
    assert.equals("dynamodb_stream.signer (AKIA..., eu-west-1/dynamodb)", tostring(core.signer(no_token)))
  end)

  it("error messages never echo the secret or the token", function()
    local signer = core.signer(opts())
    local err = raises("amz_date", function() signer:sign(req({ amz_date = "bad" })) end)
    assert.is_nil(err:find(SECRET, 1, true))
    assert.is_nil(err:find(TOKEN, 1, true))
    err = raises("opts.region", function() core.signer(opts({ region = "" })) end)
    assert.is_nil(err:find(SECRET, 1, true))
  end)
end)
