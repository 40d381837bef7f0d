-- STS endpoint choice and the STS and SSO builders: what they accept and refuse, with no
-- network (a context whose HTTP fails the test if it is called).
local context = require("dynamodb_stream.credentials.context")
local provider = require("dynamodb_stream.credentials.provider")
local sts = require("dynamodb_stream.credentials.sts")
local sso = require("dynamodb_stream.credentials.sso")

local ROLE = "arn:aws:iam::111122223333:role/Deploy"

local function ctx_of(env, region)
  return context.new({ env = env or {}, region = region, transport = function()
    error("a builder made a network call")
  end })
end

local source = assert(provider.static({ access_key_id = "AKIDSRC", secret_access_key = "src-secret" }))

describe("credentials.sts.endpoint", function()
  it("is regional for the region given, else ctx.region, else us-east-1", function()
    local url, region, parts = sts.endpoint(ctx_of({}, "us-west-2"), "eu-west-1")
    assert.same({ "https://sts.eu-west-1.amazonaws.com/", "eu-west-1" }, { url, region })
    url, region, parts = sts.endpoint(ctx_of({}, "ap-southeast-2"))
    assert.equals("https://sts.ap-southeast-2.amazonaws.com/", url)
    assert.equals("ap-southeast-2", region)
    assert.same({ "sts.ap-southeast-2.amazonaws.com", "/" }, { parts.host, parts.path })
    url, region = sts.endpoint(ctx_of())
    assert.same({ "https://sts.us-east-1.amazonaws.com/", "us-east-1" }, { url, region })
    url, region = sts.endpoint(ctx_of(), "cn-north-1")
    assert.same({ "https://sts.cn-north-1.amazonaws.com.cn/", "cn-north-1" }, { url, region })
  end)

  it("sends aws-global to the global endpoint, signed for us-east-1", function()
    local url, region = sts.endpoint(ctx_of(), "aws-global")
    assert.same({ "https://sts.amazonaws.com/", "us-east-1" }, { url, region })
  end)

  it("with AWS_STS_REGIONAL_ENDPOINTS=legacy sends the legacy regions to the global endpoint", function()
    local ctx = ctx_of({ AWS_STS_REGIONAL_ENDPOINTS = "Legacy" })
    for _, r in ipairs({ "eu-west-1", "us-west-2", "ap-south-1", "sa-east-1", "eu-north-1" }) do
      local url, region = sts.endpoint(ctx, r)
      assert.same({ "https://sts.amazonaws.com/", "us-east-1" }, { url, region }, r)
    end
    for _, r in ipairs({ "eu-south-1", "af-south-1", "ap-east-1", "me-south-1" }) do
      local url, region = sts.endpoint(ctx, r)
      assert.same({ "https://sts." .. r .. ".amazonaws.com/", r }, { url, region }, r)
    end
    local url = sts.endpoint(ctx_of({ AWS_STS_REGIONAL_ENDPOINTS = "regional" }), "eu-west-1")
    assert.equals("https://sts.eu-west-1.amazonaws.com/", url)
    local none, why = sts.endpoint(ctx_of({ AWS_STS_REGIONAL_ENDPOINTS = "global" }), "eu-west-1")
    assert.is_nil(none)
    assert.matches("'regional' or 'legacy'", why)
  end)

  it("takes AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, keeping the signing region", function()
    local env = { AWS_ENDPOINT_URL_STS = "http://127.0.0.1:9/sts", AWS_ENDPOINT_URL = "http://127.0.0.1:8",
      AWS_STS_REGIONAL_ENDPOINTS = "legacy" }
    local url, region, parts = sts.endpoint(ctx_of(env), "eu-west-1")
    assert.same({ "http://127.0.0.1:9/sts", "eu-west-1", "127.0.0.1:9", "/sts" }, { url, region, parts.host, parts.path })
    env.AWS_ENDPOINT_URL_STS = nil
    assert.equals("http://127.0.0.1:8/", (sts.endpoint(ctx_of(env), "eu-west-1")))
    env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "TRUE"
    assert.equals("https://sts.amazonaws.com/", (sts.endpoint(ctx_of(env), "eu-west-1")))
  end)

  it("refuses a bad override or region, saying where it came from", function()
    local none, why = sts.endpoint(ctx_of({ AWS_ENDPOINT_URL_STS = "ftp://x" }), "eu-west-1")
    assert.is_nil(none)
    assert.matches("AWS_ENDPOINT_URL_STS", why)
    none, why = sts.endpoint(ctx_of({ AWS_ENDPOINT_URL = "http://u:p@host" }), "eu-west-1")
    assert.is_nil(none)
    assert.matches("user information", why)
    assert.is_nil(why:find("u:p", 1, true))
    none, why = sts.endpoint(ctx_of(), "eu-west-1.evil.com/")
    assert.is_nil(none)
    assert.matches("not a region name", why)
  end)

  it("is worked out anew each call: the host never gains the region twice", function()
    local env = {}
    local ctx = ctx_of(env, "us-west-2")
    for _ = 1, 3 do assert.equals("https://sts.us-west-2.amazonaws.com/", (sts.endpoint(ctx))) end
    env.AWS_STS_REGIONAL_ENDPOINTS = "legacy"
    assert.equals("https://sts.amazonaws.com/", (sts.endpoint(ctx)))
  end)
end)

