-- core.http against a real loopback server (spec/support/http_server.py).
-- Also run under valgrind by scripts/run-specs, so keep it quick.
local core = require("dynamodb_stream.core")
local helper = require("helper")
local start_server, stop_server = helper.http_server, helper.stop_http_server
local parse_echo = helper.parse_echo
local sh_quote = helper.shell_quote

local SECRET = "AKIA-SECRET-9f8e7d6c5b4a"
local AUTH = "Authorization: AWS4-HMAC-SHA256 Credential=" .. SECRET

-- A failed post: checks the triple shape and that no header value leaked.
local function assert_fails(code, status, err, err_code)
  assert.is_nil(status, "expected a failure, got status " .. tostring(status))
  assert.equals(code, err_code, err)
  assert.equals(code, err:match("^(%w+): "))
  assert.is_nil(err:find(SECRET, 1, true), "error message leaks a header value")
  return err
end

describe("core.http", function()
  local srv, tmpdir, cert
  local base, http

  setup(function()
    tmpdir = os.tmpname()
    os.remove(tmpdir)
    os.execute("mkdir -p " .. sh_quote(tmpdir))
    local key
    cert, key = helper.make_cert(tmpdir)
    srv = start_server(cert, key)
    assert(srv.http and srv.refused, "the loopback server did not start")
    base = "http://127.0.0.1:" .. srv.http
  end)

  teardown(function()
    stop_server(srv)
    if tmpdir then os.execute("rm -rf " .. sh_quote(tmpdir)) end
  end)

  before_each(function()
    -- Generous: the first handshake against the system CA bundle is slow under valgrind.
    http = core.http({ timeout = 30, connect_timeout = 30 })
  end)

  after_each(function()
    http:close()
  end)

  describe("constructor", function()
    it("takes no options or an options table, and names itself", function()
      local h = core.http()
      assert.matches("^dynamodb_stream%.http %(0x%x+%)$", tostring(h))
      h:close()
      assert.matches("closed$", tostring(h))
      h = core.http({ connect_timeout = 0.5, timeout = 1.5, verify_tls = true, max_body = 10 })
      h:close()
    end)

    it("raises on bad option types and values", function()
      for _, opts in ipairs({
        { timeout = "30" }, { connect_timeout = true }, { timeout = 0 }, { timeout = -1 },
        { timeout = 0 / 0 }, { timeout = math.huge },
        { verify_tls = "false" }, { verify_tls = 0 },
        { ca_file = 42 }, { ca_file = "a\0b" },
        { max_body = "10" }, { max_body = 1.5 }, { max_body = 0 }, { max_body = -1 },
      }) do
        local k, v = next(opts)
        assert.has_error(function() core.http(opts) end, nil, ("%s = %s"):format(k, tostring(v)))
      end
      assert.has_error(function() core.http(5) end)
      assert.has_error(function() core.http("x") end)
    end)
  end)

  describe("post", function()
    it("sends the method, headers and a body with NUL bytes intact", function()
      local body = "a\0b\0\255{\"k\":1}\0"
      local status, text, headers = http:post(base .. "/echo",
        { "Content-Type: application/x-amz-json-1.0", "X-Amz-Target: Test.Op", AUTH }, body)
      assert.equals(200, status)
      assert.equals("table", type(headers))
      local echo = parse_echo(text)
      assert.equals("POST", echo.method)
      assert.equals(#body, echo.body_length)
      assert.equals(body, echo.body)
      assert.equals("application/x-amz-json-1.0", echo.headers["content-type"])
      assert.equals("Test.Op", echo.headers["x-amz-target"])
      assert.equals(AUTH:match(": (.*)$"), echo.headers["authorization"])
      assert.equals(tostring(#body), echo.headers["content-length"])
    end)

    it("never sends Expect: 100-continue, even for a large body", function()
      local body = ("0123456789abcdef"):rep(128 * 1024) -- 2 MiB
      local status, text = http:post(base .. "/echo", { "Content-Type: application/octet-stream" }, body)
      assert.equals(200, status)
      local echo = parse_echo(text)
      assert.is_nil(echo.headers["expect"])
      assert.equals(#body, echo.body_length)
      assert.is_true(echo.body == body)
    end)

    it("posts an empty body when body and headers are omitted", function()
      local status, text = http:post(base .. "/echo")
      assert.equals(200, status)
      local echo = parse_echo(text)
      assert.equals("POST", echo.method)
      assert.equals(0, echo.body_length)
      assert.equals("", echo.body)
      status = http:post(base .. "/echo", nil, "")
      assert.equals(200, status)
    end)

    it("returns HTTP error statuses as results, not failures", function()
      local status, text, headers = http:post(base .. "/status/503", {}, "{}")
      assert.equals(503, status)
      assert.equals("status 503", text)
      assert.equals("10", headers["content-length"])

      status, text, headers = http:post(base .. "/html", {}, "{}")
      assert.equals(502, status)
      assert.matches("<h1>502 Bad Gateway</h1>", text)
      assert.equals("text/html", headers["content-type"])
    end)

    it("reports response headers with lower-case names, trimmed values, repeats joined", function()
      local status, text, headers = http:post(base .. "/headers", {}, "")
      assert.equals(200, status)
      assert.equals("ok", text)
      assert.equals("1", headers["x-one"])
      assert.equals("padded value", headers["x-mixed-case"])
      assert.equals("a, b", headers["x-multi"])
      assert.is_nil(headers["X-One"])
      for name in pairs(headers) do
        assert.equals(name:lower(), name)
        assert.is_nil(name:find("^HTTP/"))
      end
    end)

    it("reports only the final header block after an interim 100 Continue", function()
      local status, text, headers = http:post(base .. "/continue", {}, "x")
      assert.equals(200, status)
      assert.equals("after continue", text)
      assert.equals("yes", headers["x-final"])
      assert.is_nil(headers["x-interim"])
    end)

    it("reuses one kept-alive connection across posts on a handle", function()
      local s1, port1 = http:post(base .. "/conn", {}, "")
      local s2, port2 = http:post(base .. "/conn", {}, "")
      assert.equals(200, s1)
      assert.equals(200, s2)
      assert.equals(port1, port2)
      local other = core.http()
      local s3, port3 = other:post(base .. "/conn", {}, "")
      other:close()
      assert.equals(200, s3)
      assert.not_equals(port1, port3)
    end)

    it("accepts a body of exactly max_body bytes", function()
      local h = core.http({ max_body = 1000 })
      finally(function() h:close() end)
      local status, text = h:post(base .. "/big?bytes=1000", {}, "")
      assert.equals(200, status)
      assert.equals(1000, #text)
      status, text = h:post(base .. "/big?bytes=1000&chunked=1", {}, "")
      assert.equals(200, status)
      assert.equals(("x"):rep(1000), text)
    end)

    it("stays usable after a failure", function()
      assert_fails("ConnectionReset", http:post(base .. "/reset", { AUTH }, ""))
      local status, text = http:post(base .. "/echo", {}, "again")
      assert.equals(200, status)
      assert.equals("again", parse_echo(text).body)
    end)
  end)

  describe("transport failures", function()
    it("ConnectionRefused, naming the host but no header", function()
      local err = assert_fails("ConnectionRefused",
        http:post("http://127.0.0.1:" .. srv.refused .. "/x", { AUTH }, "{}"))
      assert.matches("127.0.0.1:" .. srv.refused, err, 1, true)
    end)

    it("UnknownHost for a name that cannot resolve", function()
      local err = assert_fails("UnknownHost", http:post("http://no-such-host.invalid/x", { AUTH }, "{}"))
      assert.matches("no-such-host.invalid", err, 1, true)
    end)

    it("Timeout when the answer is slower than the timeout", function()
      local h = core.http({ timeout = 0.3 })
      finally(function() h:close() end)
      local t0 = core.monotime and core.monotime()
      assert_fails("Timeout", h:post(base .. "/slow?ms=3000", { AUTH }, "{}"))
      if t0 then assert.is_true(core.monotime() - t0 < 2.5) end
    end)

    it("ConnectionReset for a body shorter than its Content-Length", function()
      assert_fails("ConnectionReset", http:post(base .. "/truncated", { AUTH }, "{}"))
    end)

    it("ConnectionReset when the server resets or closes without answering", function()
      assert_fails("ConnectionReset", http:post(base .. "/reset", { AUTH }, "{}"))
      assert_fails("ConnectionReset", http:post(base .. "/close", { AUTH }, "{}"))
    end)

    it("ResponseTooLarge over max_body, with or without Content-Length", function()
      local h = core.http({ max_body = 1000 })
      finally(function() h:close() end)
      assert_fails("ResponseTooLarge", h:post(base .. "/big?bytes=5000", { AUTH }, ""))
      assert_fails("ResponseTooLarge", h:post(base .. "/big?bytes=300000&chunked=1", { AUTH }, ""))
      assert_fails("ResponseTooLarge", h:post(base .. "/big?bytes=1001&chunked=1", { AUTH }, ""))
      assert.equals(200, (h:post(base .. "/big?bytes=10", {}, "")))
    end)

    it("TlsError (no crash) for https to a plain HTTP server", function()
      local status, err, code = http:post("https://127.0.0.1:" .. srv.http .. "/echo", { AUTH }, "{}")
      assert.is_nil(status)
      assert.is_truthy(code == "TlsError" or code == "ConnectionReset", err)
      assert.is_nil(err:find(SECRET, 1, true))
    end)
  end)

  describe("TLS against a self-signed certificate", function()
    local function url(path) return "https://127.0.0.1:" .. srv.https .. path end

    it("fails verification by default", function()
      if not srv.https then return pending("openssl CLI could not make a certificate") end
      assert_fails("TlsError", http:post(url("/echo"), { AUTH }, "{}"))
    end)

    it("succeeds with verify_tls = false", function()
      if not srv.https then return pending("openssl CLI could not make a certificate") end
      local h = core.http({ verify_tls = false })
      finally(function() h:close() end)
      local status, text = h:post(url("/echo"), { AUTH }, "tls body")
      assert.equals(200, status)
      assert.equals("tls body", parse_echo(text).body)
    end)

    it("succeeds with the certificate as ca_file, fails with a missing ca_file", function()
      if not srv.https then return pending("openssl CLI could not make a certificate") end
      local h = core.http({ ca_file = cert })
      finally(function() h:close() end)
      assert.equals(200, (h:post(url("/echo"), {}, "")))
      local bad = core.http({ ca_file = tmpdir .. "/missing.pem" })
      finally(function() bad:close() end)
      assert_fails("TlsError", bad:post(url("/echo"), { AUTH }, ""))
    end)
  end)

  describe("arguments", function()
    it("raises on bad argument types", function()
      local u = base .. "/echo"
      assert.has_error(function() http:post() end)
      assert.has_error(function() http:post(42) end)
      assert.has_error(function() http:post(u, "X-A: b") end)
      assert.has_error(function() http:post(u, { 42 }) end)
      assert.has_error(function() http:post(u, { {} }) end)
      assert.has_error(function() http:post(u, {}, {}) end)
      assert.has_error(function() http:post(u, {}, true) end)
      assert.has_error(function() http.post(nil, u) end)
      assert.has_error(function() http.post({}, u) end)
    end)

    it("raises on a header with CR, LF or NUL without showing its value", function()
      for _, bad in ipairs({ AUTH .. "\r\nX-Injected: 1", AUTH .. "\n", AUTH .. "\0x" }) do
        local ok, err = pcall(http.post, http, base .. "/echo", { "X-Ok: 1", bad }, "")
        assert.is_false(ok)
        assert.matches("header 2 contains CR, LF or NUL", err, 1, true)
        assert.is_nil(err:find(SECRET, 1, true))
      end
    end)

    -- Decision: a non-http(s) URL is a programming error, so it raises like
    -- any bad argument rather than returning nil, err (see http_post in ds_http.c).
    it("raises on URLs whose scheme is not http or https", function()
      for _, u in ipairs({ "ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/",
                           "127.0.0.1:" .. srv.http .. "/echo", "", "http:/x", "http://a\0b" }) do
        local ok, err = pcall(http.post, http, u, {}, "")
        assert.is_false(ok, u)
        assert.is_truthy(err:find("URL", 1, true), err)
      end
      assert.equals(200, (http:post("HTTP://127.0.0.1:" .. srv.http .. "/echo", {}, "")))
    end)
  end)

  describe("answer buffers kept between calls", function()
    local LARGE, SMALL = 2000000, 1000

    local function get(h, bytes, chunked)
      local status, body = h:post(base .. "/big?bytes=" .. bytes .. (chunked and "&chunked=1" or ""))
      assert.equals(200, status)
      assert.equals(bytes, #body)
      return body
    end

    for _, chunked in ipairs({ false, true }) do
      it(("keep a steady stream of large answers' room, and give it back after 8 small ones (%s)")
        :format(chunked and "chunked" or "Content-Length"), function()
        helper.with_close(core.http(), function(h)
          for _ = 1, 10 do
            get(h, LARGE, chunked)
            local kept = h:kept_bytes()
            assert.is_true(kept >= LARGE and kept <= 2 * LARGE + 65536, kept)
          end
          for i = 1, 8 do
            get(h, SMALL, chunked)
            local kept = h:kept_bytes()
            -- while a large answer is among the last 8, its room is kept
            if i < 8 then assert.is_true(kept >= LARGE, kept) else assert.is_true(kept < 65536, kept) end
          end
          get(h, LARGE, chunked)
          assert.is_true(h:kept_bytes() >= LARGE)
        end)
      end)
    end

    -- From 256 KiB a buffer is a mapping of its own (csrc/buffer.c): bodies on
    -- both sides of that size, and bodies that grow across it, keep every byte.
    it("keep every byte of bodies around the size where buffers become mappings", function()
      local block = {}
      for i = 1, 8192 do block[i] = string.format("%07x ", i) end
      block = table.concat(block) -- 64 KiB in which every 8 bytes differ
      local blocks = {}
      for i = 1, 80 do blocks[i] = string.format("<%06d>", i) .. block end
      local text = table.concat(blocks)
      local function varied(n) return text:sub(1, n) end
      for _, mode in ipairs({ "string", "buffer" }) do
        helper.with_close(core.http({ body = mode }), function(h)
          for _, n in ipairs({ 262143, 262144, 262145, 300000, 1048579, 100, 5000001, 700000 }) do
            local sent = varied(n)
            local status, body = h:post(base .. "/reflect/200", {}, sent)
            assert.equals(200, status)
            assert.is_true(tostring(body) == sent, mode .. " " .. n)
            if mode == "buffer" then body:close() end
          end
        end)
      end
    end)

    it("with body objects, keep closed large bodies' blocks until 8 small ones followed", function()
      helper.with_close(core.http({ body = "buffer" }), function(h)
        local bodies = {}
        for i = 1, 4 do bodies[i] = get(h, LARGE) end -- held at once, as a fetch of 4 pages
        for i = 1, 4 do bodies[i]:close() end
        assert.is_true(h:kept_bytes() >= 4 * LARGE)
        for i = 1, 8 do
          get(h, SMALL):close()
          local kept = h:kept_bytes()
          -- each answer reuses one block (cut to its size), the others wait in the pool
          if i < 8 then assert.is_true(kept >= 3 * LARGE, kept) else assert.is_true(kept < 65536, kept) end
        end
      end)
    end)
  end)

  describe("lifetime", function()
    it("close is idempotent and a closed handle raises on post", function()
      local h = core.http()
      h:close()
      h:close()
      assert.has_error(function() h:post(base .. "/echo", {}, "") end, "http handle is closed")
    end)

    it("closes at the end of a <close> block", function()
      local outer
      require("helper").with_close(core.http(), function(h)
        outer = h
        assert.equals(200, (h:post(base .. "/echo", {}, "")))
      end)
      assert.matches("closed$", tostring(outer))
      assert.has_error(function() outer:post(base .. "/echo", {}, "") end)
    end)

    it("closes on a raise through a <close> block", function()
      local outer
      local ok = pcall(require("helper").with_close, core.http(), function(h)
        outer = h
        error("boom")
      end)
      assert.is_false(ok)
      assert.matches("closed$", tostring(outer))
    end)

    it("frees unclosed handles, used or not, on garbage collection", function()
      for i = 1, 20 do
        local h = core.http()
        if i % 2 == 0 then h:post(base .. "/echo", { "X-N: " .. i }, "gc") end
      end
      collectgarbage()
      collectgarbage()
    end)
  end)
end)
