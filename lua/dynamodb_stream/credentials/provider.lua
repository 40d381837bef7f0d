--- A credential provider: one source of credentials, cached, and refreshed before they expire.
--
-- A source is `fetch() -> creds | nil, err`, where creds is
-- `{ access_key_id, secret_access_key, session_token?, expiration? }` (expiration in epoch
-- seconds; none for keys that never expire). `provider:get()` hands out the cached
-- credentials and fetches new ones when they are due:
--
-- - in advance, from `ADVISORY` seconds before they expire (at most half their lifetime);
--   if that fails, the old ones are kept, the failure is reported by the next `refresh()`,
--   and it is tried again with a growing pause (1, 2, 4 ... 60 s);
-- - at the latest `MANDATORY` seconds before they expire: credentials that expire within
--   that are never used, so a call then waits for the fetch, and fails if it fails.
--
-- Inside nginx, an advance refresh runs in a timer, so that no request waits for it, and one
-- fetch at a time is made per worker.
-- @module dynamodb_stream.credentials.provider

local errors = require("dynamodb_stream.errors")
local runtime = require("dynamodb_stream.runtime")

local M = {
  ADVISORY = 15 * 60,
  MANDATORY = 60,
  MAX_RETRY_PAUSE = 60,
  -- A forced refresh (after ExpiredToken) within this of the last fetch is not made again.
  MIN_FORCED_INTERVAL = 5,
}

local Credentials = { __name = "dynamodb_stream.credentials" }
Credentials.__index = Credentials

function Credentials.__tostring(c)
  local expiry = c.expiration and (", expire " .. os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(c.expiration))) or ""
  return "credentials " .. c.access_key_id .. " (" .. (c.source or "?") .. expiry .. ")"
end

local function nonempty_string(v)
  return type(v) == "string" and v ~= ""
end

--- Checks and copies what a source returned: `{ access_key_id, secret_access_key,
-- session_token?, expiration? }` (expiration: epoch seconds).
-- The copy's `tostring` shows the key id, never a secret.
-- @tparam table creds
-- @tparam string source the source's name, kept for messages
-- @treturn table the credentials, or `nil, why`
function M.check(creds, source)
  if type(creds) ~= "table" then return nil, "credentials must be a table, got " .. type(creds) end
  if not nonempty_string(creds.access_key_id) or not nonempty_string(creds.secret_access_key) then
    return nil, "access_key_id and secret_access_key must be non-empty strings"
  end
  if creds.access_key_id:find("[%c%s]") then return nil, "access_key_id contains a space or control character" end
  local token = creds.session_token
  if token ~= nil and type(token) ~= "string" then return nil, "session_token must be a string" end
  if token and token:find("[%c]") then return nil, "session_token contains a control character" end
  local expiration = creds.expiration
  if expiration ~= nil and (type(expiration) ~= "number" or expiration ~= expiration) then
    return nil, "expiration must be a number of epoch seconds"
  end
  return setmetatable({
    access_key_id = creds.access_key_id,
    secret_access_key = creds.secret_access_key,
    session_token = token ~= "" and token or nil,
    expiration = expiration,
    source = source,
  }, Credentials)
end

local Provider = { __name = "dynamodb_stream.credentials.provider" }
Provider.__index = Provider

--- What `tostring` shows of a provider (its name, never a secret); for other provider classes too.
-- @param p a provider
-- @treturn string
function M.tostring(p)
  return "credentials provider (" .. p.name .. ")"
end
Provider.__tostring = M.tostring

--- Makes a provider of a source.
-- @tparam string name what the source is, for messages (`"instance metadata"`, `"profile dev"`)
-- @tparam function fetch `function() -> creds | nil, err`
-- @tparam[opt] table opts `clock` (`function() -> epoch seconds`, default `os.time`),
-- `refreshable` (false for keys that never change: `refresh()` then does nothing)
-- @treturn table the provider: `get`, `refresh`
function M.new(name, fetch, opts)
  opts = opts or {}
  return setmetatable({
    name = name,
    refreshable = opts.refreshable ~= false,
    _fetch = fetch,
    _clock = opts.clock or os.time,
    _creds = nil,
    _refresh_at = nil, -- when to fetch in advance
    _retry_at = nil,   -- after a failed advance fetch, not before this
    _failures = 0,
    _fetched_at = nil,
    _pending_error = nil,
    _fetching = false,
  }, Provider)
end

--- A provider of fixed keys, which never refreshes.
-- @tparam table creds `{ access_key_id, secret_access_key, session_token? }`
-- @tparam[opt="static"] string name
-- @treturn table the provider, or `nil, why` for bad keys
function M.static(creds, name)
  local checked, why = M.check(creds, name or "static")
  if not checked then return nil, why end
  return M.new(name or "static", function() return checked end, { refreshable = false })
end

