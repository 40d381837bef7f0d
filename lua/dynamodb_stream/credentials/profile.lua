--- The credentials of one named profile of the shared files, resolved as botocore does.
--
-- `role_provider` is the profile's AssumeRole (`role_arn` with `source_profile` or
-- `credential_source`); `provider` is the rest, in botocore's order: web identity from the
-- profile's keys, SSO, static keys of the credentials file, `credential_process`, static keys
-- of the config file. A `source_profile` chain is followed hop by hop: at each later hop the
-- profile's own credentials (static keys first) beat its `role_arn`; a loop is refused, except
-- a profile that names itself and has static keys ("role and keys in one section").
--
-- The other sources come in as `sources`, so that this module needs none of them:
-- `{ sts = { assume_role_provider(ctx, source_provider, settings),
-- web_identity_provider(ctx, settings) }, sso = { provider(ctx, settings, files, name) },
-- imds = { provider(ctx) }, container = { provider(ctx) }, environment = function(ctx) }`,
-- each a builder (`provider`, `nil`, or `nil, why`). `settings` are the profile's keys
-- (files merged, empty values left out).
-- @module dynamodb_stream.credentials.profile

local process = require("dynamodb_stream.credentials.process")
local provider = require("dynamodb_stream.credentials.provider")
local shared_files = require("dynamodb_stream.credentials.shared_files")

local M = {}

-- credential_source values, compared without case, and the source each names.
local CREDENTIAL_SOURCES = {
  environment = "environment",
  ec2instancemetadata = "imds",
  ecscontainer = "container",
}

-- Web identity variables a source profile does not see (botocore: disable_env_vars).
local WEB_IDENTITY_ENV = { AWS_ROLE_ARN = true, AWS_WEB_IDENTITY_TOKEN_FILE = true, AWS_ROLE_SESSION_NAME = true }

-- A copy of a section without its empty values: `key =` says nothing.
local function clean(section)
  local copy = {}
  for k, v in pairs(section) do
    if v ~= "" then copy[k] = v end
  end
  return copy
end

local function has_static_keys(s)
  return s.aws_access_key_id ~= nil or s.aws_secret_access_key ~= nil
end

local function assumes_role(s)
  return s.role_arn ~= nil and s.web_identity_token_file == nil
end

local function source(sources, name, field)
  local s = sources[name]
  if field then s = type(s) == "table" and s[field] or nil end
  if type(s) ~= "function" then
    error("profile: sources." .. name .. (field and ("." .. field) or "") .. " must be a function", 3)
  end
  return s
end

-- The context a source profile is resolved with: the web identity variables hidden.
local function without_web_identity_env(ctx)
  if rawget(ctx, "_web_identity_env_hidden") then return ctx end
  return setmetatable({
    _web_identity_env_hidden = true,
    env = function(_, name)
      if WEB_IDENTITY_ENV[name] then return nil end
      return ctx:env(name)
    end,
  }, { __index = ctx })
end

-- Static keys of one file's section of a profile: provider | nil | nil, why.
local function static_provider(section, name, file)
  local id, secret = section.aws_access_key_id, section.aws_secret_access_key
  if id == nil and secret == nil then return nil end
  if id == nil or secret == nil then
    return nil, "profile " .. name .. ": the " .. file .. " file has " .. (id and "aws_access_key_id" or
      "aws_secret_access_key") .. " without " .. (id and "aws_secret_access_key" or "aws_access_key_id")
  end
  local p, why = provider.static({ access_key_id = id, secret_access_key = secret,
    session_token = section.aws_session_token or section.aws_security_token }, "profile " .. name)
  if not p then return nil, "profile " .. name .. ": the " .. file .. " file's keys: " .. why end
  return p
end

-- The rest of one profile (everything but its AssumeRole), from files already read.
local function profile_provider(ctx, name, sources, files)
  local merged, _, from_credentials, from_config = shared_files.profile(files, name)
  local s = clean(merged)
  if s.web_identity_token_file then
    return source(sources, "sts", "web_identity_provider")(ctx, s)
  end
  local p, why = source(sources, "sso", "provider")(ctx, s, files, name)
  if p or why then return p, why end
  p, why = static_provider(clean(from_credentials), name, "credentials")
  if p or why then return p, why end
  if s.credential_process then return process.provider(ctx, s.credential_process, name) end
  return static_provider(clean(from_config), name, "config")
end

local assume_role

