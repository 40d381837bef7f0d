-- Credentials end to end: the consumer and the DynamoDB client reach DynamoDB
-- Local through spec/support/sigv4_proxy.py, which checks every request's
-- signature and session token against the credentials a source handed out,
-- refusing expired ones and, after a rotation, the old ones. The sources: the
-- proxy's own container endpoint, and each other source against its fake
-- (instance metadata, STS web identity and AssumeRole, SSO, credential_process),
-- whose issued credentials the proxy looks up.
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local helper = require("helper")

describe("credentials end to end", function()
  local proc, pid, base, http

  setup(function()
    proc = assert(io.popen("exec /usr/bin/python3 spec/support/sigv4_proxy.py --upstream "
      .. helper.ddb_local_endpoint()))
    local line = assert(proc:read("*l"), "sigv4_proxy.py did not start")
    local port
    pid, port = line:match("pid=(%d+) http=(%d+)")
    base = "http://127.0.0.1:" .. port
    http = core.http({ timeout = 5 })
  end)

  teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    if proc then proc:close() end
  end)

  local function configure(settings)
    local status = http:post(base .. "/_ctl/config", { "Content-Type: application/json" }, core.json_encode(settings))
    assert.equals(200, status)
  end

  local function stats()
    local status, body = http:request("GET", base .. "/_ctl/stats")
    assert.equals(200, status)
    return core.json_decode(body)
  end

  -- A container provider on the proxy's endpoint and a clock the spec moves.
  local function container(clock)
    return ds.credentials.container({ env = { AWS_CONTAINER_CREDENTIALS_FULL_URI = base .. "/creds" },
      clock = clock })
  end

  local function opts(credentials)
    return { endpoint = base .. "/", region = "us-east-1", credentials = credentials, sleep = function() end }
  end

  it("runs 30 minutes on credentials that rotate every 5: no call fails, no record is lost, refreshes come early", function()
    local now = os.time()
    configure({ now = now, ttl = 300, revoke_older = true })
    local clock = function() return now end
    local creds = container(clock)
    local ddb = ds.dynamodb(opts(creds))
    local streams = ds.client(opts(creds))
    local name = "rotation_" .. now
    local arn = helper.create_stream_table(ddb, name)
    local stream = ds.new(streams, arn, { unmarshall = ds.unmarshall, start_at = "TRIM_HORIZON", clock = clock })
    local got, failures = {}, {}
    stream:on("insert record", function(new) got[#got + 1] = new.pk end)
    stream:on("error", function(err) failures[#failures + 1] = tostring(err) end)
    local written = 0
    assert.is_true(stream:run({ duration = 1800, interval = 10, max_interval = 10, sleep = function(s)
      now = now + s
      configure({ now = now })
      written = written + 1
      assert(ddb:put_item({ TableName = name, Item = ds.marshall({ pk = tostring(written) }) }))
    end }))
    assert(stream:fetch_stream_state())
    assert.same({}, failures)
    assert.equals(written, #got)
    for i = 1, written do assert.equals(tostring(i), got[i]) end
    local s = stats()
    assert.same({}, s.refused)       -- never an expired or rotated-out key
    assert.is_true(written >= 170)   -- 30 minutes of 10 s pauses
    -- Fetched at half their 5-minute life (150 s ahead of expiry), not at expiry
    -- (6 sets) nor on every call: 1800 / 150 = 12, and the first.
    assert.is_true(s.issued >= 12 and s.issued <= 14, "issued " .. s.issued)
    assert.equals(s.issued, #s.keys)
    assert.equals(0, streams:stats().credential_refreshes)
    io.stderr:write(string.format("\n# credentials: 30 simulated minutes on 5-minute credentials: %d changes "
      .. "delivered, %d requests accepted, %d credential sets fetched, 0 refused\n", #got, s.accepted, s.issued))
  end)

  it("a client whose keys were rotated out fetches new ones when refused, and sends again", function()
    local now = os.time()
    configure({ now = now, ttl = 3600, revoke_older = true })
    local clock = function() return now end
    -- Two providers: each fetch revokes the other's keys.
    local a = ds.dynamodb(opts(container(clock)))
    local b = ds.dynamodb(opts(container(clock)))
    assert(a:call("ListTables", {}))
    now = now + 30
    assert(b:call("ListTables", {})) -- a's keys are revoked now
    assert(a:call("ListTables", {}))
    assert.equals(1, a:stats().credential_refreshes)
    assert.equals(1, stats().refused.ExpiredTokenException)
  end)

  describe("each source, rotated", function()
    local metadata, sts, home
    local START = os.time()
    local now

    setup(function()
      metadata = require("fake_metadata").start()
      sts = require("fake_sts_sso").start()
      home = helper.tmpdir()
    end)

    teardown(function()
      if metadata then metadata.stop() end
      if sts then sts.stop() end
      if home then helper.rmdir(home) end
    end)

    -- Every clock (the provider's, the fakes', the proxy's) at one time.
    local function set_clock(t)
      now = t
      configure({ now = t })
      metadata.config({ clock = t })
      sts.set({ clock = t })
    end

    before_each(function()
      metadata.reset()
      sts.reset()
      configure({ revoke_older = true, authorities = {
        metadata.imds .. "/_control/issued_credentials", sts.base .. "/_control/state" } })
      set_clock(START)
    end)

    local function clock() return now end

    -- Signs with the source's first credentials, moves the clocks into the advance window
    -- (15 minutes before a one-hour expiry), signs with the new ones; the first are then refused.
    local function rotates(creds)
      local ddb = ds.dynamodb(opts(creds))
      local refused_before = stats().refused.ExpiredTokenException or 0
      assert(ddb:call("ListTables", {}))
      local first = creds:get()
      set_clock(now + 3600 - 15 * 60)
      assert(ddb:call("ListTables", {}))
      local second = creds:get()
      assert.not_equals(first.access_key_id, second.access_key_id)
      assert.equals(refused_before, stats().refused.ExpiredTokenException or 0) -- nothing refused so far
      local stale = ds.dynamodb(opts({ access_key_id = first.access_key_id,
        secret_access_key = first.secret_access_key, session_token = first.session_token }))
      local _, err = stale:call("ListTables", {})
      assert.equals("ExpiredTokenException", err and err.code)
      assert.equals(0, ddb:stats().credential_refreshes)
    end

    it("instance metadata", function()
      metadata.config({ expires_in = 3600 })
      rotates(ds.credentials.imds({ env = { AWS_EC2_METADATA_SERVICE_ENDPOINT = metadata.imds }, clock = clock }))
    end)

    it("STS web identity", function()
      helper.write_file(home .. "/token", "the-projected-token")
      sts.set({ token_file = home .. "/token" })
      rotates(ds.credentials.web_identity({ clock = clock, region = "us-east-1", env = {
        AWS_ENDPOINT_URL_STS = sts.base, AWS_WEB_IDENTITY_TOKEN_FILE = home .. "/token",
        AWS_ROLE_ARN = "arn:aws:iam::111122223333:role/Web" } }))
    end)

    it("STS AssumeRole, signed with a source's keys", function()
      sts.set({ source_keys = { AKIDSOURCE = { secret = "source-secret-key", token = core.null } } })
      rotates(ds.credentials.assume_role({ role_arn = "arn:aws:iam::111122223333:role/Deploy", clock = clock,
        region = "us-east-1", env = { AWS_ENDPOINT_URL_STS = sts.base },
        source = ds.credentials.static({ access_key_id = "AKIDSOURCE", secret_access_key = "source-secret-key" }) }))
    end)

    it("IAM Identity Center (SSO)", function()
      local access = "aoa-e2e-access-token-0123456789"
      sts.set({ sso_tokens = { [access] = START + 8 * 3600 } })
      assert(os.execute("mkdir -p " .. home .. "/.aws/sso/cache"))
      helper.write_file(home .. "/.aws/config", "[profile sso]\nsso_session = e2e\nsso_account_id = 111122223333\n"
        .. "sso_role_name = ReadOnly\n[sso-session e2e]\nsso_start_url = https://e2e.awsapps.com/start\n"
        .. "sso_region = us-east-1\n")
      helper.write_file(home .. "/.aws/sso/cache/" .. core.sha1_hex("e2e") .. ".json", core.json_encode({
        startUrl = "https://e2e.awsapps.com/start", region = "us-east-1", accessToken = access,
        expiresAt = os.date("!%Y-%m-%dT%H:%M:%SZ", START + 8 * 3600) }))
      rotates(ds.credentials.profile("sso", { clock = clock, env = { HOME = home,
        AWS_ENDPOINT_URL_SSO = sts.base, AWS_CONFIG_FILE = home .. "/.aws/config",
        AWS_SHARED_CREDENTIALS_FILE = home .. "/none" } }))
    end)

    it("credential_process", function()
      -- The program asks the proxy's own endpoint, as a vault client would ask its vault.
      configure({ ttl = 3600 })
      helper.write_file(home .. "/vault", "#!/usr/bin/python3\nimport json, urllib.request\n"
        .. "c = json.load(urllib.request.urlopen('" .. base .. "/creds'))\n"
        .. "print(json.dumps({'Version': 1, 'AccessKeyId': c['AccessKeyId'], 'SecretAccessKey': "
        .. "c['SecretAccessKey'], 'SessionToken': c['Token'], 'Expiration': c['Expiration']}))\n")
      assert(os.execute("chmod +x " .. home .. "/vault"))
      rotates(ds.credentials.process(home .. "/vault", { clock = clock }))
    end)
  end)

  it("refuses a wrong secret and a missing token: the proxy's check is real", function()
    local now = os.time()
    configure({ now = now, ttl = 3600, revoke_older = false })
    local status, body = http:request("GET", base .. "/creds")
    assert.equals(200, status)
    local issued = core.json_decode(body)
    local wrong_secret = ds.dynamodb(opts({ access_key_id = issued.AccessKeyId,
      secret_access_key = issued.SecretAccessKey .. "x", session_token = issued.Token }))
    local _, err = wrong_secret:call("ListTables", {})
    assert.equals("InvalidSignatureException", err.code)
    local no_token = ds.dynamodb(opts({ access_key_id = issued.AccessKeyId,
      secret_access_key = issued.SecretAccessKey }))
    _, err = no_token:call("ListTables", {})
    assert.equals("UnrecognizedClientException", err.code)
    local right = ds.dynamodb(opts({ access_key_id = issued.AccessKeyId,
      secret_access_key = issued.SecretAccessKey, session_token = issued.Token }))
    assert(right:call("ListTables", {}))
  end)
end)
