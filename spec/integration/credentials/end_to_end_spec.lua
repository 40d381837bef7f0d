-- Credentials end to end: the consumer and the DynamoDB client reach DynamoDB
-- Local through spec/support/sigv4_proxy.py, which hands out credentials at a
-- container endpoint and checks every request's signature and session token
-- against them, refusing expired ones and, after a rotation, the old ones.
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
