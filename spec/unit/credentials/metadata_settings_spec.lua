-- The settings of the two metadata sources, checked without a network: the IMDS endpoint
-- and mode, timeouts and attempts; the container URL rules (the http host allowlist,
-- RELATIVE over FULL, the query kept, the injectable ECS host) and the authorization token;
-- and the credentials JSON both answer. The contexts here fail any HTTP call, so a
-- builder that connected would fail the spec.
local context = require("dynamodb_stream.credentials.context")
local imds = require("dynamodb_stream.credentials.imds")
local container = require("dynamodb_stream.credentials.container")

local function ctx(env, fields)
  env.AWS_CONFIG_FILE = env.AWS_CONFIG_FILE or "/nonexistent/config"
  env.AWS_SHARED_CREDENTIALS_FILE = env.AWS_SHARED_CREDENTIALS_FILE or "/nonexistent/credentials"
  local c = context.new({ env = env, transport = function() error("no HTTP call expected here") end })
  for k, v in pairs(fields or {}) do c[k] = v end
  return c
end

describe("imds.endpoint", function()
  it("defaults to the IPv4 address, and takes the mode in any case", function()
    assert.equal("http://169.254.169.254", imds.endpoint(nil, nil))
    assert.equal("http://169.254.169.254", imds.endpoint(nil, "IPv4"))
    assert.equal("http://[fd00:ec2::254]", imds.endpoint(nil, "IPv6"))
    assert.equal("http://[fd00:ec2::254]", imds.endpoint(nil, "ipv6"))
  end)

  it("takes an endpoint over the mode, without its trailing slash", function()
    assert.equal("http://127.0.0.1:8111", imds.endpoint("http://127.0.0.1:8111/", "IPv6"))
    assert.equal("http://[fd00:ec2::254]", imds.endpoint("http://[fd00:ec2::254]", nil))
  end)

  it("refuses a mode that is neither, and an endpoint that is not an http URL", function()
    local base, why = imds.endpoint(nil, "IPv5")
    assert.is_nil(base)
    assert.matches("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE must be IPv4 or IPv6, not 'IPv5'", why, 1, true)
    base, why = imds.endpoint("169.254.169.254", nil)
    assert.is_nil(base)
    assert.matches("^AWS_EC2_METADATA_SERVICE_ENDPOINT: .*http", why)
    assert.is_nil((imds.endpoint("ftp://127.0.0.1/", nil)))
  end)
end)

