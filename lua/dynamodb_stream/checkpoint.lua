-- A file checkpoint store for stream:run{ checkpoint = path } (or use it by hand:
-- stream:set_shard_state(store:load() or {}) ... store:save(stream:get_shard_state())).
--
--   local store = checkpoint.file(path[, { encode =, decode = }])
--   store:load()       -> state table, or nil when there is no file yet, or nil, err
--   store:save(state)  -> true, or nil, err
--
-- save writes the whole state to a temporary file in the same directory and
-- renames it over the old one, so a crash leaves the old or the new state,
-- never a torn file. With core.write_file_atomic (C: O_EXCL temp file with the
-- given mode, fsync, rename, fsync of the directory) the file is mode 0600 and
-- durable; the pure Lua fallback gets the rename but not the fsync or the mode.
local errors = require("dynamodb_stream.errors")

local ok_core, core = pcall(require, "dynamodb_stream.core")
if not ok_core then core = {} end

local checkpoint = {}

local MODE = 384 -- 0600

local File = {}
File.__index = File

local function fail(path, message)
  return nil, errors.new({ code = "CheckpointError", message = path .. ": " .. tostring(message),
    retryable = false })
end

-- Writes data to path atomically. Returns true or nil, message.
local function write_atomic(path, data)
  if core.write_file_atomic then return core.write_file_atomic(path, data, MODE) end
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(data)
  if ok then ok, werr = f:flush() end
  f:close()
  if ok and core.fsync_file then ok, werr = core.fsync_file(tmp) end
  if not ok then
    os.remove(tmp)
    return nil, werr
  end
  return os.rename(tmp, path)
end

function checkpoint.file(path, opts)
  if type(path) ~= "string" or path == "" then error("checkpoint.file: path expected", 2) end
  opts = opts or {}
  local encode = opts.encode or core.json_encode
  local decode = opts.decode or core.json_decode
  if type(encode) ~= "function" or type(decode) ~= "function" then
    error("checkpoint.file: no JSON codec (core.json_encode/json_decode or opts.encode/decode)", 2)
  end
  return setmetatable({ path = path, encode = encode, decode = decode }, File)
end

function File:load()
  local f, err, errno = io.open(self.path, "rb")
  if not f then
    if errno == 2 then return nil end -- ENOENT: no checkpoint yet
    return fail(self.path, err)
  end
  local text = f:read("a")
  f:close()
  local ok, state, derr = pcall(self.decode, text)
  if not ok or state == nil then return fail(self.path, "not valid JSON: " .. tostring(ok and derr or state)) end
  if type(state) ~= "table" then return fail(self.path, "not a JSON object") end
  return state
end

function File:save(state)
  local ok, text = pcall(self.encode, state)
  if not ok then return fail(self.path, text) end
  local written, err = write_atomic(self.path, text)
  if not written then return fail(self.path, err) end
  return true
end

return checkpoint
