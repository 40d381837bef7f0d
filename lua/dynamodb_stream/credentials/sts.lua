--- STS for the credential chain: `AssumeRole` (signed with a source provider's credentials)
-- and `AssumeRoleWithWebIdentity` (unsigned; the token file re-read on every call), over the
-- query protocol, with the endpoint chosen as the SDKs choose it, and the builders of the
-- two providers.
-- @module dynamodb_stream.credentials.sts

local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local provider = require("dynamodb_stream.credentials.provider")
local sts_xml = require("dynamodb_stream.credentials.sts_xml")

local M = {
  TIMEOUT = 5,        -- seconds, per attempt
  MAX_ATTEMPTS = 3,   -- attempts of one call, the first included
  RETRY_BASE = 0.2,   -- seconds before the second attempt, doubled for each next one
}

local VERSION = "2011-06-15"
local FORM = "application/x-www-form-urlencoded; charset=utf-8"

-- The regions that AWS_STS_REGIONAL_ENDPOINTS=legacy sends to the global endpoint
-- (botocore's LEGACY_GLOBAL_STS_REGIONS).
local LEGACY_GLOBAL = {}
for _, region in ipairs({ "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "aws-global",
  "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
  "us-east-1", "us-east-2", "us-west-1", "us-west-2" }) do
  LEGACY_GLOBAL[region] = true
end

-- Required when used, not when loaded: config may come to require the credential chain.
local function parse_endpoint(url)
  return require("dynamodb_stream.config").parse_endpoint(url)
end

--- The endpoint override a service's clients honour: the service's variable (e.g.
-- `AWS_ENDPOINT_URL_STS`), else `AWS_ENDPOINT_URL`; neither when
-- `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`.
-- @tparam table ctx the context
-- @tparam string variable the service's variable
-- @treturn table|nil the parsed endpoint (`config.parse_endpoint`), nil when none is set, or
-- `nil, why` for a bad one
function M.endpoint_override(ctx, variable)
  local ignore = ctx:env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
  if ignore and ignore:lower() == "true" then return nil end
  for _, name in ipairs({ variable, "AWS_ENDPOINT_URL" }) do
    local url = ctx:env(name)
    if url then
      local parsed, why = parse_endpoint(url)
      if not parsed then return nil, why .. " (from " .. name .. ")" end
      return parsed
    end
  end
  return nil
end

--- Whether `region` can name a region in a host name (`eu-west-1`).
-- @param region
-- @treturn boolean
function M.valid_region(region)
  return type(region) == "string" and #region <= 64 and region:match("^[a-z0-9][a-z0-9-]*$") ~= nil
end

--- The STS endpoint for a region, worked out anew from the context on every call:
-- `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL` (both ignored when
-- `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else `https://sts.<region>.amazonaws.com`;
-- with `AWS_STS_REGIONAL_ENDPOINTS=legacy` the 15 legacy regions, and `aws-global` always,
-- go to `https://sts.amazonaws.com`, signed for us-east-1. No region: us-east-1.
-- @tparam table ctx the context
-- @tparam[opt] string region the region (default `ctx.region`)
-- @treturn string the URL, or `nil, why`
-- @treturn string the region to sign for
-- @treturn table the URL's parts (`config.parse_endpoint`)
function M.endpoint(ctx, region)
  region = region or ctx.region or "us-east-1"
  if not M.valid_region(region) then return nil, "the region " .. ("%q"):format(tostring(region):sub(1, 64))
    .. " is not a region name (like eu-west-1)" end
  local signing_region = region == "aws-global" and "us-east-1" or region
  local override, why = M.endpoint_override(ctx, "AWS_ENDPOINT_URL_STS")
  if override then return override.url, signing_region, override end
  if why then return nil, why end
  local mode = (ctx:env("AWS_STS_REGIONAL_ENDPOINTS") or "regional"):lower()
  if mode ~= "regional" and mode ~= "legacy" then
    return nil, "AWS_STS_REGIONAL_ENDPOINTS must be 'regional' or 'legacy'"
  end
  local url
  if region == "aws-global" or (mode == "legacy" and LEGACY_GLOBAL[region]) then
    url, signing_region = "https://sts.amazonaws.com", "us-east-1"
  else
    url = "https://sts." .. region .. ".amazonaws.com" .. (region:match("^cn%-") and ".cn" or "")
  end
  local parsed = assert(parse_endpoint(url))
  return parsed.url, signing_region, parsed
end

--- Percent-encodes everything but RFC 3986's unreserved characters (for a form or a query).
-- @tparam string s
-- @treturn string
function M.percent_encode(s)
  return (s:gsub("[^A-Za-z0-9%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
local form_escape = M.percent_encode

--- A form body from `{ { name, value }, ... }` (pairs whose value is nil are left out).
-- @tparam table pairs_list
-- @treturn string
function M.form(pairs_list)
  local parts = {}
  for _, pair in ipairs(pairs_list) do
    if pair[2] ~= nil then parts[#parts + 1] = form_escape(pair[1]) .. "=" .. form_escape(tostring(pair[2])) end
  end
  return table.concat(parts, "&")
end

--- Replaces each of `secrets` (strings; nils skipped) found in `text` by `***`.
-- @tparam string text
-- @tparam table secrets
-- @treturn string
function M.scrub(text, secrets)
  for _, secret in pairs(secrets) do
    if type(secret) == "string" and #secret >= 4 then
      local parts, pos = {}, 1
      while true do
        local at = text:find(secret, pos, true)
        if not at then break end
        parts[#parts + 1] = text:sub(pos, at - 1) .. "***"
        pos = at + #secret
      end
      parts[#parts + 1] = text:sub(pos)
      text = table.concat(parts)
    end
  end
  return text
end

--- A server's text made fit for a message: one line, at most 300 bytes, without `secrets`.
-- @tparam string text
-- @tparam[opt] table secrets strings to replace by `***`
-- @treturn string
function M.quote(text, secrets)
  text = M.scrub(tostring(text), secrets or {}):gsub("%c", " ")
  if #text > 300 then text = text:sub(1, 300) .. "..." end
  return text
end
local quoted = M.quote

--- Runs `attempt()` until it succeeds, fails for good, or `MAX_ATTEMPTS` are made, with
-- `ctx:sleep(RETRY_BASE * 2^(n-1))` between attempts.
-- @tparam table ctx the context
-- @tparam function attempt `function() -> result | nil, err, retry` (`retry`: whether
-- another attempt may succeed)
-- @return what the last attempt returned (its first two values)
function M.with_retries(ctx, attempt)
  local n = 1
  while true do
    local result, err, retry = attempt()
    if result ~= nil or not retry or n >= M.MAX_ATTEMPTS then return result, err end
    ctx:sleep(M.RETRY_BASE * 2 ^ (n - 1))
    n = n + 1
  end
end

--- Whether another attempt may succeed after an answer with this status and code:
-- throttling, 429, 5xx, and STS's `IDPCommunicationError` (the identity provider did not
-- answer STS; botocore retries it too).
-- @tparam number status
-- @tparam[opt] string code
-- @treturn boolean
function M.retryable_answer(status, code)
  return status == 429 or status >= 500 or code == "IDPCommunicationError"
    or (code ~= nil and errors.class({ code = code }) == "throttling")
end

-- What to do after each error code, said in its message.
local ADVICE = {
  AccessDenied = "check the role's trust policy, and that the source identity may call sts:AssumeRole",
  InvalidClientTokenId = "the source access key is not valid",
  SignatureDoesNotMatch = "check the source secret key and the clock",
  ExpiredTokenException = "the web identity token has expired: is the token file still being rotated?",
  ExpiredToken = "the source session has expired",
  InvalidIdentityToken = "STS refused the web identity token: check the role's OIDC provider and audience",
  RegionDisabledException = "STS is not activated in this region for the account",
}

-- One attempt of an STS call; see with_retries.
local function attempt(ctx, call, lines)
  local status, answer, headers = ctx:http("POST", call.url, lines, call.body, call.timeout)
  local what = "STS " .. call.action .. " of " .. call.role_arn
  if not status then
    return nil, errors.new({ code = answer.code, message = what .. " at " .. call.url .. ": " .. answer.message }),
      true
  end
  local kind, value = sts_xml.read(answer, call.action)
  if kind == "credentials" and status >= 200 and status < 300 then return value end
  if kind == "error" then
    -- The code is err.code (shown first by tostring); the message is AWS's.
    local message = what .. " failed: " .. (value.message and quoted(value.message, call.secrets) or "(no message)")
    if ADVICE[value.code] then message = message .. " (" .. ADVICE[value.code] .. ")" end
    return nil, errors.new({ code = value.code, status = status, message = message }),
      M.retryable_answer(status, value.code)
  end
  local why = kind and "an answer with HTTP status " .. status or value
  local content_type = headers and headers["content-type"]
  return nil, errors.new({
    code = "InvalidResponse", status = status,
    message = ("%s at %s: HTTP %d with %d bytes%s that are no STS answer: %s"):format(what, call.url, status, #answer,
      content_type and (" of " .. quoted(content_type):sub(1, 60)) or "", why),
  }), status >= 500
end

local function is_string(v) return type(v) == "string" and v ~= "" end

-- Checks the parameters of a call; returns a copy with defaults, or nil, why.
local function check_params(params, web_identity)
  if type(params) ~= "table" then return nil, "params must be a table" end
  local p = {}
  if not is_string(params.role_arn) or not params.role_arn:match("^arn:[%w-]+:iam::%d*:role/[\33-\126]+$") then
    return nil, "role_arn must be a role ARN (arn:aws:iam::<account>:role/<name>)"
  end
  p.role_arn = params.role_arn
  local name = params.role_session_name
  if name ~= nil then
    if type(name) ~= "string" or #name < 2 or #name > 64 or not name:match("^[%w+=,.@_-]+$") then
      return nil, "role_session_name must be 2 to 64 characters of letters, digits and +=,.@_-"
    end
    p.role_session_name = name
  end
  local duration = params.duration_seconds
  if duration ~= nil then
    local n = type(duration) == "string" and duration:match("^%s*(%d+)%s*$") and tonumber(duration) or duration
    if type(n) ~= "number" or n ~= math.floor(n) or n < 900 or n > 43200 then
      return nil, "duration_seconds must be a whole number of seconds from 900 to 43200"
    end
    p.duration_seconds = ("%d"):format(n)
  end
  if web_identity then
    if not is_string(params.token_file) then return nil, "token_file must be a path" end
    p.token_file = params.token_file
  elseif params.external_id ~= nil then
    local id = params.external_id
    if type(id) ~= "string" or #id < 2 or #id > 1224 or not id:match("^[%w+=,.@:/_-]+$") then
      return nil, "external_id must be 2 to 1224 characters of letters, digits and +=,.@:/_-"
    end
    p.external_id = id
  end
  if params.region ~= nil and not M.valid_region(params.region) then
    return nil, "region must be a region name (like eu-west-1)"
  end
  p.region = params.region
  if params.timeout ~= nil and (type(params.timeout) ~= "number" or params.timeout <= 0) then
    return nil, "timeout must be a positive number of seconds"
  end
  p.timeout = params.timeout
  return p
end

local function check_ctx(ctx, caller)
  if type(ctx) ~= "table" or type(ctx.http) ~= "function" then
    error(caller .. ": ctx must be a credentials context", 3)
  end
end

-- The call's URL, signing region and endpoint parts, or nil, err.
local function call_target(ctx, action, p)
  local url, signing_region, endpoint = M.endpoint(ctx, p.region)
  if not url then
    return nil, errors.new({ code = "CredentialsError", message = "STS " .. action .. " of " .. p.role_arn
      .. ": " .. signing_region })
  end
  return { action = action, role_arn = p.role_arn, url = url, signing_region = signing_region,
    endpoint = endpoint, timeout = p.timeout or M.TIMEOUT }
end

local function amz_date(ctx)
  return os.date("!%Y%m%dT%H%M%SZ", math.floor(ctx:now()))
end

local function default_session_name(ctx)
  return ("dynamodb_stream-%d"):format(math.floor(ctx:now()))
end

--- Calls STS `AssumeRole`, signed (SigV4, service `sts`) with the credentials of
-- `source_provider:get()` (their session token in `X-Amz-Security-Token`). Throttling, 5xx
-- and transport failures are tried again (`MAX_ATTEMPTS`).
-- @tparam table ctx the context
-- @tparam table source_provider a provider of the source credentials
-- @tparam table params `role_arn`, `role_session_name` (default `dynamodb_stream-<epoch>`),
-- `external_id`, `duration_seconds`, `region` (default `ctx.region`), `timeout` (seconds)
-- @treturn table the credentials (`expiration` in epoch seconds), or `nil, err` (AWS's code:
-- `AccessDenied`, ...; a transport code; `InvalidResponse`; `CredentialsError`)
function M.assume_role(ctx, source_provider, params)
  check_ctx(ctx, "sts.assume_role")
  if not provider.is_provider(source_provider) then error("sts.assume_role: source_provider must be a provider", 2) end
  local p, why = check_params(params, false)
  if not p then error("sts.assume_role: " .. why, 2) end
  local call, err = call_target(ctx, "AssumeRole", p)
  if not call then return nil, err end
  local source, serr = source_provider:get()
  if not source then
    return nil, errors.new({ code = serr and serr.code or "CredentialsError", status = serr and serr.status,
      message = "STS AssumeRole of " .. p.role_arn .. ": no source credentials: "
        .. tostring(serr and serr.message or serr) })
  end
  call.body = M.form({ { "Action", "AssumeRole" }, { "Version", VERSION }, { "RoleArn", p.role_arn },
    { "RoleSessionName", p.role_session_name or default_session_name(ctx) },
    { "DurationSeconds", p.duration_seconds }, { "ExternalId", p.external_id } })
  call.secrets = { source.secret_access_key, source.session_token }
  local signer = core.signer({
    access_key_id = source.access_key_id, secret_access_key = source.secret_access_key,
    session_token = source.session_token, region = call.signing_region, service = "sts",
  })
  return M.with_retries(ctx, function()
    local date = amz_date(ctx)
    local headers = { host = call.endpoint.host, ["content-type"] = FORM, ["x-amz-date"] = date }
    local authorization, sign_err = signer:sign({ method = "POST", path = call.endpoint.path, query = "",
      headers = headers, body = call.body, amz_date = date })
    if not authorization then
      return nil, errors.new({ code = "CredentialsError", message = "STS AssumeRole: signing failed: "
        .. tostring(sign_err) })
    end
    local lines = { "Authorization: " .. authorization, "Content-Type: " .. FORM, "X-Amz-Date: " .. date }
    local token = headers["x-amz-security-token"] -- set by the signer when the source has one
    if token then lines[4] = "X-Amz-Security-Token: " .. token end
    return attempt(ctx, call, lines)
  end)
end

--- Calls STS `AssumeRoleWithWebIdentity`, unsigned, with the token read from `token_file`
-- now (the kubelet rotates it; trailing whitespace is dropped). Retries as `assume_role`.
-- @tparam table ctx the context
-- @tparam table params `role_arn`, `token_file`, `role_session_name` (default
-- `dynamodb_stream-<epoch>`), `duration_seconds`, `region` (default `ctx.region`), `timeout`
-- @treturn table the credentials, or `nil, err` (as `assume_role`)
function M.assume_role_with_web_identity(ctx, params)
  check_ctx(ctx, "sts.assume_role_with_web_identity")
  local p, why = check_params(params, true)
  if not p then error("sts.assume_role_with_web_identity: " .. why, 2) end
  local call, err = call_target(ctx, "AssumeRoleWithWebIdentity", p)
  if not call then return nil, err end
  local token, read_err = ctx:read_file(p.token_file)
  token = token and token:gsub("%s+$", "")
  if not token or token == "" then
    return nil, errors.new({ code = "CredentialsError", message = "STS AssumeRoleWithWebIdentity of " .. p.role_arn
      .. ": cannot read a token from the web identity token file " .. p.token_file
      .. (read_err and (": " .. tostring(read_err)) or ": it is empty") })
  end
  call.body = M.form({ { "Action", "AssumeRoleWithWebIdentity" }, { "Version", VERSION }, { "RoleArn", p.role_arn },
    { "RoleSessionName", p.role_session_name or default_session_name(ctx) },
    { "WebIdentityToken", token }, { "DurationSeconds", p.duration_seconds } })
  call.secrets = { token }
  return M.with_retries(ctx, function()
    return attempt(ctx, call, { "Content-Type: " .. FORM })
  end)
end

local function clock_of(ctx)
  return function() return ctx:now() end
end

--- Builds the web identity provider: the role ARN, token file and session name from
-- `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_SESSION_NAME`, each falling
-- back to the profile's `role_arn`, `web_identity_token_file` and `role_session_name`
-- (and its `duration_seconds`). The STS region is `ctx.region`. Makes no call.
-- @tparam table ctx the context
-- @tparam[opt] table settings the profile's keys (may be empty)
-- @treturn table the provider; `nil` when no token file is named; or `nil, why` for a token
-- file without a role ARN, `AWS_ROLE_ARN` without a token file, or a bad setting
function M.web_identity_provider(ctx, settings)
  check_ctx(ctx, "sts.web_identity_provider")
  settings = settings or {}
  local env_arn, env_file = ctx:env("AWS_ROLE_ARN"), ctx:env("AWS_WEB_IDENTITY_TOKEN_FILE")
  local token_file = env_file or settings.web_identity_token_file
  local role_arn = env_arn or settings.role_arn
  if not token_file then
    -- A profile's role_arn alone is an assume-role profile, not a web identity.
    if env_arn then
      return nil, "web identity: AWS_ROLE_ARN is set but no token file is named"
        .. " (AWS_WEB_IDENTITY_TOKEN_FILE or the profile's web_identity_token_file)"
    end
    return nil
  end
  if not role_arn then
    return nil, "web identity: the token file " .. token_file .. " is named ("
      .. (env_file and "AWS_WEB_IDENTITY_TOKEN_FILE" or "web_identity_token_file")
      .. ") but no role ARN (AWS_ROLE_ARN or the profile's role_arn)"
  end
  local p, why = check_params({ role_arn = role_arn, token_file = token_file,
    role_session_name = ctx:env("AWS_ROLE_SESSION_NAME") or settings.role_session_name,
    duration_seconds = settings.duration_seconds }, true)
  if not p then return nil, "web identity: " .. why end
  local url, endpoint_why = M.endpoint(ctx)
  if not url then return nil, "web identity: " .. endpoint_why end
  return provider.new("web identity " .. role_arn, function()
    return M.assume_role_with_web_identity(ctx, p)
  end, { clock = clock_of(ctx) })
end

--- Builds the provider of a profile that assumes a role with `source_provider`'s
-- credentials: the profile's `role_arn`, `external_id`, `role_session_name` and
-- `duration_seconds`. The STS region is `ctx.region`. Makes no call.
-- @tparam table ctx the context
-- @tparam table source_provider the provider of the source credentials
-- @tparam table settings the profile's keys
-- @treturn table the provider, or `nil, why` (no `role_arn`, an `mfa_serial`, a bad setting)
function M.assume_role_provider(ctx, source_provider, settings)
  check_ctx(ctx, "sts.assume_role_provider")
  if not provider.is_provider(source_provider) then
    error("sts.assume_role_provider: source_provider must be a provider", 2)
  end
  settings = settings or {}
  local role_arn = settings.role_arn
  if not role_arn then return nil, "assume role: the profile has no role_arn" end
  if settings.mfa_serial then
    return nil, "assume role " .. tostring(role_arn) .. ": the profile sets mfa_serial, but MFA needs a code"
      .. " typed at a prompt and there is no prompt here; use a role that does not require MFA, or"
      .. " credentials from `aws sts get-session-token` in a profile"
  end
  local p, why = check_params({ role_arn = role_arn, external_id = settings.external_id,
    role_session_name = settings.role_session_name, duration_seconds = settings.duration_seconds }, false)
  if not p then return nil, "assume role: " .. why end
  local url, endpoint_why = M.endpoint(ctx)
  if not url then return nil, "assume role " .. role_arn .. ": " .. endpoint_why end
  return provider.new("assume role " .. role_arn, function()
    return M.assume_role(ctx, source_provider, p)
  end, { clock = clock_of(ctx) })
end

return M
