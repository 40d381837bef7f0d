-- Clients sign with whatever their provider hands out now: rotations, a
-- refused token, a provider that fails, and one provider shared by clients.
local ds = require("dynamodb_stream")
local provider = require("dynamodb_stream.credentials.provider")

-- A transport that records the access key of each request and answers with
-- the next scripted answer ({ status, body, headers }), else 200 {}.
local function transport(script)
  local t = { keys = {}, tokens = {}, script = script or {} }
  local function answer(lines)
    for _, line in ipairs(lines) do
      local key = line:match("^Authorization: .*Credential=([^/]+)/")
      if key then t.keys[#t.keys + 1] = key end
      local token = line:match("^x%-amz%-security%-token: (.*)$")
      if token then t.tokens[#t.tokens + 1] = token end
    end
    local a = table.remove(t.script, 1)
    if a then return a[1], a[2], a[3] or {} end
    return 200, "{}", {}
  end
  function t.post(_, _, lines) return answer(lines) end
  function t.post_many(_, requests)
    local out = {}
    for i, r in ipairs(requests) do out[i] = { answer(r[2]) } end
    return out
  end
  function t.close() end
  return t
end

local EXPIRED = { 400, [[{"__type":"com.amazon.coral.service#ExpiredTokenException","message":"The security token included in the request is expired"}]] }

local function rotating_source(lifetime)
  local src = { now = 2000000, n = 0 }
  src.provider = provider.new("rotating", function()
    src.n = src.n + 1
    return { access_key_id = "AKID" .. src.n, secret_access_key = "secret-number-" .. src.n,
      session_token = "token-number-" .. src.n, expiration = src.now + lifetime }
  end, { clock = function() return src.now end })
  return src
end

local function client(src, t)
  return ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", transport = t,
    credentials = src.provider, sleep = function() end })
end

describe("a client with temporary credentials", function()
  it("signs with the new keys and token after a rotation, and redacts old and new secrets", function()
    local src, t = rotating_source(300), transport()
    local c = client(src, t)
    assert(c:list_streams({}))
    src.now = src.now + 200
    assert(c:list_streams({}))
    assert.same({ "AKID1", "AKID2" }, t.keys)
    assert.same({ "token-number-1", "token-number-2" }, t.tokens)
    local shown = c._redact("a secret-number-1 b secret-number-2 c token-number-2")
    assert.equals("a <redacted> b <redacted> c <redacted>", shown)
  end)

  it("fetches new credentials once and sends again when the service says they expired", function()
    local src = rotating_source(3600)
    local t = transport()
    local c = client(src, t)
    assert(c:list_streams({})) -- first fetch
    src.now = src.now + 10
    t.script = { EXPIRED }
    assert(c:list_streams({}))
    assert.same({ "AKID1", "AKID1", "AKID2" }, t.keys)
    assert.equals(1, c:stats().credential_refreshes)
    -- Refused again right after new ones were fetched: no loop, the error is the answer.
    t.script = { EXPIRED, EXPIRED }
    local answer, err = c:list_streams({})
    assert.is_nil(answer)
    assert.equals("ExpiredTokenException", err.code)
    assert.same({ "AKID1", "AKID1", "AKID2", "AKID2" }, t.keys)
  end)

  it("does the same for each call of call_many, with one refresh for all", function()
    local src = rotating_source(3600)
    local t = transport()
    local c = client(src, t)
    assert(c:list_streams({})) -- first fetch
    src.now = src.now + 60
    t.script = { EXPIRED, EXPIRED, { 200, "{}" } }
    local answers, errs = c:call_many("ListStreams", { {}, {}, {} })
    assert.same({}, errs)
    assert.equals(3, #answers)
    assert.same({ "AKID1", "AKID1", "AKID1", "AKID1", "AKID2", "AKID2" }, t.keys)
    assert.equals(1, c:stats().credential_refreshes)
  end)

  it("gives up with the service's error when fixed keys are refused", function()
    local t = transport({ EXPIRED })
    local c = ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", transport = t,
      credentials = { access_key_id = "AKIDFIXED", secret_access_key = "fixedsecret" } })
    local answer, err = c:list_streams({})
    assert.is_nil(answer)
    assert.equals("ExpiredTokenException", err.code)
    assert.equals(1, #t.keys)
  end)

  it("fails the call with the provider's error when there are no credentials, and retries it", function()
    local n = 0
    local p = provider.new("flaky", function()
      n = n + 1
      if n < 2 then return nil, require("dynamodb_stream.errors").new({ code = "Timeout", message = "imds" }) end
      return { access_key_id = "AKIDOK", secret_access_key = "s-ok" }
    end)
    local t = transport()
    local c = ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", transport = t,
      credentials = p, sleep = function() end })
    assert(c:list_streams({})) -- Timeout is transient: the call is retried
    assert.same({ "AKIDOK" }, t.keys)
    local q = provider.new("down", function() return nil, "no route" end)
    local d = ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", transport = transport(),
      credentials = q, sleep = function() end })
    local answer, err = d:list_streams({})
    assert.is_nil(answer)
    assert.equals("CredentialsError", err.code)
    assert.equals("ListStreams", err.operation)
    local answers, errs = d:call_many("ListStreams", { {}, {} })
    assert.same({}, answers)
    assert.equals("CredentialsError", errs[1].code)
    assert.equals("CredentialsError", errs[2].code)
  end)

  it("calls a user's function again before the expiration it gave", function()
    local now, calls = 3000000, 0
    local fn = function()
      calls = calls + 1
      return { access_key_id = "AKIDFN" .. calls, secret_access_key = "fn-secret", expiration = now + 3600 }
    end
    local t = transport()
    local c = ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", transport = t,
      credentials = ds.credentials.from_function(fn, { clock = function() return now end }) })
    assert(c:list_streams({}))
    now = now + 3600 - 15 * 60
    assert(c:list_streams({}))
    assert.same({ "AKIDFN1", "AKIDFN2" }, t.keys)
  end)

  it("shares one provider between clients made from the same options", function()
    local fn = function() return { access_key_id = "AKIDSH", secret_access_key = "shared-secret" } end
    local a = ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", credentials = fn })
    local b = ds.dynamodb({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/", credentials = fn })
    assert.equals(a._credentials, b._credentials)
  end)

  it("shares the default chain's provider between clients of the same region and options", function()
    local a = ds.client({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/" })
    local b = ds.dynamodb({ region = "eu-west-1", endpoint = "http://127.0.0.1:9/" })
    local c = ds.dynamodb({ region = "eu-west-2", endpoint = "http://127.0.0.1:9/" })
    assert.equals(a._credentials, b._credentials)
    assert.not_equals(a._credentials, c._credentials) -- STS and SSO calls go to the client's region
  end)

  it("refuses a credentials option of the wrong type", function()
    for _, bad in ipairs({ 42, "AKID:secret", true }) do
      local ok, err = pcall(ds.client, { region = "eu-west-1", credentials = bad })
      assert.is_false(ok)
      assert.matches("credentials must be a table of keys, a function or a provider", err)
    end
  end)
end)
