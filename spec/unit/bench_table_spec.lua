-- make bench writes its table into bench/README.md between marker lines
-- (bench/put_table.lua): the only copy of the table in the repository.

local helper = require("helper")
local ROOT = debug.getinfo(1, "S").source:match("^@(.*)spec/unit/bench_table_spec%.lua$")
ROOT = (ROOT == nil or ROOT == "") and "./" or ROOT
local bench = assert(loadfile(ROOT .. "bench/put_table.lua"))()

describe("bench/put_table.lua", function()
  local readme = table.concat({
    "# bench", "", "## Latest table", "", bench.BEGIN, "old line 1", "old line 2", bench.END, "", "## After", "",
  }, "\n")

  it("replaces what is between the markers, and nothing else", function()
    local text = assert(bench.put(readme, "new table\n  row\n\n", "abc123"))
    assert.equal(table.concat({
      "# bench", "", "## Latest table", "", bench.BEGIN, "Written by `make bench` at commit abc123.", "",
      "```", "new table", "  row", "```", bench.END, "", "## After", "",
    }, "\n"), text)
  end)

  it("gives the same text when run twice with the same table", function()
    local once = assert(bench.put(readme, "t\n", "c"))
    assert.equal(once, assert(bench.put(once, "t\n", "c")))
  end)

  it("fills an empty block and leaves the commit line out when none is given", function()
    local text = assert(bench.put(bench.BEGIN .. "\n" .. bench.END, "t"))
    assert.equal(bench.BEGIN .. "\n\n```\nt\n```\n" .. bench.END .. "\n", text)
  end)

  it("refuses a README without both markers, in order, once each", function()
    for _, bad in ipairs({
      "no markers\n",
      bench.BEGIN .. "\n",
      bench.END .. "\n" .. bench.BEGIN .. "\n",
      bench.BEGIN .. "\n" .. bench.BEGIN .. "\n" .. bench.END .. "\n",
    }) do
      local text, why = bench.put(bad, "t")
      assert.is_nil(text)
      assert.matches("needs one", why)
    end
  end)

  it("is what bench/README.md holds: one block, and no table in README.md", function()
    local text = assert(helper.read_file(ROOT .. "bench/README.md"))
    assert.truthy(select(2, text:gsub("\n" .. bench.BEGIN:gsub("%p", "%%%0") .. "\n", "")) == 1)
    assert.truthy(bench.put(text, "t"))
    assert.is_nil(assert(helper.read_file(ROOT .. "README.md")):find("dynamodb_stream benchmark:", 1, true),
      "README.md holds a pasted benchmark table: it belongs in bench/README.md (make bench)")
  end)
end)
