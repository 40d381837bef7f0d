--- IAM Identity Center (SSO) credentials: the token `aws sso login` cached in
-- `~/.aws/sso/cache/<sha1>.json`, refreshed through SSO-OIDC `CreateToken` when it nears its
-- expiry (sso-session profiles), and traded for role credentials at the portal's
-- `GetRoleCredentials`.
-- @module dynamodb_stream.credentials.sso

local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local provider = require("dynamodb_stream.credentials.provider")
local shared_files = require("dynamodb_stream.credentials.shared_files")
local sts = require("dynamodb_stream.credentials.sts")
local timestamp = require("dynamodb_stream.credentials.timestamp")

local M = {
  REFRESH_WINDOW = 15 * 60, -- refresh a token that expires within this (botocore's)
  TIMEOUT = 5,              -- seconds, per HTTP attempt
}

local function is_string(v) return type(v) == "string" and v ~= "" end

-- The base URL of a service (no trailing slash): the override, else the regional default.
local function service_base(ctx, variable, default)
  local parsed, why = sts.endpoint_override(ctx, variable)
  if not parsed then
    if why then return nil, why end
    parsed = assert(require("dynamodb_stream.config").parse_endpoint(default))
  end
  return (parsed.url:gsub("/$", ""))
end

-- A JSON object decoded, or nil.
local function json_object(text)
  local value = type(text) == "string" and core.json_decode(text)
  if type(value) == "table" and getmetatable(value) ~= core.list_mt then return value end
  return nil
end

-- The error code of a JSON service's answer: x-amzn-ErrorType, else __type or code in the body.
local function error_code(headers, body)
  local code = headers and headers["x-amzn-errortype"]
  if not is_string(code) and body then
    code = (is_string(body.__type) and body.__type) or (is_string(body.code) and body.code) or nil
  end
  if not is_string(code) then return nil end
  code = errors.sanitize_code(code)
  if #code > 100 or not code:match("^[%w_.-]+$") then return nil end
  return code
end

-- OAuth error names (SSO-OIDC's body field `error`) as the service's exception names.
local OAUTH_ERRORS = {
  invalid_grant = "InvalidGrantException",
  invalid_client = "InvalidClientException",
  unauthorized_client = "UnauthorizedClientException",
  invalid_request = "InvalidRequestException",
}

local Source = {}
Source.__index = Source

-- The provider names the account and role in front of the message.
function Source:_error(code, message, status)
  return errors.new({ code = code, status = status, message = message })
end

-- The cache file's path (sha1 of the session name, or of the start URL), or nil, err.
function Source:_cache_path()
  local home = self.ctx:env("HOME")
  if not home then return nil, self:_error("CredentialsError", "HOME is not set, so the SSO token cache cannot be found") end
  return home .. "/.aws/sso/cache/" .. core.sha1_hex(self.cache_key) .. ".json"
end

-- The cached token: { data = the file's object, access_token, expires_at }, or nil, err.
function Source:_load_token(path)
  local text, why = self.ctx:read_file(path)
  if not text then
    return nil, self:_error("CredentialsError", "no cached SSO token (" .. tostring(why) .. "): run `"
      .. self.login .. "`")
  end
  local data = json_object(text)
  if not data then
    return nil, self:_error("CredentialsError", "the SSO token cache file " .. path .. " is not a JSON object: run `"
      .. self.login .. "`")
  end
  if not is_string(data.accessToken) or not is_string(data.expiresAt) then
    return nil, self:_error("CredentialsError", "the SSO token cache file " .. path
      .. " holds no accessToken and expiresAt: run `" .. self.login .. "`")
  end
  local expires_at = timestamp.parse(data.expiresAt)
  if not expires_at then
    return nil, self:_error("CredentialsError", "the SSO token cache file " .. path
      .. " has an expiresAt that is not a timestamp: run `" .. self.login .. "`")
  end
  return { data = data, access_token = data.accessToken, expires_at = expires_at }
end

-- Whether the token can be refreshed now: an sso-session profile, a refresh token and a
-- client registration that has not expired.
function Source:_refreshable(token, now)
  local d = token.data
  if not self.session then return false end
  if not (is_string(d.refreshToken) and is_string(d.clientId) and is_string(d.clientSecret)
      and is_string(d.registrationExpiresAt)) then
    return false
  end
  local registration = timestamp.parse(d.registrationExpiresAt)
  return registration ~= nil and registration > now
end

-- SSO-OIDC CreateToken with the refresh token; the cache file rewritten. The new token, or nil, err.
function Source:_refresh(token, path, now)
  local d = token.data
  local secrets = { d.accessToken, d.refreshToken, d.clientSecret }
  local body = core.json_encode({ clientId = d.clientId, clientSecret = d.clientSecret,
    grantType = "refresh_token", refreshToken = d.refreshToken })
  local url = self.oidc_base .. "/token"
  local answer, err = sts.with_retries(self.ctx, function()
    local status, text, headers = self.ctx:http("POST", url, { "Content-Type: application/json" }, body, M.TIMEOUT)
    if not status then
      return nil, self:_error(text.code, "refreshing the token at " .. url .. ": " .. text.message), true
    end
    local decoded = json_object(text)
    if status == 200 then
      if decoded and is_string(decoded.accessToken) and type(decoded.expiresIn) == "number"
          and decoded.expiresIn > 0 and (decoded.refreshToken == nil or is_string(decoded.refreshToken)) then
        return decoded
      end
      return nil, self:_error("InvalidResponse", "SSO-OIDC CreateToken at " .. url
        .. " answered HTTP 200 without an accessToken and expiresIn", status), false
    end
    local code = error_code(headers, decoded)
      or (decoded and is_string(decoded.error) and (OAUTH_ERRORS[decoded.error] or decoded.error:match("^[%w_]+$")))
      or "InvalidResponse"
    local detail = decoded and (decoded.error_description or decoded.message)
    return nil, self:_error(code, "SSO-OIDC CreateToken refused to refresh the token: " .. code
      .. (is_string(detail) and (": " .. sts.quote(detail, secrets)) or ""), status),
      sts.retryable_answer(status, code)
  end)
  if not answer then return nil, err end
  local data = {}
  for k, v in pairs(d) do data[k] = v end
  data.accessToken = answer.accessToken
  data.expiresAt = timestamp.format(now + answer.expiresIn)
  if answer.refreshToken then data.refreshToken = answer.refreshToken end
  -- Kept in memory even if the file cannot be written: it is valid either way.
  core.write_file_atomic(path, core.json_encode(data), tonumber("600", 8))
  return { data = data, access_token = data.accessToken, expires_at = now + answer.expiresIn }
end

-- The portal's GetRoleCredentials with the token: the credentials, or nil, err.
function Source:_role_credentials(token)
  local access_token = token.access_token
  if access_token:find("%c") then
    return nil, self:_error("CredentialsError", "the cached SSO token holds a control character: run `"
      .. self.login .. "`")
  end
  local url = self.portal_base .. "/federation/credentials?account_id=" .. sts.percent_encode(self.account_id)
    .. "&role_name=" .. sts.percent_encode(self.role_name)
  local secrets = { access_token }
  return sts.with_retries(self.ctx, function()
    local status, text, headers = self.ctx:http("GET", url, { "x-amz-sso_bearer_token: " .. access_token }, nil,
      M.TIMEOUT)
    if not status then
      return nil, self:_error(text.code, "GetRoleCredentials at " .. self.portal_base .. ": " .. text.message), true
    end
    local decoded = json_object(text)
    if status == 200 then
      local rc = decoded and decoded.roleCredentials
      if type(rc) == "table" and is_string(rc.accessKeyId) and is_string(rc.secretAccessKey)
          and is_string(rc.sessionToken) and type(rc.expiration) == "number" then
        return { access_key_id = rc.accessKeyId, secret_access_key = rc.secretAccessKey,
          session_token = rc.sessionToken, expiration = rc.expiration / 1000 }
      end
      return nil, self:_error("InvalidResponse", "GetRoleCredentials at " .. self.portal_base
        .. " answered HTTP 200 without roleCredentials (accessKeyId, secretAccessKey, sessionToken,"
        .. " expiration)", status), false
    end
    local code = error_code(headers, decoded) or (status == 401 and "UnauthorizedException") or "InvalidResponse"
    if status == 401 or code == "UnauthorizedException" then
      return nil, self:_error(code, "the SSO portal refused the cached token (expired or revoked): run `"
        .. self.login .. "`", status), false
    end
    local detail = decoded and decoded.message
    return nil, self:_error(code, "GetRoleCredentials for account " .. self.account_id .. ", role "
      .. self.role_name .. " failed: " .. code .. " (HTTP " .. status .. ")"
      .. (is_string(detail) and (": " .. sts.quote(detail, secrets)) or ""), status),
      sts.retryable_answer(status, code)
  end)
end

--- The provider's fetch: the cached token (refreshed when due), then GetRoleCredentials.
-- @treturn table the credentials, or `nil, err`
function Source:fetch()
  local path, err = self:_cache_path()
  if not path then return nil, err end
  local token
  token, err = self:_load_token(path)
  if not token then return nil, err end
  local now = self.ctx:now()
  if token.expires_at - now < M.REFRESH_WINDOW and self:_refreshable(token, now) then
    local fresh, refresh_err = self:_refresh(token, path, now)
    if fresh then
      token = fresh
    elseif token.expires_at <= now then
      return nil, self:_error(refresh_err.code, "the cached SSO token has expired and "
        .. refresh_err.message .. "; run `" .. self.login .. "`", refresh_err.status)
    end
  end
  if token.expires_at <= now then
    return nil, self:_error("CredentialsError", "the cached SSO token expired at "
      .. timestamp.format(token.expires_at) .. ": run `" .. self.login .. "`")
  end
  return self:_role_credentials(token)
end

--- Builds the SSO provider of a profile: `sso_session` (its `[sso-session X]` section gives
-- `sso_start_url` and `sso_region`) or legacy `sso_start_url` + `sso_region`, with
-- `sso_account_id` and `sso_role_name`. The portal and OIDC are reached at their regional
-- endpoints, or `AWS_ENDPOINT_URL_SSO` / `AWS_ENDPOINT_URL_SSO_OIDC` (else
-- `AWS_ENDPOINT_URL`). Makes no call and reads no token.
-- @tparam table ctx the context
-- @tparam table settings the profile's keys
-- @tparam[opt] table files the shared files (`ctx:files()`), for `[sso-session X]`
-- @tparam[opt] string profile_name the profile, named in the "run `aws sso login`" advice
-- @treturn table the provider; `nil` when the profile has no `sso_*` key; or `nil, why`
-- (a missing key, an absent session section, a start URL or region that differs from the
-- session's, a bad endpoint override)
function M.provider(ctx, settings, files, profile_name)
  if type(ctx) ~= "table" or type(ctx.http) ~= "function" then error("sso.provider: ctx must be a credentials context", 2) end
  settings = settings or {}
  local session = settings.sso_session
  if not (session or settings.sso_start_url or settings.sso_account_id or settings.sso_role_name) then
    return nil
  end
  local start_url, region
  if session then
    local section = shared_files.sso_session(files or ctx:files(), session)
    if not section then
      return nil, "SSO: the profile names sso_session = " .. session .. " but the config file has no [sso-session "
        .. session .. "] section"
    end
    start_url, region = section.sso_start_url, section.sso_region
    if not start_url or not region then
      return nil, "SSO: [sso-session " .. session .. "] needs both sso_start_url and sso_region"
    end
    for key, value in pairs({ sso_start_url = start_url, sso_region = region }) do
      if settings[key] and settings[key] ~= value then
        return nil, "SSO: the profile's " .. key .. " (" .. settings[key] .. ") differs from [sso-session "
          .. session .. "]'s (" .. value .. ")"
      end
    end
  else
    start_url, region = settings.sso_start_url, settings.sso_region
    if not start_url or not region then
      return nil, "SSO: the profile needs sso_session, or both sso_start_url and sso_region"
    end
  end
  local account_id, role_name = settings.sso_account_id, settings.sso_role_name
  if not account_id or not role_name then
    return nil, "SSO: the profile needs both sso_account_id and sso_role_name"
  end
  if not sts.valid_region(region) then return nil, "SSO: sso_region " .. region .. " is not a region name" end
  local portal_base, why = service_base(ctx, "AWS_ENDPOINT_URL_SSO", "https://portal.sso." .. region .. ".amazonaws.com")
  if not portal_base then return nil, "SSO: " .. why end
  local oidc_base
  oidc_base, why = service_base(ctx, "AWS_ENDPOINT_URL_SSO_OIDC", "https://oidc." .. region .. ".amazonaws.com")
  if not oidc_base then return nil, "SSO: " .. why end
  local login
  if profile_name then
    login = "aws sso login --profile " .. profile_name
  elseif session then
    login = "aws sso login --sso-session " .. session
  else
    login = "aws sso login --profile <the profile with sso_start_url = " .. start_url .. ">"
  end
  local source = setmetatable({
    ctx = ctx, session = session, cache_key = session or start_url, account_id = account_id,
    role_name = role_name, portal_base = portal_base, oidc_base = oidc_base, login = login,
  }, Source)
  return provider.new("SSO " .. account_id .. "/" .. role_name, function() return source:fetch() end,
    { clock = function() return ctx:now() end })
end

return M
