--- What the code runs in: inside nginx or not, whether the running code may
-- yield to nginx's event loop, and the sleep that fits. The clients pick
-- their transport by it, run() its sleep and the stream where it reports.
-- @module dynamodb_stream.runtime
local core = require("dynamodb_stream.core")

local M = {}

-- Phases where cosockets and ngx.sleep may be used.
local YIELDING_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

--- The ngx API table when running inside nginx (lua-nginx-module), else nil.
-- @treturn table|nil the global `ngx`
function M.ngx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.socket) == "table" and ngx.socket.tcp and ngx.get_phase then
    return ngx
  end
  return nil
end

--- True when running inside nginx (the ngx API is there), whatever the phase.
-- @treturn boolean
function M.in_nginx()
  return M.ngx() ~= nil
end

--- True when cosockets (and ngx.sleep) can be used in the current phase.
-- @treturn boolean
function M.can_yield()
  local ngx = M.ngx()
  if not ngx then return false end
  local ok, phase = pcall(ngx.get_phase)
  return ok and YIELDING_PHASES[phase] == true
end

--- Sleeps: ngx.sleep where it can yield, core.sleep (blocking) elsewhere.
-- @tparam number seconds
function M.sleep(seconds)
  if M.can_yield() then return M.ngx().sleep(seconds) end
  return core.sleep(seconds)
end

return M
