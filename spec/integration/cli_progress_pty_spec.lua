-- The replicate progress display in a real pseudo-terminal (util-linux's
-- `script`) and piped: the terminal decision is the command's own
-- (cli.stdout_is_terminal, `test -t 1`); on the terminal one line redrawn in
-- place ending with one newline, piped plain lines without escape codes.
-- First a driver feeding the display, then `dynamodb-stream replicate
-- --until-caught-up` itself against DynamoDB Local.
local ds = require("dynamodb_stream")
local helper = require("helper")

local q = helper.shell_quote

local HAVE_SCRIPT = helper.execute("command -v script >/dev/null 2>&1 && command -v stty >/dev/null 2>&1")
local NO_SCRIPT = "script (util-linux) or stty is not installed: no pseudo-terminal to test in"

-- Runs a shell command line (a pipeline too), its output into the file out:
-- exit status, output.
local function run(command, out)
  os.remove(out)
  local _, _, code = helper.execute("(" .. command .. ") >" .. q(out) .. " 2>&1 </dev/null")
  return code, helper.read_file(out)
end

-- Runs command_line with its stdout and stderr piped into cat, the output
-- into the file out: command_line's exit status (sh has no pipefail), output.
local function run_piped(command_line, out)
  local status = out .. ".status"
  os.remove(status)
  local code, text = run("{ " .. command_line .. " 2>&1; echo $? >" .. q(status) .. "; } | cat", out)
  assert.equals(0, code, text)
  return tonumber(helper.read_file(status)), text
end

-- The command line that runs command_line on a pseudo-terminal; stty -onlcr:
-- the terminal passes "\n" as it is, so the capture is exactly what was written.
local function on_terminal(command_line)
  return "script -qfec " .. q("stty -onlcr; " .. command_line) .. " /dev/null"
end

