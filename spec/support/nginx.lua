-- A real nginx (Debian's, with lua-nginx-module) for specs that run code in
-- it: one worker, a temporary prefix, the module under test on its Lua paths
-- (build-luajit/ for the C core, spec/support/ for helpers).
--
--   local nginx = require("nginx")
--   if not nginx.installed() then return pending(nginx.MISSING) end
--   local srv = nginx.start({ server = { "location = /x { content_by_lua_block { ... } }" },
--     http = { "lua_ssl_trusted_certificate ...;" }, ready = "/x" })
--   srv.port, srv.tmp, srv.error_log(), srv.get(path_and_query[, max_time]), srv.stop()
local helper = require("helper")
local socket = require("socket")

local nginx = {}

local NGINX = "/usr/sbin/nginx"
local MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }
local q = helper.shell_quote

nginx.MISSING = "nginx with libnginx-mod-http-lua is not installed (scripts/install-deps installs it)"

function nginx.installed()
  return helper.exists(NGINX) and helper.exists(MODULES[1]) and helper.exists(MODULES[2])
end

-- Why this phase runs no nginx spec (pending's text), or nil. nginx runs its
-- own LuaJIT and build-luajit whatever the phase: the Lua 5.3, 5.1, ASan and
-- valgrind phases would only repeat the main ones (helper.main_phase).
function nginx.skip_reason()
  if not nginx.installed() then return nginx.MISSING end
  if not helper.main_phase() then
    return "nginx runs its own LuaJIT and build-luajit in every phase: in the Lua 5.4 and LuaJIT phases only"
  end
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, p = s:getsockname()
  s:close()
  return tonumber(p)
end

-- Starts nginx and waits until opts.ready (a path, default "/") answers 200.
-- opts.server: lines inside the server block; opts.http: more lines of the
-- http block; opts.tmp: the prefix directory (default a new one, removed by stop).
function nginx.start(opts)
  local root = helper.capture("pwd"):gsub("%s+$", "")
  if not helper.exists("build-luajit/dynamodb_stream/core.so") then
    assert(helper.execute("make -s luajit-build >/dev/null"))
  end
  local own_tmp = opts.tmp == nil
  local tmp = opts.tmp or helper.tmpdir()
  os.execute("chmod 755 " .. q(tmp) .. " && mkdir -p " .. q(tmp .. "/conf") .. " " .. q(tmp .. "/logs"))
  local port = free_port()
  local conf = {
    "load_module " .. MODULES[1] .. ";", "load_module " .. MODULES[2] .. ";",
    "daemon off;", "master_process on;", "worker_processes 1;", "pid logs/nginx.pid;",
    "error_log logs/error.log notice;", "events { worker_connections 64; }",
    "http {", "  access_log off;", "  client_body_temp_path " .. tmp .. "/body;",
    '  lua_package_path "' .. root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;'
      .. root .. '/spec/support/?.lua;;";',
    '  lua_package_cpath "' .. root .. '/build-luajit/?.so;;";',
  }
  for _, line in ipairs(opts.http or {}) do conf[#conf + 1] = "  " .. line end
  conf[#conf + 1] = "  server {"
  conf[#conf + 1] = "    listen 127.0.0.1:" .. port .. ";"
  for _, line in ipairs(opts.server or {}) do conf[#conf + 1] = "    " .. line end
  conf[#conf + 1] = "  }"
  conf[#conf + 1] = "}"
  conf[#conf + 1] = ""
  helper.write_file(tmp .. "/conf/nginx.conf", table.concat(conf, "\n"))

  local srv = { port = port, tmp = tmp }
  function srv.error_log() return helper.read_file(tmp .. "/logs/error.log") or "" end
  function srv.get(path, max_time)
    return helper.capture("curl -s --max-time " .. (max_time or 20) .. " " .. q("http://127.0.0.1:" .. port .. path))
  end
  function srv.stop()
    local master = srv.master
    if master then
      local workers = helper.capture("ps -o pid= --ppid " .. master .. " 2>/dev/null")
      os.execute("kill -TERM " .. master .. " 2>/dev/null")
      for _ = 1, 50 do
        if not helper.alive(master) then break end
        socket.sleep(0.1)
      end
      os.execute("kill -KILL " .. master .. " 2>/dev/null")
      for w in workers:gmatch("%d+") do os.execute("kill -KILL " .. w .. " 2>/dev/null") end
      srv.master = nil
    end
    if own_tmp then helper.rmdir(tmp) end
  end

  srv.master = tonumber(helper.capture("env -i PATH=/usr/sbin:/usr/bin:/bin " .. NGINX .. " -p " .. q(tmp .. "/")
    .. " -c conf/nginx.conf -e " .. q(tmp .. "/logs/error.log") .. " >" .. q(tmp .. "/logs/stdout")
    .. " 2>&1 </dev/null & echo $!"):match("%d+"))
  local ready = "http://127.0.0.1:" .. port .. (opts.ready or "/")
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    if helper.capture("curl -s -o /dev/null -w '%{http_code}' " .. q(ready)) == "200" then return srv end
    socket.sleep(0.1)
  end
  local log = srv.error_log()
  srv.stop()
  error("nginx did not answer: " .. log)
end

return nginx
