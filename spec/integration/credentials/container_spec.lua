-- credentials.container against spec/support/fake_metadata_server.py: FULL_URI with its
-- query, RELATIVE_URI on the injected ECS host (and over FULL_URI), the Authorization header
-- from the token or from a token file read at every fetch (rotation), tokens with CR/LF,
-- 4xx {Code, Message}, 5xx and hangs retried with pauses, broken answers.
local context = require("dynamodb_stream.credentials.context")
local container = require("dynamodb_stream.credentials.container")
local helper = require("helper")
local socket = require("socket")

local T = 1788264000 -- 2026-09-01T12:00:00Z

describe("credentials.container against a fake endpoint", function()
  local fake, clock, slept, dir

  setup(function()
    fake = require("fake_metadata").start()
    dir = helper.tmpdir()
  end)
  teardown(function()
    if fake then fake.stop() end
    if dir then helper.rmdir(dir) end
  end)
  before_each(function()
    fake.reset()
    clock, slept = T, {}
    fake.config({ clock = T })
  end)

  local function ctx(env, fields)
    local c = context.new({ env = env, clock = function() return clock end,
      sleep = function(s) slept[#slept + 1] = s end })
    for k, v in pairs(fields or {}) do c[k] = v end
    return c
  end

  local function get(env, fields)
    local p = assert(container.provider(ctx(env, fields)))
    return p:get()
  end

  local function full(path_and_query)
    return { AWS_CONTAINER_CREDENTIALS_FULL_URI = fake.container .. (path_and_query or "/v1/credentials") }
  end

  it("GETs the FULL_URI with its query, accepting JSON, and reads the credentials", function()
    fake.config({ expires_in = 3600 })
    local creds = assert(get(full("/v1/credentials?role=app&n=1")))
    assert.equal(fake.issued()[1], creds.access_key_id)
    assert.matches("^fake%-secret%-", creds.secret_access_key)
    assert.matches("^fake%-session%-token%-", creds.session_token)
    assert.equal(T + 3600, creds.expiration)
    local reqs = fake.requests()
    assert.equal(1, #reqs)
    assert.equal("GET", reqs[1].method)
    assert.equal("/v1/credentials?role=app&n=1", reqs[1].path)
    assert.equal("application/json", reqs[1].headers.accept)
    assert.is_nil(reqs[1].headers.authorization)
  end)

  it("GETs RELATIVE_URI (with its query) on the context's container_host, and prefers it to FULL_URI", function()
    local env = { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/4b8f-uuid?x=1",
      AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1:1/never" }
    local creds = assert(get(env, { container_host = fake.container }))
    assert.equal(fake.issued()[1], creds.access_key_id)
    local reqs = fake.requests()
    assert.equal(1, #reqs)
    assert.equal("/v2/credentials/4b8f-uuid?x=1", reqs[1].path)
  end)

  it("sends AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header", function()
    local env = full()
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN = "Basic c2VjcmV0"
    assert.is_table((get(env)))
    assert.equal("Basic c2VjcmV0", fake.requests()[1].headers.authorization)
  end)

  it("reads the token file at every fetch (EKS rotates it), and prefers it to the token", function()
    local file = dir .. "/eks-pod-identity-token"
    helper.write_file(file, "first-token")
    fake.config({ token_file = file, expires_in = 1800 })
    local env = full()
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = file
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN = "not-this-one"
    local p = assert(container.provider(ctx(env)))
    local first = assert(p:get())
    helper.write_file(file, "second-token\n") -- rotated, with an editor's final newline
    clock = T + 1000
    local second = assert(p:get())
    assert.are_not.equal(first.access_key_id, second.access_key_id)
    local reqs = fake.requests()
    assert.equal("first-token", reqs[1].headers.authorization)
    assert.equal("second-token", reqs[2].headers.authorization)
  end)

  it("refuses a token file with CR or LF inside, before any request, without quoting it", function()
    local file = dir .. "/crlf-token"
    helper.write_file(file, "s3cr3t-token\r\nX-Injected: 1")
    local env = full()
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = file
    local creds, err = get(env)
    assert.is_nil(creds)
    assert.equal("CredentialsError", err.code)
    assert.matches("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE holds a CR or LF", err.message, 1, true)
    assert.not_matches("s3cr3t", err.message, 1, true)
    assert.same({}, fake.requests())
  end)

  it("says so when the token file cannot be read", function()
    local env = full()
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = dir .. "/missing"
    local creds, err = get(env)
    assert.is_nil(creds)
    assert.matches("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", err.message, 1, true)
    assert.same({}, fake.requests())
  end)

  it("turns a 4xx {Code, Message} into an error with that code, at once, quoting no token", function()
    local file = dir .. "/token"
    helper.write_file(file, "right-token")
    fake.config({ token_file = file })
    local env = full("/v1/credentials?secret=query")
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = dir .. "/wrong"
    helper.write_file(dir .. "/wrong", "wrong-token")
    local creds, err = get(env)
    assert.is_nil(creds)
    assert.equal("AccessDeniedException", err.code)
    assert.equal(401, err.status)
    assert.matches("container credentials at " .. fake.container .. "/v1/credentials answered HTTP 401 "
      .. "(AccessDeniedException): the authorization token is not the current one", err.message, 1, true)
    assert.not_matches("wrong%-token", err.message)
    assert.not_matches("secret=query", err.message, 1, true)
    assert.equal(1, #fake.requests())
    assert.same({}, slept)
  end)

  it("redacts the token when a server's Message echoes it", function()
    fake.config({ container_script = { { status = 403, body = { code = "Forbidden",
      message = "token Bearer s3cr3t-token is revoked" } } } })
    local env = full()
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN = "Bearer s3cr3t-token"
    local creds, err = get(env)
    assert.is_nil(creds)
    assert.equal("Forbidden", err.code)
    assert.matches("token [redacted] is revoked", err.message, 1, true)
    assert.not_matches("s3cr3t", err.message, 1, true)
  end)

  it("retries a 5xx with a pause, and succeeds on the third attempt", function()
    fake.config({ container_script = { { status = 500, body = { Code = "InternalError" } },
      { status = 503, body = {} } } })
    local creds = assert(get(full()))
    assert.equal(fake.issued()[1], creds.access_key_id)
    assert.equal(3, #fake.requests())
    assert.same({ container.PAUSE, container.PAUSE }, slept)
  end)

  it("does not retry a redirect", function()
    fake.config({ container_script = { { status = 302 }, { status = 302 } } })
    local creds, err = get(full())
    assert.is_nil(creds)
    assert.equal(302, err.status)
    assert.equal("CredentialsError", err.code)
    assert.equal(1, #fake.requests())
  end)

  it("gives up after three 5xx", function()
    fake.config({ container_script = { { status = 500 }, { status = 502 }, { status = 503 }, { status = 500 } } })
    local creds, err = get(full())
    assert.is_nil(creds)
    assert.equal(503, err.status)
    assert.matches("3 attempts failed, the last with HTTP 503", err.message, 1, true)
    assert.equal(3, #fake.requests())
  end)

  it("does not hang on an endpoint that never answers: a Timeout after three short attempts", function()
    local saved = container.TIMEOUT
    container.TIMEOUT = 0.2
    finally(function() container.TIMEOUT = saved end)
    fake.config({ container_script = { { hang = 3 }, { hang = 3 }, { hang = 3 } } })
    local t0 = socket.gettime()
    local creds, err = get(full())
    local seconds = socket.gettime() - t0
    assert.is_nil(creds)
    assert.equal("Timeout", err.code)
    assert.is_true(seconds < 2.5, "took " .. seconds .. " s")
    assert.equal(3, #fake.requests())
    assert.same({ container.PAUSE, container.PAUSE }, slept)
  end)

  it("refuses broken answers with InvalidResponse, quoting no secret", function()
    local cases = { ["bad-json"] = "not a JSON object", html = "an HTML or XML page", ["missing-token"] = "lacks Token",
      ["bad-expiration"] = "Expiration: not an RFC 3339 timestamp" }
    for mode, expected in pairs(cases) do
      fake.config({ creds_mode = mode })
      local creds, err = get(full())
      assert.is_nil(creds, mode)
      assert.equal("InvalidResponse", err.code, mode)
      assert.matches(expected, err.message, 1, true)
      assert.not_matches("fake%-secret", err.message)
    end
  end)

  it("refuses a FULL_URI to a non-allowed host when the provider is made, connecting nowhere", function()
    local c = context.new({ env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://169.254.169.254/latest/meta-data" },
      transport = function() error("no HTTP call expected") end })
    local p, why = container.provider(c)
    assert.is_nil(p)
    assert.matches("host 169.254.169.254 is not allowed", why, 1, true)
  end)
end)
