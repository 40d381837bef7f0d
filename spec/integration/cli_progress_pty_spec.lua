-- The replicate progress display in a real pseudo-terminal (util-linux's
-- `script`) and piped: the terminal decision is the command's own
-- (cli.stdout_is_terminal, `test -t 1`); on the terminal one line redrawn in
-- place ending with one newline, piped plain lines without escape codes.
local helper = require("helper")

local q = helper.shell_quote

local HAVE_SCRIPT = helper.execute("command -v script >/dev/null 2>&1 && command -v stty >/dev/null 2>&1")

describe("cli_progress on a pseudo-terminal and piped", function()
  local dir

  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.rmdir(dir) end)

  -- The driver (spec/support/progress_driver.lua) with this interpreter and
  -- the spec's module paths; it writes its terminal decision in dir/decision.
  local function driver()
    local env = { LUA_PATH = package.path, LUA_CPATH = package.cpath, PATH = os.getenv("PATH"), HOME = dir }
    return helper.env_command(env, helper.lua .. " spec/support/progress_driver.lua " .. q(dir .. "/decision"))
  end

  -- Runs a shell command line (a pipeline too), its output into a file: exit
  -- status, output.
  local function run(command)
    local out = dir .. "/out"
    os.remove(out)
    os.remove(dir .. "/decision")
    local _, _, code = helper.execute("(" .. command .. ") >" .. q(out) .. " 2>&1 </dev/null")
    return code, helper.read_file(out)
  end

  it("on a pseudo-terminal: one line redrawn in place, then one newline", function()
    if not HAVE_SCRIPT then
      pending("script (util-linux) or stty is not installed: no pseudo-terminal to test in")
      return
    end
    -- stty -onlcr: the terminal passes "\n" as it is, so the capture is exactly what was written
    local code, out = run("script -qfec " .. q("stty -onlcr; " .. driver()) .. " /dev/null")
    assert.equals(0, code, out)
    assert.equals("terminal", helper.read_file(dir .. "/decision"))
    local draws = {}
    for draw in out:gmatch("\r[^\r]*") do draws[#draws + 1] = draw end
    assert.equals(out, table.concat(draws))                      -- nothing before the first "\r"
    assert.equals(11 + 4 + 1, #draws, out)                       -- every update (0.5 s apart) and the finish
    for i, draw in ipairs(draws) do
      local ending = i == #draws and "\n" or ""
      assert.matches("^\r[^%c]+\27%[K" .. ending .. "$", draw)     -- text, then erase the rest of the line
    end
    assert.equals("\rscan [----------] 0/1000 items (0%), 0 changes applied\27[K", draws[1])
    assert.equals("\rfollow 20 changes applied, lag 0.5 s\27[K", draws[12])
    assert.equals("\rfollow 50 changes applied, lag 0.5 s, caught up, after 7.0 s\27[K\n", draws[16])
    assert.equals(1, select(2, out:gsub("\n", "")))              -- the line ends once, at the finish
  end)

  it("piped: plain lines only, no escape code, no carriage return", function()
    local code, out = run(driver() .. " | cat")
    assert.equals(0, code, out)
    assert.equals("not a terminal", helper.read_file(dir .. "/decision"))
    assert.is_nil(out:find("[\27\r]"), out)
    assert.equals(table.concat({
      "replicate: scan 0/1000 items (0%), 0 changes applied\n",  -- the first update
      "replicate: follow 20 changes applied, lag 0.5 s\n",      -- the change of phase (5.5 s: before the next 10 s)
      "replicate: follow 50 changes applied, lag 0.5 s, caught up, stopped after 7.0 s\n",
    }), out)
  end)
end)
