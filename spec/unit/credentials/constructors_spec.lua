-- ds.credentials' constructors with every kind of bad argument or missing
-- setting: each raises one clear message, none crashes or waits.
local ds = require("dynamodb_stream")

local function keys() return ds.credentials.static({ access_key_id = "AKIDX", secret_access_key = "secretx" }) end
local ROLE = "arn:aws:iam::111122223333:role/x"

local CASES = {
  { "static of nil", function() return ds.credentials.static(nil) end, "credentials must be a table, got nil" },
  { "static without a secret", function() return ds.credentials.static({ access_key_id = "A" }) end,
    "access_key_id and secret_access_key must be non%-empty strings" },
  { "from_function of a string", function() return ds.credentials.from_function("x") end, "a function expected" },
  { "profile of a number", function() return ds.credentials.profile(42) end, "a profile name expected" },
  { "a profile that does not exist", function()
    return ds.credentials.profile("nope", { env = { HOME = "/nonexistent" } }) end, "profile 'nope' not found" },
  { "process of nil", function() return ds.credentials.process(nil) end, "a command line expected" },
  { "process with an unbalanced quote", function() return ds.credentials.process("'abc") end,
    "no closing quotation" },
  { "web_identity with nothing set", function() return ds.credentials.web_identity({ env = {} }) end,
    "set AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE" },
  { "assume_role without a role", function() return ds.credentials.assume_role({}) end, "opts.role_arn expected" },
  { "assume_role with a bad source", function() return ds.credentials.assume_role({ role_arn = ROLE, source = 42 }) end,
    "source must be a provider" },
  { "assume_role with 5 s", function()
    return ds.credentials.assume_role({ role_arn = ROLE, duration_seconds = 5, source = keys() }) end,
    "duration_seconds must be a whole number of seconds from 900 to 43200" },
  { "container with nothing set", function() return ds.credentials.container({ env = {} }) end,
    "set AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI" },
  { "container on a host that is not allowed", function()
    return ds.credentials.container({ env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://evil.example/c" } }) end,
    "host evil.example is not allowed" },
  { "imds disabled", function() return ds.credentials.imds({ env = { AWS_EC2_METADATA_DISABLED = "true" } }) end,
    "instance metadata is disabled" },
  { "imds in mode IPv5", function()
    return ds.credentials.imds({ env = { AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE = "IPv5" } }) end,
    "must be IPv4 or IPv6, not 'IPv5'" },
  { "a chain with nothing configured", function()
    return ds.credentials.chain({ env = { AWS_EC2_METADATA_DISABLED = "true" } }) end, "no credentials: pass" },
  { "a chain with half a key pair", function() return ds.credentials.chain({ env = { AWS_ACCESS_KEY_ID = "A" } }) end,
    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not" },
  { "shared_dict outside nginx", function() return ds.credentials.shared_dict(keys(), "d") end,
    "only inside nginx" },
  { "a chain whose env is a number", function() return ds.credentials.chain({ env = 42 }) end,
    "env must be a table of variables or a function" },
  { "a chain whose clock is a string", function()
    return ds.credentials.chain({ clock = "now", env = { AWS_ACCESS_KEY_ID = "A", AWS_SECRET_ACCESS_KEY = "S" } }) end,
    "clock must be a function" },
  { "a chain whose region has a space", function() return ds.credentials.chain({ region = "us east" }) end,
    "region must be a name" },
}

describe("ds.credentials constructors", function()
  for _, case in ipairs(CASES) do
    it("refuse " .. case[1], function()
      local ok, err = pcall(case[2])
      assert.is_false(ok)
      assert.matches(case[3], tostring(err))
    end)
  end

  it("never show a secret in what they raise", function()
    local ok, err = pcall(ds.credentials.static, { access_key_id = "", secret_access_key = "TOPSECRETVALUE" })
    assert.is_false(ok)
    assert.not_matches("TOPSECRETVALUE", err)
  end)
end)
