-- The consumer's parallel reader (rounds of GetRecords over every readable
-- shard, as with ds.client()) must keep every promise the serial reader keeps:
-- the stream specs run again against a fake client that offers
-- get_records_many.
local Fake = require("fake_streams")

describe("in parallel rounds (a client with get_records_many):", function()
  setup(function() Fake.parallel = true end)
  teardown(function() Fake.parallel = nil end)
  for _, file in ipairs({ "spec/unit/stream_spec.lua", "spec/unit/defects/stream_defects_spec.lua",
                          "spec/robustness/hostile_spec.lua", "spec/unit/stream_throttle_spec.lua",
                          "spec/unit/leases/stream_leases_spec.lua" }) do
    describe(file, function()
      -- The spec file runs in this file's environment (busted's), on 5.4 and LuaJIT.
      local chunk
      if setfenv then
        chunk = assert(loadfile(file))
        setfenv(chunk, getfenv(1))
      else
        chunk = assert(loadfile(file, "t", _ENV))
      end
      chunk()
    end)
  end
end)
