-- dynamodb_stream.runtime: inside nginx or not, may the code yield, which sleep.
local runtime = require("dynamodb_stream.runtime")

describe("runtime", function()
  local saved
  before_each(function() saved = rawget(_G, "ngx") end)
  after_each(function() rawset(_G, "ngx", saved) end)

  local function fake_ngx(phase, slept)
    return {
      socket = { tcp = function() end },
      get_phase = function() return phase end,
      sleep = function(s) slept[#slept + 1] = s end,
    }
  end

  it("outside nginx: no ngx, no yielding, a blocking sleep", function()
    rawset(_G, "ngx", nil)
    assert.is_nil(runtime.ngx())
    assert.is_false(runtime.in_nginx())
    assert.is_false(runtime.can_yield())
    runtime.sleep(0) -- core.sleep, returns
  end)

  it("a global ngx without the cosocket API is not nginx", function()
    rawset(_G, "ngx", { log = print })
    assert.is_false(runtime.in_nginx())
    assert.is_false(runtime.can_yield())
  end)

  it("in a phase with cosockets: yields, and sleeps with ngx.sleep", function()
    local slept = {}
    rawset(_G, "ngx", fake_ngx("timer", slept))
    assert.is_true(runtime.in_nginx())
    assert.is_true(runtime.can_yield())
    runtime.sleep(0.25)
    assert.same({ 0.25 }, slept)
  end)

  it("in a phase without cosockets (init_worker): in nginx, but a blocking sleep", function()
    local slept = {}
    rawset(_G, "ngx", fake_ngx("init_worker", slept))
    assert.is_true(runtime.in_nginx())
    assert.is_false(runtime.can_yield())
    runtime.sleep(0)
    assert.same({}, slept)
  end)

  it("a get_phase that raises means no yielding", function()
    local ngx = fake_ngx("timer", {})
    ngx.get_phase = function() error("no request") end
    rawset(_G, "ngx", ngx)
    assert.is_false(runtime.can_yield())
  end)
end)
