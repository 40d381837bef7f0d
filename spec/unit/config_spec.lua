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
    local c = assert(cfg.credentials:get())
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
      local r, out = resolve(env({ AWS_REGION = "us-east-1", AWS_EC2_METADATA_DISABLED = "true" }))
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
      local e = env(keys)
      e.AWS_EC2_METADATA_DISABLED = "true"
      local _, out = resolve(e)
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

    -- Each is refused when the client is made, with a message naming the problem.
    local BAD = {
      { "http://h:0", "port that is not a number from 1 to 65535" },
      { "http://h:65536", "port that is not a number from 1 to 65535" },
      { "http://h:99999", "port that is not a number from 1 to 65535" },
      { "http://h:", "port that is not a number from 1 to 65535" },
      { "http://h:8x", "port that is not a number from 1 to 65535" },
      { "http://h :8000", "space, tab or control character" },
      { "http://h\t:8000", "space, tab or control character" },
      { "http://h/\r\nX-Injected: 1", "space, tab or control character" },
      { "http://h/a\0", "space, tab or control character" },
      { "http://h/./x", "path that is not canonical" },
      { "http://h//a", "path that is not canonical" },
      { "http://h/a/../b", "path that is not canonical" },
      { "http://h/a/.", "path that is not canonical" },
      { "http://h/a%zz", "'%%' not followed by two hex digits" },
      { "http://h/a\"b", "must be percent%-encoded" },
      { "http://user:pw@h/", "user information" },
      { "http://h/#frag", "fragment" },
      { "http://h/?x=1", "query" },
      { "http://", "no host" },
      { "http://:8000/", "no host" },
      { "http://[zz]:8000/", "malformed IPv6 address" },
      { "http://h%41/", "host with characters a host name cannot hold" },
      { "ftp://h/", "must use http or https" },
      { "localhost:8000", "is not an http%(s%) URL" },
    }

    it("refuses malformed endpoints when a client is made, saying what is wrong", function()
      local ds = require("dynamodb_stream")
      for _, case in ipairs(BAD) do
        for _, make in ipairs({ ds.client, ds.dynamodb }) do
          local ok, err = pcall(make, { region = "us-east-1", endpoint = case[1],
            credentials = { access_key_id = "K", secret_access_key = "S" } })
          assert.is_false(ok, case[1])
          assert.matches("endpoint", err, 1, false, case[1])
          assert.matches(case[2], err, 1, false, case[1])
          assert.is_nil(err:find("[\r\n]"), case[1]) -- control bytes are shown escaped
        end
      end
      local _, err = pcall(ds.client, { region = "us-east-1", endpoint = "http://user:secretpw@h/",
        credentials = { access_key_id = "K", secret_access_key = "S" } })
      assert.is_nil(err:find("secretpw", 1, true))
    end)

    local function with(extra)
      local e = env(base)
      for k, v in pairs(extra) do e[k] = v end
      return e
    end

    it("refuses them from the environment and from the profile too, naming where they came from", function()
      local r, out = resolve(with({ AWS_ENDPOINT_URL = "http://h:65536" }))
      assert.is_nil(r)
      assert.matches("port that is not a number from 1 to 65535 %(from AWS_ENDPOINT_URL%)", out)
      r, out = resolve(with({ AWS_ENDPOINT_URL_DYNAMODB_STREAMS = "http://h//a" }))
      assert.is_nil(r)
      assert.matches("not canonical .* %(from AWS_ENDPOINT_URL_DYNAMODB_STREAMS%)", out)
      helper.write_file(dir .. "/config", "[default]\nendpoint_url = http://h/./x\n")
      r, out = resolve(with({ AWS_CONFIG_FILE = dir .. "/config" }))
      assert.is_nil(r)
      assert.matches("not canonical .* %(from endpoint_url of profile 'default'%)", out)
    end)

    it("still accepts http and https, ports, IPv6 literals and a path prefix", function()
      local ds = require("dynamodb_stream")
      local good = {
        { "http://localhost:8000", "http://localhost:8000/", "localhost:8000" },
        { "https://example.com", "https://example.com/", "example.com" },
        { "HTTPS://example.com:8443/", "https://example.com:8443/", "example.com:8443" },
        { "http://[::1]:8000", "http://[::1]:8000/", "[::1]:8000" },
        { "http://[::1]", "http://[::1]/", "[::1]" },
        { "http://127.0.0.1:65535/prefix/v1", "http://127.0.0.1:65535/prefix/v1", "127.0.0.1:65535" },
        { "http://my_host.local:1/a%2Fb", "http://my_host.local:1/a%2Fb", "my_host.local:1" },
      }
      for _, case in ipairs(good) do
        local client = ds.client({ region = "us-east-1", endpoint = case[1],
          credentials = { access_key_id = "K", secret_access_key = "S" } })
        assert.equals(case[2], client._endpoint.url)
        assert.equals(case[3], client._endpoint.host)
        assert.equals("dynamodb_stream.client (" .. case[2] .. ", us-east-1)", tostring(client))
        client:close()
      end
    end)
  end)
end)
