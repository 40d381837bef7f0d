-- dynamodb_stream.ngx_http, the cosocket transport, inside a real nginx
-- (one worker) against spec/support/http_server.py: bodies with
-- Content-Length and chunked, interim answers, keep-alive reuse, concurrent
-- post_many, and the core.http error codes (ConnectionReset for a truncated
-- body or a reset, Timeout, ConnectionRefused, UnknownHost, ResponseTooLarge).
-- Over https too (nginx trusts one self-signed certificate and not another),
-- and the blocking libcurl fallback in init_worker, where cosockets cannot run.
local ds = require("dynamodb_stream")
local helper = require("helper")
local nginx = require("nginx")

local sh = helper.capture

-- Runs in nginx's content phase: every case against http_server.py at
-- ports http/refused (set=tls: https, the trusted server, and other, the one
-- with a certificate nginx does not trust), answered as one JSON object.
local CASES = [[
local ngx_http = require("dynamodb_stream.ngx_http")
local core = require("dynamodb_stream.core")
local base = "http://127.0.0.1:" .. ngx.var.arg_http
local t = ngx_http.http({ timeout = 0.5, connect_timeout = 1 })
local out = { can_yield = require("dynamodb_stream.runtime").can_yield() }
local function run(name, tr, url, lines, body)
  local status, answer, headers = tr:post(url, lines or {}, body or "")
  out[name] = { status = status or core.null, answer = status and #answer or answer,
    code = (not status) and headers or core.null, text = status and answer:sub(1, 400) or core.null,
    te = status and headers["transfer-encoding"] or core.null }
end
local function run_many(name, url, n)
  local reqs = {}
  for i = 1, n do reqs[i] = { url, {}, "" } end
  ngx.update_time()
  local t0 = ngx.now()
  local many = t:post_many(reqs)
  ngx.update_time()
  out[name .. "_seconds"] = ngx.now() - t0
  out[name] = {}
  for i, r in ipairs(many) do out[name][i] = r[1] or r[3] end
end
if ngx.var.arg_set == "tls" then
  local tls = "https://127.0.0.1:" .. ngx.var.arg_https
  local other = "https://127.0.0.1:" .. ngx.var.arg_other
  run("echo", t, tls .. "/echo", { "X-Test: tls" }, "tls body")
  run("conn1", t, tls .. "/conn")
  run("conn2", t, tls .. "/conn")
  run("untrusted", t, other .. "/echo")
  run("unverified", ngx_http.http({ verify_tls = false, timeout = 0.5 }), other .. "/echo", {}, "unverified")
  run("to_plain", t, "https://127.0.0.1:" .. ngx.var.arg_http .. "/echo")
  run_many("many", tls .. "/slow?ms=300", 3)
  ngx.say(core.json_encode(out))
  return
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
run_many("many", base .. "/slow?ms=300", 5)
ngx.say(core.json_encode(out))
]]

-- init_worker: no cosockets, so a post there runs on a blocking libcurl
-- handle; /phase answers what it got.
local INIT_WORKER = [[
local ngx_http = require("dynamodb_stream.ngx_http")
ds_init_worker = { can_yield = require("dynamodb_stream.runtime").can_yield() }
local status, body = ngx_http.http({ timeout = 5 }):post("http://127.0.0.1:%d/echo", { "X-Phase: init_worker" },
  "posted from init_worker")
ds_init_worker.status, ds_init_worker.body = status, body
]]

describe("dynamodb_stream.ngx_http in nginx", function()
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local tmp, server, srv, other, port

  setup(function()
    tmp = helper.tmpdir()
    local trusted_cert, trusted_key = helper.make_cert(tmp, "trusted")
    local other_cert, other_key = helper.make_cert(tmp, "other")
    srv = helper.http_server(trusted_cert, trusted_key)
    assert(srv.http, "http_server.py did not start")
    if other_cert then other = helper.http_server(other_cert, other_key) end
    helper.write_file(tmp .. "/cases.lua", CASES)
    helper.write_file(tmp .. "/init_worker.lua", INIT_WORKER:format(srv.http))
    server = nginx.start({
      tmp = tmp,
      ready = "/phase",
      http = {
        trusted_cert and "lua_ssl_trusted_certificate " .. trusted_cert .. ";" or "",
        "init_worker_by_lua_file " .. tmp .. "/init_worker.lua;",
      },
      server = {
        "location = /cases { content_by_lua_file " .. tmp .. "/cases.lua; }",
        "location = /phase { content_by_lua_block {",
        "  local t = require('dynamodb_stream.runtime')",
        "  local w = ds_init_worker",
        "  ngx.say(tostring(t.can_yield()), ' ', tostring(w.can_yield), ' ', tostring(w.status))",
        "  ngx.print(w.body) } }",
      },
    })
    port = server.port
  end)

  teardown(function()
    if server then server.stop() end
    if srv then helper.stop_http_server(srv) end
    if other then helper.stop_http_server(other) end
    if tmp then helper.rmdir(tmp) end
  end)

  it("yields in content phases; in init_worker it posts on a blocking libcurl handle", function()
    local text = sh("curl -s http://127.0.0.1:" .. port .. "/phase")
    local first, echoed = text:match("^([^\n]*)\n(.*)$")
    assert.equals("true false 200", first, text)
    local echo = helper.parse_echo(echoed)
    assert.equals("init_worker", echo.headers["x-phase"])
    assert.equals("posted from init_worker", echo.body)
  end)

  it("posts, reads every body form and maps failures to core.http's codes", function()
    local text = sh("curl -s --max-time 20 'http://127.0.0.1:" .. port .. "/cases?http=" .. srv.http
      .. "&refused=" .. srv.refused .. "'")
    local r = ds.json_decode(text)
    assert(type(r) == "table", text .. server.error_log())
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

  it("posts over https: verified against nginx's trusted certificates, TlsError otherwise", function()
    if not (srv.https and other and other.https) then return pending("openssl CLI could not make a certificate") end
    local text = sh("curl -s --max-time 20 'http://127.0.0.1:" .. port .. "/cases?set=tls&http=" .. srv.http
      .. "&https=" .. srv.https .. "&other=" .. other.https .. "'")
    local r = ds.json_decode(text)
    assert(type(r) == "table", text .. server.error_log())
    assert.equals(200, r.echo.status)
    local echo = helper.parse_echo(r.echo.text)
    assert.equals("tls", echo.headers["x-test"])
    assert.equals("127.0.0.1:" .. srv.https, echo.headers["host"])
    assert.equals("tls body", echo.body)
    assert.equals(200, r.conn1.status)
    assert.equals(r.conn1.text, r.conn2.text) -- the TLS connection was kept alive
    assert.equals("TlsError", r.untrusted.code)
    assert.equals(200, r.unverified.status)
    assert.equals("unverified", helper.parse_echo(r.unverified.text).body)
    assert.is_truthy(r.to_plain.code == "TlsError" or r.to_plain.code == "ConnectionReset", r.to_plain.code)
    assert.same({ 200, 200, 200 }, r.many)
    assert.is_true(r.many_seconds < 0.9, "post_many over https ran one after another: " .. r.many_seconds)
  end)
end)
