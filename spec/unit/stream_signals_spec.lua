-- run{ stop_on_signals = true }: SIGTERM or SIGINT stops run as stop() does,
-- at once in an idle pause, and the process's own handlers are back afterwards.
-- Each case is a child process, signalled from here.
local helper = require("helper")

-- The child: a stream on the in-process fake, idle pauses of 5 s, a line when
-- run starts polling, one when it returns, then SIGTERM to itself (which must
-- now end it: the default handler is back).
local CHILD = [[
local Fake = require("fake_streams")
local Stream = require("dynamodb_stream.stream")
local core = require("dynamodb_stream.core")
local fake = Fake.new()
fake:add_shard("A")
local polls = 0
local started = core.monotime()
local real = fake.get_records
fake.get_records = function(...)
  polls = polls + 1
  if polls == 1 then io.write("polling\n") io.flush() end
  return real(...)
end
local stream = Stream.new(fake, fake.stream_arn)
local ok, err = stream:run({ stop_on_signals = true, interval = 5, max_interval = 5, duration = 20 })
io.write(string.format("returned %s %s after %.1f s, %d polls\n", tostring(ok), tostring(err),
  core.monotime() - started, polls))
io.flush()
local pid = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
os.execute("kill -TERM " .. pid)
core.sleep(2)
io.write("still alive\n")
]]

-- Starts dir/child.lua in the background: the pipe of its output (its pid on
-- the first line, "status=N" on the last) and the pid. (The shell's own
-- "Terminated" notice goes to /dev/null; each child bounds itself with a
-- duration: no `timeout` in between, whose own handling of SIGINT, sent on to
-- its whole process group, is not what is tested.)
local function start_child(dir)
  local cmd = string.format("(LUA_PATH=%s LUA_CPATH=%s %s %s/child.lua & echo $!; wait $!; "
    .. "echo status=$?) 2>/dev/null", helper.shell_quote(package.path), helper.shell_quote(package.cpath),
    helper.lua, dir)
  local p = assert(io.popen(cmd))
  return p, p:read("*l")
end

describe("run with stop_on_signals", function()
  for _, signal in ipairs({ "TERM", "INT" }) do
    it("stops on SIG" .. signal .. " during an idle pause, then gives the signal back", function()
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/child.lua", CHILD)
      local p, pid = start_child(dir)
      assert.equals("polling", p:read("*l"))
      os.execute("sleep 0.3; kill -" .. signal .. " " .. pid)
      local out = p:read("*a")
      p:close()
      helper.rmdir(dir)
      local seconds = tonumber(out:match("after ([%d.]+) s"))
      assert.matches("^returned true nil after", out)
      assert.is_true(seconds < 3, out) -- the 5 s pause was cut short
      assert.not_matches("still alive", out)
      assert.matches("status=143", out) -- killed by its own SIGTERM: the default handler is back
    end)
  end

  it("ends the process at once on a second signal, while a listener is still busy", function()
    local dir = helper.tmpdir()
    -- the listener takes 8 s over its record; the first SIGTERM can only stop run after it
    helper.write_file(dir .. "/child.lua", [[
local Fake = require("fake_streams")
local Stream = require("dynamodb_stream.stream")
local core = require("dynamodb_stream.core")
local fake = Fake.new()
fake:add_shard("A")
fake:insert("A", { pk = "k" })
local stream = Stream.new(fake, fake.stream_arn, { start_at = "TRIM_HORIZON" })
stream:on("record", function()
  io.write("busy\n") io.flush()
  local t = core.monotime()
  while core.monotime() - t < 8 do end
end)
stream:run({ stop_on_signals = true, duration = 20 })
io.write("returned\n")
]])
    local p, pid = start_child(dir)
    assert.equals("busy", p:read("*l"))
    local core = require("dynamodb_stream.core")
    local t = core.monotime()
    os.execute("kill -TERM " .. pid .. "; sleep 0.3; kill -TERM " .. pid)
    local out = p:read("*a")
    p:close()
    helper.rmdir(dir)
    assert.is_true(core.monotime() - t < 4, "the busy listener was waited for")
    assert.not_matches("returned", out)
    assert.matches("status=143", out)
  end)

  it("refuses a value that is not a boolean", function()
    local Stream = require("dynamodb_stream.stream")
    local fake = require("fake_streams").new()
    local stream = Stream.new(fake, fake.stream_arn)
    assert.has_error(function() stream:run({ stop_on_signals = "yes" }) end, "run: stop_on_signals must be a boolean")
  end)
end)
