--- EC2 instance metadata (IMDS): the instance role's credentials, and the instance's region.
--
-- IMDSv2: `PUT /latest/api/token` for a session token, then the role name and its
-- credentials with that token. A token request refused with 403, 404 or 405 (an old IMDS,
-- or a proxy in front of it) or one that times out (the hop limit of a container) falls back
-- to token-less IMDSv1 requests, unless `AWS_EC2_METADATA_V1_DISABLED=true`. Short timeouts
-- (`AWS_METADATA_SERVICE_TIMEOUT`, 1 s) and few attempts (`AWS_METADATA_SERVICE_NUM_ATTEMPTS`,
-- 2) so that a machine off EC2 falls through fast.
-- @module dynamodb_stream.credentials.imds

local config = require("dynamodb_stream.config")
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local provider = require("dynamodb_stream.credentials.provider")
local shared_files = require("dynamodb_stream.credentials.shared_files")
local timestamp = require("dynamodb_stream.credentials.timestamp")

local M = {
  DEFAULT_TIMEOUT = 1,
  DEFAULT_ATTEMPTS = 2,
  TOKEN_TTL = 21600,
  ENDPOINTS = { ipv4 = "http://169.254.169.254", ipv6 = "http://[fd00:ec2::254]" },
}

local TOKEN_PATH = "/latest/api/token"
local ROLE_PATH = "/latest/meta-data/iam/security-credentials/"
local REGION_PATH = "/latest/meta-data/placement/region"

local function is_true(value)
  return value ~= nil and value:lower() == "true"
end

-- A setting from the environment, else from the profile (AWS_PROFILE or default).
local function setting_reader(ctx)
  local profile
  return function(env_name, profile_key)
    local value = ctx:env(env_name)
    if value then return value, env_name end
    if not profile then
      profile = shared_files.profile(ctx:files(), ctx:env("AWS_PROFILE") or "default")
    end
    value = profile[profile_key]
    if value == "" then value = nil end
    return value, profile_key .. " (profile)"
  end
end

