-- The C core's files call one another in one direction only (issue 12):
-- scripts/c-deps reads the call graph from the object files of the build
-- that package.cpath points at (make keeps them in <build>/obj/) and fails on
-- a cycle, or on an engine file (a name without ds_) that calls Lua.
local helper = require("helper")
local q = helper.shell_quote

-- The object files of the module build the specs run against.
local function build_objects()
  for template in package.cpath:gmatch("[^;]+") do
    local so = template:gsub("%?", "dynamodb_stream/core")
    if helper.exists(so) then
      local dir = so:gsub("/dynamodb_stream/core%.so$", "/obj")
      local objects = helper.capture("ls " .. q(dir) .. "/*.o 2>/dev/null"):gsub("\n", " ")
      assert(objects:match("%S"), "no object files in " .. dir .. ": build the module with make")
      return objects
    end
  end
  error("dynamodb_stream/core.so not found on package.cpath")
end

local function c_deps(objects)
  local p = assert(helper.popen("scripts/c-deps " .. objects .. " 2>&1"))
  local out = p:read("*a")
  return p:close(), out
end

describe("scripts/c-deps", function()
  it("finds no call cycle among csrc/*.c", function()
    local objects = build_objects()
    local ok, out = c_deps(objects)
    assert.is_true(ok, out)
    local sources = #helper.capture("ls csrc/*.c"):gsub("[^\n]", "")
    assert.matches("no call cycle among " .. sources .. " files", out, 1, true)
  end)

  it("fails on a cycle, naming it", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/a.c", "int b(int); int a(int x) { return x ? b(x - 1) : 0; }\n")
    helper.write_file(dir .. "/b.c", "int c(int); int b(int x) { return c(x); }\n")
    helper.write_file(dir .. "/c.c", "int a(int); int c(int x) { return a(x); }\n")
    helper.write_file(dir .. "/d.c", "int a(int); int d(void) { return a(1); }\n")
    local built = helper.execute("cd " .. q(dir) .. " && cc -c a.c b.c c.c d.c")
    local ok, out = c_deps(table.concat({ q(dir .. "/a.o"), q(dir .. "/b.o"), q(dir .. "/c.o"), q(dir .. "/d.o") }, " "))
    helper.rmdir(dir)
    assert.is_true(built)
    assert.is_falsy(ok)
    assert.matches("call cycle: a.c -> b.c -> c.c -> a.c", out, 1, true)
    assert.is_nil(out:find("d.c", 1, true))
  end)

  it("fails on an engine file that calls Lua", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/engine.c", "int lua_gettop(void *L); int engine(void *L) { return lua_gettop(L); }\n")
    helper.write_file(dir .. "/ds_binding.c", "int lua_gettop(void *L); int engine(void *L);\n"
      .. "int binding(void *L) { return lua_gettop(L) + engine(L); }\n")
    local built = helper.execute("cd " .. q(dir) .. " && cc -c engine.c ds_binding.c")
    local ok, out = c_deps(q(dir .. "/engine.o") .. " " .. q(dir .. "/ds_binding.o"))
    helper.rmdir(dir)
    assert.is_true(built)
    assert.is_falsy(ok)
    assert.matches("Lua in an engine file: engine.c calls lua_gettop", out, 1, true)
    assert.is_nil(out:find("ds_binding.c calls", 1, true))
  end)
end)
