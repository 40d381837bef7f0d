-- The shared config and credentials files read as botocore reads them where it matters:
-- ~/ in the path variables, [profile x] against a bare [x], quoted names, sso-session.
local helper = require("helper")
local shared_files = require("dynamodb_stream.credentials.shared_files")

describe("credentials.shared_files", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmdir(dir) end)

  local function getenv(vars)
    return function(name) return vars[name] end
  end

  local function load(config, credentials)
    if config then helper.write_file(dir .. "/config", config) end
    if credentials then helper.write_file(dir .. "/credentials", credentials) end
    return shared_files.load(getenv({ AWS_CONFIG_FILE = dir .. "/config",
      AWS_SHARED_CREDENTIALS_FILE = dir .. "/credentials" }))
  end

  describe("paths", function()
    it("are under HOME by default, or the variables, with a leading ~/ as HOME", function()
      assert.same({ "/home/u/.aws/config", "/home/u/.aws/credentials" },
        { shared_files.paths(getenv({ HOME = "/home/u" })) })
      assert.same({ "/etc/aws-config", "/home/u/creds" }, { shared_files.paths(getenv({ HOME = "/home/u",
        AWS_CONFIG_FILE = "/etc/aws-config", AWS_SHARED_CREDENTIALS_FILE = "~/creds" })) })
      assert.same({ "/home/u/.aws/alt", "rel/~/x" }, { shared_files.paths(getenv({ HOME = "/home/u",
        AWS_CONFIG_FILE = "~/.aws/alt", AWS_SHARED_CREDENTIALS_FILE = "rel/~/x" })) })
    end)

    it("are nil where they would be under an unknown HOME, never relative to the working directory", function()
      assert.same({ nil, nil }, { shared_files.paths(getenv({})) })
      assert.same({ nil, "/c" }, { shared_files.paths(getenv({ AWS_CONFIG_FILE = "~/x",
        AWS_SHARED_CREDENTIALS_FILE = "/c" })) })
      local files = shared_files.load(getenv({}))
      assert.same({}, files.config)
      assert.same({}, files.credentials)
    end)

    it("are read through ~/ expansion", function()
      helper.write_file(dir .. "/my-config", "[profile dev]\nregion = eu-west-1\n")
      local files = shared_files.load(getenv({ HOME = dir, AWS_CONFIG_FILE = "~/my-config" }))
      assert.equals("eu-west-1", shared_files.profile(files, "dev").region)
    end)
  end)

  it("reads nothing from absent files", function()
    local files = load(nil, nil)
    assert.same({ {}, false, {}, {} }, { shared_files.profile(files, "default") })
    assert.is_nil(shared_files.sso_session(files, "s"))
  end)

  it("takes [profile x] and [default] as profiles of the config file, not a bare [x]", function()
    local files = load("[dev]\nregion = bare\n[profile prod]\nregion = eu-west-1\n[default]\nregion = us-east-1\n"
      .. "[preview]\nx = 1\n")
    assert.same({ {}, false, {}, {} }, { shared_files.profile(files, "dev") })
    assert.same({ {}, false, {}, {} }, { shared_files.profile(files, "preview") })
    assert.same({ { region = "eu-west-1" }, true, {}, { region = "eu-west-1" } }, { shared_files.profile(files, "prod") })
    assert.same({ { region = "us-east-1" }, true, {}, { region = "us-east-1" } }, { shared_files.profile(files, "default") })
  end)

  it("prefers [profile default] to [default] in the config file", function()
    for _, text in ipairs({ "[default]\nregion = a\n[profile default]\nregion = b\n",
      "[profile default]\nregion = b\n[default]\nregion = a\n" }) do
      assert.equals("b", shared_files.profile(load(text), "default").region)
    end
  end)

  it("reads quoted profile names and refuses malformed ones", function()
    local files = load("[profile \"my dev\"]\nregion = q\n[profile   spaced]\nregion = s\n"
      .. "[profile a b]\nregion = two\n[profilex]\nregion = none\n[profile 'open]\nregion = bad\n")
    assert.equals("q", shared_files.profile(files, "my dev").region)
    assert.equals("s", shared_files.profile(files, "spaced").region)
    assert.is_false(select(2, shared_files.profile(files, "a b")))
    assert.is_false(select(2, shared_files.profile(files, "a")))
    assert.is_false(select(2, shared_files.profile(files, "x")))
    assert.is_false(select(2, shared_files.profile(files, "'open")))
  end)

  it("lets the credentials file's [x] win key by key over the config's [profile x]", function()
    local files = load("[profile dev]\nregion = eu-west-1\naws_access_key_id = FROMCONFIG\n",
      "[dev]\naws_access_key_id = FROMCREDS\naws_secret_access_key = s\n[profile dev]\naws_access_key_id = LITERAL\n")
    local merged, found, from_credentials, from_config = shared_files.profile(files, "dev")
    assert.is_true(found)
    assert.same({ region = "eu-west-1", aws_access_key_id = "FROMCREDS", aws_secret_access_key = "s" }, merged)
    assert.same({ aws_access_key_id = "FROMCREDS", aws_secret_access_key = "s" }, from_credentials)
    assert.same({ region = "eu-west-1", aws_access_key_id = "FROMCONFIG" }, from_config)
    -- In the credentials file, [profile dev] is a profile named "profile dev".
    assert.equals("LITERAL", shared_files.profile(files, "profile dev").aws_access_key_id)
  end)

  it("parses lines as botocore does: whole-line comments, = or :, lower-cased keys, nested blocks", function()
    local files = load("\239\187\191# comment\r\n; another\r\n[profile dev]\r\n"
      .. "Region: eu-west-1\r\n"
      .. "credential_process = /bin/creds --x # not a comment\r\n"
      .. "role_arn = arn:aws:iam::123456789012:role/R\r\n"
      .. "s3 =\r\n  addressing_style = path\r\n"
      .. "  = no key\r\n"
      .. "empty =\r\n")
    assert.same({ region = "eu-west-1", credential_process = "/bin/creds --x # not a comment",
      role_arn = "arn:aws:iam::123456789012:role/R", s3 = "", empty = "" }, (shared_files.profile(files, "dev")))
  end)

  it("finds [sso-session x] sections by name", function()
    local files = load("[sso-session my-sso]\nsso_start_url = https://x/start\nsso_region = us-east-1\n"
      .. "[sso-session \"quoted one\"]\nsso_region = eu-west-1\n[profile my-sso]\nregion = p\n")
    assert.same({ sso_start_url = "https://x/start", sso_region = "us-east-1" },
      shared_files.sso_session(files, "my-sso"))
    assert.equals("eu-west-1", shared_files.sso_session(files, "quoted one").sso_region)
    assert.is_nil(shared_files.sso_session(files, "other"))
    assert.equals("p", shared_files.profile(files, "my-sso").region)
  end)

  it("works on files given as the two section tables alone", function()
    local files = { config = { ["profile dev"] = { region = "r" }, ["sso-session s"] = { sso_region = "x" } },
      credentials = { dev = { aws_access_key_id = "A" } } }
    assert.same({ region = "r", aws_access_key_id = "A" }, (shared_files.profile(files, "dev")))
    assert.same({ sso_region = "x" }, shared_files.sso_session(files, "s"))
  end)
end)
