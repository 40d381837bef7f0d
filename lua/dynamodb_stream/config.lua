--- Region, credentials and endpoint, resolved the way AWS SDKs do:
-- explicit options, then environment variables, then the shared credentials
-- and config files of the selected profile.
-- @module dynamodb_stream.config

local compat = require("dynamodb_stream.compat")
local credentials = require("dynamodb_stream.credentials")
local shared_files = require("dynamodb_stream.credentials.shared_files")

local config = {}

local function nonempty(value)
  if value ~= nil and value ~= "" then return value end
  return nil
end

local function env(name)
  return nonempty(os.getenv(name))
end

-- The endpoint as it may be shown in a message: control bytes escaped.
local function shown(url)
  return "'" .. url:gsub("%c", function(c) return ("\\x%02X"):format(c:byte()) end) .. "'"
end

--- Splits "https://host:port/path" into its parts; nil, why for anything else.
-- Only what every call could send as it is gets through: a bad endpoint is a
-- configuration mistake, better refused when the client is made than on
-- every call.
-- @tparam string url an endpoint URL
-- @treturn table `{ url, scheme, host, port, path }`, or `nil, why`
function config.parse_endpoint(url)
  if type(url) ~= "string" then return nil, "endpoint must be a string" end
  local function bad(why) return nil, "endpoint " .. shown(url) .. " " .. why end
  if url:find("[%c%s]") then return bad("contains a space, tab or control character (CR, LF, ...)") end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return bad("is not an http(s) URL") end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return bad("must use http or https") end
  if rest:find("#", 1, true) then return bad("must not have a fragment (#...)") end
  if rest:find("?", 1, true) then return bad("must not have a query (?...)") end
  local authority, path = rest:match("^([^/]*)(.*)$")
  if authority:find("@", 1, true) then -- not shown: it may hold a password
    return nil, "endpoint must not carry user information (user:password@)"
  end
  local host, port = authority:match("^(%[[^%]]*%])(.*)$")
  if host then
    if not host:match("^%[[%x:.]+%]$") or not host:find(":", 1, true) then
      return bad("has a malformed IPv6 address " .. host)
    end
  else
    host, port = authority:match("^([^:]*)(.*)$")
  end
  if host == "" then return bad("has no host") end
  if not host:match("^%[") and not host:match("^[%w._-]+$") then
    return bad("has a host with characters a host name cannot hold")
  end
  local default_port = scheme == "https" and 443 or 80
  if port ~= "" then
    local digits = port:match("^:(%d+)$")
    local number = tonumber(digits)
    if not number or number < 1 or number > 65535 then
      return bad("has a port that is not a number from 1 to 65535")
    end
    port = number
  else
    port = default_port
  end
  if path ~= "" then
    if path:find("//", 1, true) or ("/" .. path .. "/"):find("/%.%.?/") then
      return bad("has a path that is not canonical (//, /./ or /../)")
    end
    if path:find("[^%w%-._~/!$&'()*+,;=:@%%]") then
      return bad("has a path with characters that must be percent-encoded")
    end
    if path:gsub("%%%x%x", ""):find("%", 1, true) then
      return bad("has a path with a '%' not followed by two hex digits")
    end
  end
  path = path == "" and "/" or path
  return {
    url = scheme .. "://" .. authority .. path,
    scheme = scheme,
    -- The Host header (and so the signature) omits the scheme's default port.
    host = port == default_port and host or (host .. ":" .. port),
    path = path,
  }
end

local function explicit_profile_endpoint(profile)
  return nonempty(profile.endpoint_url)
end