describe("imds.provider settings", function()
  it("is nil when AWS_EC2_METADATA_DISABLED is true in any case, and only then", function()
    assert.is_nil(imds.provider(ctx({ AWS_EC2_METADATA_DISABLED = "true" })))
    assert.is_nil(imds.provider(ctx({ AWS_EC2_METADATA_DISABLED = "TRUE" })))
    assert.is_nil(select(2, imds.provider(ctx({ AWS_EC2_METADATA_DISABLED = "TRUE" }))))
    assert.is_nil(imds.region(ctx({ AWS_EC2_METADATA_DISABLED = "True" })))
    assert.is_table(imds.provider(ctx({ AWS_EC2_METADATA_DISABLED = "false" })))
    assert.is_table(imds.provider(ctx({ AWS_EC2_METADATA_DISABLED = "1" })))
  end)

  it("refuses wrong settings, naming the variable", function()
    local cases = {
      { { AWS_EC2_METADATA_SERVICE_ENDPOINT = "not a url" }, "AWS_EC2_METADATA_SERVICE_ENDPOINT" },
      { { AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE = "dual" }, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE must be" },
      { { AWS_METADATA_SERVICE_TIMEOUT = "soon" }, "AWS_METADATA_SERVICE_TIMEOUT must be a positive number" },
      { { AWS_METADATA_SERVICE_TIMEOUT = "0" }, "AWS_METADATA_SERVICE_TIMEOUT must be a positive number" },
      { { AWS_METADATA_SERVICE_TIMEOUT = "nan" }, "AWS_METADATA_SERVICE_TIMEOUT must be a positive number" },
      { { AWS_METADATA_SERVICE_NUM_ATTEMPTS = "0" }, "AWS_METADATA_SERVICE_NUM_ATTEMPTS must be an integer" },
      { { AWS_METADATA_SERVICE_NUM_ATTEMPTS = "1.5" }, "AWS_METADATA_SERVICE_NUM_ATTEMPTS must be an integer" },
    }
    for _, case in ipairs(cases) do
      local p, why = imds.provider(ctx(case[1]))
      assert.is_nil(p)
      assert.matches(case[2], why, 1, true)
      local region, err = imds.region(ctx(case[1]))
      assert.is_nil(region)
      assert.matches(case[2], err.message, 1, true)
    end
  end)

  it("reads the endpoint settings of the profile (AWS_PROFILE) when the environment has none", function()
    local helper = require("helper")
    local dir = helper.tmpdir()
    finally(function() helper.rmdir(dir) end)
    helper.write_file(dir .. "/config", "[profile ec2]\nec2_metadata_service_endpoint_mode = IPv7\n"
      .. "[default]\nmetadata_service_num_attempts = many\n")
    local p, why = imds.provider(ctx({ AWS_CONFIG_FILE = dir .. "/config", AWS_PROFILE = "ec2" }))
    assert.is_nil(p)
    assert.equal("ec2_metadata_service_endpoint_mode (profile) must be IPv4 or IPv6, not 'IPv7'", why)
    p, why = imds.provider(ctx({ AWS_CONFIG_FILE = dir .. "/config" }))
    assert.is_nil(p)
    assert.matches("metadata_service_num_attempts (profile) must be an integer", why, 1, true)
    -- The environment wins over the profile.
    assert.is_table(imds.provider(ctx({ AWS_CONFIG_FILE = dir .. "/config", AWS_PROFILE = "ec2",
      AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE = "IPv6" })))
  end)
end)

describe("the builders' argument", function()
  it("must be a context", function()
    assert.has_error(function() imds.provider() end,
      "imds.provider: a credentials context expected (credentials.context.new), got nil")
    assert.has_error(function() imds.region("x") end,
      "imds.region: a credentials context expected (credentials.context.new), got string")
    assert.has_error(function() container.provider({}) end,
      "container.provider: a credentials context expected (credentials.context.new), got table")
  end)
end)

describe("container.http_host_allowed", function()
  it("allows loopback, localhost and the ECS/EKS link-local addresses", function()
    for _, host in ipairs({ "127.0.0.1", "127.1.2.3", "127.255.255.255", "localhost", "LocalHost", "[::1]",
      "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]", "[FD00:EC2::23]" }) do
      assert.is_true(container.http_host_allowed(host), host)
    end
  end)

  it("refuses every other host, and names that only look like allowed ones", function()
    for _, host in ipairs({ "10.0.0.1", "169.254.169.254", "169.254.170.3", "128.0.0.1", "127.0.0.256",
      "127.0.0.1.nip.io", "localhost.example.com", "0127.0.0.1", "example.com", "[fd00:ec2::254]", "[::2]" }) do
      assert.is_false(container.http_host_allowed(host), host)
    end
  end)
end)

describe("container.check_url", function()
  it("keeps the query and the port", function()
    assert.equal("http://127.0.0.1:8080/v1/credentials?role=a&x=1",
      container.check_url("http://127.0.0.1:8080/v1/credentials?role=a&x=1", "X", true))
    assert.equal("https://creds.example.com/get",
      container.check_url("https://creds.example.com/get", "X", true))
  end)

  it("applies the allowlist to plain http only", function()
    local url, why = container.check_url("http://creds.example.com:8080/get?token=s3cr3t", "FULL", true)
    assert.is_nil(url)
    assert.equal("FULL: host creds.example.com is not allowed: over plain http only a loopback host "
      .. "(127.0.0.0/8, ::1, localhost), 169.254.170.2, 169.254.170.23 or fd00:ec2::23 is allowed; "
      .. "use https for any other host", why)
    assert.equal("http://creds.example.com/get", container.check_url("http://creds.example.com/get", "R", false))
  end)

  it("refuses what is not an http URL, a fragment, and spaces or control characters in the query", function()
    assert.is_nil((container.check_url("file:///etc/passwd", "X", true)))
    assert.is_nil((container.check_url("http://127.0.0.1/x#frag", "X", true)))
    assert.is_nil((container.check_url("http://127.0.0.1/x?a=b c", "X", true)))
    assert.is_nil((container.check_url("http://127.0.0.1/x?a=b\r\nX-Evil: 1", "X", true)))
    assert.is_nil((container.check_url("http://user:pw@127.0.0.1/x", "X", true)))
  end)
end)

describe("container.provider settings", function()
  it("is nil when neither URI variable is set, even with a token", function()
    local p, why = container.provider(ctx({ AWS_CONTAINER_AUTHORIZATION_TOKEN = "t" }))
    assert.is_nil(p)
    assert.is_nil(why)
  end)

  it("refuses a FULL_URI to a host plain http may not reach, naming the host and the rule", function()
    local p, why = container.provider(ctx({ AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://192.168.1.10/creds" }))
    assert.is_nil(p)
    assert.matches("AWS_CONTAINER_CREDENTIALS_FULL_URI: host 192.168.1.10 is not allowed", why, 1, true)
    assert.matches("use https", why, 1, true)
  end)

  it("takes RELATIVE_URI over FULL_URI, whose host is then not checked", function()
    local p, why = container.provider(ctx({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/abc",
      AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://192.168.1.10/creds" }))
    assert.is_nil(why)
    assert.is_table(p)
  end)

  it("refuses a RELATIVE_URI that is not a path, or that makes a bad URL", function()
    local p, why = container.provider(ctx({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "v2/credentials" }))
    assert.is_nil(p)
    assert.matches("must be a path that starts with '/'", why, 1, true)
    p, why = container.provider(ctx({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/a b" }))
    assert.is_nil(p)
    assert.matches("^AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: ", why)
  end)

  it("refuses a token with CR or LF without quoting it; a token file is checked when read", function()
    for _, token in ipairs({ "Bearer s3cr3t\r\nX-Evil: 1", "s3cr3t\n", "s3\rcr3t" }) do
      local p, why = container.provider(ctx({ AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1/c",
        AWS_CONTAINER_AUTHORIZATION_TOKEN = token }))
      assert.is_nil(p)
      assert.equal("AWS_CONTAINER_AUTHORIZATION_TOKEN holds a CR or LF, which a header value cannot", why)
    end
    -- The file wins over the token, so a bad token next to a file is not used and not refused.
    assert.is_table(container.provider(ctx({ AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1/c",
      AWS_CONTAINER_AUTHORIZATION_TOKEN = "bad\n", AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = "/nonexistent" })))
  end)
end)

describe("imds.decode_credentials", function()
  local GOOD = '{"Code":"Success","AccessKeyId":"ASIAX","SecretAccessKey":"s3cr3t-key","Token":"s3cr3t-token",'
    .. '"Expiration":"2026-09-01T18:20:41Z","Type":"AWS-HMAC"}'

  it("reads the four fields, Expiration as epoch seconds; Code may be absent", function()
    local creds = assert(imds.decode_credentials(GOOD, "here"))
    assert.same({ access_key_id = "ASIAX", secret_access_key = "s3cr3t-key", session_token = "s3cr3t-token",
      expiration = 1788286841 }, creds)
    assert.is_table((imds.decode_credentials((GOOD:gsub('"Code":"Success",', "")), "here")))
  end)

  it("turns an error document into an error with its Code and Message", function()
    local creds, err = imds.decode_credentials('{"Code":"AssumeRoleUnauthorizedAccess","Message":"EC2 cannot\\nassume"}',
      "here")
    assert.is_nil(creds)
    assert.equal("AssumeRoleUnauthorizedAccess", err.code)
    assert.equal("here: the answer is an error (Code AssumeRoleUnauthorizedAccess): EC2 cannot assume", err.message)
    creds, err = imds.decode_credentials('{"Code":{"x":1}}', "here")
    assert.is_nil(creds)
    assert.equal("CredentialsError", err.code)
  end)

  it("refuses bad JSON, HTML, missing or mistyped fields and bad times, quoting no secret", function()
    local cases = {
      { GOOD:sub(1, -10), "not a JSON object" },
      { "<html><body>s3cr3t-key</body></html>", "an HTML or XML page" },
      { "", "not a JSON object" },
      { "[1,2]", "lacks AccessKeyId" },
      { (GOOD:gsub('"Token":"s3cr3t%-token",', "")), "lacks Token" },
      { (GOOD:gsub('"Token":"s3cr3t%-token"', '"Token":7')), "lacks Token" },
      { (GOOD:gsub('"Token":"s3cr3t%-token"', '"Token":null')), "lacks Token" },
      { (GOOD:gsub('"SecretAccessKey":"s3cr3t%-key"', '"SecretAccessKey":""')), "lacks SecretAccessKey" },
      { (GOOD:gsub("2026%-09%-01T18:20:41Z", "tomorrow")), "Expiration: not an RFC 3339 timestamp" },
    }
    for _, case in ipairs(cases) do
      local creds, err = imds.decode_credentials(case[1], "here")
      assert.is_nil(creds, case[2])
      assert.equal("InvalidResponse", err.code)
      assert.matches(case[2], err.message, 1, true)
      assert.not_matches("s3cr3t", err.message, 1, true)
    end
  end)
end)
