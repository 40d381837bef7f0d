describe("dynamodb_stream.core", function()
  local core = require("dynamodb_stream.core")

  it("exposes its version and the null sentinel", function()
    assert.matches("^%d+%.%d+%.%d+$", core._VERSION)
    assert.equals("userdata", type(core.null))
  end)
end)
