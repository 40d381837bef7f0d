-- The rockspec builds what make builds: every C source and every Lua module.
local helper = require("helper")
local function rockspec()
  local env = {}
  local chunk = assert(loadfile("rockspec/dynamodb_stream-scm-1.rockspec", "t", env))
  if setfenv then setfenv(chunk, env) end -- Lua 5.1 takes no env in loadfile
  chunk()
  return env
end

local function listing(cmd)
  local names = {}
  local p = assert(io.popen(cmd))
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

describe("rockspec", function()
  local spec = rockspec()

  it("compiles every C source in csrc/", function()
    local sources = spec.build.modules["dynamodb_stream.core"].sources
    table.sort(sources)
    assert.same(listing("ls csrc/*.c"), sources)
  end)

  it("installs every Lua module in lua/dynamodb_stream/", function()
    local files = {}
    for name, source in pairs(spec.build.modules) do
      if name ~= "dynamodb_stream.core" then
        files[#files + 1] = source
        -- a package (a folder) is its init.lua
        local path = "lua/" .. name:gsub("%.", "/")
        if source ~= path .. ".lua" then assert.equals(path .. "/init.lua", source) end
      end
    end
    table.sort(files)
    assert.same(listing("ls lua/dynamodb_stream/*.lua lua/dynamodb_stream/*/*.lua"), files)
  end)

  it("installs bin/dynamodb-stream", function()
    assert.same({ ["dynamodb-stream"] = "bin/dynamodb-stream" }, spec.build.install.bin)
  end)

  -- make install: every module, and the command with the interpreter and the
  -- module directories of that make, so it runs with an empty environment
  -- from any PREFIX.
  it("make install installs a command that runs from the prefix with no LUA_PATH", function()
    local dir = helper.tmpdir()
    local ok = helper.execute("make -s install PREFIX=" .. helper.shell_quote(dir) .. " >" .. helper.shell_quote(dir .. "/log") .. " 2>&1")
    local log = helper.read_file(dir .. "/log")
    local bin = dir .. "/bin/dynamodb-stream"
    local first = (helper.read_file(bin) or ""):match("^[^\n]*")
    local out = helper.capture("env -i " .. helper.shell_quote(bin) .. " --version 2>&1")
    local installed = helper.capture("cd " .. helper.shell_quote(dir .. "/share/lua/5.4") .. " && find . -name '*.lua' | sort")
    helper.rmdir(dir)
    assert.is_true(ok, log)
    assert.equals("#!" .. helper.capture("command -v lua5.4"):gsub("\n$", ""), first)
    assert.matches("^dynamodb%-stream %S+\n$", out)
    assert.equals(helper.capture("cd lua && find . -name '*.lua' | sort"), installed)
  end)

  -- Each luarocks line of the README's "Build and install", run as written
  -- (in a copy of the tracked files, with a temporary tree as LuaRocks'
  -- only tree), installs a module that works from that tree under each
  -- interpreter of its Lua version: the same in every phase, so run in one.
  local once_it = helper.phase_it(it, pending, "lua5.4")
  once_it("luarocks lines of the README build and install a module that works from the installed tree", function()
    local readme = assert(helper.read_file("README.md"))
    local section = assert(readme:match("\n## Build and install\n(.-)\n## "), "README has no Build and install section")
    local lines = {}
    for line in section:gmatch("[^\n]+") do
      if line:match("^luarocks ") then lines[#lines + 1] = line:gsub("%s+#.*$", "") end
    end
    assert.is_true(#lines > 0, "no luarocks line in README's Build and install")
    local interpreters = { ["5.4"] = { "lua5.4" }, ["5.3"] = { "lua5.3" }, ["5.1"] = { "lua5.1", "luajit" } }
    for _, line in ipairs(lines) do
      local version = assert(line:match("%-%-lua%-version[ =](5%.%d)"), "no --lua-version in: " .. line)
      local dir = helper.tmpdir()
      local ok, log = helper.luarocks(dir, line)
      local outs = {}
      for _, lua in ipairs(interpreters[version]) do
        outs[lua] = helper.run_lua({
          LUA_PATH = dir .. "/tree/share/lua/" .. version .. "/?.lua;" .. dir .. "/tree/share/lua/" .. version .. "/?/init.lua",
          LUA_CPATH = dir .. "/tree/lib/lua/" .. version .. "/?.so",
        }, [[
          local ds = require("dynamodb_stream")
          local av = ds.marshall({ pk = "a", n = 1, l = ds.empty_list() })
          local so -- package.searchpath, which Lua 5.1 lacks
          for template in package.cpath:gmatch("[^;]+") do
            local path = template:gsub("%?", "dynamodb_stream/core")
            local f = io.open(path)
            if f and not so then f:close() so = path end
          end
          io.write(so, " ", ds.json_encode(ds.unmarshall(av).l))
        ]], lua)
      end
      -- the command, through the wrapper luarocks wrote into the tree's bin/
      local command = helper.capture(helper.env_command({ PATH = os.getenv("PATH") },
        helper.shell_quote(dir .. "/tree/bin/dynamodb-stream") .. " --version 2>&1"))
      helper.rmdir(dir)
      assert.is_true(ok, line .. "\n" .. log)
      assert.matches("^dynamodb%-stream %S+\n$", command, nil, line .. ": " .. command)
      for lua, out in pairs(outs) do
        assert.matches("/tree/lib/lua/" .. version .. "/dynamodb_stream/core.so []", out, 1, true, lua .. ": " .. out)
      end
    end
  end)
end)
