-- STS AssumeRole and AssumeRoleWithWebIdentity against spec/support/fake_sts_sso_server.py,
-- which verifies each AssumeRole signature with botocore: endpoint choice (the Host
-- recorded), the session token header, the unsigned web identity call and its token file
-- re-read after a rotation, and each error mode turned into a clear err.
local core = require("dynamodb_stream.core")
local context = require("dynamodb_stream.credentials.context")
local provider = require("dynamodb_stream.credentials.provider")
local sts = require("dynamodb_stream.credentials.sts")
local fake = require("fake_sts_sso")
local helper = require("helper")

local ROLE = "arn:aws:iam::111122223333:role/Deploy"
local NOW = 1788264000 -- 2026-09-01T12:00:00Z
local SRC = { access_key_id = "AKIDSOURCE", secret_access_key = "source-secret-0123456789" }
local TEMP = { access_key_id = "ASIASOURCE", secret_access_key = "temp-secret-0123456789",
  session_token = "temp-session-token-0123456789" }

-- No message may hold a secret the call knew or the server issued.
local function assert_clean(err, srv, extra)
  local text = tostring(err) .. " " .. tostring(err.message)
  local secrets = { SRC.secret_access_key, TEMP.secret_access_key, TEMP.session_token }
  for _, s in ipairs(extra or {}) do secrets[#secrets + 1] = s end
  for _, c in ipairs(srv.state().issued) do
    secrets[#secrets + 1] = c.secret_access_key
    secrets[#secrets + 1] = c.session_token
  end
  for _, s in ipairs(secrets) do
    assert.is_nil(text:find(s, 1, true), "a secret in the message: " .. text)
    assert.is_nil(text:find(s:sub(1, 10), 1, true), "part of a secret in the message: " .. text)
  end
end

describe("credentials.sts against the fake STS", function()
  local srv, dir, token_file, sleeps, clock

  setup(function()
    srv = fake.start()
    dir = helper.tmpdir()
    token_file = dir .. "/token"
  end)

  teardown(function()
    srv.stop()
    helper.rmdir(dir)
  end)

  before_each(function()
    srv.reset()
    helper.write_file(token_file, "eyJhbGciOiJSUzI1NiJ9.first-token.sig")
    srv.set({ clock = NOW, token_file = token_file, source_keys = {
      [SRC.access_key_id] = { secret = SRC.secret_access_key, token = core.null },
      [TEMP.access_key_id] = { secret = TEMP.secret_access_key, token = TEMP.session_token },
    } })
    sleeps, clock = {}, NOW
  end)

  local function ctx_of(env, opts)
    opts = opts or {}
    if env == nil then env = { AWS_ENDPOINT_URL_STS = srv.base } end
    return context.new({ env = env, region = opts.region or "eu-west-1", transport = opts.transport,
      clock = function() return clock end, sleep = function(s) sleeps[#sleeps + 1] = s end })
  end

  local function source(creds) return assert(provider.static(creds, "source")) end

  describe("AssumeRole", function()
    it("is signed with the source keys (verified by botocore) and returns the role's credentials", function()
      local creds, err = sts.assume_role(ctx_of(), source(SRC), { role_arn = ROLE, external_id = "ext:id/1" })
      assert.is_nil(err)
      local issued = srv.state().issued
      assert.equals(1, #issued)
      assert.equals(issued[1].access_key_id, creds.access_key_id)
      assert.equals(issued[1].secret_access_key, creds.secret_access_key)
      assert.equals(issued[1].session_token, creds.session_token)
      assert.equals(NOW + 3600, creds.expiration)
      assert.equals("111122223333", creds.account_id)
      local req = srv.requests("sts")[1]
      assert.equals("eu-west-1", req.scope_region)
      assert.equals("127.0.0.1:" .. srv.port, req.headers.host)
      assert.matches("^AWS4%-HMAC%-SHA256 Credential=AKIDSOURCE/20260901/eu%-west%-1/sts/aws4_request, ",
        req.headers.authorization)
      assert.equals("20260901T120000Z", req.headers["x-amz-date"])
      assert.is_nil(req.headers["x-amz-security-token"])
      assert.equals("application/x-www-form-urlencoded; charset=utf-8", req.headers["content-type"])
      assert.same({ Action = "AssumeRole", Version = "2011-06-15", RoleArn = ROLE,
        RoleSessionName = "dynamodb_stream-" .. NOW, ExternalId = "ext:id/1" }, fake.form(req.body))
    end)

    it("sends the source's session token in X-Amz-Security-Token, signed", function()
      local creds, err = sts.assume_role(ctx_of(), source(TEMP), { role_arn = ROLE })
      assert.is_nil(err)
      assert.matches("^ASIAFAKE", creds.access_key_id)
      local req = srv.requests("sts")[1]
      assert.equals(TEMP.session_token, req.headers["x-amz-security-token"])
      assert.matches("SignedHeaders=content%-type;host;x%-amz%-date;x%-amz%-security%-token,",
        req.headers.authorization)
    end)

    it("percent-encodes the parameters so that STS reads them back exactly", function()
      local creds = sts.assume_role(ctx_of(), source(SRC), { role_arn = "arn:aws:iam::111122223333:role/a/b+c=d,e.f@g-h",
        role_session_name = "a+b=c,d.e@f_g-h", duration_seconds = 900 })
      assert.is_table(creds)
      assert.equals(NOW + 900, creds.expiration)
      local body = srv.requests("sts")[1].body
      assert.matches("RoleSessionName=a%%2Bb%%3Dc%%2Cd%.e%%40f_g%-h", body)
      assert.same({ "a+b=c,d.e@f_g-h", "900" }, { fake.form(body).RoleSessionName, fake.form(body).DurationSeconds })
    end)

    it("fails with SignatureDoesNotMatch for a wrong secret, and InvalidClientTokenId for an unknown key", function()
      local wrong = { access_key_id = SRC.access_key_id, secret_access_key = "wrong-secret-0123456789" }
      local creds, err = sts.assume_role(ctx_of(), source(wrong), { role_arn = ROLE })
      assert.is_nil(creds)
      assert.same({ "SignatureDoesNotMatch", 403 }, { err.code, err.status })
      assert.matches("STS AssumeRole of " .. ROLE:gsub("%p", "%%%0") .. " failed: The request signature we calculated", err.message)
      assert_clean(err, srv, { "wrong-secret-0123456789" })
      creds, err = sts.assume_role(ctx_of(), source({ access_key_id = "AKIDUNKNOWN", secret_access_key = "x-secret" }),
        { role_arn = ROLE })
      assert.is_nil(creds)
      assert.same({ "InvalidClientTokenId", 403 }, { err.code, err.status })
      -- A temporary key without its token is refused as well.
      creds, err = sts.assume_role(ctx_of(), source({ access_key_id = TEMP.access_key_id,
        secret_access_key = TEMP.secret_access_key }), { role_arn = ROLE })
      assert.is_nil(creds)
      assert.equals("InvalidClientTokenId", err.code)
      assert.equals(3, #srv.requests("sts")) -- none retried
    end)

    it("checks the ExternalId the role requires", function()
      srv.set({ external_id = "xyz" })
      local creds, err = sts.assume_role(ctx_of(), source(SRC), { role_arn = ROLE, external_id = "abc" })
      assert.is_nil(creds)
      assert.equals("AccessDenied", err.code)
      assert.is_table((sts.assume_role(ctx_of(), source(SRC), { role_arn = ROLE, external_id = "xyz" })))
    end)

    it("passes on the source's failure without calling STS", function()
      local failing = provider.new("broken source", function()
        return nil, require("dynamodb_stream.errors").new({ code = "Timeout", message = "IMDS did not answer" })
      end)
      local creds, err = sts.assume_role(ctx_of(), failing, { role_arn = ROLE })
      assert.is_nil(creds)
      assert.equals("Timeout", err.code)
      assert.matches("no source credentials", err.message)
      assert.matches("IMDS did not answer", err.message)
      assert.same({}, srv.requests())
    end)

    it("raises on bad arguments", function()
      assert.has_error(function() sts.assume_role(ctx_of(), source(SRC), { role_arn = "x" }) end,
        "sts.assume_role: role_arn must be a role ARN (arn:aws:iam::<account>:role/<name>)")
      assert.has_error(function() sts.assume_role(ctx_of(), {}, { role_arn = ROLE }) end,
        "sts.assume_role: source_provider must be a provider")
      assert.has_error(function() sts.assume_role({}, source(SRC), { role_arn = ROLE }) end,
        "sts.assume_role: ctx must be a credentials context")
    end)
  end)

  describe("endpoint", function()
    -- A transport that sends what is meant for an AWS host to the fake, keeping the Host.
    local function redirecting()
      return function(timeout)
        local http = core.http({ timeout = timeout, connect_timeout = timeout })
        return { request = function(_, method, url, lines, body)
          local host, path = url:match("^https://([^/]+)(/.*)$")
          local sent = {}
          for i, l in ipairs(lines or {}) do sent[i] = l end
          sent[#sent + 1] = "Host: " .. host
          return http:request(method, srv.base .. path, sent, body)
        end }
      end
    end

    it("is the regional one of the client's region by default, signed for that region", function()
      local p = assert(sts.assume_role_provider(ctx_of({}, { region = "ap-southeast-2", transport = redirecting() }),
        source(TEMP), { role_arn = ROLE }))
      assert.is_table((p:get()))
      local req = srv.requests("sts")[1]
      assert.equals("sts.ap-southeast-2.amazonaws.com", req.headers.host)
      assert.equals("ap-southeast-2", req.scope_region)
    end)

    it("is the global one for a legacy region with AWS_STS_REGIONAL_ENDPOINTS=legacy, signed for us-east-1", function()
      local ctx = ctx_of({ AWS_STS_REGIONAL_ENDPOINTS = "legacy" }, { region = "eu-west-1", transport = redirecting() })
      assert.is_table((sts.assume_role(ctx, source(SRC), { role_arn = ROLE })))
      ctx.region = "eu-south-1"
      assert.is_table((sts.assume_role(ctx, source(SRC), { role_arn = ROLE })))
      local reqs = srv.requests("sts")
      assert.same({ "sts.amazonaws.com", "us-east-1" }, { reqs[1].headers.host, reqs[1].scope_region })
      assert.same({ "sts.eu-south-1.amazonaws.com", "eu-south-1" }, { reqs[2].headers.host, reqs[2].scope_region })
    end)

    it("is the override, with a path, signed for the configured region", function()
      local ctx = ctx_of({ AWS_ENDPOINT_URL = srv.base .. "/" }, { region = "eu-central-1" })
      assert.is_table((sts.assume_role(ctx, source(SRC), { role_arn = ROLE, region = "us-west-2" })))
      local req = srv.requests("sts")[1]
      assert.same({ "127.0.0.1:" .. srv.port, "us-west-2" }, { req.headers.host, req.scope_region })
    end)
  end)

  describe("AssumeRoleWithWebIdentity", function()
    local params

    before_each(function()
      params = { role_arn = ROLE, token_file = token_file, role_session_name = "pod-1" }
    end)

    it("is unsigned and sends the token file's contents", function()
      helper.write_file(token_file, "eyJhbGciOiJSUzI1NiJ9.first-token.sig\n")
      local creds, err = sts.assume_role_with_web_identity(ctx_of(), params)
      assert.is_nil(err)
      assert.equals(srv.state().issued[1].access_key_id, creds.access_key_id)
      local req = srv.requests("sts")[1]
      assert.is_nil(req.headers.authorization)
      assert.is_nil(req.headers["x-amz-security-token"])
      assert.same({ Action = "AssumeRoleWithWebIdentity", Version = "2011-06-15", RoleArn = ROLE,
        RoleSessionName = "pod-1", WebIdentityToken = "eyJhbGciOiJSUzI1NiJ9.first-token.sig" }, fake.form(req.body))
    end)

    it("re-reads the token file on every refresh (the kubelet rotates it)", function()
      local p = assert(sts.web_identity_provider(ctx_of({ AWS_ENDPOINT_URL_STS = srv.base,
        AWS_WEB_IDENTITY_TOKEN_FILE = token_file, AWS_ROLE_ARN = ROLE, AWS_ROLE_SESSION_NAME = "pod-1" })))
      local first = assert(p:get())
      helper.write_file(token_file, "eyJhbGciOiJSUzI1NiJ9.second-token.sig")
      clock = NOW + 3000 -- past the advance refresh point of a one-hour credential
      local second = assert(p:get())
      assert.are_not.equal(first.access_key_id, second.access_key_id)
      local reqs = srv.requests("sts")
      assert.equals(2, #reqs)
      assert.equals("eyJhbGciOiJSUzI1NiJ9.first-token.sig", fake.form(reqs[1].body).WebIdentityToken)
      assert.equals("eyJhbGciOiJSUzI1NiJ9.second-token.sig", fake.form(reqs[2].body).WebIdentityToken)
    end)

    it("names the token file it cannot read, and calls nothing", function()
      params.token_file = dir .. "/absent"
      local creds, err = sts.assume_role_with_web_identity(ctx_of(), params)
      assert.is_nil(creds)
      assert.equals("CredentialsError", err.code)
      assert.matches("web identity token file " .. dir:gsub("%p", "%%%0") .. "/absent", err.message)
      helper.write_file(token_file, " \n")
      creds, err = sts.assume_role_with_web_identity(ctx_of(), { role_arn = ROLE, token_file = token_file })
      assert.is_nil(creds)
      assert.matches("it is empty", err.message)
      assert.same({}, srv.requests())
    end)

    it("keeps the token out of a message that quotes it back", function()
      srv.set({ sts_mode = "leaky" })
      local creds, err = sts.assume_role_with_web_identity(ctx_of(), params)
      assert.is_nil(creds)
      assert.equals("AccessDenied", err.code)
      assert.matches("token=%*%*%*", err.message)
      assert_clean(err, srv, { "eyJhbGciOiJSUzI1NiJ9.first-token.sig" })
    end)
  end)

  describe("errors", function()
    local function web(ctx, timeout)
      return sts.assume_role_with_web_identity(ctx or ctx_of(), { role_arn = ROLE, token_file = token_file,
        timeout = timeout })
    end

    for _, case in ipairs({
      { "AccessDenied", 403 }, { "InvalidIdentityToken", 400 }, { "ExpiredTokenException", 400 },
      { "RegionDisabledException", 403 },
    }) do
      it(case[1] .. " is returned with AWS's code and status, not retried", function()
        srv.set({ sts_mode = case[1] })
        local creds, err = web()
        assert.is_nil(creds)
        assert.same({ case[1], case[2] }, { err.code, err.status })
        assert.matches("STS AssumeRoleWithWebIdentity of " .. ROLE:gsub("%p", "%%%0") .. " failed: fake " .. case[1],
          err.message)
        assert.equals(1, #srv.requests("sts"))
        assert_clean(err, srv, { "eyJhbGciOiJSUzI1NiJ9.first-token.sig" })
      end)
    end

    it("Throttling is tried again after a short pause, then succeeds", function()
      srv.set({ sts_mode = "Throttling", mode_count = 1 })
      local creds, err = sts.assume_role(ctx_of(), source(TEMP), { role_arn = ROLE })
      assert.is_nil(err)
      assert.is_table(creds)
      assert.equals(2, #srv.requests("sts"))
      assert.same({ sts.RETRY_BASE }, sleeps)
    end)

    it("Throttling that does not stop gives up after MAX_ATTEMPTS with AWS's code", function()
      srv.set({ sts_mode = "Throttling" })
      local creds, err = web()
      assert.is_nil(creds)
      assert.same({ "Throttling", 400 }, { err.code, err.status })
      assert.equals(sts.MAX_ATTEMPTS, #srv.requests("sts"))
      assert.same({ sts.RETRY_BASE, sts.RETRY_BASE * 2 }, sleeps)
    end)

    it("IDPCommunicationError is tried again, as botocore does", function()
      srv.set({ sts_mode = "IDPCommunicationError", mode_count = 1 })
      assert.is_table((web()))
      assert.equals(2, #srv.requests("sts"))
    end)

    it("a 5xx is tried again", function()
      srv.set({ sts_mode = "InternalFailure", mode_count = 2 })
      assert.is_table((web()))
      assert.equals(3, #srv.requests("sts"))
    end)

    it("a truncated answer is InvalidResponse, quoting nothing of it, not retried", function()
      srv.set({ sts_mode = "malformed" })
      local creds, err = web()
      assert.is_nil(creds)
      assert.same({ "InvalidResponse", 200 }, { err.code, err.status })
      assert.matches("cut off", err.message)
      assert.matches("of text/xml", err.message)
      assert_clean(err, srv)
      assert.equals(1, #srv.requests("sts"))
    end)

    it("an HTML page, the other action's answer and an empty body are InvalidResponse", function()
      for _, mode in ipairs({ "html", "wrong_root", "empty" }) do
        srv.set({ sts_mode = mode })
        local creds, err = web()
        assert.is_nil(creds, mode)
        assert.equals("InvalidResponse", err.code, mode)
        assert_clean(err, srv)
      end
      srv.set({ sts_mode = "html", mode_status = 502 })
      local _, err = web()
      assert.same({ "InvalidResponse", 502 }, { err.code, err.status })
      assert.matches("of text/html", err.message)
    end)

    it("a hanging STS times out on every attempt: Timeout, nothing hangs", function()
      srv.set({ sts_mode = "hang", hang_seconds = 1 })
      local creds, err = web(nil, 0.3)
      assert.is_nil(creds)
      assert.equals("Timeout", err.code)
      assert.matches("STS AssumeRoleWithWebIdentity of .* at " .. srv.base:gsub("%p", "%%%0"), err.message)
      assert.equals(sts.MAX_ATTEMPTS, #srv.requests("sts"))
    end)

    it("a refused connection is ConnectionRefused", function()
      local srv2 = helper.http_server()
      local env = { AWS_ENDPOINT_URL_STS = "http://127.0.0.1:" .. srv2.refused }
      local creds, err = web(ctx_of(env))
      helper.stop_http_server(srv2)
      assert.is_nil(creds)
      assert.equals("ConnectionRefused", err.code)
    end)

    it("a provider's error names the provider and keeps the code", function()
      srv.set({ sts_mode = "AccessDenied" })
      local p = assert(sts.assume_role_provider(ctx_of(), source(SRC), { role_arn = ROLE }))
      local creds, err = p:get()
      assert.is_nil(creds)
      assert.equals("AccessDenied", err.code)
      assert.matches("^credentials %(assume role " .. ROLE:gsub("%p", "%%%0") .. "%)", err.message)
      assert.matches("trust policy", err.message)
    end)
  end)
end)
