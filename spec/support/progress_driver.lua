-- Child of spec/integration/cli_progress_pty_spec.lua: shows a scan and a
-- follow on a cli_progress display on stdout, terminal or not as the command
-- decides (cli.stdout_is_terminal), over a clock stepping 0.5 s an update (every
-- update is drawn on a terminal, plain lines follow their 10 s rule). Writes
-- the decision ("terminal" or "not a terminal") into the file arg[1]. With
-- arg[2] == "interrupt", an error on stderr between the scan and the follow,
-- as the command writes a retried error (display:interrupt() first).
local cli = require("dynamodb_stream.cli")
local cli_progress = require("dynamodb_stream.cli_progress")

local terminal = cli.stdout_is_terminal()
local decision = assert(io.open(arg[1], "w"))
decision:write(terminal and "terminal" or "not a terminal")
decision:close()

local now = 0
local display = cli_progress.new({
  write = function(text) io.stdout:write(text) io.stdout:flush() end,
  terminal = terminal,
  clock = function() return now end,
  width = 80,
})
for i = 0, 10 do
  now = i * 0.5
  display:update({ phase = "scan", scanned = i * 100, estimated = 1000, written = i * 100, changes = i,
    caught_up = false, elapsed = now })
end
if arg[2] == "interrupt" then
  display:interrupt()
  io.stderr:write("dynamodb-stream: replicate: ThrottlingException (retrying)\n")
end
for i = 1, 4 do
  now = 5 + i * 0.5
  display:update({ phase = "follow", scanned = 1000, estimated = 1000, written = 1000, changes = 10 + i * 10,
    lag = 0.5, caught_up = i == 4, elapsed = now })
end
display:finish()
