-- Region, credentials and endpoint resolution, checked in a fresh process per
-- case so that the environment is exactly what the case sets.
local helper = require("helper")

local STREAMS = [[{ name = "client", endpoint_prefix = "streams.dynamodb", env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS" }]]
local DYNAMODB = [[{ name = "dynamodb", endpoint_prefix = "dynamodb", env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB" }]]

-- Resolves in a subprocess; returns the printed "key=value" lines as a table,
-- or the error message when resolution raised.
local function resolve(env, opts, service)
  local code = ([[
    local config = require("dynamodb_stream.config")
    local ok, cfg = pcall(config.resolve, %s, %s)
    if not ok then io.write("ERROR ", cfg) return end
    local c = cfg.credentials
    print("region=" .. cfg.region)
    print("endpoint=" .. cfg.endpoint.url)
    print("host=" .. cfg.endpoint.host)
    print("key=" .. c.access_key_id)
    print("secret=" .. c.secret_access_key)
    print("token=" .. tostring(c.session_token))
  ]]):format(service or STREAMS, opts or "nil")
  local out = helper.run_lua(env, code)
  if out:match("^ERROR ") then return nil, out end
  local result = {}
  for k, v in out:gmatch("(%w+)=([^\n]*)") do result[k] = v end
  return result, out
end

describe("config", function()
  local dir

  before_each(function()
    dir = helper.tmpdir()
  end)

  after_each(function()
    helper.rmdir(dir)
  end)

  local function env(extra)
    local e = { HOME = dir }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  describe("credentials", function()
    it("take explicit options over everything else", function()
      local r = assert(resolve(env({ AWS_ACCESS_KEY_ID = "ENVKEY", AWS_SECRET_ACCESS_KEY = "envsecret",
                                     AWS_REGION = "eu-west-1" }),
        [[{ credentials = { access_key_id = "OPTKEY", secret_access_key = "optsecret", session_token = "tok" } }]]))
      assert.equals("OPTKEY", r.key)
      assert.equals("optsecret", r.secret)
      assert.equals("tok", r.token)
    end)

    it("come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN", function()
      local r = assert(resolve(env({ AWS_ACCESS_KEY_ID = "ENVKEY", AWS_SECRET_ACCESS_KEY = "envsecret",
                                     AWS_SESSION_TOKEN = "envtoken", AWS_REGION = "eu-west-1" })))
      assert.equals("ENVKEY", r.key)
      assert.equals("envsecret", r.secret)
      assert.equals("envtoken", r.token)
    end)

    it("come from the AWS_PROFILE profile of ~/.aws/credentials, over ~/.aws/config", function()
      os.execute("mkdir -p " .. helper.shell_quote(dir .. "/.aws"))
      helper.write_file(dir .. "/.aws/credentials", table.concat({
        "[default]", "aws_access_key_id = DEFKEY", "aws_secret_access_key = defsecret",
        "", "# a comment", "[work]", "aws_access_key_id=WORKKEY", "aws_secret_access_key=worksecret",
        "aws_session_token = worktoken", "",
      }, "\n"))
      helper.write_file(dir .. "/.aws/config", table.concat({
        "[profile work]", "region = ap-south-1", "aws_access_key_id = IGNORED",
        "s3 =", "  max_concurrent_requests = 20", "",
      }, "\n"))
      local r = assert(resolve(env({ AWS_PROFILE = "work" })))
      assert.equals("WORKKEY", r.key)
      assert.equals("worksecret", r.secret)
      assert.equals("worktoken", r.token)
      assert.equals("ap-south-1", r.region)
      local d = assert(resolve(env({ AWS_REGION = "us-east-2" })))
      assert.equals("DEFKEY", d.key)
      assert.equals("nil", d.token)
    end)

    it("honour AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE", function()
      helper.write_file(dir .. "/creds", "[p]\naws_access_key_id = PKEY\naws_secret_access_key = psecret\n")
      helper.write_file(dir .. "/conf", "[profile p]\nregion = sa-east-1\n")
      local r = assert(resolve(env({ AWS_SHARED_CREDENTIALS_FILE = dir .. "/creds",
                                     AWS_CONFIG_FILE = dir .. "/conf" }), [[{ profile = "p" }]]))
      assert.equals("PKEY", r.key)
      assert.equals("sa-east-1", r.region)
    end)

    it("prefer an explicit profile option to environment keys", function()
      helper.write_file(dir .. "/creds", "[p]\naws_access_key_id = PKEY\naws_secret_access_key = psecret\n")
      local r = assert(resolve(env({ AWS_SHARED_CREDENTIALS_FILE = dir .. "/creds", AWS_REGION = "us-east-1",
                                     AWS_ACCESS_KEY_ID = "ENVKEY", AWS_SECRET_ACCESS_KEY = "envsecret" }),
        [[{ profile = "p" }]]))
      assert.equals("PKEY", r.key)
    end)

    it("are an error naming every source when none is configured", function()
      local r, out = resolve(env({ AWS_REGION = "us-east-1" }))
      assert.is_nil(r)
      assert.matches("no credentials", out)
      assert.matches("AWS_ACCESS_KEY_ID", out)
      local _, missing = resolve(env({ AWS_REGION = "us-east-1" }), [[{ profile = "nope" }]])
      assert.matches("profile 'nope' not found", missing)
    end)

    it("reject malformed credentials without echoing the secret", function()
      local _, out = resolve(env({ AWS_REGION = "us-east-1" }),
        [[{ credentials = { access_key_id = "", secret_access_key = "TOPSECRET" } }]])
      assert.matches("access_key_id and secret_access_key must be non%-empty strings", out)
      assert.not_matches("TOPSECRET", out)
    end)
  end)

  describe("region", function()
    local keys = { AWS_ACCESS_KEY_ID = "K", AWS_SECRET_ACCESS_KEY = "S" }

    it("is AWS_REGION, then AWS_DEFAULT_REGION, then the profile's", function()
      helper.write_file(dir .. "/conf", "[default]\nregion = ca-central-1\n")
      local function with(extra)
        local e = env(keys)
        e.AWS_CONFIG_FILE = dir .. "/conf"
        for k, v in pairs(extra) do e[k] = v end
        return assert(resolve(e)).region
      end
      assert.equals("eu-north-1", with({ AWS_REGION = "eu-north-1", AWS_DEFAULT_REGION = "eu-south-1" }))
      assert.equals("eu-south-1", with({ AWS_DEFAULT_REGION = "eu-south-1" }))
      assert.equals("ca-central-1", with({}))
    end)

    it("is an error when nothing sets it", function()
      local _, out = resolve(env(keys))
      assert.matches("no region", out)
    end)
  end)

  describe("endpoint", function()
    local base = { AWS_ACCESS_KEY_ID = "K", AWS_SECRET_ACCESS_KEY = "S", AWS_REGION = "eu-west-3" }

    local function endpoint(extra, opts, service)
      local e = env(base)
      for k, v in pairs(extra) do e[k] = v end
      return assert(resolve(e, opts, service))
    end

    it("defaults to the regional AWS endpoints", function()
      assert.equals("https://streams.dynamodb.eu-west-3.amazonaws.com/", endpoint({}).endpoint)
      assert.equals("https://dynamodb.eu-west-3.amazonaws.com/", endpoint({}, nil, DYNAMODB).endpoint)
      assert.equals("streams.dynamodb.eu-west-3.amazonaws.com", endpoint({}).host)
    end)

    it("follows AWS precedence: option, service variable, AWS_ENDPOINT_URL", function()
      local vars = {
        AWS_ENDPOINT_URL_DYNAMODB_STREAMS = "http://127.0.0.1:1001",
        AWS_ENDPOINT_URL_DYNAMODB = "http://127.0.0.1:1002",
        AWS_ENDPOINT_URL = "http://127.0.0.1:1003",
      }
      assert.equals("http://127.0.0.1:1001/", endpoint(vars).endpoint)
      assert.equals("http://127.0.0.1:1002/", endpoint(vars, nil, DYNAMODB).endpoint)
      assert.equals("http://127.0.0.1:1003/", endpoint({ AWS_ENDPOINT_URL = "http://127.0.0.1:1003" }).endpoint)
      assert.equals("http://127.0.0.1:9/", endpoint(vars, [[{ endpoint = "http://127.0.0.1:9" }]]).endpoint)
      local ignored = endpoint({ AWS_ENDPOINT_URL = "http://127.0.0.1:1003", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "true" })
      assert.equals("https://streams.dynamodb.eu-west-3.amazonaws.com/", ignored.endpoint)
    end)

    it("keeps a non-default port in the Host header and drops a default one", function()
      assert.equals("localhost:8000", endpoint({}, [[{ endpoint = "http://localhost:8000" }]]).host)
      assert.equals("example.com", endpoint({}, [[{ endpoint = "https://example.com:443/" }]]).host)
    end)

    it("rejects URLs that are not http(s)", function()
      local e = env(base)
      for _, bad in ipairs({ "ftp://x", "localhost:8000", "http://user:pw@host/", "http://" }) do
        local r, out = resolve(e, ("{ endpoint = %q }"):format(bad))
        assert.is_nil(r, bad)
        assert.matches("endpoint", out)
      end
    end)
  end)
end)