-- The redraws of a capture ("\r" text "\27[K", the last one then "\n"),
-- checked: nothing else in it, one newline at the very end.
local function redraws(out)
  local draws = {}
  for draw in out:gmatch("\r[^\r]*") do draws[#draws + 1] = draw end
  assert.equals(out, table.concat(draws))                      -- nothing before the first "\r"
  for i, draw in ipairs(draws) do
    assert.matches("^\r[^%c]+\27%[K" .. (i == #draws and "\n" or "") .. "$", draw)
  end
  assert.equals(1, select(2, out:gsub("\n", "")))              -- the line ends once, at the finish
  return draws
end

describe("cli_progress on a pseudo-terminal and piped", function()
  local dir

  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.rmdir(dir) end)

  -- The driver (spec/support/progress_driver.lua) with this interpreter and
  -- the spec's module paths; it writes its terminal decision in dir/decision.
  local function driver(mode)
    local env = { LUA_PATH = package.path, LUA_CPATH = package.cpath, PATH = os.getenv("PATH"), HOME = dir }
    return helper.env_command(env, helper.lua .. " spec/support/progress_driver.lua " .. q(dir .. "/decision")
      .. (mode and " " .. mode or ""))
  end

  local function run_driver(command, pipe)
    os.remove(dir .. "/decision")
    return (pipe and run_piped or run)(command, dir .. "/out")
  end

  it("on a pseudo-terminal: one line redrawn in place, then one newline", function()
    if not HAVE_SCRIPT then
      pending(NO_SCRIPT)
      return
    end
    local code, out = run_driver(on_terminal(driver()))
    assert.equals(0, code, out)
    assert.equals("terminal", helper.read_file(dir .. "/decision"))
    local draws = redraws(out)
    assert.equals(11 + 4 + 1, #draws, out)                       -- every update (0.5 s apart) and the finish
    assert.equals("\rscan [----------] 0/1000 items (0%), 0 changes applied\27[K", draws[1])
    assert.equals("\rfollow 20 changes applied, lag 0.5 s\27[K", draws[12])
    assert.equals("\rfollow 50 changes applied, lag 0.5 s, caught up, after 7.0 s\27[K\n", draws[16])
  end)

  it("on a pseudo-terminal: an error written mid-way (after interrupt) has a line of its own", function()
    if not HAVE_SCRIPT then
      pending(NO_SCRIPT)
      return
    end
    local code, out = run_driver(on_terminal(driver("interrupt")))
    assert.equals(0, code, out)
    local scan, err, rest = out:match("^(.-\n)([^\r]*\n)(.*)$")
    assert.truthy(scan, out)
    assert.equals(11, #redraws(scan))                            -- the scan's line, ended and kept
    assert.equals("dynamodb-stream: replicate: ThrottlingException (retrying)\n", err)
    local follow = redraws(rest)                                 -- then a new line, redrawn in place
    assert.equals(5, #follow)
    assert.equals("\rfollow 20 changes applied, lag 0.5 s\27[K", follow[1])
  end)

  it("piped: plain lines only, no escape code, no carriage return", function()
    local code, out = run_driver(driver(), "piped")
    assert.equals(0, code, out)
    assert.equals("not a terminal", helper.read_file(dir .. "/decision"))
    assert.is_nil(out:find("[\27\r]"), out)
    assert.equals(table.concat({
      "replicate: scan 0/1000 items (0%), 0 changes applied\n",  -- the first update
      "replicate: scan done, 1000 items; follow 20 changes applied, lag 0.5 s\n", -- the change of phase (at 5.5 s)
      "replicate: follow 50 changes applied, lag 0.5 s, caught up, stopped after 7.0 s\n",
    }), out)
  end)
end)

describe("dynamodb-stream replicate --until-caught-up, on a pseudo-terminal and piped (DynamoDB Local)", function()
  local ddb, opts, dir
  local ITEMS = 60

  setup(function()
    opts = helper.local_opts("progresspty")
    ddb = ds.dynamodb(opts)
    dir = helper.tmpdir()
  end)
  teardown(function() helper.rmdir(dir) end)

  -- A source table with a stream and ITEMS items, and the name of its copy.
  local function source(prefix)
    local name = prefix .. os.time() .. math.random(1000, 9999)
    helper.create_stream_table(ddb, name)
    local puts = {}
    for i = 1, ITEMS do
      puts[i] = { PutRequest = { Item = { pk = { S = "k" .. i }, n = { N = tostring(i) } } } }
    end
    assert(ddb:batch_write_all(name, puts))
    return name, name .. "_copy"
  end

  local function copied(target)
    local answer = assert(ddb:scan({ TableName = target, Select = "COUNT" }))
    return answer.Count
  end

  local function replicate(src, dst)
    return helper.cli_command(opts, dir, { "replicate", src, dst, "--create-target", "--until-caught-up",
      "--duration", "60" })
  end

  it("on a pseudo-terminal: the scan, then the follow, redrawn in place on one line", function()
    if not HAVE_SCRIPT then
      pending(NO_SCRIPT)
      return
    end
    local src, dst = source("progress_tty")
    local code, out = run(on_terminal(replicate(src, dst)), dir .. "/tty.out")
    assert.equals(0, code, out)
    local draws = redraws(out)
    assert.matches("^\rscan ", draws[1])
    assert.matches("^\rfollow ", draws[#draws])
    assert.truthy(draws[#draws]:find(", caught up, after ", 1, true), draws[#draws])
    assert.equals(ITEMS, copied(dst))
  end)

  it("piped: plain log lines, no escape code, no carriage return", function()
    local src, dst = source("progress_pipe")
    local code, out = run_piped(replicate(src, dst), dir .. "/pipe.out")
    assert.equals(0, code, out)
    assert.is_nil(out:find("[\27\r]"), out)
    local lines = {}
    for line in out:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
    assert.equals(out, table.concat(lines, "\n") .. "\n")    -- every line ends with "\n"
    assert.is_true(#lines >= 2, out)
    for _, line in ipairs(lines) do assert.matches("^replicate: %a+ ", line) end
    assert.matches("^replicate: scan ", lines[1])
    assert.truthy(out:find("\nreplicate: scan done, " .. ITEMS .. " items; follow ", 1, true), out)
    assert.matches("^replicate: follow .*, caught up, stopped after ", lines[#lines])
    assert.equals(ITEMS, copied(dst))
  end)
end)