--- Resolves the settings of one service.
-- service: { endpoint_prefix = "streams.dynamodb", env_endpoint = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS" }
-- opts: region, endpoint, credentials, profile, connect_timeout, timeout, verify_tls,
-- ca_file, max_attempts, retry_mode, retry_base, sleep.
-- @tparam table service `endpoint_prefix` and `env_endpoint` of the service
-- @tparam[opt] table opts `region`, `credentials` (`{ access_key_id, secret_access_key,
-- session_token }`, a function returning such a table with `expiration`, or a provider of
-- `dynamodb_stream.credentials`), `profile`, `endpoint`, `connect_timeout`, `timeout`, `verify_tls`,
-- `ca_file`, `max_attempts`, `retry_mode`, `retry_base`, `sleep`
-- @tparam[opt] string caller the name errors are raised under
-- @treturn table `{ region, credentials (a provider), endpoint, connect_timeout, timeout, verify_tls,
-- ca_file, max_attempts, retry_base, sleep }`; raises on a bad or missing setting
function config.resolve(service, opts, caller)
  caller = caller or "dynamodb_stream"
  if opts ~= nil and type(opts) ~= "table" then error(caller .. ": options must be a table", 3) end
  opts = opts or {}

  local profile_name = opts.profile or env("AWS_PROFILE") or env("AWS_DEFAULT_PROFILE") or "default"
  if type(profile_name) ~= "string" then error(caller .. ": profile must be a string", 3) end
  local profile = shared_files.profile(shared_files.load(env), profile_name)

  local region = opts.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or nonempty(profile.region)
  local imds_why
  if region == nil and (env("AWS_EC2_METADATA_DISABLED") or ""):lower() ~= "true" then
    -- On EC2, the instance's own region (a second or two to fail elsewhere).
    region, imds_why = require("dynamodb_stream.credentials.imds").region(
      require("dynamodb_stream.credentials.context").new())
  end
  if region == nil then
    error(caller .. ": no region: pass opts.region or set AWS_REGION (or a region in the profile)"
      .. (imds_why and ("; instance metadata: " .. tostring(imds_why)) or ""), 3)
  end
  if type(region) ~= "string" or not region:match("^[%w-]+$") then
    error(caller .. ": region must be a name such as 'us-east-1'", 3)
  end

  local provider = credentials.for_client(opts, region, caller, 3)

  local endpoint, source = opts.endpoint, nil
  if endpoint == nil and os.getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") ~= "true" then
    for _, name in ipairs({ service.env_endpoint, "AWS_ENDPOINT_URL" }) do
      endpoint = env(name)
      if endpoint then source = name break end
    end
    if not endpoint then
      endpoint = explicit_profile_endpoint(profile)
      source = "endpoint_url of profile '" .. profile_name .. "'"
    end
  end
  endpoint = endpoint or ("https://" .. service.endpoint_prefix .. "." .. region .. ".amazonaws.com")
  local parsed, why = config.parse_endpoint(endpoint)
  if not parsed then error(caller .. ": " .. why .. (source and (" (from " .. source .. ")") or ""), 3) end

  for _, key in ipairs({ "connect_timeout", "timeout" }) do
    local v = opts[key]
    if v ~= nil and (type(v) ~= "number" or v <= 0) then
      error(caller .. ": " .. key .. " must be a positive number of seconds", 3)
    end
  end
  if opts.verify_tls ~= nil and type(opts.verify_tls) ~= "boolean" then
    error(caller .. ": verify_tls must be a boolean", 3)
  end
  if opts.verify_tls == false and parsed.scheme == "https" then
    io.stderr:write(caller, ": WARNING: TLS certificate verification is off for ", parsed.url,
      " (verify_tls = false); anyone on the path can read and change the traffic\n")
  end

  -- AWS_MAX_ATTEMPTS counts the first attempt too; standard mode's default is 3.
  local max_attempts = opts.max_attempts or tonumber(env("AWS_MAX_ATTEMPTS") or profile.max_attempts) or 3
  if not compat.is_integer(max_attempts) or max_attempts < 1 then
    error(caller .. ": max_attempts must be an integer >= 1", 3)
  end
  local retry_mode = opts.retry_mode or env("AWS_RETRY_MODE") or profile.retry_mode or "standard"
  if retry_mode ~= "standard" and retry_mode ~= "legacy" and retry_mode ~= "adaptive" then
    error(caller .. ": retry_mode must be 'standard' (legacy and adaptive are served by standard)", 3)
  end
  if opts.sleep ~= nil and type(opts.sleep) ~= "function" then
    error(caller .. ": sleep must be a function", 3)
  end

  return {
    region = region,
    credentials = provider,
    endpoint = parsed,
    connect_timeout = opts.connect_timeout,
    timeout = opts.timeout,
    verify_tls = opts.verify_tls,
    ca_file = opts.ca_file or env("AWS_CA_BUNDLE"),
    max_attempts = max_attempts,
    retry_base = opts.retry_base,
    sleep = opts.sleep or require("dynamodb_stream.runtime").sleep,
  }
end

return config
