-- dynamodb_stream.ngx_http, the cosocket transport, inside a real nginx
-- (one worker) against spec/support/http_server.py: bodies with
-- Content-Length and chunked, interim answers, keep-alive reuse, concurrent
-- post_many, and the core.http error codes (ConnectionReset for a truncated
-- body or a reset, Timeout, ConnectionRefused, UnknownHost, ResponseTooLarge).
local ds = require("dynamodb_stream")
local helper = require("helper")
local socket = require("socket")

local NGINX = "/usr/sbin/nginx"
local MODULES = { "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }
local q = helper.shell_quote

local exists = helper.exists

local sh = helper.capture

-- Runs in nginx's content phase: every case against http_server.py at
-- ports http/refused, answered as one JSON object.
local CASES = [[
local ngx_http = require("dynamodb_stream.ngx_http")
local core = require("dynamodb_stream.core")
local base = "http://127.0.0.1:" .. ngx.var.arg_http
local t = ngx_http.http({ timeout = 0.5, connect_timeout = 1 })
local out = { can_yield = ngx_http.can_yield() }
local function run(name, tr, url, lines, body)
  local status, answer, headers = tr:post(url, lines or {}, body or "")
  out[name] = { status = status or core.null, answer = status and #answer or answer,
    code = (not status) and headers or core.null, text = status and answer:sub(1, 400) or core.null,
    te = status and headers["transfer-encoding"] or core.null }
end
run("echo", t, base .. "/echo", { "X-Test: one", "Content-Type: text/plain" }, "hello")
run("chunked", t, base .. "/big?bytes=100000&chunked=1")
run("length", t, base .. "/big?bytes=70000")
run("continue", t, base .. "/continue")
run("truncated", t, base .. "/truncated")
run("reset", t, base .. "/reset")
run("timeout", t, base .. "/slow?ms=2000")
run("refused", t, "http://127.0.0.1:" .. ngx.var.arg_refused .. "/")
run("unknown_host", t, "http://no-such-host.invalid/")
run("too_large", ngx_http.http({ max_body = 1000 }), base .. "/big?bytes=5000")
run("conn1", t, base .. "/conn")
run("conn2", t, base .. "/conn")
local reqs = {}
for i = 1, 5 do reqs[i] = { base .. "/slow?ms=300", {}, "" } end
ngx.update_time()
local t0 = ngx.now()
local many = t:post_many(reqs)
ngx.update_time()
out.many_seconds = ngx.now() - t0
out.many = {}
for i, r in ipairs(many) do out.many[i] = r[1] or r[3] end
ngx.say(core.json_encode(out))
]]

describe("dynamodb_stream.ngx_http in nginx", function()
  if not (exists(NGINX) and exists(MODULES[1]) and exists(MODULES[2])) then
    pending("nginx with libnginx-mod-http-lua is not installed (scripts/install-deps installs it)")
    return
  end

  local tmp, master, srv, port

  setup(function()
    local root = sh("pwd"):gsub("%s+$", "")
    if not exists("build-luajit/dynamodb_stream/core.so") then
      assert(helper.execute("make -s luajit-build >/dev/null"))
    end
    srv = helper.start_http_server()
    tmp = helper.tmpdir()
    os.execute("chmod 755 " .. q(tmp) .. " && mkdir -p " .. q(tmp .. "/conf") .. " " .. q(tmp .. "/logs"))
    helper.write_file(tmp .. "/cases.lua", CASES)
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, p = s:getsockname()
    s:close()
    port = tonumber(p)
    helper.write_file(tmp .. "/conf/nginx.conf", table.concat({
      "load_module " .. MODULES[1] .. ";", "load_module " .. MODULES[2] .. ";",
      "daemon off;", "master_process on;", "worker_processes 1;", "pid logs/nginx.pid;",
      "error_log logs/error.log notice;", "events { worker_connections 64; }",
      "http {", "  access_log off;", "  client_body_temp_path " .. tmp .. "/body;",
      '  lua_package_path "' .. root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;;";',
      '  lua_package_cpath "' .. root .. '/build-luajit/?.so;;";',
      "  server {", "    listen 127.0.0.1:" .. port .. ";",
      "    location = /cases { content_by_lua_file " .. tmp .. "/cases.lua; }",
      "    location = /phase { content_by_lua_block {",
      "      local t = require('dynamodb_stream.ngx_http')",
      "      ngx.say(tostring(t.can_yield()), ' ', tostring(ds_init_worker_can_yield)) } }",
      "  }",
      "  init_worker_by_lua_block { ds_init_worker_can_yield = require('dynamodb_stream.ngx_http').can_yield() }",
      "}", "" }, "\n"))
    master = tonumber(sh("env -i PATH=/usr/sbin:/usr/bin:/bin " .. NGINX .. " -p " .. q(tmp .. "/") .. " -c conf/nginx.conf -e "
      .. q(tmp .. "/logs/error.log") .. " >" .. q(tmp .. "/logs/stdout") .. " 2>&1 </dev/null & echo $!"):match("%d+"))
    local deadline = socket.gettime() + 10
    while socket.gettime() < deadline do
      if sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" .. port .. "/phase") == "200" then return end
      socket.sleep(0.1)
    end
    error("nginx did not answer: " .. (helper.read_file(tmp .. "/logs/error.log") or ""))
  end)

  teardown(function()
    if master then
      local workers = sh("ps -o pid= --ppid " .. master .. " 2>/dev/null")
      os.execute("kill -TERM " .. master .. " 2>/dev/null")
      for _ = 1, 50 do
        if not helper.alive(master) then break end
        socket.sleep(0.1)
      end
      os.execute("kill -KILL " .. master .. " 2>/dev/null")
      for w in workers:gmatch("%d+") do os.execute("kill -KILL " .. w .. " 2>/dev/null") end
    end
    if srv then helper.stop_http_server(srv) end
    if tmp then helper.rmdir(tmp) end
  end)

  it("yields in content phases, not in init_worker (where it would fall back to libcurl)", function()
    assert.equals("true false\n", sh("curl -s http://127.0.0.1:" .. port .. "/phase"))
  end)

  it("posts, reads every body form and maps failures to core.http's codes", function()
    local text = sh("curl -s --max-time 20 'http://127.0.0.1:" .. port .. "/cases?http=" .. srv.http
      .. "&refused=" .. srv.refused .. "'")
    local r = ds.json_decode(text)
    assert(type(r) == "table", text .. (helper.read_file(tmp .. "/logs/error.log") or ""))
    assert.is_true(r.can_yield)
    local echo = helper.parse_echo(r.echo.text)
    assert.equals(200, r.echo.status)
    assert.equals("POST", echo.method)
    assert.equals("one", echo.headers["x-test"])
    assert.equals("127.0.0.1:" .. srv.http, echo.headers["host"])
    assert.equals(5, echo.body_length)
    assert.equals("hello", echo.body)
    assert.same({ 200, 100000, "chunked" }, { r.chunked.status, r.chunked.answer, r.chunked.te })
    assert.same({ 200, 70000 }, { r.length.status, r.length.answer })
    assert.equals(200, r.continue.status)
    assert.equals("ConnectionReset", r.truncated.code)
    assert.equals("ConnectionReset", r.reset.code)
    assert.equals("Timeout", r.timeout.code)
    assert.equals("ConnectionRefused", r.refused.code)
    assert.equals("UnknownHost", r.unknown_host.code)
    assert.equals("ResponseTooLarge", r.too_large.code)
    assert.equals(r.conn1.text, r.conn2.text) -- the same client port: the connection was kept alive
    assert.same({ 200, 200, 200, 200, 200 }, r.many)
    assert.is_true(r.many_seconds < 1.0, "post_many ran the requests one after another: " .. r.many_seconds)
  end)
end)
