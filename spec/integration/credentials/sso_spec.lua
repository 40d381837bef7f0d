-- IAM Identity Center against spec/support/fake_sts_sso_server.py (portal and OIDC): the
-- cache file names, legacy and sso-session tokens, expiry with and without a refresh token,
-- the refresh rewriting the cache file atomically, the portal's errors, and no token in any
-- message.
local core = require("dynamodb_stream.core")
local context = require("dynamodb_stream.credentials.context")
local sso = require("dynamodb_stream.credentials.sso")
local sts = require("dynamodb_stream.credentials.sts")
local timestamp = require("dynamodb_stream.credentials.timestamp")
local fake = require("fake_sts_sso")
local helper = require("helper")

-- A command's output without the final newline.
local function capture(cmd)
  return (helper.capture(cmd):gsub("%s+$", ""))
end

local NOW = 1788264000 -- 2026-09-01T12:00:00Z
local START_URL = "https://my-sso-portal.awsapps.com/start"
local SESSION_FILE = "0ad374308c5a4e22f723adf10145eafad7c4031c.json" -- sha1("my-sso")
local LEGACY_FILE = "c7aaaf71fcc8777ae2475525ed049d39fe16c484.json" -- sha1(START_URL)
local ACCESS = "aoa-cached-access-token-0123456789"
local REFRESH = "aor-cached-refresh-token-0123456789"
local CLIENT_SECRET = "client-secret-0123456789"

local FILES = { credentials = {}, config = {
  ["sso-session my-sso"] = { sso_start_url = START_URL, sso_region = "us-east-1" },
} }
local SESSION_PROFILE = { sso_session = "my-sso", sso_account_id = "111122223333", sso_role_name = "ReadOnly" }
local LEGACY_PROFILE = { sso_start_url = START_URL, sso_region = "us-east-1", sso_account_id = "111122223333",
  sso_role_name = "ReadOnly" }

