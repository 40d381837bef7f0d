-- Starts spec/support/fake_sts_sso_server.py and drives its control interface.
local core = require("dynamodb_stream.core")

local M = {}

-- A running fake: { port, base, set(changes), reset(), state(), requests(service), stop() }.
function M.start()
  local pipe = assert(io.popen("exec /usr/bin/python3 spec/support/fake_sts_sso_server.py --lifetime 120", "r"))
  local line = pipe:read("*l") or ""
  local pid, port = line:match("pid=(%d+)"), tonumber(line:match("http=(%d+)"))
  assert(pid and port, "fake_sts_sso_server.py did not start: " .. line)
  local http = core.http({ timeout = 5 })
  local srv = { port = port, base = "http://127.0.0.1:" .. port }

  local function control(method, path, body)
    local status, answer = http:request(method, srv.base .. "/_control/" .. path,
      { "Content-Type: application/json" }, body)
    assert(status == 200, "control " .. path .. ": " .. tostring(status) .. " " .. tostring(answer))
    return core.json_decode(answer)
  end

  -- Replaces the given keys of the fake's state (see the server's docstring).
  function srv.set(changes) control("POST", "set", core.json_encode(changes)) end
  function srv.reset() control("POST", "reset", "") end
  function srv.state() return control("GET", "state") end
  -- The recorded requests, of one service ("sts", "sso", "oidc") when given.
  function srv.requests(service)
    local out = {}
    for _, r in ipairs(srv.state().requests) do
      if service == nil or r.service == service then out[#out + 1] = r end
    end
    return out
  end
  function srv.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
  end
  return srv
end

-- The form body of a request as { name = value }.
function M.form(body)
  local out = {}
  for pair in body:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    out[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return out
end

return M
