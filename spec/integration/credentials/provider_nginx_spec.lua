-- Providers inside a real nginx: an advance refresh runs in a timer while
-- requests go on with the old credentials, and workers share credentials
-- through a lua_shared_dict, one of them fetching.
local core = require("dynamodb_stream.core")
local helper = require("helper")
local nginx = require("nginx")

-- Each handler answers one JSON object of what it saw.
local TIMER = [[
local provider = require("dynamodb_stream.credentials.provider")
local now, fetches, done = ngx.time(), 0, 0
local p = provider.new("slow source", function()
  fetches = fetches + 1
  if fetches > 1 then ngx.sleep(0.3) end -- a slow STS, for the advance refresh only
  done = done + 1
  return { access_key_id = "AKIDSLOW" .. fetches, secret_access_key = "s", expiration = now + 600 }
end, { clock = function() return now end })
local out = { first = p:get().access_key_id }
now = now + 400                         -- due (300 s ahead of expiry), still valid
out.during = p:get().access_key_id      -- answered at once, with the old keys
out.fetched_before_answer = done
ngx.sleep(0.6)
out.after = p:get().access_key_id
out.fetches = fetches
ngx.say(require("dynamodb_stream.core").json_encode(out))
]]

local SHARED = [[
local ds = require("dynamodb_stream")
local core = require("dynamodb_stream.core")
local provider = require("dynamodb_stream.credentials.provider")
local dict = ngx.shared.creds
dict:flush_all()
local fetches = 0
local function worker() -- each worker has its own provider of the same source
  return ds.credentials.shared_dict(provider.new("source", function()
    fetches = fetches + 1
    return { access_key_id = "AKIDSHARED" .. fetches, secret_access_key = "s", session_token = "t",
      expiration = ngx.time() + 3600 }
  end), "creds")
end
local a, b = worker(), worker()
local out = { a = a:get().access_key_id, b = b:get().access_key_id, fetches_first = fetches }
-- Due (fetched 58 minutes ago, valid two more) while another worker holds the lock: kept.
dict:set("credentials:source", core.json_encode({ id = "AKIDOLD", secret = "s", token = "t",
  expiration = ngx.time() + 120, fetched_at = ngx.time() - 3480 }))
dict:add("credentials:source:lock", true, 30)
out.locked = b:get().access_key_id
out.fetches_locked = fetches
dict:delete("credentials:source:lock")
-- The lock free: one worker fetches, the other reads what it published.
out.fetcher = b:get().access_key_id
out.reader = a:get().access_key_id
out.fetches_last = fetches
ngx.say(core.json_encode(out))
]]

describe("providers inside nginx", function()
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local server, tmp

  setup(function()
    tmp = helper.tmpdir()
    helper.write_file(tmp .. "/timer.lua", TIMER)
    helper.write_file(tmp .. "/shared.lua", SHARED)
    server = nginx.start({ tmp = tmp, ready = "/ready", http = { "lua_shared_dict creds 1m;" }, server = {
      "location = /ready { return 200; }",
      "location = /timer { content_by_lua_file " .. tmp .. "/timer.lua; }",
      "location = /shared { content_by_lua_file " .. tmp .. "/shared.lua; }",
    } })
  end)

  teardown(function()
    if server then server.stop() end
    if tmp then helper.rmdir(tmp) end
  end)

  local function get(path)
    local text = server.get(path)
    local r = core.json_decode(text)
    assert(type(r) == "table", text .. server.error_log())
    return r
  end

  it("refreshes ahead in a timer: the request that notices goes on with the old credentials", function()
    local r = get("/timer")
    assert.equals("AKIDSLOW1", r.first)
    assert.equals("AKIDSLOW1", r.during)
    assert.equals(1, r.fetched_before_answer) -- the second fetch had not finished when get() answered
    assert.equals("AKIDSLOW2", r.after)
    assert.equals(2, r.fetches)
  end)

  it("shares credentials between workers through a lua_shared_dict: one fetches, the others read", function()
    local r = get("/shared")
    assert.same({ a = "AKIDSHARED1", b = "AKIDSHARED1", fetches_first = 1, locked = "AKIDOLD", fetches_locked = 1,
      fetcher = "AKIDSHARED2", reader = "AKIDSHARED2", fetches_last = 2 }, r)
  end)
end)
