-- Secrets never reach an error: spec/support/echo_server.py answers every
-- request with the request itself (session token and Authorization header
-- included) as a 400, a 500, a 200 that is not JSON, not an object, a JSON
-- string, cut JSON, or a broken status line; every error path of both
-- transports (libcurl here, nginx cosockets in a real nginx) must show none
-- of it: not the secret key, not the session token nor any 8 bytes of
-- either, not the Credential= or Signature= of the Authorization header.
local ds = require("dynamodb_stream")
local helper = require("helper")
local nginx = require("nginx")
local echo_cases = require("echo_cases")

local CREDS = echo_cases.CREDENTIALS

-- The code each form gives, whatever the path (call, call_many, decode).
local CODES = {
  ["400-raw"] = "UnexpectedResponse", ["400-message"] = "ValidationException",
  ["400-type"] = "<redacted>...", ["500-raw"] = "InternalServerError",
  ["200-raw"] = "InvalidResponse", ["200-bare"] = "InvalidResponse", ["200-array"] = "InvalidResponse",
  ["200-string"] = "InvalidResponse", ["200-bad-json"] = "InvalidResponse", ["200-shards"] = "no error",
  ["bad-status"] = "HttpError",
}

-- What in text gives a credential away, or nil.
local function leak(text)
  for _, secret in ipairs({ CREDS.secret_access_key, CREDS.session_token }) do
    for i = 1, #secret - 7 do
      local piece = secret:sub(i, i + 7)
      if text:find(piece, 1, true) then return "8 bytes of a secret: " .. piece end
    end
  end
  if text:find("Credential=" .. CREDS.access_key_id, 1, true) then return "Credential=" end
  local signature = text:match("Signature=%x%x%x%x%x%x%x%x+")
  if signature then return signature end
  return nil
end

local function check(results)
  assert.equals(#echo_cases.FORMS * 6, #results)
  for _, r in ipairs(results) do
    local form, path = r.name:match("^(%S+) (.*)$")
    if path == "stream" then
      -- the stream's own check of the answer, or the client's error as it came
      assert.equals(form == "200-shards" and "InvalidResponse" or CODES[form], r.code, r.name .. ": " .. r.texts[1])
    elseif path ~= "tostring(client)" then
      assert.equals(CODES[form], r.code, r.name .. ": " .. r.texts[1])
    end
    for _, text in ipairs(r.texts) do
      local found = leak(text)
      assert(found == nil, r.name .. " shows " .. tostring(found) .. " in: " .. text)
    end
    if form:match("^%d") and form ~= "400-type" and form ~= "200-shards" and path ~= "tostring(client)" then
      -- still useful: the echo shows, with the credentials cut out
      assert.matches("POST .*<redacted>", r.texts[1], 1, false, r.name)
    end
  end
end

describe("errors of an echoing server", function()
  local proc, pid, port

  setup(function()
    proc = assert(io.popen("exec /usr/bin/python3 spec/support/echo_server.py"))
    local line = assert(proc:read("*l"), "echo_server.py did not start")
    pid, port = line:match("pid=(%d+) http=(%d+)")
  end)

  teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    if proc then proc:close() end
  end)

  it("show no credential over libcurl, on every path", function()
    check(echo_cases.run(port))
  end)

  it("redacts a secret cut at the end of an excerpt and header-like text in any form", function()
    local client = ds.client({ region = "us-east-1", endpoint = "http://127.0.0.1:1/", credentials = CREDS })
    local redact = client._redact
    local token = CREDS.session_token
    assert.equals("x <redacted>...", redact("x " .. token:sub(1, 150), 100))
    assert.equals("a <redacted> b", redact("a " .. token:sub(37, 60) .. " b"))
    assert.equals("ab " .. token:sub(1, 7), redact("ab " .. token:sub(1, 7))) -- under 8 bytes: kept
    assert.equals("<redacted> <redacted>", redact(token:gsub("/", "\\/") .. " " .. CREDS.secret_access_key))
    assert.equals([[{"m":"Authorization: <redacted>\r\nx-amz-date: 1"}]],
      redact([[{"m":"Authorization: AWS4-HMAC-SHA256 Credential=AKID/x, Signature=ab12\r\nx-amz-date: 1"}]]))
    assert.equals([[\"X-Amz-Security-Token\":\"<redacted>\", 1]], redact([[\"X-Amz-Security-Token\":\"v\", 1]]))
    assert.equals("?X-Amz-Credential=<redacted>&X-Amz-Signature=<redacted>&x=1",
      redact("?X-Amz-Credential=AKID%2F20260101&X-Amz-Signature=00ff&x=1"))
    assert.equals("an authorization failure", redact("an authorization failure"))
    client:close()
  end)

  describe("in nginx", function()
    if nginx.skip_reason() then
      pending(nginx.skip_reason())
      return
    end
    local server

    setup(function()
      server = nginx.start({ ready = "/ping", server = {
        "location = /ping { return 200; }",
        "location = /cases { content_by_lua_block {",
        "  local cases = require('echo_cases').run(tonumber(ngx.var.arg_port))",
        "  ngx.say(require('dynamodb_stream').json_encode(cases)) } }",
      } })
    end)

    teardown(function()
      if server then server.stop() end
    end)

    it("show no credential over cosockets, on every path", function()
      local text = server.get("/cases?port=" .. port, 60)
      local results = ds.json_decode(text)
      assert(type(results) == "table", text .. server.error_log())
      check(results)
    end)
  end)
end)
