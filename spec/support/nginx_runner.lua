-- A throwaway nginx (Debian's, with lua-nginx-module) for the specs that run
-- Lua inside it: one master and one worker in a temporary prefix, listening
-- on 127.0.0.1 only, with this repository's lua/ and build-luajit/ on its
-- paths. Killed by pid in stop(), whatever happened.
--
--   if not nginx_runner.available() then pending(...) end
--   local n = nginx_runner.start({ locations = { "location = /x { ... }" } }) -- lines inside server {}
--   n:get("/x?a=1")  -> status, body
--   n:error_log()    n:stop()
local helper = require("helper")
local socket = require("socket")

local M = {}

M.NGINX = "/usr/sbin/nginx"
M.MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }

local q = helper.shell_quote
local sh = helper.capture

function M.available()
  return helper.exists(M.NGINX) and helper.exists(M.MODULES[1]) and helper.exists(M.MODULES[2])
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local Nginx = {}
Nginx.__index = Nginx

-- opts.locations: lines inside server {}; opts.http: more lines inside http {}.
function M.start(opts)
  local root = sh("pwd"):gsub("%s+$", "")
  if not helper.exists("build-luajit/dynamodb_stream/core.so") then
    assert(helper.execute("make -s luajit-build >/dev/null"))
  end
  local tmp = helper.tmpdir()
  os.execute("chmod 755 " .. q(tmp) .. " && mkdir -p " .. q(tmp .. "/conf") .. " " .. q(tmp .. "/logs"))
  local self = setmetatable({ tmp = tmp, port = free_port() }, Nginx)
  local lines = {
    "load_module " .. M.MODULES[1] .. ";", "load_module " .. M.MODULES[2] .. ";",
    "daemon off;", "master_process on;", "worker_processes 1;", "pid logs/nginx.pid;",
    "error_log logs/error.log notice;", "events { worker_connections 64; }",
    "http {", "  access_log off;", "  client_body_temp_path " .. tmp .. "/body;",
    '  lua_package_path "' .. root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;;";',
    '  lua_package_cpath "' .. root .. '/build-luajit/?.so;;";',
  }
  for _, l in ipairs(opts.http or {}) do lines[#lines + 1] = "  " .. l end
  lines[#lines + 1] = "  server {"
  lines[#lines + 1] = "    listen 127.0.0.1:" .. self.port .. ";"
  lines[#lines + 1] = "    location = /ready { return 204; }"
  for _, l in ipairs(opts.locations or {}) do lines[#lines + 1] = "    " .. l end
  lines[#lines + 1] = "  }"
  lines[#lines + 1] = "}"
  helper.write_file(tmp .. "/conf/nginx.conf", table.concat(lines, "\n") .. "\n")
  self.master = tonumber(sh("env -i PATH=/usr/sbin:/usr/bin:/bin " .. M.NGINX .. " -p " .. q(tmp .. "/")
    .. " -c conf/nginx.conf -e " .. q(tmp .. "/logs/error.log") .. " >" .. q(tmp .. "/logs/stdout")
    .. " 2>&1 </dev/null & echo $!"):match("%d+"))
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    if self:get("/ready") == 204 then return self end
    socket.sleep(0.1)
  end
  local log = self:error_log()
  self:stop()
  error("nginx did not answer: " .. log)
end

-- One GET over HTTP/1.0 with a guard of max_time seconds (default 10):
-- status, body, or nil, why.
function Nginx:get(path, max_time)
  local c = socket.tcp()
  c:settimeout(max_time or 10, "t")
  local ok, err = c:connect("127.0.0.1", self.port)
  if not ok then return nil, err end
  c:send("GET " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
  local all, rerr, partial = c:receive("*a")
  c:close()
  all = all or partial
  local status = all and tonumber(all:match("^HTTP/1%.%d (%d+)"))
  if not status then return nil, "no answer (" .. tostring(rerr) .. ")" end
  return status, all:match("\r\n\r\n(.*)$")
end

function Nginx:error_log()
  return helper.read_file(self.tmp .. "/logs/error.log") or ""
end

-- The worker processes of the master.
function Nginx:workers()
  local out = {}
  for p in sh("ps -o pid= --ppid " .. self.master .. " 2>/dev/null"):gmatch("%d+") do out[#out + 1] = tonumber(p) end
  return out
end

function Nginx:stop()
  if self.master then
    local workers = self:workers()
    os.execute("kill -TERM " .. self.master .. " 2>/dev/null")
    for _ = 1, 50 do
      if not helper.alive(self.master) then break end
      socket.sleep(0.1)
    end
    os.execute("kill -KILL " .. self.master .. " 2>/dev/null")
    for _, w in ipairs(workers) do os.execute("kill -KILL " .. w .. " 2>/dev/null") end
    self.master = nil
  end
  if self.tmp then helper.rmdir(self.tmp) end
  self.tmp = nil
end

return M
