-- SigV4: core.signer, core.sha256_hex, core.hmac_sha256, core.hex, core.sigv4_signing_key.
--
-- Expected values come from outside this code: the AWS SigV4 test suite
-- (spec/fixtures/sigv4/aws_suite.lua) and RFC/FIPS vectors for the primitives.
-- The comparisons with botocore and curl (child processes, a loopback socket)
-- are in spec/integration/core/sigv4_reference_spec.lua.
local core = require("dynamodb_stream.core")

local SUITE = dofile("spec/fixtures/sigv4/aws_suite.lua")

local helper = require("helper")
local tohex, copy = helper.tohex, helper.deep_copy

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
end)

describe("sigv4 signing-key cache", function()
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
    helper.with_close(core.signer(opts()), function(signer)
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
