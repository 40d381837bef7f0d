-- Starts spec/support/fake_metadata_server.py (fake IMDS and container
-- endpoint) and drives it through its control interface.
--
--   local fake = require("fake_metadata").start()
--   fake.imds, fake.container    base URLs ("http://127.0.0.1:<port>")
--   fake.config{ v2_required = true }, fake.reset(), fake.requests(), fake.issued()
--   fake.stop()
local core = require("dynamodb_stream.core")

local M = {}

function M.start()
  local pipe = assert(io.popen("exec /usr/bin/python3 spec/support/fake_metadata_server.py", "r"))
  local ports = {}
  for k, v in (pipe:read("*l") or ""):gmatch("(%w+)=(%d+)") do ports[k] = tonumber(v) end
  assert(ports.imds and ports.container, "fake_metadata_server.py did not start")
  local fake = { pid = ports.pid, imds = "http://127.0.0.1:" .. ports.imds,
    container = "http://127.0.0.1:" .. ports.container }
  local http = core.http({ timeout = 5 })

  local function control(method, path, doc)
    local status, body = http:request(method, fake.imds .. "/_control/" .. path, { "Content-Type: application/json" },
      doc and core.json_encode(doc) or "")
    assert(status == 200, "fake metadata control " .. path .. ": " .. tostring(status) .. " " .. tostring(body))
    return core.json_decode(body)
  end

  function fake.config(doc) return control("POST", "config", doc) end
  function fake.reset() return control("POST", "reset") end
  function fake.requests() return control("GET", "requests") end
  function fake.issued() return control("GET", "issued") end
  function fake.stop()
    http:close()
    os.execute("kill " .. fake.pid .. " 2>/dev/null")
    pipe:close()
  end
  return fake
end

return M
