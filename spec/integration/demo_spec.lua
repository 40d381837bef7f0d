-- make demo, kept true: scripts/demo against the suite's DynamoDB Local shows
-- every change the writer makes, in order, as the tailing script prints it.
local helper = require("helper")

describe("make demo", function()
  it("tails the table and prints each change the writer makes", function()
    local cmd = "DDB_LOCAL_ENDPOINT=" .. helper.shell_quote(helper.ddb_local_endpoint()) .. " scripts/demo " .. helper.lua .. " 2>&1"
    local p = assert(helper.popen(cmd))
    local out = p:read("*a")
    local ok = p:close()
    assert.is_true(ok, out)
    local changes = {}
    for kind, keys in out:gmatch("%[tail%]%s+(%u+) (%b{})") do changes[#changes + 1] = kind .. " " .. keys end
    assert.same({
      'INSERT {"pk":"apple"}', 'INSERT {"pk":"pear"}', 'MODIFY {"pk":"apple"}',
      'MODIFY {"pk":"pear"}', 'REMOVE {"pk":"apple"}',
    }, changes)
    assert.matches('"stock":12.-%->.-"stock":11', out)
    assert.matches("stopped after 5 changes", out, 1, true)
  end)
end)