local function describe(self, err)
  if errors.is_error(err) then
    local message = err.message or ""
    if not message:find("^credentials %(") then message = "credentials (" .. self.name .. "): " .. message end
    return errors.new({ code = err.code, message = message, status = err.status })
  end
  return errors.new({ code = "CredentialsError", message = "credentials (" .. self.name .. "): " .. tostring(err) })
end

-- One fetch from the source: the new credentials taken, or nil, err.
function Provider:_fetch_now()
  local ok, creds, err = pcall(self._fetch)
  if not ok then
    return nil, describe(self, "the credential source raised: " .. tostring(creds))
  end
  if not creds then return nil, describe(self, err or "no credentials") end
  local checked, why = M.check(creds, self.name)
  if not checked then return nil, describe(self, why) end
  local now = self._clock()
  if checked.expiration and checked.expiration - now <= M.MANDATORY then
    return nil, describe(self, errors.new({ code = "ExpiredToken",
      message = "the credentials it gave expire at " .. os.date("!%Y-%m-%dT%H:%M:%SZ",
        math.floor(checked.expiration)) .. ", within " .. M.MANDATORY .. " s (is the clock right?)" }))
  end
  self._creds, self._fetched_at, self._failures, self._retry_at = checked, now, 0, nil
  if checked.expiration then
    local lifetime = checked.expiration - now
    self._refresh_at = checked.expiration - math.min(M.ADVISORY, lifetime / 2)
  else
    self._refresh_at = nil
  end
  return checked
end

-- A fetch, one at a time: a second caller inside nginx waits for the first's result.
function Provider:_single_fetch()
  if self._fetching and runtime.can_yield() then
    local ngx = runtime.ngx()
    while self._fetching do ngx.sleep(0.01) end
    if self._creds and self:_usable(self._clock()) then return self._creds end
  end
  self._fetching = true
  local ok, creds, err = pcall(self._fetch_now, self)
  self._fetching = false
  if not ok then error(creds, 0) end
  return creds, err
end

function Provider:_usable(now)
  local c = self._creds
  return c ~= nil and (c.expiration == nil or now < c.expiration - M.MANDATORY)
end

-- An advance fetch failed: keep the old credentials, try again later, tell run().
function Provider:_advance_failed(err, now)
  self._failures = self._failures + 1
  self._retry_at = now + math.min(M.MAX_RETRY_PAUSE, 2 ^ (self._failures - 1))
  self._pending_error = err
end

function Provider:_advance(now)
  if runtime.can_yield() and runtime.ngx().timer then
    -- In a timer, so that the request that noticed does not wait for it.
    self._retry_at = now + M.MAX_RETRY_PAUSE -- until the timer says otherwise
    local ok = runtime.ngx().timer.at(0, function(premature)
      if premature or self._fetching then return end
      local creds, err = self:_single_fetch()
      if not creds then self:_advance_failed(err, self._clock()) end
    end)
    if ok then return end
  end
  local creds, err = self:_single_fetch()
  if not creds then self:_advance_failed(err, now) end
end

--- The credentials to sign with now: `creds`, or `nil, err` when there are none that are
-- valid for more than `MANDATORY` seconds and fetching failed.
-- @treturn table credentials (`access_key_id`, `secret_access_key`, `session_token`, `expiration`)
function Provider:get()
  local now = self._clock()
  if not self:_usable(now) then return self:_single_fetch() end
  if self._refresh_at and now >= self._refresh_at and not self._fetching
    and (self._retry_at == nil or now >= self._retry_at) then
    self:_advance(now)
  end
  return self._creds
end

--- Refreshes now if due (or at once when forced), and reports a failed advance refresh.
-- `run` calls it between fetches, so that a call rarely waits for a refresh.
-- @tparam[opt] boolean force fetch now, even if the credentials are fresh (after the service
-- said they expired); not again within `MIN_FORCED_INTERVAL` s of the last fetch
-- @treturn boolean true, or `nil, err` (a failed refresh: the old credentials, if still
-- valid, stay in use)
function Provider:refresh(force)
  if not self.refreshable then return true end
  local now = self._clock()
  if force then
    if self._fetched_at and now - self._fetched_at < M.MIN_FORCED_INTERVAL then
      return nil, errors.new({ code = "ExpiredToken",
        message = "credentials (" .. self.name .. ") were fetched " .. (now - self._fetched_at)
          .. " s ago and still refused" })
    end
    local creds, err = self:_single_fetch()
    if not creds then return nil, err end
    return true
  end
  if not self:_usable(now) or (self._refresh_at and now >= self._refresh_at) then
    local creds, err = self:get()
    if not creds then return nil, err end
  end
  local err = self._pending_error
  if err then
    self._pending_error = nil
    return nil, err
  end
  return true
end

--- Whether `value` is a provider (made here, or any table with `get` and `refresh`).
-- @param value
-- @treturn boolean
function M.is_provider(value)
  return type(value) == "table" and type(value.get) == "function" and type(value.refresh) == "function"
end

return M
