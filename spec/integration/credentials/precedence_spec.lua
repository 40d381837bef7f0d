-- The default chain against botocore (Debian's python3-botocore, an independent
-- implementation): the same environment and files, resolved by both, give the
-- same source, and the same access key where no STS or SSO call is needed
-- (botocore defers those). Instance metadata and the container endpoint are
-- spec/support/fake_metadata_server.py for both.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local helper = require("helper")

-- botocore's name of a source -> ours (by the provider's name).
local KINDS = {
  { "^environment$", "env" },
  { "^credential_process ", "custom-process" },
  { "^profile ", "static" },
  { "^assume role ", "assume-role" },
  { "^web identity ", "assume-role-with-web-identity" },
  { "^SSO ", "sso" },
  { "^container credentials$", "container-role" },
  { "^instance metadata$", "iam-role" },
}
local BOTOCORE_STATIC = { ["shared-credentials-file"] = "static", ["config-file"] = "static" }
local WITH_KEY = { env = true, static = true, ["custom-process"] = true }

local function kind_of(name)
  for _, k in ipairs(KINDS) do
    if name:find(k[1]) then return k[2] end
  end
  return "unknown: " .. name
end

-- What the chain resolves: "kind key", "none" (nothing configured) or "error".
local function ours(env)
  local ok, p = pcall(ds.credentials.chain, { env = env })
  if not ok then return p:find("no credentials", 1, true) and "none" or "error", p end
  local kind = kind_of(p.name)
  if not WITH_KEY[kind] then return kind end
  local creds, err = p:get()
  if not creds then return "error", tostring(err) end
  return kind .. " " .. creds.access_key_id
end

local function botocore(env)
  local out = helper.capture(helper.env_command(env, "/usr/bin/python3 spec/support/botocore_credentials.py"))
  local r = core.json_decode(out)
  assert(type(r) == "table", "botocore_credentials.py: " .. out)
  if r.error then return "error", r.error end
  if r.method == core.null then return "none" end
  local kind = BOTOCORE_STATIC[r.method] or r.method
  if not WITH_KEY[kind] then return kind end
  return kind .. " " .. r.key
end

