--- The cosocket transport and the runtime facts (in nginx? can it yield? which sleep).
-- HTTP/1.1 POST over nginx cosockets (ngx.socket.tcp), for the clients when
-- they run inside OpenResty / lua-nginx-module: the same calls and answers as
-- core.http, but the I/O yields to nginx's event loop instead of blocking the
-- worker. A pure transport: status, headers and body; the clients sign the
-- requests and decode the answers (whether inside nginx: runtime.lua).
--
--   local t = ngx_http.http{ connect_timeout = 5, timeout = 30, verify_tls = true,
--                           max_body = 64 MiB, keepalive_timeout = 60, pool_size = 32 }
--   t:post(url, header_lines, body) -> status, body, headers | nil, "Code: message", "Code"
--   t:post_many({ { url, lines, body }, ... }[, max_in_flight]) -> { { status, body, headers } | { nil, msg, code } ... }
--   t:close()
--
-- Codes as core.http: ConnectionRefused, UnknownHost, Timeout, ConnectionReset,
-- TlsError, ResponseTooLarge, HttpError. As with core.http, `timeout` bounds the
-- whole call (connect, send, every receive) and `max_body` the body however it
-- is framed; the head is bounded too (100 header lines, 64 KiB: HACKING.md,
-- HTTP). Answers are read in bounded pieces, never "until close" at once. Connections are kept alive in nginx's
-- per-worker pool (setkeepalive); a kept-alive connection the server closed while
-- idle is retried once on a fresh one. TLS is verified by default against
-- nginx's `lua_ssl_trusted_certificate` (and `lua_ssl_verify_depth`); ca_file
-- cannot be set per socket. Host names need nginx's `resolver` directive.
--
-- In a phase without cosockets (init, init_worker, set, header/body filter,
-- log) post and post_many fall back to a blocking core.http handle made with the
-- same options, so a client made and used there still works.
-- @module dynamodb_stream.ngx_http
local core = require("dynamodb_stream.core")
local runtime = require("dynamodb_stream.runtime")

local M = {}

local Transport = {}
Transport.__index = Transport

-- opts[name] as a positive number (an integer when integer is set), checked
-- as core.http checks its options: a NaN or infinite timeout would make the
-- deadline meaningless.
local function positive(opts, name, default, integer)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" then
    error("option '" .. name .. "' must be a " .. (integer and "positive integer" or "number of seconds")
      .. ", got " .. type(v), 3)
  end
  if not (v > 0 and v < 2 ^ 53) or (integer and v % 1 ~= 0) then
    error("option '" .. name .. "' must be a positive " .. (integer and "integer" or "number of seconds"), 3)
  end
  return v
end

