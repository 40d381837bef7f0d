-- The provider: when credentials are fetched, kept, and given up, on an injected clock.
local provider = require("dynamodb_stream.credentials.provider")

-- A source on a fake clock: each fetch hands out new keys that live `lifetime`
-- seconds, or fails while `failing` is set.
local function rotating(lifetime)
  local src = { now = 1000000, fetches = 0, failing = nil }
  function src.clock() return src.now end
  function src.fetch()
    if src.failing then return nil, src.failing end
    src.fetches = src.fetches + 1
    return { access_key_id = "AKID" .. src.fetches, secret_access_key = "secret-" .. src.fetches,
      session_token = "token-" .. src.fetches, expiration = src.now + lifetime }
  end
  src.provider = provider.new("test source", src.fetch, { clock = src.clock })
  return src
end

describe("credentials provider", function()
  it("fetches on first use and keeps the credentials until they are due", function()
    local src = rotating(3600)
    assert.equals(0, src.fetches)
    local c = assert(src.provider:get())
    assert.equals("AKID1", c.access_key_id)
    src.now = src.now + 1799 -- half the lifetime is the advance window here (15 min < 30 min)
    assert.equals("AKID1", assert(src.provider:get()).access_key_id)
    assert.equals(1, src.fetches)
  end)

  it("refreshes ahead: 15 minutes before expiry, or at half a short lifetime", function()
    local long = rotating(6 * 3600)
    assert(long.provider:get())
    long.now = long.now + 6 * 3600 - 15 * 60 - 1
    assert.equals("AKID1", long.provider:get().access_key_id)
    long.now = long.now + 1
    assert.equals("AKID2", long.provider:get().access_key_id)

    local short = rotating(300)
    assert(short.provider:get())
    short.now = short.now + 149
    assert.equals("AKID1", short.provider:get().access_key_id)
    short.now = short.now + 1
    assert.equals("AKID2", short.provider:get().access_key_id)
  end)

  it("keeps valid credentials when an advance refresh fails, retries with growing pauses, reports once", function()
    local src = rotating(3600)
    assert(src.provider:get())
    src.now = src.now + 2700 -- 15 min left: due
    src.failing = "sts is down"
    assert.equals("AKID1", src.provider:get().access_key_id)
    local ok, err = src.provider:refresh()
    assert.is_nil(ok)
    assert.matches("credentials %(test source%): sts is down", tostring(err))
    assert.is_true(src.provider:refresh()) -- reported once; the next try waits for its pause
    -- Pauses 1, 2, 4 s: nothing is tried before each has passed.
    local tries = 0
    local real_fetch = src.provider._fetch
    src.provider._fetch = function() tries = tries + 1 return real_fetch() end
    for _ = 1, 7 do
      src.now = src.now + 1
      assert.equals("AKID1", src.provider:get().access_key_id)
    end
    assert.equals(3, tries) -- at +1, +3 (1+2) and +7 (1+2+4)
    src.failing = nil
    src.now = src.now + 8
    assert.equals("AKID2", src.provider:get().access_key_id)
  end)

  it("never hands out credentials that expire within a minute: it waits for new ones, or fails", function()
    local src = rotating(3600)
    assert(src.provider:get())
    src.failing = "imds timed out"
    src.now = src.now + 3600 - 60
    local c, err = src.provider:get()
    assert.is_nil(c)
    assert.matches("imds timed out", tostring(err))
    src.failing = nil
    assert.equals("AKID2", assert(src.provider:get()).access_key_id)
  end)

  it("reports through refresh() a source that cannot give the first credentials", function()
    local src = rotating(3600)
    src.failing = "no instance role"
    local ok, err = src.provider:refresh()
    assert.is_nil(ok)
    assert.matches("no instance role", tostring(err))
    src.failing = nil
    assert.is_true(src.provider:refresh())
    assert.equals(1, src.fetches)
  end)

  it("refuses a source's credentials that are expired or about to be", function()
    local now = 5000
    local p = provider.new("stale", function()
      return { access_key_id = "AKIDX", secret_access_key = "s", expiration = now + 30 }
    end, { clock = function() return now end })
    local c, err = p:get()
    assert.is_nil(c)
    assert.equals("ExpiredToken", err.code)
    assert.matches("within 60 s", err.message)
  end)

  it("forces a refresh after the service refused the credentials, but not twice in a row", function()
    local src = rotating(3600)
    assert(src.provider:get())
    src.now = src.now + 10
    assert.is_true(src.provider:refresh(true))
    assert.equals("AKID2", src.provider:get().access_key_id)
    local ok, err = src.provider:refresh(true)
    assert.is_nil(ok)
    assert.equals("ExpiredToken", err.code)
    assert.equals(2, src.fetches)
  end)

  it("reports a source that raises or returns junk as an error value naming the source", function()
    local p = provider.new("broken", function() error("boom") end)
    local c, err = p:get()
    assert.is_nil(c)
    assert.equals("CredentialsError", err.code)
    assert.matches("credentials %(broken%).*boom", err.message)
    for _, junk in ipairs({ 42, { access_key_id = "A" }, { access_key_id = "A B", secret_access_key = "s" },
                            { access_key_id = "A", secret_access_key = "s", expiration = "soon" } }) do
      local _, jerr = provider.new("junk", function() return junk end):get()
      assert.equals("CredentialsError", jerr.code)
    end
  end)

  it("shows the key id, never a secret, in tostring", function()
    local src = rotating(3600)
    local c = assert(src.provider:get())
    local text = tostring(c)
    assert.matches("AKID1", text)
    assert.not_matches("secret%-1", text)
    assert.not_matches("token%-1", text)
    assert.equals("credentials provider (test source)", tostring(src.provider))
  end)

  it("never refreshes fixed keys", function()
    local p = assert(provider.static({ access_key_id = "AKIDS", secret_access_key = "s" }))
    assert.is_false(p.refreshable)
    assert.is_true(p:refresh(true))
    assert.equals("AKIDS", p:get().access_key_id)
  end)
end)
