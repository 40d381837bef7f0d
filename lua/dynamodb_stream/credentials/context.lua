--- What a credential source needs from its surroundings, in one object a test can replace:
-- environment variables, the clock, sleep, the shared files, files and HTTP.
-- @module dynamodb_stream.credentials.context

local errors = require("dynamodb_stream.errors")
local runtime = require("dynamodb_stream.runtime")
local shared_files = require("dynamodb_stream.credentials.shared_files")

local Context = {}
Context.__index = Context

local M = {}

--- Makes a context.
-- @tparam[opt] table opts `env` (a table of variables, or `function(name)`; default `os.getenv`),
-- `clock` (`function() -> epoch seconds`; default `os.time`), `sleep`, `region` (the client's),
-- `transport` (`function(timeout) -> http handle`, for tests), `verify_tls`, `ca_file`
-- @treturn table the context
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("credentials: options must be a table", 3) end
  for _, name in ipairs({ "clock", "sleep", "transport" }) do
    if opts[name] ~= nil and type(opts[name]) ~= "function" then
      error("credentials: " .. name .. " must be a function", 3)
    end
  end
  if opts.env ~= nil and type(opts.env) ~= "table" and type(opts.env) ~= "function" then
    error("credentials: env must be a table of variables or a function(name)", 3)
  end
  if opts.region ~= nil and (type(opts.region) ~= "string" or not opts.region:match("^[%w-]+$")) then
    error("credentials: region must be a name such as 'us-east-1'", 3)
  end
  local env = opts.env or os.getenv
  if type(env) == "table" then
    local vars = env
    env = function(name) return vars[name] end
  end
  return setmetatable({
    _getenv = env,
    _clock = opts.clock or os.time,
    _sleep = opts.sleep or runtime.sleep,
    _transport = opts.transport,
    _transports = {},
    _verify_tls = opts.verify_tls,
    _ca_file = opts.ca_file,
    region = opts.region,
  }, Context)
end

--- An environment variable, or nil when unset or empty.
-- @tparam string name
-- @treturn string|nil
function Context:env(name)
  local value = self._getenv(name)
  if value == "" then return nil end
  return value
end

--- Now, in epoch seconds (the injected clock in tests).
-- @treturn number
function Context:now()
  return self._clock()
end

--- Sleeps (ngx.sleep where it can yield).
-- @tparam number seconds
function Context:sleep(seconds)
  return self._sleep(seconds)
end

--- The shared config and credentials files, read now (never cached: rotated keys are seen).
-- @treturn table what `shared_files.load` returns
function Context:files()
  return shared_files.load(function(name) return self:env(name) end)
end

--- A whole file, or `nil, why`.
-- @tparam string path
-- @treturn string|nil
function Context:read_file(path)
  local f, why = io.open(path, "rb")
  if not f then return nil, why end
  local text = f:read("*a")
  f:close()
  return text
end

-- One transport per timeout, made on first use.
function Context:_transport_for(timeout)
  local http = self._transports[timeout]
  if http then return http end
  if self._transport then
    http = self._transport(timeout)
  else
    local topts = { connect_timeout = timeout, timeout = timeout, verify_tls = self._verify_tls,
      ca_file = self._ca_file, max_body = 1024 * 1024 }
    if runtime.in_nginx() then
      http = require("dynamodb_stream.ngx_http").http(topts)
    else
      http = require("dynamodb_stream.core").http(topts)
    end
  end
  self._transports[timeout] = http
  return http
end

--- One HTTP request (no retry): `status, body, headers`, or `nil, err` (an error value
-- whose code is the transport's: `Timeout`, `ConnectionRefused`, ...).
-- @tparam string method GET, PUT or POST
-- @tparam string url
-- @tparam[opt] {string,...} lines header lines
-- @tparam[opt] string body
-- @tparam[opt=5] number timeout seconds, for the connection and for the whole exchange
function Context:http(method, url, lines, body, timeout)
  local http = self:_transport_for(timeout or 5)
  local status, answer, headers = http:request(method, url, lines, body)
  if not status then
    return nil, errors.new({ code = headers or "HttpError", message = (tostring(answer):gsub("^%w+: ", "", 1)) })
  end
  return status, answer, headers
end

return M
