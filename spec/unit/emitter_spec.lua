local Emitter = require("dynamodb_stream.emitter")

describe("dynamodb_stream.emitter", function()
  local e
  before_each(function() e = Emitter.new() end)

  it("calls listeners in the order they were added, with the emitted arguments", function()
    local log = {}
    e:on("x", function(a, b) log[#log + 1] = "1:" .. a .. b end)
    e:on("x", function(a, b) log[#log + 1] = "2:" .. a .. b end)
    assert.is_true(e:emit("x", "a", "b"))
    assert.same({ "1:ab", "2:ab" }, log)
  end)

  it("returns false when nobody listens, and the emitter from on/once/off", function()
    assert.is_false(e:emit("nobody"))
    local f = function() end
    assert.equals(e, e:on("x", f))
    assert.equals(e, e:once("x", f))
    assert.equals(e, e:off("x", f))
  end)

  it("runs a once listener a single time", function()
    local n = 0
    e:once("x", function() n = n + 1 end)
    e:emit("x"); e:emit("x")
    assert.equals(1, n)
    assert.equals(0, e:listener_count("x"))
  end)

  it("removes a listener, including one added with once", function()
    local n = 0
    local f = function() n = n + 1 end
    e:on("x", f); e:once("y", f)
    e:off("x", f); e:off("y", f)
    e:emit("x"); e:emit("y")
    assert.equals(0, n)
  end)

  it("is safe when a listener removes itself or a later listener during emit", function()
    local log = {}
    local second
    local function first() log[#log + 1] = "first"; e:off("x", first); e:off("x", second) end
    second = function() log[#log + 1] = "second" end
    local function third() log[#log + 1] = "third" end
    e:on("x", first); e:on("x", second); e:on("x", third)
    e:emit("x")
    assert.same({ "first", "third" }, log)
    e:emit("x")
    assert.same({ "first", "third", "third" }, log)
  end)

  it("does not call a listener added during the emit until the next one", function()
    local n = 0
    e:on("x", function() e:on("x", function() n = n + 1 end) end)
    e:emit("x")
    assert.equals(0, n)
    e:emit("x")
    assert.equals(1, n)
  end)

  it("raises an 'error' emitted with no listener, and delivers it when one listens", function()
    assert.has_error(function() e:emit("error", "boom") end, "boom")
    local got
    e:on("error", function(err) got = err end)
    e:emit("error", "boom")
    assert.equals("boom", got)
  end)

  it("counts and clears listeners; camelCase aliases exist", function()
    local f = function() end
    e:addListener("x", f):on("x", f):on("y", f)
    assert.equals(2, e:listenerCount("x"))
    e:removeListener("x", f)
    assert.equals(1, e:listener_count("x"))
    e:remove_all_listeners("x")
    assert.equals(0, e:listener_count("x"))
    assert.equals(1, e:listener_count("y"))
    e:removeAllListeners()
    assert.equals(0, e:listener_count("y"))
  end)

  it("emit_results collects the first value each listener returned, holes included", function()
    e:on("x", function(a) return a + 1, "ignored" end)
    e:on("x", function() end)
    e:once("x", function(a) return a * 10 end)
    local results = e:emit_results("x", 2)
    assert.equals(3, results.n)
    assert.same({ 3, nil, 20 }, { results[1], results[2], results[3] })
    assert.equals(2, e:emit_results("x", 1).n)   -- the once listener is gone
    assert.same({ n = 0 }, e:emit_results("nobody"))
  end)

  it("rejects a non-string event or a non-function listener", function()
    assert.has_error(function() e:on(1, function() end) end, "event name must be a string")
    assert.has_error(function() e:on("x", "nope") end, "listener must be a function")
  end)
end)
