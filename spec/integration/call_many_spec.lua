-- client:call_many: one call per params table, in parallel over core.http post_many,
-- each retried as call() would retry it.
local ds = require("dynamodb_stream")
local helper = require("helper")

describe("client:call_many", function()
  local ports, stop, c
  setup(function()
    ports, stop = helper.start_http_server()
  end)
  teardown(function() stop() end)
  before_each(function()
    c = ds.client({ endpoint = "http://127.0.0.1:" .. ports.http .. "/fail/ThrottlingException/0/x",
      region = "us-east-1", credentials = { access_key_id = "AKID", secret_access_key = "secret-123456789" },
      sleep = function() end })
  end)
  after_each(function() c:close() end)

  local function client_for(path)
    return ds.client({ endpoint = "http://127.0.0.1:" .. ports.http .. path, region = "us-east-1",
      credentials = { access_key_id = "AKID", secret_access_key = "secret-123456789" }, sleep = function() end })
  end

  it("answers every params table, retrying each like call", function()
    local id = tostring(os.time()) .. math.random(1e6)
    -- One endpoint per client; use three clients' requests through one call each.
    local c1 = client_for("/fail/ThrottlingException/2/" .. id)
    local answers, errs = c1:call_many("GetRecords", { { Limit = 1 }, { Limit = 2 }, { Limit = 3 } })
    -- The /fail route counts per id: the first 2 requests of the id fail, the rest pass.
    assert.equals(3, #answers)
    assert.same({}, errs)
    local st = c1:stats()
    assert.equals(3, st.calls)
    assert.equals(5, st.attempts)
    assert.equals(2, st.retries)
    assert.equals(2, st.throttles)
    c1:close()
  end)

  it("gives up per request like call, with err.attempts", function()
    local c2 = client_for("/fail/ValidationException/100/v" .. math.random(1e9))
    local answers, errs = c2:call_many("GetRecords", { {}, {} })
    assert.is_nil(answers[1]); assert.is_nil(answers[2])
    assert.equals("ValidationException", errs[1].code)
    assert.equals(1, errs[2].attempts)
    c2:close()
    local c3 = client_for("/fail/503/100/s" .. math.random(1e9))
    answers, errs = c3:call_many("GetRecords", { {} })
    assert.equals("ServiceUnavailable", errs[1].code)
    assert.equals(3, errs[1].attempts)
    c3:close()
  end)

  it("raises on bad params before sending, and takes an empty list", function()
    assert.has_error(function() c:call_many("GetRecords", { {}, 42 }) end, "GetRecords: params must be a table")
    assert.has_error(function() c:call_many("Get Records", { {} }) end)
    assert.has_error(function() c:call_many("GetRecords", "x") end)
    local a, e = c:call_many("GetRecords", {})
    assert.same({}, a); assert.same({}, e)
  end)
end)