describe("the default chain, next to botocore's", function()
  local fake, dir

  setup(function()
    fake = require("fake_metadata").start()
    dir = helper.tmpdir()
    helper.write_file(dir .. "/creds.sh", '#!/bin/sh\necho \'{"Version": 1, "AccessKeyId": "PROCKEY", '
      .. '"SecretAccessKey": "proc-secret"}\'\n')
    os.execute("chmod +x " .. dir .. "/creds.sh")
    helper.write_file(dir .. "/token", "a-web-identity-token")
  end)

  teardown(function()
    if fake then fake.stop() end
    if dir then helper.rmdir(dir) end
  end)

  local ENV_KEYS = { AWS_ACCESS_KEY_ID = "ENVKEY", AWS_SECRET_ACCESS_KEY = "env-secret" }
  local DEFAULT_KEYS = "[default]\naws_access_key_id = DEFKEY\naws_secret_access_key = def-secret\n"
  local DEV_KEYS = "[dev]\naws_access_key_id = DEVKEY\naws_secret_access_key = dev-secret\n"
  local function container() return { AWS_CONTAINER_CREDENTIALS_FULL_URI = fake.container .. "/v1/credentials" } end
  local function imds() return { AWS_EC2_METADATA_SERVICE_ENDPOINT = fake.imds } end
  local function web_identity()
    return { AWS_WEB_IDENTITY_TOKEN_FILE = dir .. "/token", AWS_ROLE_ARN = "arn:aws:iam::111122223333:role/Web" }
  end

  -- { name, env (tables, or functions returning one, merged), credentials file, config file, expected }
  local CASES = {
    { "environment keys over the default profile", { ENV_KEYS }, DEFAULT_KEYS, nil, "env ENVKEY" },
    { "environment keys over a profile named by AWS_PROFILE", { ENV_KEYS, { AWS_PROFILE = "dev" } },
      DEFAULT_KEYS .. DEV_KEYS, nil, "env ENVKEY" },
    { "AWS_PROFILE selects the profile", { { AWS_PROFILE = "dev" } }, DEFAULT_KEYS .. DEV_KEYS, nil, "static DEVKEY" },
    { "a profile named by AWS_PROFILE that does not exist is an error, keys or not", { ENV_KEYS, { AWS_PROFILE = "nope" } },
      DEFAULT_KEYS, nil, "error" },
    { "the profile over the container", { container }, DEFAULT_KEYS, nil, "static DEFKEY" },
    { "the container over instance metadata", { container, imds }, nil, nil, "container-role" },
    { "instance metadata when nothing else is configured", { imds }, nil, nil, "iam-role" },
    { "nothing when instance metadata is disabled", { { AWS_EC2_METADATA_DISABLED = "true" } }, nil, nil, "none" },
    { "the container when instance metadata is disabled", { container, { AWS_EC2_METADATA_DISABLED = "true" } },
      nil, nil, "container-role" },
    { "a role profile over its source profile's keys", { { AWS_PROFILE = "deploy" } }, DEFAULT_KEYS,
      "[profile deploy]\nrole_arn = arn:aws:iam::111122223333:role/Deploy\nsource_profile = default\n", "assume-role" },
    { "a chain of three profiles", { { AWS_PROFILE = "a" } }, "[c]\naws_access_key_id = CKEY\naws_secret_access_key = c\n",
      "[profile a]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = b\n"
      .. "[profile b]\nrole_arn = arn:aws:iam::1:role/B\nsource_profile = c\n", "assume-role" },
    { "a source_profile cycle is an error", { { AWS_PROFILE = "a" } }, nil,
      "[profile a]\nrole_arn = arn:aws:iam::1:role/A\nsource_profile = b\n"
      .. "[profile b]\nrole_arn = arn:aws:iam::1:role/B\nsource_profile = a\n", "error" },
    { "credential_source = EcsContainer", { container, { AWS_PROFILE = "ecs" } }, nil,
      "[profile ecs]\nrole_arn = arn:aws:iam::1:role/E\ncredential_source = EcsContainer\n", "assume-role" },
    { "credential_source = Environment, keys in the environment: the environment first",
      { ENV_KEYS, { AWS_PROFILE = "envrole" } }, nil,
      "[profile envrole]\nrole_arn = arn:aws:iam::1:role/E\ncredential_source = Environment\n", "env ENVKEY" },
    { "credential_source = Ec2InstanceMetadata", { imds, { AWS_PROFILE = "ec2" } }, nil,
      "[profile ec2]\nrole_arn = arn:aws:iam::1:role/E\ncredential_source = Ec2InstanceMetadata\n", "assume-role" },
    { "credential_process over the config file's keys", {}, nil,
      "[default]\ncredential_process = " .. "CREDS_SH" .. "\naws_access_key_id = CONFKEY\naws_secret_access_key = c\n",
      "custom-process PROCKEY" },
    { "the credentials file's keys over credential_process", {}, DEFAULT_KEYS,
      "[default]\ncredential_process = CREDS_SH\n", "static DEFKEY" },
    { "web identity in the environment over the default profile's keys", { web_identity }, DEFAULT_KEYS, nil,
      "assume-role-with-web-identity" },
    { "environment keys over web identity", { ENV_KEYS, web_identity }, nil, nil, "env ENVKEY" },
    { "a role profile over web identity in the environment", { web_identity, { AWS_PROFILE = "deploy" } },
      DEFAULT_KEYS, "[profile deploy]\nrole_arn = arn:aws:iam::1:role/D\nsource_profile = default\n", "assume-role" },
    { "SSO over static keys in one profile", {}, nil,
      "[default]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
      .. "sso_account_id = 111122223333\nsso_role_name = ReadOnly\n"
      .. "aws_access_key_id = CONFKEY\naws_secret_access_key = c\n", "sso" },
    { "a profile's role_arn without a source is an error", { { AWS_PROFILE = "lost" } }, DEFAULT_KEYS,
      "[profile lost]\nrole_arn = arn:aws:iam::1:role/L\n", "error" },
  }

  for _, case in ipairs(CASES) do
    local name, parts, credentials, config, expected = case[1], case[2], case[3], case[4], case[5]
    it(name, function()
      local env = { HOME = dir, AWS_SHARED_CREDENTIALS_FILE = dir .. "/credentials",
        AWS_CONFIG_FILE = dir .. "/config", AWS_METADATA_SERVICE_TIMEOUT = "1" }
      for _, part in ipairs(parts) do
        if type(part) == "function" then part = part() end
        for k, v in pairs(part) do env[k] = v end
      end
      os.remove(dir .. "/credentials")
      os.remove(dir .. "/config")
      if credentials then helper.write_file(dir .. "/credentials", credentials) end
      if config then helper.write_file(dir .. "/config", (config:gsub("CREDS_SH", dir .. "/creds.sh"))) end
      local theirs, why_theirs = botocore(env)
      local mine, why_mine = ours(env)
      assert.equals(expected, theirs, "botocore: " .. tostring(why_theirs))
      assert.equals(expected, mine, "dynamodb_stream: " .. tostring(why_mine))
    end)
  end
end)
