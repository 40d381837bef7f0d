-- Starts, configures and stops spec/support/fault_proxy.py from a spec:
--
--   local proxy = require("fault_proxy").start{
--     upstream = helper.ddb_local_endpoint(), seed = 1, rate = 0.2,
--     kinds = { throttle = 1, ["500"] = 1 },      -- or a list: { "throttle", "reset" }
--     operations = { "GetRecords" },              -- patterns; absent or empty = all
--     slow_ms = 1500, lifetime = 900,
--     cycle = true,                               -- kinds in turn instead of by weight
--     stderr = "/tmp/file",                       -- optional: the proxy's stderr goes there
--   }
--   proxy.endpoint            -- "http://127.0.0.1:PORT": give it to the clients
--   proxy:configure{ rate = 0 }   -- merge; returns the whole config
--   proxy:stats()             -- { total, forwarded, upstream_errors, requests = {op = n},
--                             --   faults = {kind = n}, faults_by_operation = {op = {kind = n}} }
--   proxy:log()               -- { {op, kind or ""}, ... } every decision in order
--   proxy:reset()             -- zero the counters and the log
--   proxy:stop()
--
-- The control calls go over LuaSocket to the proxy's control port; JSON goes
-- through dynamodb_stream's own json_encode / json_decode.
local socket = require("socket")
local ds = require("dynamodb_stream")

local M = {}

local Proxy = {}
Proxy.__index = Proxy

local SCRIPT = "spec/support/fault_proxy.py"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- kinds may be a map kind -> weight (keys may be numbers such as 500) or a
-- list of kind names; the wire form is always an object of string keys.
local function normalize(cfg)
  local out = {}
  for k, v in pairs(cfg) do out[k] = v end
  if cfg.kinds ~= nil then
    local kinds = {}
    for k, v in pairs(cfg.kinds) do
      if type(k) == "number" and type(v) == "string" then
        kinds[v] = 1
      else
        kinds[tostring(k)] = v
      end
    end
    out.kinds = kinds
  end
  if cfg.operations ~= nil then
    local ops = type(cfg.operations) == "string" and { cfg.operations } or cfg.operations
    local list = ds.empty_list()
    for i, op in ipairs(ops) do list[i] = op end
    out.operations = list
  end
  return out
end

-- One HTTP/1.1 exchange with the control port; returns the decoded JSON.
local function control(port, method, path, body)
  body = body or ""
  local conn = assert(socket.connect("127.0.0.1", port))
  conn:settimeout(10)
  assert(conn:send(method .. " " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body))
  local status_line = assert(conn:receive("*l"))
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d+)"))
  local length
  while true do
    local line = assert(conn:receive("*l"))
    if line == "" then break end
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  local answer = length and assert(conn:receive(length)) or assert(conn:receive("*a"))
  conn:close()
  local decoded = assert(ds.json_decode(answer))
  if status ~= 200 then
    error("fault proxy " .. method .. " " .. path .. ": " .. tostring(decoded.error or answer), 3)
  end
  return decoded
end

function M.start(opts)
  opts = opts or {}
  assert(type(opts.upstream) == "string", "fault_proxy.start: upstream is required")
  local cfg = normalize({
    rate = opts.rate, kinds = opts.kinds, operations = opts.operations, slow_ms = opts.slow_ms,
    cycle = opts.cycle,
  })
  local cmd = { "exec /usr/bin/python3", SCRIPT, "--upstream", shell_quote(opts.upstream),
    "--seed", string.format("%d", opts.seed or 0) }
  if next(cfg) ~= nil then
    cmd[#cmd + 1] = "--config " .. shell_quote(ds.json_encode(cfg))
  end
  if opts.lifetime then cmd[#cmd + 1] = "--lifetime " .. tostring(opts.lifetime) end
  if opts.stderr then cmd[#cmd + 1] = "2>" .. shell_quote(opts.stderr) end
  local proc = assert(io.popen(table.concat(cmd, " ")))
  local line = proc:read("*l")
  if not line then
    proc:close()
    error("fault_proxy.py did not start (see its message on stderr)", 2)
  end
  local info = {}
  for k, v in line:gmatch("(%w+)=(%d+)") do info[k] = tonumber(v) end
  assert(info.pid and info.port and info.control, "unexpected first line from fault_proxy.py: " .. line)
  return setmetatable({
    pid = info.pid,
    port = info.port,
    control_port = info.control,
    endpoint = "http://127.0.0.1:" .. info.port,
    _proc = proc,
  }, Proxy)
end

function Proxy:configure(cfg)
  return control(self.control_port, "POST", "/config", ds.json_encode(normalize(cfg)))
end

function Proxy:config()
  return control(self.control_port, "GET", "/config")
end

function Proxy:stats()
  return control(self.control_port, "GET", "/stats")
end

function Proxy:log()
  return control(self.control_port, "GET", "/log").log
end

function Proxy:reset()
  control(self.control_port, "POST", "/reset")
end

function Proxy:stop()
  if self._proc then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self._proc:close()
    self._proc = nil
  end
end

Proxy.__close = Proxy.stop
Proxy.__gc = Proxy.stop

return M
