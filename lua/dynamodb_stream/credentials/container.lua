--- Container credentials: the ECS task role, EKS Pod Identity, Greengrass.
--
-- `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS: a path on `http://169.254.170.2`; it wins)
-- or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (a whole URL: https to any host, plain http only to
-- a loopback address or the ECS/EKS link-local addresses, checked before any connection).
-- The `Authorization` header comes from `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read again
-- for every request (EKS rotates it), else from `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
-- @module dynamodb_stream.credentials.container

local config = require("dynamodb_stream.config")
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local imds = require("dynamodb_stream.credentials.imds")
local provider = require("dynamodb_stream.credentials.provider")

local M = {
  -- The ECS host that RELATIVE_URI is a path on; a context's `container_host` replaces it (tests).
  HOST = "http://169.254.170.2",
  TIMEOUT = 2,
  ATTEMPTS = 3,
  PAUSE = 1,
}

-- Hosts plain http may reach: the ECS and EKS Pod Identity agents (loopback is checked apart).
local HTTP_HOSTS = { ["169.254.170.2"] = true, ["169.254.170.23"] = true, ["[fd00:ec2::23]"] = true,
  ["localhost"] = true, ["[::1]"] = true }

local ALLOWED = "over plain http only a loopback host (127.0.0.0/8, ::1, localhost), 169.254.170.2,"
  .. " 169.254.170.23 or fd00:ec2::23 is allowed; use https for any other host"

local function loopback_ipv4(host)
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  for _, octet in ipairs({ a, b, c, d }) do
    if #octet > 3 or tonumber(octet) > 255 then return false end
  end
  return tonumber(a) == 127
end

--- Whether a host may be reached over plain http for container credentials.
-- @tparam string host as in a URL: `127.0.0.1`, `localhost`, `[::1]` (no port)
-- @treturn boolean
function M.http_host_allowed(host)
  host = host:lower()
  return HTTP_HOSTS[host] == true or loopback_ipv4(host)
end

--- Checks a container credentials URL, keeping its query.
-- @tparam string url
-- @tparam string name where it came from (the variable), for messages
-- @tparam boolean allowlist whether plain http must go to an allowed host (FULL_URI)
-- @treturn string the URL to GET, or `nil, why`
function M.check_url(url, name, allowlist)
  local base, query = url:match("^([^?]*)%?(.*)$")
  base = base or url
  if query and query:find("[%c%s#]") then
    return nil, name .. ": the query holds a space, a control character or a '#'"
  end
  local parsed, why = config.parse_endpoint(base)
  if not parsed then return nil, name .. ": " .. why end
  if allowlist and parsed.scheme == "http" then
    local host = parsed.host:match("^(%[.*%])") or parsed.host:match("^[^:]*")
    if not M.http_host_allowed(host) then
      return nil, name .. ": host " .. host .. " is not allowed: " .. ALLOWED
    end
  end
  return parsed.url .. (query and ("?" .. query) or "")
end

-- The Authorization value for this request: a string, false for none, or nil, err.
local function authorization(ctx, token_file, token)
  local value, from = token, "AWS_CONTAINER_AUTHORIZATION_TOKEN"
  if token_file then
    local text, why = ctx:read_file(token_file)
    if not text then
      return nil, errors.new({ code = "CredentialsError",
        message = "container credentials: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (" .. tostring(why) .. ")" })
    end
    -- An editor's final newline is not part of the token; any other CR or LF is refused below.
    value, from = text:gsub("\r?\n$", ""), "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
  end
  if not value then return false end
  if value:find("[\r\n]") then
    return nil, errors.new({ code = "CredentialsError",
      message = "container credentials: " .. from .. " holds a CR or LF, which a header value cannot" })
  end
  return value
end

local function redact(text, secret)
  if not secret or secret == "" then return text end
  local out, at = {}, 1
  while true do
    local i, j = text:find(secret, at, true)
    if not i then break end
    out[#out + 1] = text:sub(at, i - 1) .. "[redacted]"
    at = j + 1
  end
  out[#out + 1] = text:sub(at)
  return table.concat(out)
end

-- An answer that is not 200 and not worth retrying (4xx, 3xx) as an error: the answer's
-- Code and Message when it has them.
local function refused(status, body, where, auth)
  local doc = core.json_decode(body)
  local code, message
  if type(doc) == "table" then
    code = doc.Code or doc.code
    message = doc.Message or doc.message
  end
  code = type(code) == "string" and code:match("^[%w.]+$") or "CredentialsError"
  message = type(message) == "string" and redact(message, auth):gsub("%c", " "):sub(1, 300) or "no message"
  return nil, errors.new({ code = code, status = status,
    message = where .. " answered HTTP " .. status .. " (" .. code .. "): " .. message })
end

local function fetch(ctx, s)
  local where = "container credentials at " .. s.shown
  local last
  for attempt = 1, M.ATTEMPTS do
    local auth, err = authorization(ctx, s.token_file, s.token)
    if auth == nil then return nil, err end
    local lines = { "Accept: application/json" }
    if auth then lines[2] = "Authorization: " .. auth end
    local status, body = ctx:http("GET", s.url, lines, nil, M.TIMEOUT)
    if status == 200 then return imds.decode_credentials(body, where) end
    if status and status < 500 and status ~= 429 then return refused(status, body, where, auth) end
    last = status and errors.new({ code = "CredentialsError", message = "HTTP " .. status, status = status }) or body
    if attempt < M.ATTEMPTS then ctx:sleep(M.PAUSE) end
  end
  return nil, errors.new({ code = last.code, status = last.status,
    message = where .. ": " .. M.ATTEMPTS .. " attempts failed, the last with " .. last.message })
end

--- The container credentials provider.
-- @tparam table ctx a context (`credentials.context`); its `container_host` field, when set,
-- replaces `http://169.254.170.2` as the host of `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
-- @treturn table a provider; nil when neither URI variable is set; `nil, why` for a wrong
-- URI (a host plain http may not reach, ...) or a token with CR or LF
function M.provider(ctx)
  if type(ctx) ~= "table" or type(ctx.env) ~= "function" then
    error("container.provider: a credentials context expected (credentials.context.new), got " .. type(ctx), 2)
  end
  local relative = ctx:env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
  local full = ctx:env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
  if not relative and not full then return nil end
  local url, why
  if relative then
    if relative:sub(1, 1) ~= "/" then
      return nil, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path that starts with '/'"
    end
    url, why = M.check_url((ctx.container_host or M.HOST):gsub("/+$", "") .. relative,
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", false)
  else
    url, why = M.check_url(full, "AWS_CONTAINER_CREDENTIALS_FULL_URI", true)
  end
  if not url then return nil, why end
  local s = { url = url, shown = url:match("^[^?]*"),
    token_file = ctx:env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
    token = ctx:env("AWS_CONTAINER_AUTHORIZATION_TOKEN") }
  if not s.token_file and s.token and s.token:find("[\r\n]") then
    return nil, "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a CR or LF, which a header value cannot"
  end
  return provider.new("container credentials", function() return fetch(ctx, s) end,
    { clock = function() return ctx:now() end })
end

return M
