--- Credentials: where the keys that sign each request come from (`ds.credentials`).
--
-- Every client asks a provider (`dynamodb_stream.credentials.provider`) for the credentials
-- of each request; the provider caches them and fetches new ones before they expire. With no
-- `credentials` option, the default chain picks the first source that is configured, in
-- botocore's order:
--
-- 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`
--    (skipped when the `profile` option names a profile);
-- 2. the profile's `role_arn` (STS AssumeRole, from `source_profile` or `credential_source`);
-- 3. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, or the profile's keys;
-- 4. the rest of the profile (`AWS_PROFILE`, else `default`): SSO, static keys,
--    `credential_process`;
-- 5. the container endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`);
-- 6. EC2 instance metadata (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
--
-- Which source applies is decided when the client is made, from local settings only (no
-- network call, no process): a source configured wrongly raises then. The first credentials
-- are fetched by the first call.
-- @module dynamodb_stream.credentials

local context = require("dynamodb_stream.credentials.context")
local provider = require("dynamodb_stream.credentials.provider")
local shared_files = require("dynamodb_stream.credentials.shared_files")
local timestamp = require("dynamodb_stream.credentials.timestamp")

local M = {
  provider = provider,
}

-- The sources, loaded when first needed (a client with static keys loads none).
local function source(name)
  return require("dynamodb_stream.credentials." .. name)
end

local function context_of(opts)
  if opts and opts._context then return opts._context end
  return context.new(opts)
end

local function clock_of(ctx)
  return function() return ctx:now() end
end

--- The environment's keys: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`
-- (or the older `AWS_SECURITY_TOKEN`), with `AWS_CREDENTIAL_EXPIRATION` (RFC 3339) making them
-- temporary: the environment is read again when they are due.
-- @tparam table ctx a context
-- @return a provider, or nil when neither key is set, or `nil, why` for half a pair
function M.environment_provider(ctx)
  local id, secret = ctx:env("AWS_ACCESS_KEY_ID"), ctx:env("AWS_SECRET_ACCESS_KEY")
  if not id and not secret then return nil end
  if not (id and secret) then
    return nil, (id and "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
      or "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
  end
  local function read()
    local expiration = ctx:env("AWS_CREDENTIAL_EXPIRATION")
    local epoch
    if expiration then
      local why
      epoch, why = timestamp.parse(expiration)
      if not epoch then return nil, "AWS_CREDENTIAL_EXPIRATION: " .. why end
    end
    local key, value = ctx:env("AWS_ACCESS_KEY_ID"), ctx:env("AWS_SECRET_ACCESS_KEY")
    if not (key and value) then return nil, "AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is no longer set" end
    return { access_key_id = key, secret_access_key = value, expiration = epoch,
      session_token = ctx:env("AWS_SESSION_TOKEN") or ctx:env("AWS_SECURITY_TOKEN") }
  end
  local first, why = read()
  if not first then return nil, why end
  local checked
  checked, why = provider.check(first, "environment")
  if not checked then return nil, "environment: " .. why end
  return provider.new("environment", read, { clock = clock_of(ctx), refreshable = first.expiration ~= nil })
end

-- What the profile module calls for the sources it does not own.
local function sources()
  return {
    sts = source("sts"),
    sso = source("sso"),
    imds = source("imds"),
    container = source("container"),
    environment = M.environment_provider,
  }
end

-- The profile the chain reads: the option, else AWS_PROFILE (AWS_DEFAULT_PROFILE), else default.
local function profile_name(ctx, opts)
  return opts.profile or ctx:env("AWS_PROFILE") or ctx:env("AWS_DEFAULT_PROFILE") or "default"
end

-- The default chain's first configured source: provider, or nil, why.
local function first_configured(ctx, opts)
  local name = profile_name(ctx, opts)
  local files = ctx:files()
  local settings, found = shared_files.profile(files, name)
  -- A profile named but absent is a mistake, even when the environment has keys (botocore's rule).
  if not found and name ~= "default" then
    return nil, "profile '" .. name .. "'" .. (opts.profile and "" or " (AWS_PROFILE)") .. " not found"
  end
  local candidates = {
    function() if opts.profile == nil then return M.environment_provider(ctx) end end,
    function() return source("profile").role_provider(ctx, name, sources()) end,
    function()
      -- A role ARN alone (AWS_ROLE_ARN is set for other tools too) is not web identity.
      if ctx:env("AWS_WEB_IDENTITY_TOKEN_FILE") or settings.web_identity_token_file then
        return source("sts").web_identity_provider(ctx, settings)
      end
    end,
    function() return source("profile").provider(ctx, name, sources()) end,
    function() return source("container").provider(ctx) end,
    function() return source("imds").provider(ctx) end,
  }
  for _, candidate in ipairs(candidates) do
    local p, why = candidate()
    if p then return p end
    if why then return nil, why end
  end
  return nil, "no credentials: pass opts.credentials, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    .. "or configure a profile ('" .. name .. "' has none), a web identity, a container role or "
    .. "instance metadata (AWS_EC2_METADATA_DISABLED is set)"
end

--- The default chain: the first configured source (see the module's summary).
-- @tparam[opt] table opts `profile`, `region` (for STS and SSO), `env` (a table of variables
-- instead of the process's), `clock` (`function() -> epoch seconds`), `sleep`, `verify_tls`,
-- `ca_file`, `shared_dict` (inside nginx: a `lua_shared_dict` through which the workers share
-- the credentials, see `shared_dict`)
-- @return the provider; raises when no source is configured, or one is configured wrongly
function M.chain(opts)
  opts = opts or {}
  local ctx = context_of(opts)
  local p, why = first_configured(ctx, opts)
  if not p then error("credentials: " .. why, 2) end
  if opts.shared_dict then return M.shared_dict(p, opts.shared_dict) end
  return p
end

--- Inside nginx: a provider whose credentials the workers share through a `lua_shared_dict`,
-- one worker fetching when they are due (`dynamodb_stream.credentials.shared_dict`).
-- @param p the provider that fetches
-- @tparam string dict_name
-- @tparam[opt] string key the dict entry, for several providers in one dict
-- @return the provider
function M.shared_dict(p, dict_name, key)
  return require("dynamodb_stream.credentials.shared_dict").wrap(p, dict_name, key)
end

--- A user's own source: `fn()` returns `{ access_key_id, secret_access_key, session_token?,
-- expiration? }` (expiration in epoch seconds) and is called again before that expiration.
-- It may also return `nil, err` when it cannot.
-- @tparam function fn
-- @tparam[opt] table opts `clock`
-- @return the provider
function M.from_function(fn, opts)
  if type(fn) ~= "function" then error("credentials.from_function: a function expected", 2) end
  return provider.new("credentials function", fn, { clock = opts and opts.clock })
end

--- Fixed keys.
-- @tparam table creds `{ access_key_id, secret_access_key, session_token? }`
-- @return the provider; raises on bad keys (without showing the secret)
function M.static(creds)
  local p, why = provider.static(creds, "static")
  if not p then error("credentials: " .. why, 2) end
  return p
end

-- What each constructor needs when it finds nothing configured.
local NEEDS = {
  imds = "instance metadata is disabled (AWS_EC2_METADATA_DISABLED=true)",
  container = "not configured: set AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI",
  web_identity = "not configured: pass role_arn and web_identity_token_file, or set AWS_ROLE_ARN and "
    .. "AWS_WEB_IDENTITY_TOKEN_FILE",
}

-- A builder's answer made a public constructor's: the provider, or an error raised.
local function built(what, p, why)
  if p then return p end
  error("credentials." .. what .. ": " .. (why or NEEDS[what] or "not configured"), 3)
end

--- One profile of the shared files, resolved as the chain would (role, web identity, SSO,
-- keys, `credential_process`).
-- @tparam string name
-- @tparam[opt] table opts as for `chain`
-- @return the provider; raises when the profile is missing or has no credentials
function M.profile(name, opts)
  if type(name) ~= "string" then error("credentials.profile: a profile name expected", 2) end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.profile = name
  local ctx = context_of(o)
  local _, found = shared_files.profile(ctx:files(), name)
  if not found then error("credentials.profile: profile '" .. name .. "' not found", 2) end
  local p, why = source("profile").role_provider(ctx, name, sources())
  if not p and not why then p, why = source("profile").provider(ctx, name, sources()) end
  return built("profile", p, why or (not p and ("profile '" .. name .. "' has no credentials")))
end

--- EC2 instance metadata (IMDSv2).
-- @tparam[opt] table opts as for `chain`
-- @return the provider
function M.imds(opts)
  return built("imds", source("imds").provider(context_of(opts)))
end

--- The container endpoint (ECS, EKS Pod Identity).
-- @tparam[opt] table opts as for `chain`
-- @return the provider; raises when no container endpoint variable is set
function M.container(opts)
  return built("container", source("container").provider(context_of(opts)))
end

--- STS AssumeRoleWithWebIdentity from `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`, or the
-- `role_arn`, `web_identity_token_file` and `role_session_name` of opts.
-- @tparam[opt] table opts as for `chain`, plus those three
-- @return the provider
function M.web_identity(opts)
  opts = opts or {}
  return built("web_identity", source("sts").web_identity_provider(context_of(opts), {
    role_arn = opts.role_arn, web_identity_token_file = opts.web_identity_token_file,
    role_session_name = opts.role_session_name }))
end

--- STS AssumeRole with the credentials of another provider.
-- @tparam table opts `role_arn`, `source` (a provider; default: the chain), `external_id`,
-- `role_session_name`, `duration_seconds`, and the options of `chain`
-- @return the provider
function M.assume_role(opts)
  if type(opts) ~= "table" or type(opts.role_arn) ~= "string" then
    error("credentials.assume_role: opts.role_arn expected", 2)
  end
  local ctx = context_of(opts)
  local from = opts.source or M.chain(opts)
  if not provider.is_provider(from) then error("credentials.assume_role: source must be a provider", 2) end
  return built("assume_role", source("sts").assume_role_provider(ctx, from, {
    role_arn = opts.role_arn, external_id = opts.external_id,
    role_session_name = opts.role_session_name,
    duration_seconds = opts.duration_seconds and tostring(opts.duration_seconds) }))
end

--- `credential_process`: a command whose output (JSON, `Version: 1`) holds the credentials.
-- @tparam string command the command line (quoted as in a shell; run without one)
-- @tparam[opt] table opts as for `chain`
-- @return the provider
function M.process(command, opts)
  if type(command) ~= "string" then error("credentials.process: a command line expected", 2) end
  return built("process", source("process").provider(context_of(opts), command, "(option)"))
end

-- The variables the default chain reads: clients made with the same options and the same
-- values share one provider.
local CHAIN_VARIABLES = {
  "HOME", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
  "AWS_CREDENTIAL_EXPIRATION", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
  "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
  "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_EC2_METADATA_V1_DISABLED",
  "AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
  "AWS_STS_REGIONAL_ENDPOINTS", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO",
  "AWS_ENDPOINT_URL_SSO_OIDC", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
}

local shared_chains = setmetatable({}, { __mode = "v" })
local shared_functions = setmetatable({}, { __mode = "k" })

--- The provider of a client's options (`config.resolve` calls it): `opts.credentials` as a
-- table of keys, a function, or a provider; else the default chain, one per distinct set of
-- options and environment, shared by every client made from them.
-- @tparam table opts the client's options (`credentials`, `profile`, `ca_file`, `verify_tls`)
-- @tparam string region the client's region
-- @tparam string caller the name errors are raised under
-- @tparam number level the level errors are raised at
-- @return the provider
function M.for_client(opts, region, caller, level)
  level = level + 1
  local given = opts.credentials
  if given ~= nil then
    if provider.is_provider(given) then return given end
    if type(given) == "function" then
      local p = shared_functions[given]
      if not p then
        p = M.from_function(given)
        shared_functions[given] = p
      end
      return p
    end
    if type(given) ~= "table" then
      error(caller .. ": credentials must be a table of keys, a function or a provider", level)
    end
    local p, why = provider.static(given, "static")
    if not p then error(caller .. ": " .. why, level) end
    return p
  end
  local key = { tostring(opts.profile), region, tostring(opts.ca_file), tostring(opts.verify_tls) }
  for _, name in ipairs(CHAIN_VARIABLES) do key[#key + 1] = os.getenv(name) or "" end
  key = table.concat(key, "\0")
  local p = shared_chains[key]
  if p then return p end
  local ctx = context.new({ region = region, ca_file = opts.ca_file, verify_tls = opts.verify_tls })
  local why
  p, why = first_configured(ctx, { profile = opts.profile })
  if not p then error(caller .. ": " .. why, level) end
  shared_chains[key] = p
  return p
end

return M
