-- core.run_process: a program run without a shell, under a deadline and an
-- output cap; its process group killed on timeout; no zombie, no descriptor left.
local helper = require("helper")
local core = require("dynamodb_stream.core")

local function sh(script, opts)
  return core.run_process({ "sh", "-c", script }, opts or { timeout = 10 })
end

local function own_pid()
  return assert(helper.read_file("/proc/self/stat"):match("^(%d+)"))
end

-- The descriptors this process holds, and its children that are zombies.
local function open_fds()
  return helper.capture("ls /proc/" .. own_pid() .. "/fd | wc -l")
end

local function zombie_children()
  local me, zombies = own_pid(), {}
  for stat in helper.capture("cat /proc/[0-9]*/stat 2>/dev/null"):gmatch("[^\n]+") do
    local pid, state, ppid = stat:match("^(%d+) %b() (%a) (%d+)")
    if ppid == me and state == "Z" then zombies[#zombies + 1] = pid end
  end
  return zombies
end

-- Waits (up to 5 s) for a killed process to go: SIGKILL is delivered asynchronously.
local function gone(pid)
  for _ = 1, 500 do
    if not helper.alive(pid) then return true end
    core.sleep(0.01)
  end
  return false
end

describe("core.run_process", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmdir(dir) end)

  it("returns stdout, stderr and the exit status apart", function()
    local out, err, status = sh("printf out; printf err >&2; exit 3")
    assert.equals("out", out)
    assert.equals("err", err)
    assert.equals(3, status)
    out, err, status = sh("true")
    assert.same({ "", "", 0 }, { out, err, status })
  end)

  it("passes each argument as it is, through no shell", function()
    local out, _, status = core.run_process({ "printf", "[%s]", "a b", "$HOME", "; echo x", "'q'", "" },
      { timeout = 10 })
    assert.equals(0, status)
    assert.equals("[a b][$HOME][; echo x]['q'][]", out)
  end)

  it("gives the program /dev/null as stdin", function()
    local out, _, status = core.run_process({ "cat" }, { timeout = 10 })
    assert.equals("", out)
    assert.equals(0, status)
  end)

  it("reports a child killed by a signal as 128 + the signal", function()
    local _, _, status = sh("kill -9 $$")
    assert.equals(128 + 9, status)
    _, _, status = sh("kill -15 $$")
    assert.equals(128 + 15, status)
  end)

  it("kills a program that hangs at the timeout, and its process group", function()
    local pidfile = dir .. "/pid"
    local out, err, code = sh("echo $$ > " .. pidfile .. "; sleep 30", { timeout = 0.2 })
    assert.is_nil(out)
    assert.equals("Timeout", code)
    assert.matches("^Timeout: 'sh' did not finish within 0.2 s$", err)
    assert.is_true(gone(assert(helper.read_file(pidfile)):match("%d+")))
  end)

  it("kills a grandchild that keeps the pipe open when the program hangs", function()
    local pidfile = dir .. "/pid"
    local out, _, code = sh("sleep 30 & echo $! > " .. pidfile .. "; wait", { timeout = 0.2 })
    assert.is_nil(out)
    assert.equals("Timeout", code)
    assert.is_true(gone(assert(helper.read_file(pidfile)):match("%d+")))
  end)

  it("returns when the program exits though a grandchild holds its pipes, and kills the grandchild", function()
    local pidfile = dir .. "/pid"
    -- Without the group kill (or with a wait for end of file) this would end in Timeout.
    local out, err, status = sh("sleep 30 & echo $! > " .. pidfile .. "; echo done; echo warn >&2; exit 4",
      { timeout = 20 })
    assert.equals("done\n", out)
    assert.equals("warn\n", err)
    assert.equals(4, status)
    assert.is_true(gone(assert(helper.read_file(pidfile)):match("%d+")))
  end)

  it("returns when the program exits though a process outside its group holds its pipes", function()
    local pidfile = dir .. "/pid"
    local out, _, status = sh("setsid sleep 30 & echo $! > " .. pidfile .. "; echo done", { timeout = 20 })
    local escaped = assert(helper.read_file(pidfile)):match("%d+")
    os.execute("kill " .. escaped)
    assert.equals("done\n", out)
    assert.equals(0, status)
  end)

  it("times out a program that closed its output and keeps running", function()
    local out, _, code = sh("exec >&- 2>&-; sleep 30", { timeout = 0.2 })
    assert.is_nil(out)
    assert.equals("Timeout", code)
  end)

  it("fails with ProcessError, signalling nothing, when another wait took the exit status", function()
    -- An ignored SIGCHLD survives exec: the interpreter starts with its children reaped for it.
    local code = 'local out, err, code = require("dynamodb_stream.core").run_process({ "true" }, { timeout = 5 })'
      .. ' io.write(tostring(out), " ", tostring(code), " ", tostring(err))'
    local ignore = "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])"
    local out = helper.capture("LUA_PATH=" .. helper.shell_quote(package.path) .. " LUA_CPATH="
      .. helper.shell_quote(package.cpath) .. " python3 -c " .. helper.shell_quote(ignore) .. " " .. helper.lua
      .. " -e " .. helper.shell_quote(code) .. " 2>&1")
    assert.equals("nil ProcessError ProcessError: the exit status of 'true' was taken by another wait"
      .. " (is SIGCHLD ignored?)", out)
  end)

  it("reads output far larger than a pipe's buffer", function()
    local out, err, status = sh("head -c 1000000 /dev/zero; head -c 48576 /dev/zero >&2")
    assert.equals(0, status)
    assert.equals(1000000, #out)
    assert.equals(48576, #err)
    assert.equals(("\0"):rep(1000000), out)
  end)

  it("kills a program that prints more than max_output, stdout and stderr together", function()
    local out, err, code = sh("head -c 3000000 /dev/zero")
    assert.is_nil(out)
    assert.equals("OutputTooLarge", code)
    assert.equals("OutputTooLarge: 'sh' printed more than 1048576 bytes", err)
    out, err, code = sh("yes", { timeout = 10, max_output = 100 })
    assert.is_nil(out)
    assert.equals("OutputTooLarge", code)
    assert.matches("more than 100 bytes", err)
    out, err, code = sh("printf 12345; printf 67890 >&2", { timeout = 10, max_output = 9 })
    assert.equals("OutputTooLarge", code)
    out, err = sh("printf 12345; printf 67890 >&2", { timeout = 10, max_output = 10 })
    assert.same({ "12345", "67890" }, { out, err })
  end)

  it("fails with SpawnError for a missing or non-executable program", function()
    local out, err, code = core.run_process({ "no-such-program-for-ds-spec" }, { timeout = 10 })
    assert.is_nil(out)
    assert.equals("SpawnError", code)
    assert.equals("SpawnError: cannot run 'no-such-program-for-ds-spec': No such file or directory", err)
    local script = dir .. "/not-executable"
    helper.write_file(script, "#!/bin/sh\necho hi\n")
    out, err, code = core.run_process({ script }, { timeout = 10 })
    assert.is_nil(out)
    assert.equals("SpawnError", code)
    assert.matches("Permission denied", err, 1, true)
  end)

  it("leaves no zombie and no descriptor behind", function()
    local function every_kind()
      sh("echo x")
      sh("sleep 30", { timeout = 0.05 })
      sh("head -c 300000 /dev/zero", { timeout = 10, max_output = 1000 })
      sh("sleep 30 & echo grandchild")
      core.run_process({ "no-such-program-for-ds-spec" }, { timeout = 10 })
    end
    -- Once first, so that a descriptor something opens for good on first use is not
    -- taken for a leak: one ASan run counted one more after the loop than before it
    -- (not seen again; every path of process.c closes what it opened).
    every_kind()
    collectgarbage()
    local before = open_fds()
    for _ = 1, 3 do every_kind() end
    collectgarbage()
    assert.equals(before, open_fds())
    assert.same({}, zombie_children())
  end)

  it("raises on bad arguments", function()
    local function raises(pattern, argv, opts)
      local ok, err = pcall(core.run_process, argv, opts)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    raises("table expected", "echo hi", { timeout = 1 })
    raises("table expected", { "true" }, nil)
    raises("argv must be a list of 1 to 4095 strings", {}, { timeout = 1 })
    raises("argv%[2%] must be a string", { "echo", 1 }, { timeout = 1 })
    raises("argv%[1%] must be a string", { { "x" } }, { timeout = 1 })
    raises("argv%[2%] contains a NUL byte", { "echo", "a\0b" }, { timeout = 1 })
    raises("the program%) is empty", { "" }, { timeout = 1 })
    raises("opts.timeout must be a number", { "true" }, {})
    raises("opts.timeout must be a number", { "true" }, { timeout = "1" })
    raises("opts.timeout must be > 0", { "true" }, { timeout = 0 })
    raises("opts.timeout must be > 0", { "true" }, { timeout = -1 })
    raises("opts.timeout must be > 0", { "true" }, { timeout = 0 / 0 })
    raises("opts.timeout must be > 0", { "true" }, { timeout = math.huge })
    raises("opts.max_output must be a positive integer", { "true" }, { timeout = 1, max_output = 0 })
    raises("opts.max_output must be a positive integer", { "true" }, { timeout = 1, max_output = 1.5 })
    raises("opts.max_output must be a positive integer", { "true" }, { timeout = 1, max_output = "9" })
  end)
end)
