-- Answers that break HTTP on purpose (spec/support/misbehaving_server.py),
-- through both transports: core.http (libcurl) in this process and
-- dynamodb_stream.ngx_http (cosockets) inside a real nginx. Each one ends with
-- the right error code soon after the call's `timeout` at the latest, holds no
-- more than max_body, and the nginx worker survives them all. The calls use
-- timeout = 1 s and max_body = 1 MiB to stay cheap; those that must end in
-- Timeout (a drip, a silence: the whole call bounded) 0.3 s.
local core = require("dynamodb_stream.core")
local helper = require("helper")
local nginx = require("nginx")
local ngx_http = require("dynamodb_stream.ngx_http")

local TIMEOUT, MAX_BODY = 1, 1024 * 1024
local SHORT_TIMEOUT = 0.3
local function timeout_for(code) return code == "Timeout" and SHORT_TIMEOUT or TIMEOUT end
-- How long after `timeout` a call may end: generous, for valgrind; a transport
-- that does not bound the call takes minutes (a drip) or forever.
local SLACK = 4

-- path, expected code (the same through both transports), what the server does.
local CASES = {
  { "endless-body", "ResponseTooLarge", "an endless body with neither Content-Length nor chunked" },
  { "close/2000000", "ResponseTooLarge", "2 MB then close, without Content-Length" },
  { "length/2000000", "ResponseTooLarge", "Content-Length: 2000000" },
  { "chunked/2000000", "ResponseTooLarge", "2 MB in chunks" },
  { "endless-headers", "ResponseTooLarge", "header lines that never end" },
  { "huge-header", "ResponseTooLarge", "one header line that never ends" },
  { "chunked-bad-size", "ConnectionReset", "a chunk size 'zz'" },
  { "chunked-long-size", "ConnectionReset", "a chunk size line that never ends" },
  { "chunked-huge-size", "ConnectionReset", "a chunk size of 2^80" },
  { "cut-body", "ConnectionReset", "the connection closed mid-body" },
  { "cut-chunked", "ConnectionReset", "the connection closed mid-chunk" },
  { "drip", "Timeout", "a body one byte every 50 ms" },
  { "drip-headers", "Timeout", "a header one byte every 50 ms" },
  { "short-length", "Timeout", "fewer bytes than Content-Length, then silence" },
}

-- Answers that are fine: path, status, body length.
local GOOD = {
  { "length/" .. MAX_BODY, 200, MAX_BODY },
  { "close/1000", 200, 1000 },
  { "chunked/500000", 200, 500000 },
  { "chunked-tiny/100000", 200, 100000 },
}

