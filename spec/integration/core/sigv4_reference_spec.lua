-- SigV4 against independent references: botocore (Debian's python3-botocore,
-- spec/support/sigv4_botocore.py, run as a child process) and curl's
-- --aws-sigv4 (over a loopback socket), for requests the AWS test suite does
-- not cover. The suite and the primitives are in spec/unit/core/sigv4_spec.lua.
local core = require("dynamodb_stream.core")

local SUITE = dofile("spec/fixtures/sigv4/aws_suite.lua")
local PYTHON = "/usr/bin/python3" -- Debian's, which has botocore (not the pyenv one on PATH)
local BOTOCORE = "spec/support/sigv4_botocore.py"

local helper = require("helper")
local tohex, copy = helper.tohex, helper.deep_copy

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

describe("sigv4 AWS test suite", function()
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
