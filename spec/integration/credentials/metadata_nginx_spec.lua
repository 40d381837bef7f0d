-- The two metadata sources inside a real nginx, over cosockets (dynamodb_stream.ngx_http),
-- against spec/support/fake_metadata_server.py: the IMDS token PUT and GETs, the region,
-- and the container GET with its token file, as in the curl specs next to this one.
local core = require("dynamodb_stream.core")
local helper = require("helper")
local nginx = require("nginx")

-- Runs in nginx's content phase; answers one JSON object.
local HANDLER = [[
local core = require("dynamodb_stream.core")
local context = require("dynamodb_stream.credentials.context")
local ctx = context.new({ env = {
  AWS_EC2_METADATA_SERVICE_ENDPOINT = %q, AWS_METADATA_SERVICE_TIMEOUT = "2",
  AWS_CONTAINER_CREDENTIALS_FULL_URI = %q, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = %q,
  AWS_CONFIG_FILE = "/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/credentials" } })
local out = { can_yield = require("dynamodb_stream.runtime").can_yield() }
local imds = require("dynamodb_stream.credentials.imds")
local creds, err = imds.provider(ctx):get()
out.imds = creds and creds.access_key_id or tostring(err)
out.region = imds.region(ctx) or core.null
creds, err = require("dynamodb_stream.credentials.container").provider(ctx):get()
out.container = creds and creds.access_key_id or tostring(err)
ngx.say(core.json_encode(out))
]]

describe("the metadata sources inside nginx", function()
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local fake, server, tmp

  setup(function()
    fake = require("fake_metadata").start()
    tmp = helper.tmpdir()
    helper.write_file(tmp .. "/token", "pod-identity-token")
    helper.write_file(tmp .. "/handler.lua", HANDLER:format(fake.imds, fake.container .. "/v1/credentials?a=1",
      tmp .. "/token"))
    server = nginx.start({ tmp = tmp, ready = "/ready", server = {
      "location = /ready { return 200; }",
      "location = /metadata { content_by_lua_file " .. tmp .. "/handler.lua; }",
    } })
  end)

  teardown(function()
    if server then server.stop() end
    if fake then fake.stop() end
    if tmp then helper.rmdir(tmp) end
  end)

  it("fetches the instance role, the region and the container credentials over cosockets", function()
    fake.reset()
    fake.config({ v2_required = true, token_file = tmp .. "/token" })
    local text = server.get("/metadata")
    local r = core.json_decode(text)
    assert(type(r) == "table", text .. server.error_log())
    assert.is_true(r.can_yield)
    local issued = fake.issued()
    assert.equal(issued[1], r.imds)
    assert.equal(issued[2], r.container)
    assert.equal("eu-west-3", r.region)
    local seen = {}
    for _, req in ipairs(fake.requests()) do
      seen[#seen + 1] = req.server .. " " .. req.method .. " " .. req.path
      assert.equal("dynamodb_stream (ngx cosocket)", req.headers["user-agent"])
    end
    assert.same({
      "imds PUT /latest/api/token",
      "imds GET /latest/meta-data/iam/security-credentials/",
      "imds GET /latest/meta-data/iam/security-credentials/fake-instance-role",
      "imds PUT /latest/api/token",
      "imds GET /latest/meta-data/placement/region",
      "container GET /v1/credentials?a=1",
    }, seen)
    assert.equal("pod-identity-token", fake.requests()[6].headers.authorization)
  end)
end)