describe("a misbehaving server", function()
  local proc, pid, base

  setup(function()
    proc = assert(io.popen("exec /usr/bin/python3 spec/support/misbehaving_server.py"))
    local line = assert(proc:read("*l"), "misbehaving_server.py did not start")
    pid = assert(line:match("pid=(%d+)"))
    base = "http://127.0.0.1:" .. assert(line:match("http=(%d+)"))
  end)

  teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    if proc then proc:close() end
  end)

  describe("through core.http (libcurl)", function()
    local http, http_short
    setup(function()
      http = core.http({ timeout = TIMEOUT, connect_timeout = 1, max_body = MAX_BODY })
      http_short = core.http({ timeout = SHORT_TIMEOUT, connect_timeout = 1, max_body = MAX_BODY })
    end)
    teardown(function() http:close(); http_short:close() end)

    for _, case in ipairs(CASES) do
      local code = case[2]
      it(case[3] .. ": " .. code, function()
        local t0 = core.monotime()
        local status, msg, got = (code == "Timeout" and http_short or http):post(base .. "/" .. case[1], {}, "")
        local seconds = core.monotime() - t0
        assert.is_nil(status)
        assert.equals(code, got, msg)
        assert.is_true(seconds < timeout_for(code) + SLACK, ("%.1f s"):format(seconds))
      end)
    end

    it("and still reads the answers that are fine", function()
      for _, case in ipairs(GOOD) do
        local status, body = http:post(base .. "/" .. case[1], {}, "")
        assert.same({ case[2], case[3] }, { status, #body }, case[1])
      end
    end)
  end)

  describe("through ngx_http (cosockets) in nginx", function()
    if nginx.skip_reason() then
      pending(nginx.skip_reason())
      return
    end
    local server, worker

    -- One call per request: /call?path=...&timeout=...; answers status, code,
    -- message, length, seconds and the worker's pid as JSON.
    local CALL = [[
      local ngx_http = require("dynamodb_stream.ngx_http")
      local core = require("dynamodb_stream.core")
      local t = ngx_http.http({ timeout = tonumber(ngx.var.arg_timeout), connect_timeout = 1, max_body = %d })
      ngx.update_time()
      local t0 = ngx.now()
      local status, body, code = t:post("%s/" .. ngx.var.arg_path, {}, "")
      ngx.update_time()
      ngx.say(core.json_encode({ status = status or core.null, code = (not status) and code or core.null,
        message = (not status) and body or core.null, length = status and #body or core.null,
        seconds = ngx.now() - t0, worker = ngx.worker.pid() }))
    ]]

    setup(function()
      server = nginx.start({ ready = "/ready", server = {
        "location = /ready { return 200; }",
        "location = /call { content_by_lua_block {" .. CALL:format(MAX_BODY, base) .. "} }",
      } })
    end)

    teardown(function()
      if server then server.stop() end
    end)

    -- The answer of one call; the request to nginx itself is guarded, so a
    -- transport that hangs fails this case instead of the suite.
    local function call(path, timeout)
      timeout = timeout or TIMEOUT
      local body = server.get("/call?path=" .. path .. "&timeout=" .. timeout, timeout + 2 * SLACK)
      local r = core.json_decode(body)
      assert(type(r) == "table", ("%s: no answer from nginx (%s); error log:\n%s"):format(path, body,
        server.error_log():sub(-2000)))
      worker = worker or r.worker
      assert.equals(worker, r.worker, "the nginx worker was replaced: it crashed")
      return r
    end

    for _, case in ipairs(CASES) do
      it(case[3] .. ": " .. case[2], function()
        local r = call(case[1], timeout_for(case[2]))
        assert.equals(core.null, r.status)
        assert.equals(case[2], r.code, r.message)
        assert.is_true(r.seconds < timeout_for(case[2]) + SLACK, ("%.1f s"):format(r.seconds))
      end)
    end

    it("and still reads the answers that are fine", function()
      for _, case in ipairs(GOOD) do
        local r = call(case[1])
        assert.same({ case[2], case[3] }, { r.status, r.length }, case[1] .. ": " .. tostring(r.message))
      end
    end)

    it("the worker survived every case in bounded memory", function()
      local r = call("ok")
      local status = helper.read_file("/proc/" .. r.worker .. "/status") or ""
      local peak_kb = tonumber(status:match("VmHWM:%s*(%d+)"))
      assert(peak_kb, "no VmHWM for worker " .. r.worker)
      print(("# misbehaving server: nginx worker peak RSS %.1f MB"):format(peak_kb / 1024))
      -- max_body is 1 MiB: a worker that buffers what it is sent grows by hundreds of MB
      assert.is_true(peak_kb < 64 * 1024, peak_kb .. " kB")
      assert.is_nil(server.error_log():find("exited on signal", 1, true), server.error_log():sub(-2000))
    end)
  end)
end)

describe("ngx_http.http options", function()
  it("are checked as core.http checks them", function()
    for _, case in ipairs({
      { { timeout = 0 / 0 }, "option 'timeout' must be a positive number of seconds" },
      { { timeout = -1 }, "option 'timeout' must be a positive number of seconds" },
      { { connect_timeout = "5" }, "option 'connect_timeout' must be a number of seconds, got string" },
      { { max_body = 1.5 }, "option 'max_body' must be a positive integer" },
      { { max_body = 0 }, "option 'max_body' must be a positive integer" },
      { { pool_size = 1 / 0 }, "option 'pool_size' must be a positive integer" },
      { 5, "ngx_http.http: options table expected, got number" },
    }) do
      local ok, err = pcall(ngx_http.http, case[1])
      assert.is_false(ok)
      assert.matches(case[2], err, 1, true)
    end
    assert.equals(1024, ngx_http.http({ max_body = 1024, timeout = 0.5 }).max_body)
  end)
end)
