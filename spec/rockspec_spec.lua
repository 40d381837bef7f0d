-- The rockspec builds what make builds: every C source and every Lua module.
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

  it("luarocks make builds and installs a module that works from the installed tree", function()
    local helper = require("helper")
    local dir = helper.tmpdir()
    local q = helper.shell_quote
    -- Build from a copy of the tracked files: luarocks make compiles in place.
    local build = table.concat({
      "git ls-files -z | xargs -0 cp --parents -t " .. q(dir .. "/src"),
      "cd " .. q(dir .. "/src"),
      "luarocks --lua-version=5.4 make --tree=" .. q(dir .. "/tree")
        .. " rockspec/dynamodb_stream-scm-1.rockspec >" .. q(dir .. "/log") .. " 2>&1",
    }, " && ")
    local ok = helper.execute("mkdir -p " .. q(dir .. "/src") .. " && " .. build)
    local out = helper.run_lua({
      LUA_PATH = dir .. "/tree/share/lua/5.4/?.lua;" .. dir .. "/tree/share/lua/5.4/?/init.lua",
      LUA_CPATH = dir .. "/tree/lib/lua/5.4/?.so",
    }, [[
      local ds = require("dynamodb_stream")
      local av = ds.marshall({ pk = "a", n = 1, l = ds.empty_list() })
      io.write(package.searchpath("dynamodb_stream.core", package.cpath), " ", ds.json_encode(ds.unmarshall(av).l))
    ]], "lua5.4") -- the rock is built for 5.4, whichever interpreter runs the specs
    local log = io.open(dir .. "/log") and io.open(dir .. "/log"):read("*a") or ""
    helper.rmdir(dir)
    assert.is_true(ok, log)
    assert.matches("/tree/lib/lua/5.4/dynamodb_stream/core.so []", out, 1, true)
  end)
end)