describe("credentials.sts.form", function()
  it("percent-encodes everything but the unreserved characters, and leaves out nils", function()
    assert.equals("A=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&B=a%2Bb%3Dc%2C%40%20%26~-._&D=3600",
      sts.form({ { "A", "arn:aws:iam::1:role/x" }, { "B", "a+b=c,@ &~-._" }, { "C", nil }, { "D", 3600 } }))
  end)
end)

describe("credentials.sts.web_identity_provider", function()
  it("is nil when no token file is named (a profile's role_arn alone is an assume-role profile)", function()
    assert.is_nil(sts.web_identity_provider(ctx_of()))
    local p, why = sts.web_identity_provider(ctx_of(), { role_arn = ROLE, source_profile = "base" })
    assert.is_nil(p)
    assert.is_nil(why)
  end)

  it("takes the environment, each key falling back to the profile's", function()
    local p = assert(sts.web_identity_provider(ctx_of({ AWS_WEB_IDENTITY_TOKEN_FILE = "/t", AWS_ROLE_ARN = ROLE })))
    assert.is_true(provider.is_provider(p))
    assert.matches("web identity", p.name)
    assert(sts.web_identity_provider(ctx_of({ AWS_WEB_IDENTITY_TOKEN_FILE = "/t" }), { role_arn = ROLE }))
    assert(sts.web_identity_provider(ctx_of({ AWS_ROLE_ARN = ROLE }), { web_identity_token_file = "/t" }))
    assert(sts.web_identity_provider(ctx_of(), { web_identity_token_file = "/t", role_arn = ROLE,
      role_session_name = "pod@ns", duration_seconds = "3600" }))
  end)

  it("refuses half a configuration and bad values, saying which", function()
    local p, why = sts.web_identity_provider(ctx_of({ AWS_WEB_IDENTITY_TOKEN_FILE = "/t" }))
    assert.is_nil(p)
    assert.matches("AWS_WEB_IDENTITY_TOKEN_FILE.*no role ARN", why)
    p, why = sts.web_identity_provider(ctx_of(), { web_identity_token_file = "/t" })
    assert.is_nil(p)
    assert.matches("web_identity_token_file.*no role ARN", why)
    p, why = sts.web_identity_provider(ctx_of({ AWS_ROLE_ARN = ROLE }))
    assert.is_nil(p)
    assert.matches("AWS_ROLE_ARN is set but no token file", why)
    local env = { AWS_WEB_IDENTITY_TOKEN_FILE = "/t", AWS_ROLE_ARN = ROLE, AWS_ROLE_SESSION_NAME = "a b" }
    p, why = sts.web_identity_provider(ctx_of(env))
    assert.is_nil(p)
    assert.matches("role_session_name", why)
    env.AWS_ROLE_SESSION_NAME, env.AWS_ROLE_ARN = nil, "not-an-arn"
    p, why = sts.web_identity_provider(ctx_of(env))
    assert.is_nil(p)
    assert.matches("role ARN", why)
    env.AWS_ROLE_ARN, env.AWS_ENDPOINT_URL_STS = ROLE, "http://host:99999"
    p, why = sts.web_identity_provider(ctx_of(env))
    assert.is_nil(p)
    assert.matches("AWS_ENDPOINT_URL_STS", why)
  end)
end)

