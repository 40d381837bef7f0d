-- A file checkpoint store for stream:run{ checkpoint = path } (or use it by hand:
-- stream:set_shard_state(store:load() or {}) ... store:save(stream:get_shard_state())).
--
--   local store = checkpoint.file(path[, { encode =, decode = }])
--   store:load()       -> state table, or nil when there is no file yet, or nil, err
--   store:save(state)  -> true, or nil, err
--
-- save goes through core.write_file_atomic: a temporary file of mode 0600 beside
-- the checkpoint, fsync, rename over it, fsync of the directory. A crash at any
-- moment leaves the old or the new state, never a torn file.
local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")

local checkpoint = {}

local File = {}
File.__index = File

local function fail(path, message)
  return nil, errors.new({ code = "CheckpointError", message = path .. ": " .. tostring(message),
    retryable = false })
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
  local text = f:read("*a")
  f:close()
  local ok, state, derr = pcall(self.decode, text)
  if not ok or state == nil then return fail(self.path, "not valid JSON: " .. tostring(ok and derr or state)) end
  if type(state) ~= "table" then return fail(self.path, "not a JSON object") end
  return state
end

function File:save(state)
  local ok, text = pcall(self.encode, state)
  if not ok then return fail(self.path, text) end
  local written, err = core.write_file_atomic(self.path, text, tonumber("600", 8))
  if not written then return fail(self.path, err) end
  return true
end

return checkpoint
