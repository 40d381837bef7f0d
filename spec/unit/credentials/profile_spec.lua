-- One profile's credentials: its AssumeRole (source_profile chains, credential_source, loops,
-- MFA) and the rest in botocore's order. The STS, SSO, IMDS, container and environment
-- sources are stubs that record what they were asked and hand out static keys whose id says
-- where they came from (calls: the list of what was built; asked: what STS was given); an assumed
-- role's id is "role-<name><<source's id>".
local helper = require("helper")
local context = require("dynamodb_stream.credentials.context")
local profile = require("dynamodb_stream.credentials.profile")
local provider = require("dynamodb_stream.credentials.provider")

describe("credentials.profile", function()
  local dir, env, calls, asked, sources

  local function static(id)
    return provider.static({ access_key_id = id, secret_access_key = "secret-of-" .. id })
  end

  before_each(function()
    dir = helper.tmpdir()
    env = { HOME = dir, AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/credentials" }
    calls, asked = {}, {}
    local function record(what, detail) calls[#calls + 1] = what .. (detail and (" " .. detail) or "") end
    sources = {
      sts = {
        assume_role_provider = function(_, source_provider, settings)
          assert(provider.is_provider(source_provider))
          record("assume_role", settings.role_arn)
          asked.settings = settings
          local role = settings.role_arn:match("role/(.*)$")
          -- Lazy, as the real one: the source is asked only on get.
          return provider.new("assume role", function()
            local creds, err = source_provider:get()
            if not creds then return nil, err end
            return { access_key_id = "role-" .. role .. "<" .. creds.access_key_id, secret_access_key = "s" }
          end)
        end,
        web_identity_provider = function(ctx, settings)
          record("web_identity", settings.role_arn)
          asked.env_role_arn = ctx:env("AWS_ROLE_ARN")
          asked.env_config_file = ctx:env("AWS_CONFIG_FILE")
          return static("WI-" .. settings.role_arn:match("role/(.*)$"))
        end,
      },
      sso = {
        provider = function(_, settings, files, name)
          assert.is_table(files.config)
          if not (settings.sso_session or settings.sso_start_url) then return nil end
          record("sso", name)
          return static("SSO-" .. name)
        end,
      },
      imds = { provider = function() record("imds") return static("IMDS") end },
      container = { provider = function() record("container") return static("ECS") end },
      environment = function(ctx)
        record("environment")
        local id = ctx:env("AWS_ACCESS_KEY_ID")
        return id and static(id) or nil
      end,
    }
  end)
  after_each(function() helper.rmdir(dir) end)

  local function files(config, credentials)
    helper.write_file(dir .. "/config", config or "")
    helper.write_file(dir .. "/credentials", credentials or "")
  end

  local function ctx()
    return context.new({ env = env, clock = function() return 1788264000 end })
  end

  -- The key id the profile resolves to, or nil, why.
  local function role_key(name)
    local p, why = profile.role_provider(ctx(), name, sources)
    if not p then return nil, why end
    return assert(p:get()).access_key_id
  end

  local function own_key(name)
    local p, why = profile.provider(ctx(), name, sources)
    if not p then return nil, why end
    return assert(p:get()).access_key_id
  end

  local ROLE = "arn:aws:iam::123456789012:role/"

  -- A fake credential_process printing key id `id`, counting its runs in dir/runs.
  local function creds_script(id)
    local path = dir .. "/creds-" .. id
    helper.write_file(path, "#!/bin/sh\necho run >> " .. helper.shell_quote(dir .. "/runs") .. "\n"
      .. "echo '{\"Version\": 1, \"AccessKeyId\": \"" .. id .. "\", \"SecretAccessKey\": \"s\"}'\n")
    os.execute("chmod +x " .. helper.shell_quote(path))
    return path
  end

  local function runs()
    local text = helper.read_file(dir .. "/runs") or ""
    return select(2, text:gsub("run", ""))
  end

  describe("provider", function()
    it("takes static keys of the credentials file, with the session token", function()
      files("", "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = s\naws_session_token = tok\n")
      local creds = assert(assert(profile.provider(ctx(), "dev", sources)):get())
      assert.same({ "AKIDDEV", "s", "tok" }, { creds.access_key_id, creds.secret_access_key, creds.session_token })
      files("", "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = s\naws_security_token = legacy\n")
      assert.equals("legacy", assert(assert(profile.provider(ctx(), "dev", sources)):get()).session_token)
    end)

    it("follows botocore's order: web identity, SSO, credentials file, credential_process, config file", function()
      local config = "[profile dev]\nweb_identity_token_file = /t\nrole_arn = " .. ROLE .. "wi\n"
        .. "sso_session = s\nsso_account_id = 1\nsso_role_name = r\n"
        .. "credential_process = " .. creds_script("PROC") .. "\n"
        .. "aws_access_key_id = CONFIGKEY\naws_secret_access_key = s\n"
      local credentials = "[dev]\naws_access_key_id = CREDSKEY\naws_secret_access_key = s\n"
      files(config, credentials)
      assert.equals("WI-wi", own_key("dev"))
      files(config:gsub("web_identity_token_file = /t\n", ""), credentials)
      assert.equals("SSO-dev", own_key("dev"))
      files(config:gsub("web_identity_token_file = /t\n", ""):gsub("sso_session = s\n", ""), credentials)
      -- The credentials file's keys, not the merged ones (the config file has other keys).
      assert.equals("CREDSKEY", own_key("dev"))
      files(config:gsub("web_identity_token_file = /t\n", ""):gsub("sso_session = s\n", ""), "")
      assert.equals("PROC", own_key("dev"))
      files(config:gsub("web_identity_token_file = /t\n", ""):gsub("sso_session = s\n", "")
        :gsub("credential_process = [^\n]*\n", ""), "")
      assert.equals("CONFIGKEY", own_key("dev"))
      files(config:gsub("web_identity_token_file = /t\n", ""):gsub("sso_session = s\n", "")
        :gsub("credential_process = [^\n]*\n", "credential_process =\n"), "")
      assert.equals("CONFIGKEY", own_key("dev"))
    end)

    it("runs credential_process only on get", function()
      files("[default]\ncredential_process = '" .. creds_script("DEFAULTPROC") .. "' --x\n")
      local p = assert(profile.provider(ctx(), "default", sources))
      assert.equals(0, runs())
      assert.equals("DEFAULTPROC", assert(p:get()).access_key_id)
      assert.equals(1, runs())
    end)

    it("refuses partial static keys", function()
      files("", "[dev]\naws_access_key_id = AKID\n")
      assert.same({ nil, "profile dev: the credentials file has aws_access_key_id without aws_secret_access_key" },
        { own_key("dev") })
      files("", "[dev]\naws_secret_access_key = s\n")
      assert.same({ nil, "profile dev: the credentials file has aws_secret_access_key without aws_access_key_id" },
        { own_key("dev") })
      -- Each file on its own: a secret in the other file does not complete them.
      files("[profile dev]\naws_secret_access_key = s\n", "[dev]\naws_access_key_id = AKID\n")
      assert.same({ nil, "profile dev: the credentials file has aws_access_key_id without aws_secret_access_key" },
        { own_key("dev") })
      files("[profile dev]\naws_access_key_id = AKID\n", "")
      assert.same({ nil, "profile dev: the config file has aws_access_key_id without aws_secret_access_key" },
        { own_key("dev") })
      files("", "[dev]\naws_access_key_id = AK ID\naws_secret_access_key = s\n")
      local p, why = profile.provider(ctx(), "dev", sources)
      assert.is_nil(p)
      assert.matches("^profile dev: the credentials file's keys: access_key_id contains a space", why)
    end)

    it("passes a credential_process that cannot be split on as why", function()
      files("[profile dev]\ncredential_process = '/opt/creds\n")
      assert.same({ nil, "profile dev: credential_process has no closing quotation" }, { own_key("dev") })
    end)

    it("gives nil for a profile with none of these, or none at all", function()
      files("[profile dev]\nregion = eu-west-1\n[other]\naws_access_key_id = A\naws_secret_access_key = s\n")
      assert.same({}, { profile.provider(ctx(), "dev", sources) })
      assert.same({}, { profile.provider(ctx(), "nowhere", sources) })
      -- A bare [other] in the config file is not a profile.
      assert.same({}, { profile.provider(ctx(), "other", sources) })
    end)
  end)

  describe("role_provider", function()
    it("is nil without role_arn, and with web_identity_token_file (that is provider's)", function()
      files("[profile plain]\naws_access_key_id = A\naws_secret_access_key = s\n"
        .. "[profile wi]\nrole_arn = " .. ROLE .. "wi\nweb_identity_token_file = /t\n")
      assert.same({}, { profile.role_provider(ctx(), "plain", sources) })
      assert.same({}, { profile.role_provider(ctx(), "wi", sources) })
      assert.same({}, { profile.role_provider(ctx(), "nowhere", sources) })
      assert.equals("WI-wi", own_key("wi"))
    end)

    it("assumes the role with source_profile's keys, passing the profile's settings to STS", function()
      files("[profile dev]\nrole_arn = " .. ROLE .. "Dev\nsource_profile = base\nexternal_id = xyz\n"
        .. "role_session_name = me\nduration_seconds = 3600\nregion = eu-west-1\n",
        "[base]\naws_access_key_id = BASE\naws_secret_access_key = s\n")
      local p = assert(profile.role_provider(ctx(), "dev", sources))
      assert.same({ "assume_role " .. ROLE .. "Dev" }, calls)
      assert.same({ role_arn = ROLE .. "Dev", source_profile = "base", external_id = "xyz",
        role_session_name = "me", duration_seconds = "3600", region = "eu-west-1" }, asked.settings)
      assert.equals("role-Dev<BASE", assert(p:get()).access_key_id)
    end)

    it("follows a chain of three profiles", function()
      files("[profile a]\nrole_arn = " .. ROLE .. "A\nsource_profile = b\n"
        .. "[profile b]\nrole_arn = " .. ROLE .. "B\nsource_profile = c\n"
        .. "[profile c]\nrole_arn = " .. ROLE .. "C\nsource_profile = d\n",
        "[d]\naws_access_key_id = D\naws_secret_access_key = s\n")
      assert.equals("role-A<role-B<role-C<D", role_key("a"))
      assert.same({ "assume_role " .. ROLE .. "C", "assume_role " .. ROLE .. "B", "assume_role " .. ROLE .. "A" },
        calls)
    end)

    it("lets static keys beat role_arn at a later hop (not at the first)", function()
      files("[profile a]\nrole_arn = " .. ROLE .. "A\nsource_profile = b\n"
        .. "[profile b]\nrole_arn = " .. ROLE .. "B\nsource_profile = missing\n",
        "[b]\naws_access_key_id = B\naws_secret_access_key = s\n")
      assert.equals("role-A<B", role_key("a"))
      -- b selected itself: its role_arn wins, and its missing source profile is an error.
      assert.same({ nil, "profile b: its source_profile missing does not exist" }, { role_key("b") })
    end)

    it("takes a source profile that is web identity, SSO or credential_process", function()
      env.AWS_ROLE_ARN = ROLE .. "FromEnv"
      files("[profile a]\nrole_arn = " .. ROLE .. "A\nsource_profile = wi\n"
        .. "[profile wi]\nrole_arn = " .. ROLE .. "WebId\nweb_identity_token_file = /t\n"
        .. "[profile b]\nrole_arn = " .. ROLE .. "B\nsource_profile = sso\n"
        .. "[profile sso]\nsso_start_url = https://x/start\nsso_region = us-east-1\n"
        .. "[profile c]\nrole_arn = " .. ROLE .. "C\nsource_profile = proc\n"
        .. "[profile proc]\ncredential_process = " .. creds_script("PROC") .. "\n")
      assert.equals("role-A<WI-WebId", role_key("a"))
      -- A source profile's web identity sees none of the AWS_ROLE_ARN... variables (botocore).
      assert.is_nil(asked.env_role_arn)
      assert.equals(dir .. "/config", asked.env_config_file)
      assert.equals("role-B<SSO-sso", role_key("b"))
      local p = assert(profile.role_provider(ctx(), "c", sources))
      assert.equals(0, runs())
      assert.equals("role-C<PROC", assert(p:get()).access_key_id)
      assert.equals(1, runs())
    end)

    it("refuses a source profile that does not exist or gives no credentials", function()
      files("[profile a]\nrole_arn = " .. ROLE .. "A\nsource_profile = nowhere\n"
        .. "[profile b]\nrole_arn = " .. ROLE .. "B\nsource_profile = empty\n[profile empty]\nregion = x\n"
        .. "[profile c]\nrole_arn = " .. ROLE .. "C\nsource_profile = partial\n",
        "[partial]\naws_access_key_id = P\n")
      assert.same({ nil, "profile a: its source_profile nowhere does not exist" }, { role_key("a") })
      assert.same({ nil, "profile b: its source_profile empty has no credentials" }, { role_key("b") })
      assert.same({ nil, "profile partial: the credentials file has aws_access_key_id without aws_secret_access_key" },
        { role_key("c") })
      assert.same({}, calls)
    end)

    it("refuses loops of two and three profiles, naming the loop", function()
      files("[profile a]\nrole_arn = " .. ROLE .. "A\nsource_profile = b\n"
        .. "[profile b]\nrole_arn = " .. ROLE .. "B\nsource_profile = a\n"
        .. "[profile x]\nrole_arn = " .. ROLE .. "X\nsource_profile = y\n"
        .. "[profile y]\nrole_arn = " .. ROLE .. "Y\nsource_profile = z\n"
        .. "[profile z]\nrole_arn = " .. ROLE .. "Z\nsource_profile = x\n")
      assert.same({ nil, "profiles form a loop through source_profile: a -> b -> a" }, { role_key("a") })
      assert.same({ nil, "profiles form a loop through source_profile: x -> y -> z -> x" }, { role_key("x") })
      assert.same({}, calls)
    end)

    it("lets a profile name itself as source when it has static keys, and only then", function()
      files("[profile self]\nrole_arn = " .. ROLE .. "Self\nsource_profile = self\n"
        .. "[profile bare]\nrole_arn = " .. ROLE .. "Bare\nsource_profile = bare\n"
        .. "[profile a]\nrole_arn = " .. ROLE .. "A\nsource_profile = bare\n",
        "[self]\naws_access_key_id = SELF\naws_secret_access_key = s\n")
      assert.equals("role-Self<SELF", role_key("self"))
      assert.same({ nil, "profiles form a loop through source_profile: bare -> bare" }, { role_key("bare") })
      assert.same({ nil, "profiles form a loop through source_profile: a -> bare -> bare" }, { role_key("a") })
    end)

    it("takes credential_source Environment, Ec2InstanceMetadata or EcsContainer, in any case", function()
      env.AWS_ACCESS_KEY_ID = "ENVKEY"
      files("[profile e]\nrole_arn = " .. ROLE .. "E\ncredential_source = Environment\n"
        .. "[profile e2]\nrole_arn = " .. ROLE .. "E\ncredential_source = environment\n"
        .. "[profile i]\nrole_arn = " .. ROLE .. "I\ncredential_source = Ec2InstanceMetadata\n"
        .. "[profile i2]\nrole_arn = " .. ROLE .. "I\ncredential_source = EC2INSTANCEMETADATA\n"
        .. "[profile c]\nrole_arn = " .. ROLE .. "C\ncredential_source = EcsContainer\n"
        .. "[profile hop]\nrole_arn = " .. ROLE .. "Hop\nsource_profile = i\n")
      assert.equals("role-E<ENVKEY", role_key("e"))
      assert.equals("role-E<ENVKEY", role_key("e2"))
      assert.equals("role-I<IMDS", role_key("i"))
      assert.equals("role-I<IMDS", role_key("i2"))
      assert.equals("role-C<ECS", role_key("c"))
      assert.equals("role-Hop<role-I<IMDS", role_key("hop"))
    end)

    it("refuses a credential_source that is unknown or gives nothing", function()
      files("[profile bad]\nrole_arn = " .. ROLE .. "B\ncredential_source = SharedConfig\n"
        .. "[profile e]\nrole_arn = " .. ROLE .. "E\ncredential_source = Environment\n")
      assert.same({ nil, "profile bad: credential_source = SharedConfig is not one of Environment,"
        .. " Ec2InstanceMetadata, EcsContainer" }, { role_key("bad") })
      assert.same({ nil, "profile e: credential_source = Environment gives no credentials here"
        .. " (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set)" }, { role_key("e") })
      sources.container.provider = function() return nil, "container: bad URI" end
      files("[profile c]\nrole_arn = " .. ROLE .. "C\ncredential_source = EcsContainer\n")
      assert.same({ nil, "container: bad URI" }, { role_key("c") })
    end)

    it("refuses both or neither of source_profile and credential_source, and mfa_serial", function()
      files("[profile both]\nrole_arn = " .. ROLE .. "B\nsource_profile = base\ncredential_source = Environment\n"
        .. "[profile neither]\nrole_arn = " .. ROLE .. "N\n"
        .. "[profile mfa]\nrole_arn = " .. ROLE .. "M\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/me\n",
        "[base]\naws_access_key_id = BASE\naws_secret_access_key = s\n")
      assert.same({ nil, "profile both has both source_profile and credential_source; keep one" }, { role_key("both") })
      assert.same({ nil, "profile neither has role_arn but neither source_profile nor credential_source to assume it"
        .. " with" }, { role_key("neither") })
      local _, why = role_key("mfa")
      assert.matches("^profile mfa sets mfa_serial: assuming its role needs an MFA code; there is no prompt", why)
      assert.same({}, calls)
    end)

    it("refuses mfa_serial at a later hop too", function()
      files("[profile a]\nrole_arn = " .. ROLE .. "A\nsource_profile = b\n"
        .. "[profile b]\nrole_arn = " .. ROLE .. "B\nsource_profile = c\nmfa_serial = arn:aws:iam::1:mfa/me\n",
        "[c]\naws_access_key_id = C\naws_secret_access_key = s\n")
      local _, why = role_key("a")
      assert.matches("^profile b sets mfa_serial", why)
    end)
  end)

  it("raises on bad arguments and missing sources", function()
    files("[profile e]\nrole_arn = " .. ROLE .. "E\ncredential_source = Ec2InstanceMetadata\n")
    assert.has_error(function() profile.provider({}, "dev", sources) end, "profile: ctx must be a credentials context")
    assert.has_error(function() profile.provider(ctx(), "", sources) end, "profile: name must be a non-empty string")
    assert.has_error(function() profile.role_provider(ctx(), "e", nil) end, "profile: sources must be a table")
    sources.imds = nil
    assert.has_error(function() profile.role_provider(ctx(), "e", sources) end,
      "profile: sources.imds.provider must be a function")
  end)
end)