local function credential_source_provider(ctx, name, value, sources)
  local kind = CREDENTIAL_SOURCES[value:lower()]
  if not kind then
    return nil, "profile " .. name .. ": credential_source = " .. value
      .. " is not one of Environment, Ec2InstanceMetadata, EcsContainer"
  end
  local p, why
  if kind == "environment" then
    p, why = source(sources, "environment")(ctx)
  else
    p, why = source(sources, kind, "provider")(ctx)
  end
  if p or why then return p, why end
  return nil, "profile " .. name .. ": credential_source = " .. value .. " gives no credentials here"
    .. (kind == "environment" and " (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set)"
      or kind == "container" and " (neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI is set)"
      or "")
end

-- The provider of the credentials that source_profile `target` gives `parent`, one hop on.
local function source_profile_provider(ctx, parent, target, sources, files, visited)
  local merged, found = shared_files.profile(files, target)
  if not found then
    return nil, "profile " .. parent .. ": its source_profile " .. target .. " does not exist"
  end
  local s = clean(merged)
  for _, seen in ipairs(visited) do
    -- A profile may name itself to take its own static keys; any other revisit is a loop.
    if seen == target and (target ~= parent or not has_static_keys(s)) then
      return nil, "profiles form a loop through source_profile: " .. table.concat(visited, " -> ")
        .. " -> " .. target
    end
  end
  visited[#visited + 1] = target
  ctx = without_web_identity_env(ctx)
  if has_static_keys(s) or not assumes_role(s) then
    local p, why = profile_provider(ctx, target, sources, files)
    if p or why then return p, why end
    return nil, "profile " .. parent .. ": its source_profile " .. target .. " has no credentials"
  end
  return assume_role(ctx, target, s, sources, files, visited)
end

-- The AssumeRole of profile `name` (settings s), its source resolved first.
assume_role = function(ctx, name, s, sources, files, visited)
  if s.source_profile and s.credential_source then
    return nil, "profile " .. name .. " has both source_profile and credential_source; keep one"
  end
  if not s.source_profile and not s.credential_source then
    return nil, "profile " .. name .. " has role_arn but neither source_profile nor credential_source"
      .. " to assume it with"
  end
  if s.mfa_serial then
    return nil, "profile " .. name .. " sets mfa_serial: assuming its role needs an MFA code; there is"
      .. " no prompt to type it at here (use a role without MFA, or keys from `aws sts get-session-token`)"
  end
  local source_provider, why
  if s.credential_source then
    source_provider, why = credential_source_provider(ctx, name, s.credential_source, sources)
  else
    source_provider, why = source_profile_provider(ctx, name, s.source_profile, sources, files, visited)
  end
  if not source_provider then return nil, why end
  return source(sources, "sts", "assume_role_provider")(ctx, source_provider, s)
end

local function check_args(ctx, name, sources)
  if type(ctx) ~= "table" or type(ctx.files) ~= "function" then
    error("profile: ctx must be a credentials context", 3)
  end
  if type(name) ~= "string" or name == "" then error("profile: name must be a non-empty string", 3) end
  if type(sources) ~= "table" then error("profile: sources must be a table", 3) end
end

--- The AssumeRole provider of a profile that has `role_arn` (and no `web_identity_token_file`):
-- the role assumed with the credentials of `source_profile` (a chain of profiles) or of
-- `credential_source` (`Environment`, `Ec2InstanceMetadata` or `EcsContainer`, any case).
-- Makes no call and runs nothing.
-- @tparam table ctx the context
-- @tparam string name the profile
-- @tparam table sources the other sources (see the module's summary)
-- @return the provider; `nil` when the profile assumes no role (or does not exist); or
-- `nil, why` (both or neither of source_profile and credential_source, an unknown
-- credential_source, a missing source profile, a loop, `mfa_serial`, bad keys on the way)
function M.role_provider(ctx, name, sources)
  check_args(ctx, name, sources)
  local files = ctx:files()
  local s = clean((shared_files.profile(files, name)))
  if not assumes_role(s) then return nil end
  return assume_role(ctx, name, s, sources, files, { name })
end

--- The provider of a profile's own credentials, the first of (botocore's order): web identity
-- from its `web_identity_token_file` and `role_arn`; SSO; static keys of the credentials
-- file; `credential_process`; static keys of the config file. Makes no call and runs nothing.
-- @tparam table ctx the context
-- @tparam string name the profile
-- @tparam table sources the other sources (see the module's summary)
-- @return the provider; `nil` when the profile gives none of these (or does not exist); or
-- `nil, why` (a key id without its secret or the reverse, a bad setting)
function M.provider(ctx, name, sources)
  check_args(ctx, name, sources)
  return profile_provider(ctx, name, sources, ctx:files())
end

return M