describe("credentials.sso against the fake portal and OIDC", function()
  local srv, home, cache, clock, saved_timeout

  setup(function()
    srv = fake.start()
    saved_timeout = sso.TIMEOUT
  end)

  teardown(function()
    srv.stop()
    sso.TIMEOUT = saved_timeout
  end)

  before_each(function()
    srv.reset()
    srv.set({ clock = NOW, sso_tokens = { [ACCESS] = NOW + 8 * 3600 },
      oidc_clients = { ["client-1"] = { secret = CLIENT_SECRET, refresh_token = REFRESH } } })
    home = helper.tmpdir()
    cache = home .. "/.aws/sso/cache/"
    assert(os.execute("mkdir -p " .. cache))
    clock = NOW
  end)

  after_each(function()
    helper.rmdir(home)
  end)

  local function ctx_of(extra)
    local env = { HOME = home, AWS_ENDPOINT_URL_SSO = srv.base, AWS_ENDPOINT_URL_SSO_OIDC = srv.base }
    for k, v in pairs(extra or {}) do env[k] = v end
    return context.new({ env = env, clock = function() return clock end, sleep = function() end })
  end

  -- A token file as `aws sso login` writes it for an sso-session (fields replaceable; false drops one).
  local function write_token(name, fields)
    local data = { startUrl = START_URL, region = "us-east-1", accessToken = ACCESS,
      expiresAt = timestamp.format(NOW + 8 * 3600), refreshToken = REFRESH, clientId = "client-1",
      clientSecret = CLIENT_SECRET, registrationExpiresAt = timestamp.format(NOW + 90 * 86400) }
    for k, v in pairs(fields or {}) do data[k] = v or nil end
    helper.write_file(cache .. name, core.json_encode(data))
  end

  local function get(profile, extra_env, profile_name)
    local p = assert(sso.provider(ctx_of(extra_env), profile, FILES, profile_name))
    return p:get()
  end

  -- No message holds the cached tokens, the client secret, or anything the fakes issued.
  local function assert_clean(err, extra)
    local text = tostring(err)
    local secrets = { ACCESS, REFRESH, CLIENT_SECRET }
    for _, s in ipairs(extra or {}) do secrets[#secrets + 1] = s end
    local state = srv.state()
    for token in pairs(state.sso_tokens) do secrets[#secrets + 1] = token end
    for _, c in ipairs(state.issued) do secrets[#secrets + 1] = c.secret_access_key end
    for _, s in ipairs(secrets) do
      assert.is_nil(text:find(s, 1, true), "a secret in the message: " .. text)
    end
  end

  it("names the cache files as the SDKs do (the test vectors)", function()
    assert.equals(SESSION_FILE, core.sha1_hex("my-sso") .. ".json")
    assert.equals(LEGACY_FILE, core.sha1_hex(START_URL) .. ".json")
  end)

  it("trades an sso-session profile's cached token for role credentials", function()
    write_token(SESSION_FILE)
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(err)
    local issued = srv.state().issued[1]
    assert.same({ issued.access_key_id, issued.secret_access_key, issued.session_token },
      { creds.access_key_id, creds.secret_access_key, creds.session_token })
    assert.equals(NOW + 3600, creds.expiration) -- milliseconds on the wire
    local reqs = srv.requests()
    assert.equals(1, #reqs)
    assert.same({ "sso", "GET", "/federation/credentials", "account_id=111122223333&role_name=ReadOnly" },
      { reqs[1].service, reqs[1].method, reqs[1].path, reqs[1].query })
    assert.equals(ACCESS, reqs[1].headers["x-amz-sso_bearer_token"])
  end)

  it("reads a legacy profile's file, named by the start URL, with JS's expiresAt form", function()
    helper.write_file(cache .. LEGACY_FILE, core.json_encode({ startUrl = START_URL, region = "us-east-1",
      accessToken = ACCESS, expiresAt = "2026-09-01T20:00:00.000Z" }))
    local creds, err = get(LEGACY_PROFILE)
    assert.is_nil(err)
    assert.matches("^ASIAFAKE", creds.access_key_id)
  end)

  it("ignores client-registration files, and says to log in when the token's file is one", function()
    local registration = { clientId = "client-1", clientSecret = CLIENT_SECRET,
      registrationExpiresAt = timestamp.format(NOW + 86400), scopes = { "sso:account:access" } }
    helper.write_file(cache .. "botocore-client-id-us-east-1.json", core.json_encode(registration))
    write_token(SESSION_FILE)
    assert.is_table((get(SESSION_PROFILE)))
    helper.write_file(cache .. SESSION_FILE, core.json_encode(registration))
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.equals("CredentialsError", err.code)
    assert.matches("holds no accessToken", err.message)
    assert.matches("run `aws sso login %-%-sso%-session my%-sso`", err.message)
    assert_clean(err)
  end)

  it("says to log in when there is no cache file, naming the profile when known", function()
    local creds, err = get(SESSION_PROFILE, nil, "dev")
    assert.is_nil(creds)
    assert.equals("CredentialsError", err.code)
    assert.matches("^credentials %(SSO 111122223333/ReadOnly%): no cached SSO token", err.message)
    assert.matches("run `aws sso login %-%-profile dev`", err.message)
    helper.write_file(cache .. SESSION_FILE, "{not json")
    creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.matches("not a JSON object", err.message)
    assert.same({}, srv.requests())
  end)

  it("refuses an expired token that cannot be refreshed, calling nothing", function()
    helper.write_file(cache .. LEGACY_FILE, core.json_encode({ startUrl = START_URL, region = "us-east-1",
      accessToken = ACCESS, expiresAt = timestamp.format(NOW - 1) }))
    local creds, err = get(LEGACY_PROFILE)
    assert.is_nil(creds)
    assert.equals("CredentialsError", err.code)
    assert.matches("expired at 2026%-09%-01T11:59:59Z", err.message)
    assert.matches("aws sso login", err.message)
    -- An sso-session token without a refresh token, or whose registration expired.
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW - 60), refreshToken = false })
    creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.matches("expired", err.message)
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW - 60),
      registrationExpiresAt = timestamp.format(NOW - 1) })
    creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.matches("expired", err.message)
    assert.same({}, srv.requests())
    assert_clean(err)
  end)

  it("refreshes an expired sso-session token through OIDC and rewrites the cache file atomically", function()
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW - 60), scopes = { "sso:account:access" } })
    srv.set({ oidc_rotate = true, oidc_expires_in = 7200 })
    local path = cache .. SESSION_FILE
    local inode_before = capture("stat -c %i " .. path)
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(err)
    assert.is_table(creds)
    local reqs = srv.requests()
    assert.same({ "oidc", "POST", "/token" }, { reqs[1].service, reqs[1].method, reqs[1].path })
    assert.same({ clientId = "client-1", clientSecret = CLIENT_SECRET, grantType = "refresh_token",
      refreshToken = REFRESH }, core.json_decode(reqs[1].body))
    assert.equals("application/json", reqs[1].headers["content-type"])
    local rewritten = core.json_decode(helper.read_file(path))
    assert.are_not.equal(ACCESS, rewritten.accessToken)
    assert.equals(rewritten.accessToken, reqs[2].headers["x-amz-sso_bearer_token"])
    assert.equals(timestamp.format(NOW + 7200), rewritten.expiresAt)
    assert.are_not.equal(REFRESH, rewritten.refreshToken) -- rotated
    assert.equals(srv.state().oidc_clients["client-1"].refresh_token, rewritten.refreshToken)
    for _, kept in ipairs({ "startUrl", "region", "clientId", "clientSecret", "registrationExpiresAt" }) do
      assert.is_string(rewritten[kept], kept)
    end
    assert.same({ "sso:account:access" }, { rewritten.scopes[1] })
    -- A new file renamed over the old one, private to the user.
    assert.are_not.equal(inode_before, capture("stat -c %i " .. path))
    assert.equals("600", capture("stat -c %a " .. path))
    local leftovers = capture("ls -A " .. cache .. " | wc -l")
    assert.equals("1", leftovers)
  end)

  it("refreshes within 15 minutes of expiry, not before, and keeps the refresh token when none comes", function()
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW + 20 * 60) })
    assert.is_table((get(SESSION_PROFILE)))
    assert.equals(0, #srv.requests("oidc"))
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW + 10 * 60) })
    assert.is_table((get(SESSION_PROFILE)))
    assert.equals(1, #srv.requests("oidc"))
    assert.equals(REFRESH, core.json_decode(helper.read_file(cache .. SESSION_FILE)).refreshToken)
  end)

  it("a refused refresh of an expired token is the OIDC code and says to log in", function()
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW - 60), refreshToken = "aor-revoked-0123456789" })
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.same({ "InvalidGrantException", 400 }, { err.code, err.status })
    assert.matches("expired and SSO%-OIDC CreateToken refused", err.message)
    assert.matches("run `aws sso login", err.message)
    assert_clean(err, { "aor-revoked-0123456789" })
    assert.equals(0, #srv.requests("sso"))
    -- A wrong client secret: InvalidClientException.
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW - 60), clientSecret = "other-secret-0123456789" })
    creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.same({ "InvalidClientException", 401 }, { err.code, err.status })
    assert_clean(err, { "other-secret-0123456789" })
  end)

  it("a refused refresh of a token still valid falls back to that token", function()
    write_token(SESSION_FILE, { expiresAt = timestamp.format(NOW + 5 * 60), refreshToken = "aor-revoked-0123456789" })
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(err)
    assert.is_table(creds)
    assert.equals(ACCESS, srv.requests("sso")[1].headers["x-amz-sso_bearer_token"])
  end)

  it("a 401 from the portal says the token expired or was revoked, without the token", function()
    write_token(SESSION_FILE, { accessToken = "aoa-revoked-token-0123456789" })
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.same({ "UnauthorizedException", 401 }, { err.code, err.status })
    assert.matches("expired or revoked", err.message)
    assert.matches("run `aws sso login", err.message)
    assert_clean(err, { "aoa-revoked-token-0123456789" })
    assert.equals(1, #srv.requests("sso")) -- not retried
  end)

  it("other portal errors keep their code; 429 and 5xx are tried again", function()
    write_token(SESSION_FILE)
    srv.set({ sso_roles = { { "111122223333", "Admin" } } })
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.same({ "ForbiddenException", 403 }, { err.code, err.status })
    assert.matches("account 111122223333, role ReadOnly failed: ForbiddenException %(HTTP 403%): No access", err.message)
    srv.set({ sso_roles = core.null, sso_mode = "throttle", mode_count = 1 })
    assert.is_table((get(SESSION_PROFILE)))
    srv.reset()
    srv.set({ clock = NOW, sso_tokens = { [ACCESS] = NOW + 3600 }, sso_mode = "html" })
    creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.same({ "InvalidResponse", 502 }, { err.code, err.status })
    assert.equals(sts.MAX_ATTEMPTS, #srv.requests("sso"))
    srv.set({ sso_mode = "garbage" })
    creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.same({ "InvalidResponse", 200 }, { err.code, err.status })
    assert.matches("without roleCredentials", err.message)
    assert_clean(err)
  end)

  it("a hanging portal times out: Timeout, nothing hangs", function()
    write_token(SESSION_FILE)
    srv.set({ sso_mode = "hang", hang_seconds = 1 })
    sso.TIMEOUT = 0.2
    local creds, err = get(SESSION_PROFILE)
    sso.TIMEOUT = saved_timeout
    assert.is_nil(creds)
    assert.equals("Timeout", err.code)
    assert_clean(err)
  end)

  it("refuses a cached token that would break the header", function()
    write_token(SESSION_FILE, { accessToken = "aoa-token\r\nX-Injected: 1" })
    local creds, err = get(SESSION_PROFILE)
    assert.is_nil(creds)
    assert.matches("control character", err.message)
    assert.is_nil(err.message:find("Injected", 1, true))
    assert.same({}, srv.requests())
  end)
end)
