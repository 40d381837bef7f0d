--- A small event emitter in the shape of Node's EventEmitter.
--
--   emitter:on(event, fn)          -> emitter (chainable); alias add_listener
--   emitter:once(event, fn)        -> emitter; fn runs at most once
--   emitter:off(event, fn)         -> emitter; removes fn (also when added with once); alias remove_listener
--   emitter:remove_all_listeners([event]) -> emitter
--   emitter:emit(event, ...)       -> true if a listener ran, false if none
--   emitter:emit_results(event, ...) -> { n, what each listener returned }
--   emitter:listener_count(event)  -> integer
--
-- Listeners run synchronously, in the order they were added. Adding or removing
-- listeners from inside a listener is safe: an emit calls the listeners that were
-- registered when it started, minus those removed since. Emitting 'error' with no
-- listener raises the error (Node does the same), so errors are never silent.
-- @module dynamodb_stream.emitter
local Emitter = {}
Emitter.__index = Emitter

--- Makes self (or a new table) an emitter with no listeners.
-- @tparam[opt] table self the object to turn into an emitter
-- @return the emitter
function Emitter.new(self)
  self = self or {}
  self._listeners = {}
  return setmetatable(self, Emitter)
end

local function check(event, fn)
  if type(event) ~= "string" then error("event name must be a string", 3) end
  if type(fn) ~= "function" then error("listener must be a function", 3) end
end

-- Lists are never changed in place: adding or removing makes a new one, so
-- an emit can walk the list it started with without copying it first.
local function without(list, entry)
  local out = {}
  for i = 1, #list do
    if list[i] ~= entry then out[#out + 1] = list[i] end
  end
  return out
end

local function add(self, event, fn, once)
  local list = self._listeners[event] or {}
  local copy = {} -- a loop, not table.move: Lua 5.1 has none
  for i = 1, #list do copy[i] = list[i] end
  copy[#copy + 1] = { fn = fn, once = once }
  self._listeners[event] = copy
  return self
end

--- Adds a listener (alias `add_listener`).
-- @param event the event name
-- @tparam function fn the listener
-- @return the emitter, for chaining
function Emitter:on(event, fn)
  check(event, fn)
  return add(self, event, fn, false)
end

--- Adds a listener that runs at most once.
-- @param event the event name
-- @tparam function fn the listener
-- @return the emitter
function Emitter:once(event, fn)
  check(event, fn)
  return add(self, event, fn, true)
end

--- Removes the most recently added registration of fn for event.
-- (also when it was added with `once`; alias `remove_listener`).
-- @param event the event name
-- @tparam function fn the listener
-- @return the emitter
function Emitter:off(event, fn)
  check(event, fn)
  local list = self._listeners[event]
  if not list then return self end
  for i = #list, 1, -1 do
    local entry = list[i]
    if entry.fn == fn then
      entry.removed = true
      self._listeners[event] = without(list, entry)
      break
    end
  end
  return self
end

--- Removes every listener of event, or of every event when event is nil.
-- @param[opt] event the event name
-- @return the emitter
function Emitter:remove_all_listeners(event)
  local function mark(list)
    for _, entry in ipairs(list) do entry.removed = true end
  end
  if event == nil then
    for _, list in pairs(self._listeners) do mark(list) end
    self._listeners = {}
  else
    mark(self._listeners[event] or {})
    self._listeners[event] = nil
  end
  return self
end

--- How many listeners event has.
-- @param event the event name
-- @treturn integer
function Emitter:listener_count(event)
  local list = self._listeners[event]
  return list and #list or 0
end

-- emit's work; results (when given) gets the first value each listener returned.
local function call_listeners(self, event, results, ...)
  local list = self._listeners[event]
  if not list or #list == 0 then
    if event == "error" then error((...), 0) end
    return false
  end
  for i = 1, #list do
    local entry = list[i]
    if not entry.removed then
      if entry.once then
        entry.removed = true
        self._listeners[event] = without(self._listeners[event], entry)
      end
      local first = entry.fn(...)
      if results then
        results.n = results.n + 1
        results[results.n] = first
      end
    end
  end
  return true
end

--- Calls the listeners of event with the arguments, in the order they were added.
-- Emitting `'error'` with no listener raises the error.
-- @param event the event name
-- @param ... the listeners' arguments
-- @treturn boolean whether a listener ran
function Emitter:emit(event, ...)
  return call_listeners(self, event, nil, ...)
end

--- Calls the listeners as emit does, and collects what they answered (the
-- stream's 'batch' listeners answer which record failed).
-- @param event the event name
-- @param ... the listeners' arguments
-- @treturn table the first value each listener returned, in order, with n =
-- how many ran (a listener that returned nothing leaves a hole)
function Emitter:emit_results(event, ...)
  local results = { n = 0 }
  call_listeners(self, event, results, ...)
  return results
end

Emitter.add_listener = Emitter.on
Emitter.remove_listener = Emitter.off
Emitter.addListener = Emitter.on
Emitter.removeListener = Emitter.off
Emitter.removeAllListeners = Emitter.remove_all_listeners
Emitter.listenerCount = Emitter.listener_count

return Emitter