describe("credentials.sts.assume_role_provider", function()
  it("builds from the profile's keys without calling anything", function()
    local p = assert(sts.assume_role_provider(ctx_of({}, "eu-west-1"), source, { role_arn = ROLE,
      external_id = "xyz-1", role_session_name = "deploy", duration_seconds = "900" }))
    assert.is_true(provider.is_provider(p))
    assert.equals("assume role " .. ROLE, p.name)
  end)

  it("refuses mfa_serial with a clear message", function()
    local p, why = sts.assume_role_provider(ctx_of(), source, { role_arn = ROLE,
      mfa_serial = "arn:aws:iam::111122223333:mfa/me" })
    assert.is_nil(p)
    assert.matches("MFA", why)
    assert.matches("no prompt", why)
  end)

  it("refuses a missing role_arn and bad values", function()
    local cases = {
      { {}, "no role_arn" },
      { { role_arn = ROLE, role_session_name = "x" }, "role_session_name" },
      { { role_arn = ROLE, role_session_name = ("x"):rep(65) }, "role_session_name" },
      { { role_arn = ROLE, role_session_name = "a/b" }, "role_session_name" },
      { { role_arn = ROLE, duration_seconds = "899" }, "duration_seconds" },
      { { role_arn = ROLE, duration_seconds = "43201" }, "duration_seconds" },
      { { role_arn = ROLE, duration_seconds = "1h" }, "duration_seconds" },
      { { role_arn = ROLE, duration_seconds = "0x384" }, "duration_seconds" },
      { { role_arn = ROLE, external_id = "a b" }, "external_id" },
    }
    for _, case in ipairs(cases) do
      local p, why = sts.assume_role_provider(ctx_of(), source, case[1])
      assert.is_nil(p)
      assert.matches(case[2], why)
    end
    for _, good in ipairs({ "900", "43200", " 3600 " }) do
      assert(sts.assume_role_provider(ctx_of(), source, { role_arn = ROLE, duration_seconds = good }))
    end
  end)

  it("raises on a source that is no provider", function()
    assert.has_error(function() sts.assume_role_provider(ctx_of(), {}, { role_arn = ROLE }) end,
      "sts.assume_role_provider: source_provider must be a provider")
  end)
end)

describe("credentials.sso.provider", function()
  local files = { config = {
    ["sso-session my-sso"] = { sso_start_url = "https://my-sso-portal.awsapps.com/start", sso_region = "us-east-1" },
    ["sso-session half"] = { sso_region = "us-east-1" },
  }, credentials = {} }

  it("is nil for a profile with no sso key", function()
    local p, why = sso.provider(ctx_of(), { region = "eu-west-1", aws_access_key_id = "AKID" }, files)
    assert.is_nil(p)
    assert.is_nil(why)
  end)

  it("builds an sso-session profile and a legacy one", function()
    local p = assert(sso.provider(ctx_of(), { sso_session = "my-sso", sso_account_id = "111122223333",
      sso_role_name = "ReadOnly" }, files))
    assert.is_true(provider.is_provider(p))
    assert(sso.provider(ctx_of(), { sso_session = "my-sso", sso_account_id = "111122223333",
      sso_role_name = "ReadOnly", sso_region = "us-east-1",
      sso_start_url = "https://my-sso-portal.awsapps.com/start" }, files))
    assert(sso.provider(ctx_of(), { sso_start_url = "https://my-sso-portal.awsapps.com/start",
      sso_region = "us-east-1", sso_account_id = "111122223333", sso_role_name = "ReadOnly" }, files))
  end)

  it("refuses a partial or inconsistent configuration", function()
    local base = { sso_account_id = "111122223333", sso_role_name = "ReadOnly" }
    local function with(extra)
      local s = {}
      for k, v in pairs(base) do s[k] = v end
      for k, v in pairs(extra) do s[k] = v end
      return s
    end
    local cases = {
      { with({ sso_session = "nope" }), "no %[sso%-session nope%] section" },
      { with({ sso_session = "half" }), "needs both sso_start_url and sso_region" },
      { with({ sso_session = "my-sso", sso_start_url = "https://other.awsapps.com/start" }), "sso_start_url.*differs" },
      { with({ sso_session = "my-sso", sso_region = "eu-west-1" }), "sso_region.*differs" },
      { with({ sso_start_url = "https://x.awsapps.com/start" }), "sso_session, or both" },
      { { sso_session = "my-sso", sso_role_name = "ReadOnly" }, "sso_account_id and sso_role_name" },
      { { sso_session = "my-sso", sso_account_id = "111122223333" }, "sso_account_id and sso_role_name" },
      { with({ sso_start_url = "https://x", sso_region = "us east" }), "not a region name" },
    }
    for _, case in ipairs(cases) do
      local p, why = sso.provider(ctx_of(), case[1], files)
      assert.is_nil(p)
      assert.matches(case[2], why)
    end
    local p, why = sso.provider(ctx_of({ AWS_ENDPOINT_URL_SSO = "nope" }), with({ sso_session = "my-sso" }), files)
    assert.is_nil(p)
    assert.matches("AWS_ENDPOINT_URL_SSO", why)
  end)

  it("reads the sso-session section from ctx:files() when no files are given", function()
    local dir = require("helper").tmpdir()
    local path = dir .. "/config"
    require("helper").write_file(path, "[sso-session s]\nsso_start_url = https://a/start\nsso_region = eu-west-1\n")
    local ctx = ctx_of({ AWS_CONFIG_FILE = path, AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" })
    local ok = sso.provider(ctx, { sso_session = "s", sso_account_id = "1", sso_role_name = "R" })
    require("helper").rmdir(dir)
    assert.is_true(provider.is_provider(ok))
  end)
end)
