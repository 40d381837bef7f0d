-- Only luaopen_dynamodb_stream_core leaves the module (issue 12), however it
-- is built: make passes -fvisibility=hidden, LuaRocks does not, so every
-- header marks its internal names hidden itself.
local helper = require("helper")
local q = helper.shell_quote

-- The dynamic symbols a shared object defines, minus the linker's own.
local function exported(so)
  local names = {}
  for line in helper.capture("nm -D --defined-only " .. q(so)):gmatch("[^\n]+") do
    local name = line:match("(%S+)$")
    if name ~= "_init" and name ~= "_fini" then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- The core.so that package.cpath finds.
local function make_build()
  for template in package.cpath:gmatch("[^;]+") do
    local so = template:gsub("%?", "dynamodb_stream/core")
    if helper.exists(so) then return so end
  end
  error("dynamodb_stream/core.so not found on package.cpath")
end

describe("the module's exported symbols", function()
  it("are luaopen_dynamodb_stream_core alone in the make build", function()
    assert.same({ "luaopen_dynamodb_stream_core" }, exported(make_build()))
  end)

  -- a build from a copy of the sources, the same in every phase
  helper.phase_it(it, pending, "lua5.4")("are luaopen_dynamodb_stream_core alone in a luarocks make build", function()
    local dir = helper.tmpdir()
    local ok, log = helper.luarocks(dir, "luarocks --lua-version 5.4 make rockspec/dynamodb_stream-scm-1.rockspec")
    local so = dir .. "/tree/lib/lua/5.4/dynamodb_stream/core.so"
    local names = helper.exists(so) and exported(so)
    helper.rmdir(dir)
    assert.is_true(ok, log)
    assert.same({ "luaopen_dynamodb_stream_core" }, names)
  end)
end)
