-- run() with ds.client() over HTTP (issue 11, item 5): an unreachable endpoint
-- is reported on stderr once and counted, and run goes on until its duration;
-- a server that refuses the credentials or the signature ends run at once.
-- Simulated time: the stream's clock advances only when run sleeps.
local ds = require("dynamodb_stream")
local helper = require("helper")

local ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"
local CREDENTIALS = { access_key_id = "AKIDEXAMPLE", secret_access_key = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY" }

describe("run() against a real HTTP endpoint", function()
  local ports, stop
  setup(function() ports, stop = helper.start_http_server() end)
  teardown(function() stop() end)

  it("reports a refused connection once on stderr, then its count, and runs to the end of duration", function()
    local code = [[
      local ds = require("dynamodb_stream")
      local now = 0
      local client = ds.client({ endpoint = "http://127.0.0.1:]] .. ports.refused .. [[", region = "us-east-1",
        credentials = { access_key_id = "AKIDEXAMPLE", secret_access_key = "secret-key-000" },
        sleep = function() end })
      local s = ds.new(client, "]] .. ARN .. [[", { clock = function() return now end })
      local r, err = s:run({ duration = 3, sleep = function(t) now = now + t end })
      print(("RESULT %s %s at %g"):format(tostring(r), tostring(err), now))
    ]]
    local out, ok = helper.run_lua({}, code)
    assert.is_true(ok, out)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equals(3, #lines, out)
    assert.matches("^dynamodb_stream: DescribeStream: ConnectionRefused: .* %(no 'error' listener%)$", lines[1])
    -- fetches at 0, 0.1, 0.3, 0.7, 1.5, 2.5 s: the first written, five counted
    assert.matches("^dynamodb_stream: DescribeStream: ConnectionRefused: .* repeated 5 times$", lines[2])
    assert.equals("RESULT true nil at 3", lines[3])
  end)

  for _, code in ipairs({ "AccessDeniedException", "InvalidSignatureException", "UnrecognizedClientException" }) do
    it("returns nil, err at once when the server answers " .. code, function()
      local client = ds.client({
        endpoint = "http://127.0.0.1:" .. ports.http .. "/fail/" .. code .. "/1000000/run-" .. code,
        region = "us-east-1", credentials = CREDENTIALS, sleep = function() end,
      })
      local slept = 0
      local s = ds.new(client, ARN, { clock = function() return slept end })
      local emitted = {}
      s:on("error", function(e) emitted[#emitted + 1] = e end)
      local r, err = s:run({ duration = 60, sleep = function(t) slept = slept + t end })
      assert.is_nil(r)
      assert.equals(code, err.code)
      assert.equals(400, err.status)
      assert.equals("DescribeStream", err.operation)
      assert.equals(1, err.attempts) -- not retried
      assert.equals(err, emitted[1])
      assert.equals(1, #emitted)
      assert.equals(0, slept)
      client:close()
    end)
  end
end)
