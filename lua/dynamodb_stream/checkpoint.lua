--- A file checkpoint store for stream:run{ checkpoint = path } (or use it by hand:
-- stream:set_shard_state(store:load() or {}) ... store:save(stream:get_shard_state())).
--
--   local store = checkpoint.file(path[, { encode =, decode = }])
--   store:load()       -> state table, or nil when there is no file yet, or nil, err
--   store:save(state)  -> true, or nil, err
--   store:close()      releases the file (also __close, and when collected)
--
-- The first load or save takes an advisory lock (flock on path .. ".lock"),
-- held for the life of the store: a second consumer on the same file, in
-- another process or this one, gets nil, err with err.code "CheckpointLocked"
-- instead of overwriting the first one's positions.
-- save goes through core.write_file_atomic: a temporary file of its own
-- (mode 0600) beside the checkpoint, fsync, rename over it, fsync of the
-- directory. A crash at any moment leaves the old or the new state, never a
-- torn file.
-- @module dynamodb_stream.checkpoint
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")

local checkpoint = {}

local File = {}
File.__index = File

-- The stores of this process that hold a lock, by path; a store dropped
-- without close() stays here until collected.
local holders = setmetatable({}, { __mode = "v" })

local function fail(path, message, code)
  return nil, errors.new({ code = code or "CheckpointError", message = path .. ": " .. tostring(message),
    retryable = false })
end

--- A checkpoint store on a file: pass it as `stream:run{ checkpoint = store }` (a path
-- given there makes one), or use `load` and `save` by hand.
-- @tparam string path the checkpoint file (its lock is `path .. ".lock"`); raises when
-- empty or holding a NUL byte
-- @tparam[opt] table opts `encode` and `decode`: the JSON functions (default
-- `core.json_encode` and `core.json_decode`)
-- @treturn File the store
function checkpoint.file(path, opts)
  if type(path) ~= "string" or path == "" then error("checkpoint.file: path expected", 2) end
  if path:find("\0", 1, true) then error("checkpoint.file: path contains a NUL byte", 2) end
  opts = opts or {}
  local encode = opts.encode or core.json_encode
  local decode = opts.decode or core.json_decode
  if type(encode) ~= "function" or type(decode) ~= "function" then
    error("checkpoint.file: no JSON codec (core.json_encode/json_decode or opts.encode/decode)", 2)
  end
  return setmetatable({ path = path, encode = encode, decode = decode }, File)
end

--- A checkpoint store made by `checkpoint.file`; it holds the file's lock from its
-- first `load` or `save` until `close` (also `<close>`, and when collected).
-- @type File

-- Takes the lock on first use: true, or nil, err.
function File:_lock()
  if self._held then return true end
  local lock, err, code = core.lock_file(self.path)
  if not lock and code == "Locked" and holders[self.path] then
    -- Perhaps a store of this process that is unreachable but not yet
    -- collected (a run that ended): collecting it releases its lock.
    collectgarbage("collect")
    if not holders[self.path] then lock, err, code = core.lock_file(self.path) end
  end
  if not lock then
    if code ~= "Locked" then return fail(self.path, (err:gsub("^%w+: ", "", 1))) end
    local holder = holders[self.path] and "another store of this process" or "another process"
    return fail(self.path, "in use by " .. holder .. " (" .. self.path .. ".lock is locked); "
      .. "two consumers on one checkpoint file would overwrite each other's positions", "CheckpointLocked")
  end
  self._held = lock
  holders[self.path] = self
  return true
end

--- Reads the saved state (taking the lock first).
-- @treturn table|nil the state, or nil when there is no file yet; or `nil, err`
-- (`err.code` `CheckpointLocked`, or `CheckpointError` for a file that cannot be read
-- or is not a JSON object)
function File:load()
  local locked, lerr = self:_lock()
  if not locked then return nil, lerr end
  local f, err, errno = io.open(self.path, "rb")
  if not f then
    if errno == 2 then return nil end -- ENOENT: no checkpoint yet
    return fail(self.path, err)
  end
  local text, rerr = f:read("*a")
  f:close()
  if not text then return fail(self.path, "cannot be read: " .. tostring(rerr)) end
  local ok, state, derr = pcall(self.decode, text)
  if not ok or state == nil then return fail(self.path, "not valid JSON: " .. tostring(ok and derr or state)) end
  if type(state) ~= "table" then return fail(self.path, "not a JSON object") end
  return state
end

--- Writes the state atomically (temporary file of mode 0600, fsync, rename, fsync
-- of the directory): a crash leaves the old or the new state, never a torn file.
-- @tparam table state what `stream:get_shard_state()` returns
-- @return true, or `nil, err` (`CheckpointLocked`, `CheckpointError`)
function File:save(state)
  local locked, lerr = self:_lock()
  if not locked then return nil, lerr end
  local ok, text = pcall(self.encode, state)
  if not ok then return fail(self.path, text) end
  local written, err = core.write_file_atomic(self.path, text, tonumber("600", 8))
  if not written then return fail(self.path, err) end
  return true
end

--- Releases the lock; the store can take it again on its next `load` or `save`.
function File:close()
  if self._held then
    self._held:close()
    self._held = nil
    if holders[self.path] == self then holders[self.path] = nil end
  end
end
File.__close = File.close

return checkpoint
