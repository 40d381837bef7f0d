-- HTTP/1.1 POST over nginx cosockets (ngx.socket.tcp), for the clients when
-- they run inside OpenResty / lua-nginx-module: the same calls and answers as
-- core.http, but the I/O yields to nginx's event loop instead of blocking the
-- worker. The C core still signs the requests and decodes the answers.
--
--   local t = ngx_http.http{ connect_timeout = 5, timeout = 30, verify_tls = true,
--                           max_body = 64 MiB, keepalive_timeout = 60, pool_size = 32 }
--   t:post(url, header_lines, body) -> status, body, headers | nil, "Code: message", "Code"
--   t:post_many({ { url, lines, body }, ... }[, max_in_flight]) -> { { status, body, headers } | { nil, msg, code } ... }
--   t:close()
--
-- Codes as core.http: ConnectionRefused, UnknownHost, Timeout, ConnectionReset,
-- TlsError, ResponseTooLarge, HttpError. Connections are kept alive in nginx's
-- per-worker pool (setkeepalive); a kept-alive connection the server closed while
-- idle is retried once on a fresh one. TLS is verified by default against
-- nginx's `lua_ssl_trusted_certificate` (and `lua_ssl_verify_depth`); ca_file
-- cannot be set per socket. Host names need nginx's `resolver` directive.
--
-- In a phase without cosockets (init, init_worker, set, header/body filter,
-- log) post and post_many fall back to a blocking core.http handle made with the
-- same options, so a client made and used there still works.
local core = require("dynamodb_stream.core")

local M = {}

local Transport = {}
Transport.__index = Transport

-- Phases where cosockets and ngx.sleep may be used.
local YIELDING_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

local function ngx_table()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.socket) == "table" and ngx.socket.tcp and ngx.get_phase then
    return ngx
  end
  return nil
end

-- True when running inside nginx (the ngx API is there), whatever the phase.
function M.in_nginx()
  return ngx_table() ~= nil
end

-- True when cosockets (and ngx.sleep) can be used in the current phase.
function M.can_yield()
  local ngx = ngx_table()
  if not ngx then return false end
  local ok, phase = pcall(ngx.get_phase)
  return ok and YIELDING_PHASES[phase] == true
end

-- ngx.sleep where it can yield, core.sleep (blocking) elsewhere.
function M.sleep(seconds)
  if M.can_yield() then return ngx.sleep(seconds) end -- luacheck: globals ngx
  return core.sleep(seconds)
end

function M.http(opts)
  opts = opts or {}
  return setmetatable({
    connect_timeout = opts.connect_timeout or 5,
    timeout = opts.timeout or 30,
    verify_tls = opts.verify_tls ~= false,
    ca_file = opts.ca_file,
    max_body = opts.max_body or 64 * 1024 * 1024,
    keepalive_timeout = opts.keepalive_timeout or 60,
    pool_size = opts.pool_size or 32,
    _opts = opts,
  }, Transport)
end

-- The blocking libcurl handle for phases without cosockets, made on first use.
function Transport:_fallback()
  if not self._curl then
    local o = self._opts
    self._curl = core.http({ connect_timeout = o.connect_timeout, timeout = o.timeout,
      verify_tls = o.verify_tls, ca_file = o.ca_file, max_body = o.max_body })
  end
  return self._curl
end

local function fail(code, message)
  return nil, code .. ": " .. message, code
end

-- scheme, host (for connect), port, Host header value, path of an http(s) URL.
local function split_url(url)
  local scheme, authority, path = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil end
  local default_port = scheme == "https" and 443 or 80
  local host, port = authority:match("^%[(.+)%]:(%d+)$")
  if not host then host = authority:match("^%[(.+)%]$") end
  if not host then host, port = authority:match("^(.-):(%d+)$") end
  host = host or authority
  port = tonumber(port) or default_port
  local host_header = authority
  if port == default_port then host_header = authority:gsub(":%d+$", "") end
  return scheme, host, port, host_header, path == "" and "/" or path
end

