-- credentials.imds against spec/support/fake_metadata_server.py: IMDSv2 with tokens, the
-- IMDSv1 fallbacks (token PUT refused by a proxy or timing out), AWS_EC2_METADATA_V1_DISABLED,
-- a token PUT answered 400, a GET answered 401 (one new token), no role, error documents and
-- broken answers, retries, hangs against 0.2 s timeouts, and the region.
local context = require("dynamodb_stream.credentials.context")
local core = require("dynamodb_stream.core")
local imds = require("dynamodb_stream.credentials.imds")
local socket = require("socket")

local T = 1788264000 -- 2026-09-01T12:00:00Z, the clock of the fake and of the contexts
local ROLE_PATH = "/latest/meta-data/iam/security-credentials/"

describe("credentials.imds against a fake IMDS", function()
  local fake, clock

  setup(function() fake = require("fake_metadata").start() end)
  teardown(function() if fake then fake.stop() end end)
  before_each(function()
    fake.reset()
    clock = T
    fake.config({ clock = T })
  end)

  local function ctx(env)
    local vars = { AWS_EC2_METADATA_SERVICE_ENDPOINT = fake.imds, AWS_METADATA_SERVICE_TIMEOUT = "0.2",
      AWS_CONFIG_FILE = "/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/credentials" }
    for k, v in pairs(env or {}) do vars[k] = v end
    return context.new({ env = vars, clock = function() return clock end })
  end

  local function get(env)
    local p = assert(imds.provider(ctx(env)))
    return p:get()
  end

  -- The IMDS requests the fake saw: { "PUT /latest/api/token", "GET ...", ... } and their headers.
  local function requests()
    local lines, headers = {}, {}
    for i, r in ipairs(fake.requests()) do
      lines[i] = r.method .. " " .. r.path
      headers[i] = r.headers
    end
    return lines, headers
  end

  local function elapsed(fn)
    local t0 = socket.gettime()
    local a, b = fn()
    return socket.gettime() - t0, a, b
  end

  it("fetches a token, the role, then its credentials with the token (IMDSv2)", function()
    local creds = assert(get())
    assert.equal(fake.issued()[1], creds.access_key_id)
    assert.matches("^fake%-secret%-", creds.secret_access_key)
    assert.matches("^fake%-session%-token%-", creds.session_token)
    assert.equal(T + 6 * 3600, creds.expiration)
    local lines, headers = requests()
    assert.same({ "PUT /latest/api/token", "GET " .. ROLE_PATH, "GET " .. ROLE_PATH .. "fake-instance-role" }, lines)
    assert.equal("21600", headers[1]["x-aws-ec2-metadata-token-ttl-seconds"])
    assert.matches("^fake%-imds%-token%-", headers[2]["x-aws-ec2-metadata-token"])
    assert.equal(headers[2]["x-aws-ec2-metadata-token"], headers[3]["x-aws-ec2-metadata-token"])
    assert.is_nil(headers[1]["x-forwarded-for"])
  end)

  it("takes the Expiration the service gives, and fetches a new token and new keys at each refresh", function()
    fake.config({ expires_in = 1800 })
    local p = assert(imds.provider(ctx()))
    local first = assert(p:get())
    assert.equal(T + 1800, first.expiration)
    clock = T + 1000 -- past the advance refresh point (half of 30 minutes)
    local second = assert(p:get())
    assert.are_not.equal(first.access_key_id, second.access_key_id)
    assert.same(fake.issued(), { first.access_key_id, second.access_key_id })
    local lines, headers = requests()
    assert.equal(6, #lines)
    assert.equal("PUT /latest/api/token", lines[4])
    assert.are_not.equal(headers[2]["x-aws-ec2-metadata-token"], headers[5]["x-aws-ec2-metadata-token"])
  end)

  it("works when IMDSv2 is required", function()
    fake.config({ v2_required = true })
    assert.is_table((get()))
  end)

  it("falls back to IMDSv1 when a proxy answers the token PUT with 403, 404 or 405", function()
    for _, status in ipairs({ 403, 404, 405 }) do
      fake.reset()
      fake.config({ clock = T, put_status = status })
      local creds = assert(get())
      assert.equal(fake.issued()[1], creds.access_key_id)
      local lines, headers = requests()
      assert.same({ "PUT /latest/api/token", "GET " .. ROLE_PATH, "GET " .. ROLE_PATH .. "fake-instance-role" },
        lines, "PUT " .. status)
      assert.is_nil(headers[2]["x-aws-ec2-metadata-token"])
      assert.is_nil(headers[3]["x-aws-ec2-metadata-token"])
    end
  end)

  it("does not fall back to IMDSv1 when AWS_EC2_METADATA_V1_DISABLED=true, and says so", function()
    fake.config({ put_status = 403 })
    local creds, err = get({ AWS_EC2_METADATA_V1_DISABLED = "true" })
    assert.is_nil(creds)
    assert.equal("CredentialsError", err.code)
    assert.matches("the IMDSv1 fallback is off (AWS_EC2_METADATA_V1_DISABLED=true)", err.message, 1, true)
    assert.matches("credentials (instance metadata): instance metadata at " .. fake.imds, err.message, 1, true)
    assert.matches("no IMDSv2 session token (the token request was refused with HTTP 403)", err.message, 1, true)
    assert.same({ "PUT /latest/api/token" }, (requests()))

    fake.reset()
    fake.config({ clock = T, put_hang = 3 })
    creds, err = get({ AWS_EC2_METADATA_V1_DISABLED = "TRUE" })
    assert.is_nil(creds)
    assert.matches("no IMDSv2 session token (the token request timed out) and the IMDSv1 fallback is off",
      err.message, 1, true)
    assert.same({ "PUT /latest/api/token" }, (requests()))
  end)

  it("falls back to IMDSv1 at once when the token PUT never answers (the hop limit)", function()
    fake.config({ put_hang = 3 })
    local seconds, creds = elapsed(function() return get() end)
    assert.is_table(creds)
    assert.is_true(seconds < 2.5, "took " .. seconds .. " s")
    local lines, headers = requests()
    assert.same({ "PUT /latest/api/token", "GET " .. ROLE_PATH, "GET " .. ROLE_PATH .. "fake-instance-role" }, lines)
    assert.is_nil(headers[2]["x-aws-ec2-metadata-token"])
  end)

  it("explains a hanging token PUT when IMDSv2 is required (IMDS answers 401 to the token-less GET)", function()
    fake.config({ put_hang = 3, v2_required = true })
    local seconds, creds, err = elapsed(function() return get() end)
    assert.is_nil(creds)
    assert.is_true(seconds < 2.5, "took " .. seconds .. " s")
    assert.equal(401, err.status)
    assert.matches("requires IMDSv2 and the token request timed out (a container behind the default hop limit of 1?)",
      err.message, 1, true)
  end)

  it("gives up at once, with a clear error, when the token PUT is answered 400", function()
    fake.config({ put_status = 400 })
    local creds, err = get()
    assert.is_nil(creds)
    assert.equal(400, err.status)
    assert.matches("the token request (PUT /latest/api/token) was refused as malformed (HTTP 400)", err.message, 1, true)
    assert.same({ "PUT /latest/api/token" }, (requests()))
  end)

  it("asks for a token again after another status, then falls back to IMDSv1", function()
    fake.config({ put_status = 401 })
    assert.is_table((get()))
    local lines = requests()
    assert.same({ "PUT /latest/api/token", "PUT /latest/api/token", "GET " .. ROLE_PATH,
      "GET " .. ROLE_PATH .. "fake-instance-role" }, lines)
  end)

  it("fails clearly when the token PUT is answered 401 and IMDSv2 is required", function()
    fake.config({ put_status = 401, v2_required = true })
    local creds, err = get()
    assert.is_nil(creds)
    assert.equal(401, err.status)
    assert.matches("without a session token was refused (HTTP 401): the instance requires IMDSv2 and the token "
      .. "request failed", err.message, 1, true)
    assert.equal(3, #requests())
  end)

  it("fetches a new token once when a GET is answered 401 (an expired token), and tries again", function()
    fake.config({ v2_required = true, get_401 = 1 })
    local creds = assert(get())
    assert.equal(fake.issued()[1], creds.access_key_id)
    local lines, headers = requests()
    assert.same({ "PUT /latest/api/token", "GET " .. ROLE_PATH, "PUT /latest/api/token", "GET " .. ROLE_PATH,
      "GET " .. ROLE_PATH .. "fake-instance-role" }, lines)
    assert.are_not.equal(headers[2]["x-aws-ec2-metadata-token"], headers[4]["x-aws-ec2-metadata-token"])
  end)

  it("fails clearly when IMDS answers 401 to a fresh token too, without asking a third time", function()
    fake.config({ get_401 = 10 })
    local creds, err = get()
    assert.is_nil(creds)
    assert.equal(401, err.status)
    assert.matches("GET " .. ROLE_PATH .. " was refused (HTTP 401) with a fresh session token", err.message, 1, true)
    assert.equal(4, #requests())
  end)

  it("says that no IAM role is attached when the role listing is 404", function()
    fake.config({ role = core.null })
    local creds, err = get()
    assert.is_nil(creds)
    assert.equal(404, err.status)
    assert.matches("no IAM role is attached to this instance (GET " .. ROLE_PATH .. " answered 404)",
      err.message, 1, true)
  end)

  it("keeps the code of a 200 error document, quoting only its Message", function()
    fake.config({ creds_mode = "error-document" })
    local creds, err = get()
    assert.is_nil(creds)
    assert.equal("AssumeRoleUnauthorizedAccess", err.code)
    assert.matches("role fake-instance-role: the answer is an error (Code AssumeRoleUnauthorizedAccess): "
      .. "EC2 cannot assume the role", err.message, 1, true)
  end)

  it("refuses broken answers with InvalidResponse, quoting no secret", function()
    local cases = { ["bad-json"] = "not a JSON object", html = "an HTML or XML page", ["missing-token"] = "lacks Token",
      ["bad-expiration"] = "Expiration: not an RFC 3339 timestamp", empty = "not a JSON object" }
    for mode, expected in pairs(cases) do
      fake.config({ creds_mode = mode })
      local creds, err = get()
      assert.is_nil(creds, mode)
      assert.equal("InvalidResponse", err.code, mode)
      assert.matches(expected, err.message, 1, true)
      assert.not_matches("fake%-secret", err.message)
      assert.not_matches("fake%-session%-token", err.message)
    end
  end)

  it("refuses a role listing that is not a role name", function()
    fake.config({ role = "<html><body>Welcome</body></html>" })
    local creds, err = get()
    assert.is_nil(creds)
    assert.equal("InvalidResponse", err.code)
    assert.matches("did not answer a role name", err.message, 1, true)
  end)

  it("takes the first line of the role listing, trimmed", function()
    fake.config({ role = "  fake-instance-role\nother-role\n" })
    -- The fake lists the configured text as it is but serves credentials only under that
    -- exact text: the 404 for "fake-instance-role" shows the client asked for the trimmed first line.
    local creds, err = get()
    assert.is_nil(creds)
    assert.matches("the credentials of role fake-instance-role were not found (HTTP 404)", err.message, 1, true)
    local lines = requests()
    assert.equal("GET " .. ROLE_PATH .. "fake-instance-role", lines[3])
  end)

  it("retries a 500 and a timeout, up to AWS_METADATA_SERVICE_NUM_ATTEMPTS", function()
    fake.config({ get_500 = 1 })
    assert.is_table((get()))
    assert.equal(4, #requests())

    fake.reset()
    fake.config({ clock = T, get_500 = 10 })
    local creds, err = get({ AWS_METADATA_SERVICE_NUM_ATTEMPTS = "3" })
    assert.is_nil(creds)
    assert.equal(500, err.status)
    assert.matches("GET " .. ROLE_PATH .. " failed (HTTP 500)", err.message, 1, true)
    assert.same({ "PUT /latest/api/token", "GET " .. ROLE_PATH, "GET " .. ROLE_PATH, "GET " .. ROLE_PATH },
      (requests()))
  end)

  it("does not hang on a GET that never answers: a Timeout after the attempts", function()
    fake.config({ slow = 3 })
    local seconds, creds, err = elapsed(function() return get() end)
    assert.is_nil(creds)
    assert.equal("Timeout", err.code)
    assert.is_true(seconds < 2.5, "took " .. seconds .. " s")
    assert.same({ "PUT /latest/api/token", "GET " .. ROLE_PATH, "GET " .. ROLE_PATH }, (requests()))
  end)

  it("fails fast with the transport's code when nothing listens", function()
    local creds, err = get({ AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:1" })
    assert.is_nil(creds)
    assert.equal("ConnectionRefused", err.code)
    assert.matches("instance metadata at http://127.0.0.1:1: the token request failed", err.message, 1, true)
  end)

  it("reads the endpoint from the profile's ec2_metadata_service_endpoint", function()
    local helper = require("helper")
    local dir = helper.tmpdir()
    finally(function() helper.rmdir(dir) end)
    helper.write_file(dir .. "/config", "[default]\nec2_metadata_service_endpoint = " .. fake.imds .. "\n")
    local c = context.new({ env = { AWS_CONFIG_FILE = dir .. "/config", AWS_METADATA_SERVICE_TIMEOUT = "0.2",
      AWS_SHARED_CREDENTIALS_FILE = "/nonexistent" }, clock = function() return clock end })
    local creds = assert(assert(imds.provider(c)):get())
    assert.equal(fake.issued()[1], creds.access_key_id)
  end)

  describe("region", function()
    it("reads placement/region with a token", function()
      assert.equal("eu-west-3", imds.region(ctx()))
      local lines, headers = requests()
      assert.same({ "PUT /latest/api/token", "GET /latest/meta-data/placement/region" }, lines)
      assert.matches("^fake%-imds%-token%-", headers[2]["x-aws-ec2-metadata-token"])
    end)

    it("falls back to IMDSv1 as the credentials do", function()
      fake.config({ put_status = 405, region = "us-gov-west-1" })
      assert.equal("us-gov-west-1", imds.region(ctx()))
      local region, err = imds.region(ctx({ AWS_EC2_METADATA_V1_DISABLED = "TRUE" }))
      assert.is_nil(region)
      assert.matches("AWS_EC2_METADATA_V1_DISABLED", err.message, 1, true)
    end)

    it("refuses what is not a region name, and a 404", function()
      fake.config({ region = "<html>oops</html>" })
      local region, err = imds.region(ctx())
      assert.is_nil(region)
      assert.equal("InvalidResponse", err.code)
      fake.config({ region = core.null })
      region, err = imds.region(ctx())
      assert.is_nil(region)
      assert.equal(404, err.status)
    end)
  end)
end)

describe("fake_metadata_server.py's IMDS", function()
  local fake, http

  setup(function()
    fake = require("fake_metadata").start()
    http = core.http({ timeout = 2 })
  end)
  teardown(function()
    if http then http:close() end
    if fake then fake.stop() end
  end)

  -- What the spec above relies on: the TTL rules, X-Forwarded-For refused, tokens that expire.
  it("answers the token PUT as IMDS does, and lets tokens expire on its clock", function()
    fake.reset()
    fake.config({ clock = T, v2_required = true })
    local put = fake.imds .. "/latest/api/token"
    assert.equal(400, (http:request("PUT", put, {}, "")))
    assert.equal(400, (http:request("PUT", put, { "X-aws-ec2-metadata-token-ttl-seconds: 0" }, "")))
    assert.equal(400, (http:request("PUT", put, { "X-aws-ec2-metadata-token-ttl-seconds: 21601" }, "")))
    assert.equal(403, (http:request("PUT", put, { "X-aws-ec2-metadata-token-ttl-seconds: 60",
      "X-Forwarded-For: 10.0.0.1" }, "")))
    local status, token, headers = http:request("PUT", put, { "X-aws-ec2-metadata-token-ttl-seconds: 60" }, "")
    assert.equal(200, status)
    assert.equal("60", headers["x-aws-ec2-metadata-token-ttl-seconds"])
    local url = fake.imds .. ROLE_PATH
    assert.equal(401, (http:request("GET", url)))
    assert.equal(200, (http:request("GET", url, { "X-aws-ec2-metadata-token: " .. token })))
    fake.config({ clock = T + 60 })
    assert.equal(401, (http:request("GET", url, { "X-aws-ec2-metadata-token: " .. token })))
  end)
end)
