--- Helpers for running the consumer inside OpenResty / lua-nginx-module:
--
--   openresty.checkpoint(dict, key)  a checkpoint store (load/save) in a lua_shared_dict
--   openresty.lock(dict, key[, ttl]) a node-wide lock in a lua_shared_dict
--   openresty.poller(opts)           one poller per stream per node (call from
--                                    init_worker_by_lua*): every worker tries the
--                                    lock; the holder runs the stream, the others
--                                    take over within ttl + retry seconds when it exits
--
-- dict is an ngx.shared.DICT or the name of one.
-- @module dynamodb_stream.openresty
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")

local M = {}

local function shared(dict, who)
  if type(dict) == "string" then
    local d = ngx.shared[dict] -- luacheck: globals ngx
    if not d then error(who .. ": no lua_shared_dict named '" .. dict .. "'", 3) end
    return d
  end
  if type(dict) ~= "table" and type(dict) ~= "userdata" then error(who .. ": shared dict expected", 3) end
  return dict
end

-- checkpoint store ------------------------------------------------------------

local Store = {}
Store.__index = Store

--- A checkpoint store in a `lua_shared_dict`, for `stream:run{ checkpoint = ... }`.
-- @param dict an `ngx.shared.DICT` or its name
-- @tparam string key
-- @return the store, with `load()` and `save(state)`
function M.checkpoint(dict, key)
  if type(key) ~= "string" or key == "" then error("openresty.checkpoint: key expected", 2) end
  return setmetatable({ dict = shared(dict, "openresty.checkpoint"), key = key }, Store)
end

--- The saved state.
-- @return the state, nil when none, or `nil, err`
function Store:load()
  local text = self.dict:get(self.key)
  if text == nil then return nil end
  local state, why = core.json_decode(text)
  if type(state) ~= "table" then
    return nil, errors.new({ code = "CheckpointError", retryable = false,
      message = "shared dict key " .. self.key .. ": " .. tostring(why or "not a JSON object") })
  end
  return state
end

--- Saves the state (logs a warning when the dict evicts entries).
-- @tparam table state
-- @return true, or `nil, err`
function Store:save(state)
  local ok, text = pcall(core.json_encode, state)
  if not ok then return nil, errors.new({ code = "CheckpointError", message = tostring(text), retryable = false }) end
  local set, err, forcible = self.dict:set(self.key, text)
  if not set then
    return nil, errors.new({ code = "CheckpointError", retryable = false,
      message = "shared dict key " .. self.key .. ": " .. tostring(err) })
  end
  if forcible then ngx.log(ngx.WARN, "dynamodb_stream: shared dict full, entries evicted to save ", self.key) end
  return true
end

-- lock ------------------------------------------------------------------------

local Lock = {}
Lock.__index = Lock

--- A node-wide lock in a `lua_shared_dict`.
-- @param dict an `ngx.shared.DICT` or its name
-- @tparam string key
-- @tparam[opt=5] number ttl seconds: a holder that stops renewing loses the lock after this long
-- @return the lock, with `acquire`, `renew`, `release`, `holder`
function M.lock(dict, key, ttl)
  if type(key) ~= "string" or key == "" then error("openresty.lock: key expected", 2) end
  return setmetatable({ dict = shared(dict, "openresty.lock"), key = key, ttl = ttl or 5 }, Lock)
end

local function token()
  return string.format("%d %.6f %d", ngx.worker.pid(), ngx.now(), math.random(1, 1e9))
end

--- Takes the lock when it is free: true, or false (held by someone else).
-- @treturn boolean
function Lock:acquire()
  local value = token()
  local ok = self.dict:add(self.key, value, self.ttl)
  if ok then self.value = value end
  return ok and true or false
end

--- Extends the lock when this object still holds it: true, or false (lost).
-- @treturn boolean
function Lock:renew()
  if not self.value or self.dict:get(self.key) ~= self.value then
    self.value = nil
    return false
  end
  self.dict:set(self.key, self.value, self.ttl)
  return true
end

--- Releases the lock if this object still holds it.
function Lock:release()
  if self.value and self.dict:get(self.key) == self.value then self.dict:delete(self.key) end
  self.value = nil
end

--- The pid of the worker holding the lock, or nil.
-- @treturn integer|nil
function Lock:holder()
  local v = self.dict:get(self.key)
  return v and tonumber(v:match("^(%d+)")) or nil
end

-- poller ----------------------------------------------------------------------

--- Runs one poller per stream per node: the worker that holds the lock polls.
-- opts:
--   dict, key       the lock (lua_shared_dict and key; one key per stream)
--   start()         -> stream, run_opts: makes the stream (clients, listeners) when
--                      this worker becomes the poller; run_opts go to stream:run
--                      (put the shared checkpoint store there)
--   ttl (5)         lock lifetime; renewed every ttl/3 s by the holder
--   retry (1)       seconds between two tries of a worker that does not hold it
--   log             function(level, ...) (default ngx.log)
--   on_error        function(what, err): called when start raises or returns nil
--                   (what = "start") and when run returns nil, err (what = "run"),
--                   after the error is logged; e.g. to show it on a status page
-- Returns the lock object. Must be called where ngx.timer.at works
-- (init_worker_by_lua*); the polling itself runs in a timer, where cosockets work.
-- @tparam table opts `dict`, `key`, `start`, `ttl`, `retry`, `log`, `on_error`
-- @return the lock
function M.poller(opts)
  assert(type(opts) == "table" and type(opts.start) == "function", "openresty.poller: opts.start expected")
  assert(opts.on_error == nil or type(opts.on_error) == "function", "openresty.poller: opts.on_error must be a function")
  local lock = M.lock(opts.dict, opts.key, opts.ttl)
  local retry = opts.retry or 1
  local log = opts.log or ngx.log

  local function hold(stream, run_opts)
    local renewer = ngx.thread.spawn(function()
      while true do
        ngx.sleep(lock.ttl / 3)
        if ngx.worker.exiting() or not lock:renew() then
          stream:stop()
          return
        end
      end
    end)
    local ok, err = stream:run(run_opts)
    ngx.thread.kill(renewer)
    return ok, err
  end

  local function loop(premature)
    if premature then return end
    while not ngx.worker.exiting() do
      if lock:acquire() then
        log(ngx.NOTICE, "dynamodb_stream: worker ", ngx.worker.pid(), " polls ", opts.key)
        local ok, stream, run_opts = pcall(opts.start)
        if ok and stream then
          local done, err = hold(stream, run_opts or {})
          if not done then
            log(ngx.ERR, "dynamodb_stream: run ended: ", tostring(err))
            if opts.on_error then pcall(opts.on_error, "run", err) end
          end
        else
          log(ngx.ERR, "dynamodb_stream: start failed: ", tostring(stream))
          if opts.on_error then pcall(opts.on_error, "start", stream) end
        end
        lock:release()
        if not ngx.worker.exiting() then ngx.sleep(retry) end
      else
        ngx.sleep(retry)
      end
    end
    lock:release()
  end

  local ok, err = ngx.timer.at(0, loop)
  if not ok then error("openresty.poller: cannot start the timer: " .. tostring(err), 2) end
  return lock
end

return M