--- A cosocket transport with the calls of `core.http`: `post`, `post_many`, `close`.
-- @tparam[opt] table opts `connect_timeout` (5 s), `timeout` (30 s, the whole call),
-- `verify_tls` (true), `ca_file` (for the blocking fallback), `max_body` (64 MiB),
-- `keepalive_timeout` (60 s), `pool_size` (32); raises on a value that is not positive
-- @treturn Transport
function M.http(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("ngx_http.http: options table expected, got " .. type(opts), 2) end
  return setmetatable({
    connect_timeout = positive(opts, "connect_timeout", 5),
    timeout = positive(opts, "timeout", 30),
    verify_tls = opts.verify_tls ~= false,
    ca_file = opts.ca_file,
    max_body = positive(opts, "max_body", 64 * 1024 * 1024, true),
    keepalive_timeout = positive(opts, "keepalive_timeout", 60),
    pool_size = positive(opts, "pool_size", 32, true),
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

-- Limits of an answer's head, as nginx's large_client_header_buffers: header
-- lines (interim 1xx blocks and chunked trailers included), bytes of the status
-- lines and header lines together, and the length of a chunk size line.
local MAX_HEADERS = 100
local MAX_HEAD_BYTES = 64 * 1024
local MAX_CHUNK_LINE = 1024
-- The most one receive asks for: every receive is a bounded piece, so max_body
-- and the deadline are checked between pieces however the bytes come.
local PIECE = 256 * 1024

-- Reads an answer in bounded pieces; each receive waits no longer than what is
-- left of the call's deadline. buf holds the last piece received, consumed up
-- to pos: nothing is copied twice, however small the lines or chunks.
local Reader = {}
Reader.__index = Reader

local function reader(self, sock, deadline)
  return setmetatable({ sock = sock, deadline = deadline, connect_ms = self.connect_timeout * 1000,
    buf = "", pos = 1, received = false }, Reader)
end

--- Milliseconds left.
-- @local
-- Milliseconds left before the deadline, or nil.
function Reader:left_ms()
  local ngx = runtime.ngx()
  ngx.update_time()
  local left = self.deadline - ngx.now()
  if left <= 0 then return nil end
  return math.max(1, math.floor(left * 1000))
end

--- Bytes waiting.
-- @local
-- Whether bytes received are not consumed yet.
function Reader:buffered()
  return self.pos <= #self.buf
end

--- One receive.
-- @local
-- One receive of at most PIECE bytes into buf. true, or nil, msg, code,
-- socket error ("closed" at the end of the stream).
function Reader:fill(what)
  local ms = self:left_ms()
  if not ms then return nil, "Timeout: " .. what .. ": timed out", "Timeout", "timeout" end
  self.sock:settimeouts(self.connect_ms, ms, ms)
  local data, err = self.sock:receiveany(PIECE)
  if not data then
    local a, b, c = io_error(err, what)
    return a, b, c, err
  end
  self.received = true
  self.buf, self.pos = data, 1
  return true
end

--- At most max bytes.
-- @local
-- At most max bytes: what is buffered, else what one receive brings.
function Reader:take(max, what)
  if not self:buffered() then
    local ok, err, code, raw = self:fill(what)
    if not ok then return nil, err, code, raw end
  end
  if self.pos == 1 and max >= #self.buf then -- the whole piece: no copy
    self.pos = #self.buf + 1
    return self.buf
  end
  local data = self.buf:sub(self.pos, self.pos + max - 1)
  self.pos = self.pos + #data
  return data
end

--- Exactly n bytes.
-- @local
-- Exactly n bytes (n <= max_body, checked by the caller), appended to parts.
function Reader:bytes(n, parts, what)
  while n > 0 do
    local data, err, code = self:take(math.min(n, PIECE), what)
    if not data then return nil, err, code end
    parts:add(data)
    n = n - #data
  end
  return true
end

--- One line.
-- @local
-- One line without its CRLF (or LF). false when it is longer than limit
-- bytes; nil, msg, code, socket error on failure.
function Reader:line(limit, what)
  local parts, len = nil, 0
  while true do
    if not self:buffered() then
      local ok, err, code, raw = self:fill(what)
      if not ok then return nil, err, code, raw end
    end
    local lf = self.buf:find("\n", self.pos, true)
    local stop = lf and lf - 1 or #self.buf
    len = len + stop - self.pos + 1
    if len > limit then return false end
    local piece = self.buf:sub(self.pos, stop)
    self.pos = stop + 2
    if lf then
      local line = parts and table.concat(parts) .. piece or piece
      return (line:gsub("\r$", ""))
    end
    parts = parts or {}
    parts[#parts + 1] = piece
  end
end

-- A body as a list of pieces; small pieces (tiny chunks) are joined in
-- batches, so the list stays short whatever the framing.
local Body = {}
Body.__index = Body

local function new_body()
  return setmetatable({ done = {}, batch = {} }, Body)
end

--- Appends a piece.
-- @local
function Body:add(data)
  local batch = self.batch
  batch[#batch + 1] = data
  if #batch >= 1024 then
    self.done[#self.done + 1] = table.concat(batch)
    self.batch = {}
  end
end

--- The whole body.
-- @local
function Body:text()
  if #self.done == 0 then return table.concat(self.batch) end
  self.done[#self.done + 1] = table.concat(self.batch)
  return table.concat(self.done)
end

local function too_large(max_body)
  return fail("ResponseTooLarge", "response body larger than max_body (" .. max_body .. " bytes)")
end

local function head_too_large()
  return fail("ResponseTooLarge", "response headers over " .. MAX_HEADERS .. " lines or "
    .. MAX_HEAD_BYTES .. " bytes")
end

-- Reads header lines up to the empty one into headers (lower-case name ->
-- value, repeats joined with ", "), within the budget in head ({ lines, bytes }
-- left).
local function read_headers(r, head, headers, what)
  while true do
    local h, err, code = r:line(head.bytes, what)
    if h == false then return head_too_large() end
    if not h then return nil, err, code end
    head.bytes = head.bytes - #h - 2
    if h == "" then return true end
    head.lines = head.lines - 1
    if head.lines < 0 or head.bytes < 0 then return head_too_large() end
    local name, value = h:match("^([^:%s]+)%s*:%s*(.-)%s*$")
    if name then
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
end

-- A chunked body into chunks: nil, msg, code when it is malformed (as libcurl,
-- ConnectionReset), too large or cut.
local function read_chunked(self, r, head, chunks)
  local size = 0
  while true do
    local line, err, code = r:line(MAX_CHUNK_LINE, "reading a chunk size")
    if line == false then return fail("ConnectionReset", "chunk size line longer than " .. MAX_CHUNK_LINE .. " bytes") end
    if not line then return nil, err, code end
    local hex = line:match("^(%x+)%s*$") or line:match("^(%x+)%s*;")
    hex = hex and hex:gsub("^0+(%x)", "%1")
    if not hex or #hex > 13 then -- 13 hex digits: 2^52, exact in a double
      return fail("ConnectionReset", "bad chunk size line: " .. line:sub(1, 40))
    end
    local n = tonumber(hex, 16)
    if n == 0 then return read_headers(r, head, {}, "reading the trailer") end
    size = size + n
    if size > self.max_body then return too_large(self.max_body) end
    local ok
    ok, err, code = r:bytes(n, chunks, "reading the body")
    if not ok then return nil, err, code end
    line, err, code = r:line(2, "reading the body")
    if line == nil then return nil, err, code end
    if line ~= "" then return fail("ConnectionReset", "chunk of " .. n .. " bytes not followed by CRLF") end
  end
end

-- One exchange on one connection. Returns status, body, headers, keepalive;
-- or nil, msg, code, fresh (fresh: nothing of an answer was read, so the
-- request may be retried on a new connection).
local function exchange(self, sock, request, deadline)
  local r = reader(self, sock, deadline)
  local ms = r:left_ms()
  if not ms then return fail("Timeout", "no time left to send") end
  sock:settimeouts(self.connect_timeout * 1000, ms, ms)
  local sent, serr = sock:send(request)
  if not sent then
    local a, b, c = io_error(serr, "send")
    return a, b, c, true
  end

  local status, headers, version
  local head = { lines = MAX_HEADERS, bytes = MAX_HEAD_BYTES }
  repeat
    local line, lerr, lcode, raw = r:line(head.bytes, "reading the status line")
    if line == false then return head_too_large() end
    if not line then return nil, lerr, lcode, raw == "closed" and not r.received end
    head.bytes = head.bytes - #line - 2
    local v, code = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not v then return fail("HttpError", "bad status line: " .. line:sub(1, 80)) end
    version, status, headers = v, tonumber(code), {}
    local ok, herr, hcode = read_headers(r, head, headers, "reading the headers")
    if not ok then return nil, herr, hcode end
  until status >= 200 or status == 101

  local chunks = new_body()
  local keepalive = version == "1.1"
  local conn = (headers["connection"] or ""):lower()
  if conn:find("close", 1, true) then keepalive = false end
  if version == "1.0" and conn:find("keep-alive", 1, true) then keepalive = true end
  local te = (headers["transfer-encoding"] or ""):lower()
  if status == 204 or status == 304 then -- luacheck: ignore 542
    -- no body
  elseif te:find("chunked", 1, true) then
    local ok, err, code = read_chunked(self, r, head, chunks)
    if not ok then return nil, err, code end
  elseif headers["content-length"] then
    local n = tonumber(headers["content-length"]:match("^(%d+)$"))
    if not n then return fail("HttpError", "bad Content-Length") end
    if n > self.max_body then return too_large(self.max_body) end
    local ok, err, code = r:bytes(n, chunks, "reading the body (" .. n .. " bytes announced)")
    if not ok then return nil, err, code end
  else
    -- Until the server closes the connection.
    keepalive = false
    local size = 0
    while true do
      local data, err, code, raw = r:take(PIECE, "reading the body")
      if not data then
        if raw == "closed" then break end
        return nil, err, code
      end
      size = size + #data
      if size > self.max_body then return too_large(self.max_body) end
      chunks:add(data)
    end
  end
  -- Bytes after the answer on a kept-alive connection: the next answer would be out of step.
  if r:buffered() then keepalive = false end
  return status, chunks:text(), headers, keepalive
end

-- One request: status, body, headers or nil, "Code: message", "Code".
function Transport:_request(method, url, lines, body)
  local ngx = runtime.ngx()
  local scheme, host, port, host_header, path = split_url(url)
  if not scheme then return fail("HttpError", "not an http(s) URL: " .. tostring(url)) end
  body = body or ""
  local parts = { method, " ", path, " HTTP/1.1\r\nHost: ", host_header, "\r\n" }
  for _, line in ipairs(lines or {}) do
    if line:find("[\r\n%z]") then error(method:lower() .. ": a header line contains CR, LF or NUL", 3) end
    parts[#parts + 1] = line
    parts[#parts + 1] = "\r\n"
  end
  parts[#parts + 1] = "User-Agent: dynamodb_stream (ngx cosocket)\r\n"
  if method ~= "GET" then
    parts[#parts + 1] = "Content-Length: " .. #body .. "\r\n"
  end
  parts[#parts + 1] = "Connection: keep-alive\r\n\r\n"
  parts[#parts + 1] = body
  local request = table.concat(parts)
  ngx.update_time()
  local deadline = ngx.now() + self.timeout
  local pool = scheme .. "://" .. host .. ":" .. port .. (self.verify_tls and "" or "#noverify")

  for try = 1, 2 do
    -- connect and the TLS handshake count against the deadline too
    ngx.update_time()
    local left_ms = math.floor((deadline - ngx.now()) * 1000)
    if left_ms < 1 then return fail("Timeout", "no time left to connect") end
    local sock = ngx.socket.tcp()
    sock:settimeouts(math.min(self.connect_timeout * 1000, left_ms), left_ms, left_ms)
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

--- A transport made by `ngx_http.http`.
-- @type Transport

--- One POST (blocking libcurl in a phase without cosockets).
-- @tparam string url
-- @tparam {string,...} lines header lines
-- @tparam string body
-- @return `status, body, headers`, or `nil, "Code: message", "Code"`
function Transport:post(url, lines, body)
  if not runtime.can_yield() then return self:_fallback():post(url, lines, body) end
  return self:_request("POST", url, lines, body)
end

local METHODS = { GET = true, PUT = true, POST = true, DELETE = true }

--- One request of any method, as `core.http`'s `request`.
-- @tparam string method `"GET"`, `"PUT"`, `"POST"` or `"DELETE"` (a GET sends no body)
-- @tparam string url
-- @tparam[opt] {string,...} lines header lines
-- @tparam[opt] string body
-- @return `status, body, headers`, or `nil, "Code: message", "Code"`
function Transport:request(method, url, lines, body)
  if not METHODS[method] then error("request: method must be GET, PUT, POST or DELETE", 2) end
  if not runtime.can_yield() then return self:_fallback():request(method, url, lines, body) end
  return self:_request(method, url, lines, method ~= "GET" and body or nil)
end

--- Several POSTs at once, each in its own light thread.
-- @tparam {table,...} requests `{ url, lines, body }` each
-- @tparam[opt=16] integer max_in_flight
-- @treturn table `{ status, body, headers }` or `{ nil, msg, code }` per request, in order
-- Every request at once, at most max_in_flight (default 16) in flight, each in
-- its own light thread; results in order.
function Transport:post_many(requests, max_in_flight)
  if type(requests) ~= "table" then error("post_many: a list of requests expected", 2) end
  if not runtime.can_yield() then return self:_fallback():post_many(requests, max_in_flight) end
  local ngx = runtime.ngx()
  local n = #requests
  max_in_flight = max_in_flight or 16
  local results, next_index = {}, 1
  local function worker()
    while next_index <= n do
      local i = next_index
      next_index = next_index + 1
      local r = requests[i]
      local ok, status, body, headers = pcall(self._request, self, "POST", r[1], r[2], r[3])
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

--- Closes the blocking fallback handle, if one was made.
function Transport:close()
  if self._curl then self._curl:close() end
  self._curl = nil
end

return M