local function connect_error(err)
  err = tostring(err)
  if err:find("timeout", 1, true) then return fail("Timeout", "connect: " .. err) end
  if err:find("refused", 1, true) then return fail("ConnectionRefused", err) end
  if err:find("resolv", 1, true) or err:find("no resolver", 1, true) then
    return fail("UnknownHost", err .. " (host names need nginx's `resolver` directive)")
  end
  if err:find("reset", 1, true) or err:find("closed", 1, true) then return fail("ConnectionReset", err) end
  return fail("HttpError", "connect: " .. err)
end

local function io_error(err, what)
  err = tostring(err)
  if err == "timeout" or err:find("timed out", 1, true) then return fail("Timeout", what .. ": timed out") end
  return fail("ConnectionReset", what .. ": " .. err)
end

-- One exchange on one connection. Returns status, body, headers, keepalive;
-- or nil, msg, code, fresh (fresh: nothing of an answer was read, so the
-- request may be retried on a new connection).
local function exchange(self, sock, request, deadline)
  local ngx = ngx_table()
  local function left_ms()
    ngx.update_time()
    local left = deadline - ngx.now()
    if left <= 0 then return nil end
    return math.max(1, math.floor(left * 1000))
  end
  local ms = left_ms()
  if not ms then return fail("Timeout", "no time left to send") end
  sock:settimeouts(self.connect_timeout * 1000, ms, ms)
  local sent, serr = sock:send(request)
  if not sent then
    local a, b, c = io_error(serr, "send")
    return a, b, c, true
  end

  local status, headers, version
  local first = true
  repeat
    ms = left_ms()
    if not ms then return fail("Timeout", "waiting for the status line") end
    sock:settimeouts(self.connect_timeout * 1000, ms, ms)
    local line, lerr = sock:receive("*l")
    if not line then
      local a, b, c = io_error(lerr, "reading the status line")
      return a, b, c, first and lerr == "closed"
    end
    first = false
    local v, code = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not v then return fail("HttpError", "bad status line: " .. line:sub(1, 80)) end
    version, status, headers = v, tonumber(code), {}
    while true do
      local h, herr = sock:receive("*l")
      if not h then return io_error(herr, "reading the headers") end
      if h == "" then break end
      local name, value = h:match("^([^:%s]+)%s*:%s*(.-)%s*$")
      if name then
        name = name:lower()
        headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
      end
    end
  until status >= 200 or status == 101

  local chunks, size = {}, 0
  local keepalive = version == "1.1"
  local conn = (headers["connection"] or ""):lower()
  if conn:find("close", 1, true) then keepalive = false end
  if version == "1.0" and conn:find("keep-alive", 1, true) then keepalive = true end
  local te = (headers["transfer-encoding"] or ""):lower()
  if status == 204 or status == 304 then -- luacheck: ignore 542
    -- no body
  elseif te:find("chunked", 1, true) then
    while true do
      ms = left_ms()
      if not ms then return fail("Timeout", "reading the body") end
      sock:settimeouts(self.connect_timeout * 1000, ms, ms)
      local line, cerr = sock:receive("*l")
      if not line then return io_error(cerr, "reading the body") end
      local n = tonumber(line:match("^%s*(%x+)"), 16)
      if not n then return fail("HttpError", "bad chunk size line") end
      if n == 0 then
        repeat
          local t, terr = sock:receive("*l")
          if not t then return io_error(terr, "reading the trailer") end
        until t == ""
        break
      end
      size = size + n
      if size > self.max_body then return fail("ResponseTooLarge", "answer larger than " .. self.max_body .. " bytes") end
      local data, derr = sock:receive(n)
      if not data then return io_error(derr, "reading the body") end
      chunks[#chunks + 1] = data
      local crlf, rerr = sock:receive("*l")
      if not crlf then return io_error(rerr, "reading the body") end
    end
  elseif headers["content-length"] then
    local n = tonumber(headers["content-length"]:match("^(%d+)$"))
    if not n then return fail("HttpError", "bad Content-Length") end
    if n > self.max_body then return fail("ResponseTooLarge", "answer larger than " .. self.max_body .. " bytes") end
    if n > 0 then
      local data, derr = sock:receive(n)
      if not data then return io_error(derr, "reading the body (" .. n .. " bytes announced)") end
      chunks[1] = data
    end
  else
    -- Until the server closes the connection.
    keepalive = false
    local data, derr, partial = sock:receive("*a")
    if not data then return io_error(derr, "reading the body") end
    if #data > self.max_body then return fail("ResponseTooLarge", "answer larger than " .. self.max_body .. " bytes") end
    chunks[1] = data or partial
  end
  return status, table.concat(chunks), headers, keepalive
end

-- One POST: status, body, headers or nil, "Code: message", "Code".
function Transport:_post(url, lines, body)
  local ngx = ngx_table()
  local scheme, host, port, host_header, path = split_url(url)
  if not scheme then return fail("HttpError", "not an http(s) URL: " .. tostring(url)) end
  body = body or ""
  local parts = { "POST ", path, " HTTP/1.1\r\nHost: ", host_header, "\r\n" }
  for _, line in ipairs(lines or {}) do
    if line:find("[\r\n%z]") then error("post: a header line contains CR, LF or NUL", 3) end
    parts[#parts + 1] = line
    parts[#parts + 1] = "\r\n"
  end
  parts[#parts + 1] = "User-Agent: dynamodb_stream (ngx cosocket)\r\nContent-Length: "
  parts[#parts + 1] = tostring(#body)
  parts[#parts + 1] = "\r\nConnection: keep-alive\r\n\r\n"
  parts[#parts + 1] = body
  local request = table.concat(parts)
  ngx.update_time()
  local deadline = ngx.now() + self.timeout
  local pool = scheme .. "://" .. host .. ":" .. port .. (self.verify_tls and "" or "#noverify")

  for try = 1, 2 do
    local sock = ngx.socket.tcp()
    sock:settimeouts(self.connect_timeout * 1000, self.timeout * 1000, self.timeout * 1000)
    local ok, cerr = sock:connect(host, port, { pool = pool })
    if not ok then return connect_error(cerr) end
    local reused = (sock:getreusedtimes() or 0) > 0
    if scheme == "https" and not reused then
      local session, serr = sock:sslhandshake(nil, host, self.verify_tls)
      if not session then
        sock:close()
        if tostring(serr):find("timeout", 1, true) then return fail("Timeout", "TLS handshake: " .. serr) end
        return fail("TlsError", tostring(serr))
      end
    end
    local status, answer, headers, extra = exchange(self, sock, request, deadline)
    if status then
      -- extra: whether the connection may be kept alive.
      if extra then sock:setkeepalive(self.keepalive_timeout * 1000, self.pool_size) else sock:close() end
      return status, answer, headers
    end
    sock:close()
    -- extra: nothing of an answer came. On a kept-alive connection the server
    -- had closed while idle: once more on a new one.
    if not (extra and reused and try == 1) then return status, answer, headers end
  end
end

function Transport:post(url, lines, body)
  if not M.can_yield() then return self:_fallback():post(url, lines, body) end
  return self:_post(url, lines, body)
end

-- Every request at once, at most max_in_flight (default 16) in flight, each in
-- its own light thread; results in order.
function Transport:post_many(requests, max_in_flight)
  if type(requests) ~= "table" then error("post_many: a list of requests expected", 2) end
  if not M.can_yield() then return self:_fallback():post_many(requests, max_in_flight) end
  local ngx = ngx_table()
  local n = #requests
  max_in_flight = max_in_flight or 16
  local results, next_index = {}, 1
  local function worker()
    while next_index <= n do
      local i = next_index
      next_index = next_index + 1
      local r = requests[i]
      local ok, status, body, headers = pcall(self._post, self, r[1], r[2], r[3])
      if ok then
        results[i] = { status, body, headers }
      else
        results[i] = { nil, "HttpError: " .. tostring(status), "HttpError" }
      end
    end
  end
  if n == 1 then
    worker()
    return results
  end
  local threads = {}
  for k = 1, math.min(n, max_in_flight) do threads[k] = ngx.thread.spawn(worker) end
  for _, th in ipairs(threads) do ngx.thread.wait(th) end
  for i = 1, n do
    if not results[i] then results[i] = { nil, "HttpError: request not run", "HttpError" } end
  end
  return results
end

function Transport:close()
  if self._curl then self._curl:close() end
  self._curl = nil
end

return M
