-- STS and SSO over nginx cosockets: AssumeRole (signed, verified by the fake), the unsigned
-- web identity call and GetRoleCredentials, each made from a content phase in a real nginx.
local core = require("dynamodb_stream.core")
local timestamp = require("dynamodb_stream.credentials.timestamp")
local fake = require("fake_sts_sso")
local helper = require("helper")
local nginx = require("nginx")

local ROLE = "arn:aws:iam::111122223333:role/Deploy"
local START_URL = "https://my-sso-portal.awsapps.com/start"

-- Run in nginx's content phase; answers one JSON object.
local CASE = [[
local core = require("dynamodb_stream.core")
local context = require("dynamodb_stream.credentials.context")
local provider = require("dynamodb_stream.credentials.provider")
local runtime = require("dynamodb_stream.runtime")
local sso = require("dynamodb_stream.credentials.sso")
local sts = require("dynamodb_stream.credentials.sts")
local base, home, token_file, role = %q, %q, %q, %q
local ctx = context.new({ region = "eu-west-1", env = { AWS_ENDPOINT_URL_STS = base, AWS_ENDPOINT_URL_SSO = base,
  AWS_ENDPOINT_URL_SSO_OIDC = base, HOME = home } })
local out = { can_yield = runtime.can_yield() }
local function put(name, creds, err)
  out[name] = creds and creds.access_key_id or tostring(err)
end
put("assume_role", sts.assume_role(ctx, provider.static({ access_key_id = "ASIASOURCE",
  secret_access_key = "temp-secret-0123456789", session_token = "temp-session-token-0123456789" }),
  { role_arn = role }))
put("web_identity", sts.assume_role_with_web_identity(ctx, { role_arn = role, token_file = token_file }))
local p = assert(sso.provider(ctx, { sso_start_url = %q, sso_region = "us-east-1",
  sso_account_id = "111122223333", sso_role_name = "ReadOnly" }, { config = {}, credentials = {} }))
put("sso", p:get())
ngx.say(core.json_encode(out))
]]

describe("credentials.sts and credentials.sso in nginx", function()
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local srv, tmp, server

  setup(function()
    srv = fake.start()
    tmp = helper.tmpdir()
    local token_file = tmp .. "/token"
    helper.write_file(token_file, "eyJhbGciOiJSUzI1NiJ9.pod-token.sig")
    assert(os.execute("mkdir -p " .. tmp .. "/.aws/sso/cache"))
    helper.write_file(tmp .. "/.aws/sso/cache/" .. core.sha1_hex(START_URL) .. ".json", core.json_encode({
      startUrl = START_URL, region = "us-east-1", accessToken = "aoa-nginx-token",
      expiresAt = timestamp.format(os.time() + 3600) }))
    srv.set({ token_file = token_file, sso_tokens = { ["aoa-nginx-token"] = core.null }, source_keys = {
      ASIASOURCE = { secret = "temp-secret-0123456789", token = "temp-session-token-0123456789" } } })
    helper.write_file(tmp .. "/case.lua", CASE:format(srv.base, tmp, token_file, ROLE, START_URL))
    server = nginx.start({ tmp = tmp, ready = "/ready", server = {
      "location = /case { content_by_lua_file " .. tmp .. "/case.lua; }",
      "location = /ready { return 200; }",
    } })
  end)

  teardown(function()
    if server then server.stop() end
    srv.stop()
    if tmp then helper.rmdir(tmp) end
  end)

  it("assumes a role, trades a web identity token and an SSO token over cosockets", function()
    local text = server.get("/case", 20)
    local out = core.json_decode(text)
    assert.is_table(out, text .. server.error_log())
    assert.is_true(out.can_yield)
    local issued = srv.state().issued
    assert.equals(3, #issued, text)
    assert.same({ issued[1].access_key_id, issued[2].access_key_id, issued[3].access_key_id },
      { out.assume_role, out.web_identity, out.sso })
    local reqs = srv.requests()
    assert.equals("temp-session-token-0123456789", reqs[1].headers["x-amz-security-token"])
    assert.equals("eu-west-1", reqs[1].scope_region)
    assert.is_nil(reqs[2].headers.authorization)
    assert.equals("aoa-nginx-token", reqs[3].headers["x-amz-sso_bearer_token"])
  end)
end)