--- The base URL of the instance metadata service, from `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else
-- by `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` (`IPv4`, the default, or `IPv6`, any case).
-- @tparam string|nil endpoint the endpoint setting
-- @tparam string|nil mode the mode setting
-- @tparam[opt] string endpoint_from where the endpoint came from, for messages
-- @tparam[opt] string mode_from where the mode came from, for messages
-- @treturn string the base URL without a trailing slash, or `nil, why`
function M.endpoint(endpoint, mode, endpoint_from, mode_from)
  if endpoint then
    local parsed, why = config.parse_endpoint(endpoint)
    if not parsed then return nil, (endpoint_from or "AWS_EC2_METADATA_SERVICE_ENDPOINT") .. ": " .. why end
    return (parsed.url:gsub("/+$", ""))
  end
  if mode == nil then return M.ENDPOINTS.ipv4 end
  local base = M.ENDPOINTS[mode:lower()]
  if not base then
    return nil, (mode_from or "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") .. " must be IPv4 or IPv6, not '"
      .. mode:sub(1, 40) .. "'"
  end
  return base
end

-- The settings of one context: base, timeout, attempts, v1_disabled; nil when IMDS is
-- disabled; nil, why when a setting is wrong.
local function settings(ctx)
  if is_true(ctx:env("AWS_EC2_METADATA_DISABLED")) then return nil end
  local read = setting_reader(ctx)
  local endpoint, endpoint_from = read("AWS_EC2_METADATA_SERVICE_ENDPOINT", "ec2_metadata_service_endpoint")
  local mode, mode_from = read("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ec2_metadata_service_endpoint_mode")
  local base, why = M.endpoint(endpoint, mode, endpoint_from, mode_from)
  if not base then return nil, why end
  local s = { base = base, v1_disabled = is_true((read("AWS_EC2_METADATA_V1_DISABLED", "ec2_metadata_v1_disabled"))) }
  local timeout, timeout_from = read("AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout")
  s.timeout = tonumber(timeout or M.DEFAULT_TIMEOUT)
  if not s.timeout or s.timeout <= 0 or s.timeout ~= s.timeout or s.timeout == math.huge then
    return nil, timeout_from .. " must be a positive number of seconds, not '" .. tostring(timeout):sub(1, 40) .. "'"
  end
  local attempts, attempts_from = read("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts")
  s.attempts = tonumber(attempts or M.DEFAULT_ATTEMPTS)
  if not s.attempts or s.attempts < 1 or s.attempts > 10 or s.attempts % 1 ~= 0 then
    return nil, attempts_from .. " must be an integer from 1 to 10, not '" .. tostring(attempts):sub(1, 40) .. "'"
  end
  return s
end

local function check_context(ctx, caller)
  if type(ctx) ~= "table" or type(ctx.env) ~= "function" then
    error(caller .. ": a credentials context expected (credentials.context.new), got " .. type(ctx), 3)
  end
end

local function fail(s, code, message, status)
  return nil, errors.new({ code = code, message = "instance metadata at " .. s.base .. ": " .. message,
    status = status })
end

-- A session: the settings, the token (false: IMDSv1) and whether the token PUT timed out.
local Session = {}
Session.__index = Session

-- No token to be had (why: for the message): IMDSv1 from now on, unless it is off.
function Session:_without_token(why, timed_out)
  if self.s.v1_disabled then
    return fail(self.s, "CredentialsError", "no IMDSv2 session token (" .. why
      .. ") and the IMDSv1 fallback is off (AWS_EC2_METADATA_V1_DISABLED=true)")
  end
  self.token, self.token_timed_out = false, timed_out
  return true
end

-- Asks for a token: true (self.token set; false for IMDSv1), or nil, err.
function Session:_fetch_token()
  local last
  for _ = 1, self.s.attempts do
    local status, body = self.ctx:http("PUT", self.s.base .. TOKEN_PATH,
      { "X-aws-ec2-metadata-token-ttl-seconds: " .. M.TOKEN_TTL }, "", self.s.timeout)
    if status == 200 then
      if body == "" or body:find("[%c%s]") then
        return fail(self.s, "InvalidResponse", "the token request was answered with an empty or malformed token")
      end
      self.token = body
      return true
    elseif status == 400 then
      return fail(self.s, "CredentialsError", "the token request (PUT " .. TOKEN_PATH
        .. ") was refused as malformed (HTTP 400): is a proxy in front of the instance metadata service?", 400)
    elseif status == 403 or status == 404 or status == 405 then
      -- No IMDSv2 here (an old IMDS, or a proxy): IMDSv1.
      return self:_without_token("the token request was refused with HTTP " .. status)
    elseif not status then
      if body.code == "Timeout" then
        -- The PUT's answer did not come back (hop limit 1, from a container): IMDSv1.
        return self:_without_token("the token request timed out", true)
      end
      last = body
    else
      last = errors.new({ code = "CredentialsError", message = "HTTP " .. status, status = status })
    end
  end
  if last.status then -- answered, just not with a token: IMDSv1, as the SDKs do
    return self:_without_token("the token request was answered with HTTP " .. last.status)
  end
  return fail(self.s, last.code, "the token request failed (" .. last.message .. ")")
end

-- GET path: body, or nil, err, status.
function Session:_get(path)
  if self.token == nil then
    local ok, err = self:_fetch_token()
    if not ok then return nil, err end
  end
  local renewed, last = false, nil
  local attempt = 0
  while attempt < self.s.attempts do
    attempt = attempt + 1
    local lines = self.token and { "X-aws-ec2-metadata-token: " .. self.token } or {}
    local status, body = self.ctx:http("GET", self.s.base .. path, lines, nil, self.s.timeout)
    if status == 200 then return body end
    if status == 401 then
      if not self.token then
        return fail(self.s, "CredentialsError", "GET " .. path .. " without a session token was refused (HTTP 401):"
          .. " the instance requires IMDSv2 and the token request "
          .. (self.token_timed_out and "timed out (a container behind the default hop limit of 1?)" or "failed"),
          401)
      end
      if renewed then
        return fail(self.s, "CredentialsError", "GET " .. path .. " was refused (HTTP 401) with a fresh session token", 401)
      end
      -- The token expired or was refused: one new token, and try again.
      renewed = true
      self.token = nil
      local ok, err = self:_fetch_token()
      if not ok then return nil, err end
      attempt = attempt - 1
    elseif status == 404 then
      return nil, nil, 404
    elseif status and status < 500 then
      return fail(self.s, "CredentialsError", "GET " .. path .. " was answered with HTTP " .. status, status)
    elseif status then
      last = errors.new({ code = "CredentialsError", message = "HTTP " .. status, status = status })
    else
      last = body
      -- The token PUT timed out and now a GET does too: nobody is answering.
      if body.code == "Timeout" and self.token_timed_out then break end
    end
  end
  return fail(self.s, last.code, "GET " .. path .. " failed (" .. last.message .. ")", last.status)
end

local function session(ctx, s)
  return setmetatable({ ctx = ctx, s = s, token = nil }, Session)
end

local function json_string(v)
  return type(v) == "string" and v ~= ""
end

--- Turns the JSON that IMDS and the container endpoint answer (`AccessKeyId`,
-- `SecretAccessKey`, `Token`, `Expiration`, and `Code` when present) into credentials.
-- Messages never quote the document (it holds secrets), only its non-secret `Code`/`Message`.
-- @tparam string body the answer
-- @tparam string where names the source, to start messages with
-- @treturn table `{ access_key_id, secret_access_key, session_token, expiration }`, or `nil, err`
function M.decode_credentials(body, where)
  local function bad(message)
    return nil, errors.new({ code = "InvalidResponse", message = where .. ": " .. message })
  end
  local doc = core.json_decode(body)
  if type(doc) ~= "table" then
    local html = body:match("^%s*<") and " (an HTML or XML page?)" or ""
    return bad("the answer is not a JSON object" .. html .. ", " .. #body .. " bytes")
  end
  local code = doc.Code
  if code ~= nil and code ~= "Success" then
    local message = type(doc.Message) == "string" and doc.Message:gsub("%c", " "):sub(1, 300) or "no message"
    local aws_code = type(code) == "string" and code:match("^[%w.]+$") or "CredentialsError"
    return nil, errors.new({ code = aws_code, message = where .. ": the answer is an error (Code "
      .. aws_code .. "): " .. message })
  end
  for _, field in ipairs({ "AccessKeyId", "SecretAccessKey", "Token", "Expiration" }) do
    if not json_string(doc[field]) then
      return bad("the answer lacks " .. field .. " (or it is not a non-empty string)")
    end
  end
  local expiration, why = timestamp.parse(doc.Expiration)
  if not expiration then return bad("Expiration: " .. why) end
  return { access_key_id = doc.AccessKeyId, secret_access_key = doc.SecretAccessKey,
    session_token = doc.Token, expiration = expiration }
end

-- One fetch of the role's credentials.
local function fetch(ctx, s)
  local sess = session(ctx, s)
  local listing, err, status = sess:_get(ROLE_PATH)
  if status == 404 then
    return fail(s, "CredentialsError", "no IAM role is attached to this instance (GET " .. ROLE_PATH
      .. " answered 404); attach an instance profile, or configure other credentials", 404)
  end
  if not listing then return nil, err end
  local role = listing:match("^%s*([^\r\n]*)"):gsub("%s+$", "")
  if not role:match("^[%w+=,.@_-]+$") or #role > 128 then
    return fail(s, "InvalidResponse", "GET " .. ROLE_PATH .. " did not answer a role name (" .. #listing .. " bytes)")
  end
  local body
  body, err, status = sess:_get(ROLE_PATH .. role)
  if status == 404 then
    return fail(s, "CredentialsError", "the credentials of role " .. role .. " were not found (HTTP 404)", 404)
  end
  if not body then return nil, err end
  return M.decode_credentials(body, "instance metadata at " .. s.base .. ", role " .. role)
end

--- The instance role's credentials provider.
-- @tparam table ctx a context (`credentials.context`)
-- @treturn table a provider; nil when `AWS_EC2_METADATA_DISABLED=true`; `nil, why` for a
-- wrong setting (endpoint, mode, timeout or number of attempts)
function M.provider(ctx)
  check_context(ctx, "imds.provider")
  local s, why = settings(ctx)
  if not s then return nil, why end
  return provider.new("instance metadata", function() return fetch(ctx, s) end,
    { clock = function() return ctx:now() end })
end

--- The instance's region (`/latest/meta-data/placement/region`), for when nothing else names one.
-- @tparam table ctx a context
-- @treturn string the region; nil when `AWS_EC2_METADATA_DISABLED=true`; `nil, err` when it
-- could not be read (an error value; a wrong setting too)
function M.region(ctx)
  check_context(ctx, "imds.region")
  local s, why = settings(ctx)
  if not s then
    if why then return nil, errors.new({ code = "CredentialsError", message = why }) end
    return nil
  end
  local body, err, status = session(ctx, s):_get(REGION_PATH)
  if status == 404 then return fail(s, "CredentialsError", "GET " .. REGION_PATH .. " answered 404", 404) end
  if not body then return nil, err end
  local region = body:gsub("^%s+", ""):gsub("%s+$", "")
  if not region:match("^%l%l[%l%d-]*%-%d+$") or #region > 40 then
    return fail(s, "InvalidResponse", "GET " .. REGION_PATH .. " did not answer a region name (" .. #body .. " bytes)")
  end
  return region
end

return M
