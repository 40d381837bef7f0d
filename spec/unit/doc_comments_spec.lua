-- Every public function of the Lua layer has an LDoc comment, so that the
-- API reference (`make doc`, config.ld) covers it. The convention, checked
-- here without LDoc:
--   * a function defined as `function T.name(`, `function T:name(` or
--     `T.name = function` (T any table: the module or one of its classes)
--     whose name does not start with `_` has, immediately above it, a block
--     of comment lines whose first line starts with `---`;
--   * aliases (`T.camelName = T.snake_name`) and `local function`s are exempt;
--   * every module file starts with a `--- ` summary and names itself with
--     `-- @module dynamodb_stream.x` (its path under lua/).

local helper = require("helper")
local ROOT = debug.getinfo(1, "S").source:match("^@(.*)spec/unit/doc_comments_spec%.lua$")
ROOT = (ROOT == nil or ROOT == "") and "./" or ROOT
local LUA_DIR = ROOT .. "lua/dynamodb_stream"

-- The name a line defines as a table's function, or nil.
local function defined_function(line)
  local name = line:match("^%s*function%s+[%w_]+[%.:]([%w_%.:]*)%s*%(")
      or line:match("^%s*[%w_]+%.([%w_%.]+)%s*=%s*function%s*%(")
      or line:match("^%s*[%w_]+%.([%w_%.]+)%s*=%s*function%s*$")
  return name and name:match("([%w_]+)$")
end

-- { { line = n, name = "..." } ... }: the public functions in text with no
-- doc comment block right above them.
local function undocumented(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local missing = {}
  for n, line in ipairs(lines) do
    local name = defined_function(line)
    if name and name:sub(1, 1) ~= "_" then
      -- Walk up the comment block; its first line must start with ---.
      local first = n - 1
      while first >= 1 and lines[first]:match("^%s*%-%-") and not lines[first]:match("^%s*%-%-%-") do
        first = first - 1
      end
      if first < 1 or not lines[first]:match("^%s*%-%-%-") or lines[first]:match("^%s*%-%-%-%-") then
        missing[#missing + 1] = { line = n, name = line:match("^%s*function%s+([%w_%.:]+)")
          or line:match("^%s*([%w_%.]+)%s*=") }
      end
    end
  end
  return missing
end

-- The Lua files under dir, recursively, sorted.
local function lua_files(dir)
  local files = {}
  local find = assert(io.popen("find '" .. dir .. "' -type f -name '*.lua' | LC_ALL=C sort"))
  for path in find:lines() do files[#files + 1] = path end
  find:close()
  return files
end

describe("doc comments: the checker", function()
  it("accepts a --- block right above a public function, with -- lines after the first", function()
    assert.same({}, undocumented(table.concat({
      "--- Does a thing.",
      "-- @tparam[opt] table opts",
      "function M.thing(opts) end",
      "  --- A method.",
      "  function Class:method() end",
      "--- Another.",
      "M.other = function() end",
    }, "\n")))
  end)

  it("names every public function without one, with its line", function()
    assert.same({
      { line = 1, name = "M.plain" },
      { line = 3, name = "Class:method" },
      { line = 6, name = "M.assigned" },
      { line = 9, name = "M.spaced" },
      { line = 11, name = "M.dashes" },
    }, undocumented(table.concat({
      "function M.plain() end",
      "-- An ordinary comment is not a doc comment.",
      "function Class:method() end",
      "--- Not right above: a line of code between.",
      "local x = 1",
      "M.assigned = function() end",
      "--- Not right above: a blank line between.",
      "",
      "function M.spaced() end",
      "---------------------------------------- a ruler, not a doc comment",
      "function M.dashes() end",
    }, "\n")))
  end)

  it("leaves private names, local functions and aliases alone", function()
    assert.same({}, undocumented(table.concat({
      "function M._private() end",
      "function Class:_helper() end",
      "local function helper() end",
      "local f = function() end",
      "M.camelName = M.snake_name",
      "M._hook = function() end",
    }, "\n")))
  end)
end)

describe("doc comments: lua/dynamodb_stream", function()
  local files = lua_files(LUA_DIR)

  it("finds the modules, recursively", function()
    assert.truthy(#files >= 10, "found only " .. #files .. " files under " .. LUA_DIR)
  end)

  it("documents every public function (file:line name)", function()
    local report = {}
    for _, path in ipairs(files) do
      for _, m in ipairs(undocumented(assert(helper.read_file(path)))) do
        report[#report + 1] = ("%s:%d %s"):format(path:sub(#ROOT + 1), m.line, m.name)
      end
    end
    assert(#report == 0, #report .. " public function(s) without a --- doc comment:\n  "
      .. table.concat(report, "\n  "))
  end)

  it("starts every module with a --- summary and its @module (or @classmod) name", function()
    local report = {}
    for _, path in ipairs(files) do
      local relative = path:sub(#ROOT + 1)
      local module = relative:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      local text = assert(helper.read_file(path))
      if not text:match("^%-%-%- %S") then
        report[#report + 1] = relative .. ": does not start with a '--- ' summary"
      end
      local named = text:match("\n%-%-%s*@module%s+([%w_%.]+)")
        or text:match("\n%-%-%s*@classmod%s+([%w_%.]+)") -- a module that is a class
      if named ~= module then
        report[#report + 1] = ("%s: @module %s, expected @module %s"):format(relative, tostring(named), module)
      end
    end
    assert(#report == 0, table.concat(report, "\n"))
  end)
end)
