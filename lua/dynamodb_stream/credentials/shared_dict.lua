--- Credentials shared by the workers of an nginx node through a `lua_shared_dict`.
--
-- Each worker has its own Lua VM and so its own providers; without this, every worker
-- fetches its own credentials (one STS session, one IMDS call, per worker). Wrapped here,
-- the credentials live in the dict: when they are due, one worker (the one that takes the
-- dict's lock) fetches from the wrapped provider and publishes them; the others go on with
-- the ones in the dict, or wait briefly for that worker when theirs are about to expire.
-- @module dynamodb_stream.credentials.shared_dict

local core = require("dynamodb_stream.core")
local provider = require("dynamodb_stream.credentials.provider")
local runtime = require("dynamodb_stream.runtime")

local M = {
  LOCK_TTL = 30,    -- a worker that died holding the lock frees it after this
  WAIT = 5,         -- how long a worker waits for another one's fetch
}

local Shared = { __name = "dynamodb_stream.credentials.shared_dict" }
Shared.__index = Shared
Shared.__tostring = provider.tostring

--- Wraps a provider so that the workers of one nginx node share its credentials.
-- @param inner the provider that fetches (e.g. `ds.credentials.chain()`)
-- @tparam string dict_name a `lua_shared_dict` (a few KB are enough)
-- @tparam[opt] string key the entry in the dict (default: the provider's name), for several
-- providers in one dict
-- @return the provider; raises outside nginx or when the dict is not declared
function M.wrap(inner, dict_name, key)
  if not provider.is_provider(inner) then error("shared_dict: a provider expected", 2) end
  local ngx = runtime.ngx()
  if not ngx then error("shared_dict: only inside nginx (lua_shared_dict)", 2) end
  local dict = ngx.shared[dict_name]
  if not dict then error("shared_dict: no lua_shared_dict named '" .. tostring(dict_name) .. "'", 2) end
  key = "credentials:" .. (key or inner.name or "default")
  return setmetatable({
    name = (inner.name or "provider") .. ", shared in " .. dict_name,
    refreshable = inner.refreshable ~= false,
    _inner = inner,
    _dict = dict,
    _key = key,
    _lock = key .. ":lock",
    _text = nil,  -- the dict's entry last decoded, and its credentials (the same table
    _creds = nil, -- while the entry does not change, so that clients keep their signer)
  }, Shared)
end

function Shared:_read()
  local text = self._dict:get(self._key)
  if not text then return nil end
  if text ~= self._text then
    local e = core.json_decode(text)
    self._creds = provider.check({ access_key_id = e.id, secret_access_key = e.secret,
      session_token = e.token, expiration = e.expiration }, self.name)
    self._fetched_at, self._text = e.fetched_at, text
  end
  return self._creds
end

function Shared:_publish(creds, now)
  local text = core.json_encode({ id = creds.access_key_id, secret = creds.secret_access_key,
    token = creds.session_token, expiration = creds.expiration, fetched_at = now })
  local ttl = creds.expiration and math.max(1, creds.expiration - now) or 0
  self._dict:set(self._key, text, ttl)
end

local function usable(creds, now)
  return creds ~= nil and (creds.expiration == nil or now < creds.expiration - provider.MANDATORY)
end

function Shared:_due(creds, now)
  if not creds.expiration then return false end
  local lifetime = creds.expiration - (self._fetched_at or now)
  return now >= creds.expiration - math.min(provider.ADVISORY, lifetime / 2)
end

--- The credentials to sign with: the dict's while they are fresh; else this worker fetches
-- (when it gets the lock) or waits for the worker that does.
-- @return credentials, or `nil, err`
function Shared:get()
  local ngx = runtime.ngx()
  local now = ngx.time()
  local creds = self:_read()
  if creds and not self:_due(creds, now) then return creds end
  if self._dict:add(self._lock, true, M.LOCK_TTL) then
    local fresh, err = self._inner:get()
    self._fetched_here = true
    if fresh then self:_publish(fresh, now) end
    self._dict:delete(self._lock)
    if fresh then return self:_read() end
    if usable(creds, now) then return creds end
    return nil, err
  end
  if usable(creds, now) then return creds end
  -- Another worker is fetching and there is nothing usable here: wait for it.
  if runtime.can_yield() then
    local deadline = ngx.now() + M.WAIT
    while self._dict:get(self._lock) and ngx.now() < deadline do ngx.sleep(0.02) end
    creds = self:_read()
    if usable(creds, ngx.time()) then return creds end
  end
  return self._inner:get()
end

--- Refreshes the way `get` does, and reports a failed advance refresh of this worker's
-- fetches; forced (after ExpiredToken), fetches now and publishes.
-- @tparam[opt] boolean force
-- @return true, or `nil, err`
function Shared:refresh(force)
  if force then
    local ok, err = self._inner:refresh(true)
    if not ok then return nil, err end
    local creds = self._inner:get()
    if creds then self:_publish(creds, runtime.ngx().time()) end
    return true
  end
  local creds, err = self:get()
  if not creds then return nil, err end
  if self._fetched_here then return self._inner:refresh() end
  return true
end

return M
