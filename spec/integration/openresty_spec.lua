-- examples/openresty in a real nginx (Debian's nginx + lua-nginx-module on the
-- OpenResty LuaJIT, with build-luajit/), against DynamoDB Local: the replica
-- served over HTTP follows every change, another worker takes over when the
-- polling one is killed, and a worker is never blocked while the poller waits
-- on a slow upstream; keys that need URL-encoding are served. nginx is started
-- by examples/openresty/run.sh (`daemon off; master_process on;
-- worker_processes 2;`) in a temporary prefix, on a free port on 127.0.0.1
-- only, and its master and workers are killed by pid in teardown whatever
-- happened. Started badly (no DS_TABLE, no LuaJIT build) it says what is wrong.
local ds = require("dynamodb_stream")
local helper = require("helper")
local socket = require("socket")
local fault_proxy = require("fault_proxy")
local nginx = require("nginx")

local NGINX = "/usr/sbin/nginx"
local NAMESPACE = "openrestyspec"
local q = helper.shell_quote

local exists = helper.exists

local sh = helper.capture

local ROOT = sh("pwd"):gsub("%s+$", "")

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- One GET over HTTP/1.0: status, body (nil, why when it fails).
local function get(port, path)
  local c = socket.tcp()
  c:settimeout(5)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then return nil, err end
  c:send("GET " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
  local all = c:receive("*a")
  c:close()
  if not all then return nil, "no answer" end
  local status = tonumber(all:match("^HTTP/1%.%d (%d+)"))
  local body = all:match("\r\n\r\n(.*)$")
  return status, body
end

local function get_json(port, path)
  local status, body = get(port, path)
  if not status then return nil, body end
  return status, ds.json_decode(body)
end

local function wait_until(seconds, fn)
  local deadline = socket.gettime() + seconds
  while true do
    local v = fn()
    if v then return v end
    if socket.gettime() > deadline then return nil end
    socket.sleep(0.1)
  end
end

local function children(pid)
  local out = {}
  for p in sh("ps -o pid= --ppid " .. pid .. " 2>/dev/null"):gmatch("%d+") do out[#out + 1] = tonumber(p) end
  return out
end

-- Starts examples/openresty/run.sh on 127.0.0.1:port with exactly the given
-- environment (plus PATH, DS_PREFIX = prefix and the listen address), in a
-- fresh prefix; returns the master's pid once /ping answers.
local function start_example(prefix, port, env)
  os.execute("chmod 755 " .. q(prefix))
  local vars = { "PATH=/usr/sbin:/usr/bin:/bin", "NGINX=" .. NGINX, "DS_PREFIX=" .. prefix,
    "DS_LISTEN=127.0.0.1:" .. port }
  for _, v in ipairs(env) do vars[#vars + 1] = v end
  for i, v in ipairs(vars) do vars[i] = q(v) end
  local cmd = "env -i " .. table.concat(vars, " ") .. " " .. q(ROOT .. "/examples/openresty/run.sh")
    .. " >" .. q(prefix .. "/stdout") .. " 2>&1 </dev/null & echo $!"
  local master = tonumber(sh(cmd):match("%d+"))
  assert(master, "run.sh did not start")
  local up = wait_until(10, function() return get(port, "/ping") == 200 end)
  assert(up, "nginx did not answer: " .. (helper.read_file(prefix .. "/stdout") or "")
    .. (helper.read_file(prefix .. "/logs/error.log") or ""))
  return master
end

-- Stops a master started by start_example and every worker it had.
local function stop_example(master, workers_seen)
  for _, w in ipairs(children(master)) do workers_seen[w] = true end
  os.execute("kill -TERM " .. master .. " 2>/dev/null")
  wait_until(5, function() return not helper.alive(master) end)
  os.execute("kill -KILL " .. master .. " 2>/dev/null")
  for w in pairs(workers_seen) do os.execute("kill -KILL " .. w .. " 2>/dev/null") end
end

describe("examples/openresty in nginx", function()
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local ddb, tmp, port, master, proxy, table_name
  local workers_seen = {}
  local expected = {}

  local function error_log()
    return helper.read_file(tmp .. "/logs/error.log") or ""
  end

  local function replica()
    local status, items = get_json(port, "/items")
    if status ~= 200 or type(items) ~= "table" then return nil end
    local map = {}
    for _, item in ipairs(items) do map[item.pk] = item.data end
    return map
  end

  local function replica_matches()
    local map = replica()
    if not map then return false end
    for k, v in pairs(expected) do if map[k] ~= v then return false end end
    for k in pairs(map) do if expected[k] == nil then return false end end
    return true
  end

  local function put(pk, data)
    assert(ddb:put_item({ TableName = table_name, Item = ds.marshall({ pk = pk, data = data }) }))
    expected[pk] = data
  end

  local function delete(pk)
    assert(ddb:delete_item({ TableName = table_name, Key = ds.marshall({ pk = pk }) }))
    expected[pk] = nil
  end

  local function stats()
    local status, s = get_json(port, "/stats")
    assert.equals(200, status)
    return s
  end

  local function note_workers()
    for _, w in ipairs(children(master)) do workers_seen[w] = true end
  end

  setup(function()
    ddb = ds.dynamodb(helper.local_opts(NAMESPACE))
    table_name = "openresty_" .. os.time()
    helper.create_stream_table(ddb, table_name)
    if not exists("build-luajit/dynamodb_stream/core.so") then
      assert(helper.execute("make -s luajit-build >/dev/null"))
    end
    proxy = fault_proxy.start({ upstream = helper.ddb_local_endpoint(), rate = 0 })

    tmp = helper.tmpdir()
    port = free_port()
    master = start_example(tmp, port, {
      "AWS_REGION=us-east-1",
      "AWS_ACCESS_KEY_ID=" .. NAMESPACE, "AWS_SECRET_ACCESS_KEY=local-secret",
      "AWS_ENDPOINT_URL_DYNAMODB=" .. helper.ddb_local_endpoint(),
      "AWS_ENDPOINT_URL_DYNAMODB_STREAMS=" .. proxy.endpoint,
      "DS_TABLE=" .. table_name,
      "DS_RESOLVER=127.0.0.1", -- rendered into the configuration (the endpoints here are addresses)
    })
    note_workers()
  end)

  teardown(function()
    if master then stop_example(master, workers_seen) end
    if proxy then proxy:stop() end
    if tmp then helper.rmdir(tmp) end
  end)

  it("run.sh takes the address and the resolver from the environment", function()
    local conf = helper.read_file(tmp .. "/tmp/nginx.conf")
    assert.matches("\n    listen 127.0.0.1:" .. port .. " reuseport;\n", conf, 1, true)
    assert.matches("\n  resolver 127.0.0.1 valid=30s ipv6=off;\n", conf, 1, true)
    assert.is_nil(conf:find("listen 127.0.0.1:8080", 1, true))
  end)

  it("listens on the loopback address only", function()
    local listening = sh("ss -ltnp 2>/dev/null")
    for line in listening:gmatch("[^\n]+") do
      for _, w in ipairs(children(master)) do
        if line:find("pid=" .. w .. ",", 1, true) or line:find("pid=" .. master .. ",", 1, true) then
          assert.matches("127%.0%.0%.1:" .. port, line)
        end
      end
    end
  end)

  it("serves a replica that follows every insert, modify and remove", function()
    local t0 = socket.gettime()
    for i = 1, 12 do put("k" .. i, "v" .. i) end
    for i = 1, 4 do put("k" .. i, "changed" .. i) end
    delete("k5")
    delete("k6")
    assert(wait_until(30, replica_matches), "replica never matched; error log:\n" .. error_log())
    print(("# openresty: 18 changes replicated in %.2f s"):format(socket.gettime() - t0))

    local status, item = get_json(port, "/items/k1")
    assert.equals(200, status)
    assert.same({ pk = "k1", data = "changed1" }, item)
    assert.equals(404, (get(port, "/items/k5")))
    local s = stats()
    assert.is_true(s.records >= 18)
    assert.is_true(s.shards >= 1)
    assert.equals(0, s.errors)
    assert.is_number(s.lag_seconds)
    assert.is_true(s.lag_seconds < 60)
    -- the consumer's own stats(), saved by the poller after every fetch
    assert.is_table(s.stream)
    assert.is_true(s.stream.delivered >= 18)
    assert.is_true(s.stream.pages >= 1)
    assert.equals(0, s.stream.errors)
    assert.is_number(s.stream.lag)
    assert.is_true(s.stream.lag <= 120) -- DynamoDB Local rounds creation times to the minute
    assert.is_table(next(s.stream.shards) and s.stream.shards)
    assert.is_number(s.poller_pid)
    local is_worker = false
    for _, w in ipairs(children(master)) do if w == s.poller_pid then is_worker = true end end
    assert.is_true(is_worker, "the poller is one of the master's workers")
  end)

  it("serves /items/<pk> for keys with %, a space, + and /, each URL-encoded once", function()
    local keys = { { "%41", "%2541" }, { "100%", "100%25" }, { "a b", "a%20b" }, { "x+y", "x%2By" },
      { "p/q", "p%2Fq" }, { "plus+", "plus+" } }
    for _, k in ipairs(keys) do put(k[1], "value of " .. k[1]) end
    assert(wait_until(30, replica_matches), "replica never matched; error log:\n" .. error_log())
    for _, k in ipairs(keys) do
      local pk, encoded = k[1], k[2]
      local status, item = get_json(port, "/items/" .. encoded)
      assert.equals(200, status, pk)
      assert.same({ pk = pk, data = "value of " .. pk }, item)
    end
    assert.equals(404, (get(port, "/items/%2541x")))
  end)

  it("another worker takes over when the polling worker is killed, losing no change", function()
    note_workers()
    local old = stats().poller_pid
    os.execute("kill -KILL " .. old)
    local t0 = socket.gettime()
    for i = 20, 27 do put("k" .. i, "after-kill" .. i) end
    put("k1", "after-kill-1")
    delete("k2")
    local new = wait_until(20, function()
      local ok, s = pcall(stats)
      return ok and s.poller_pid ~= ds.null and s.poller_pid ~= old and s.poller_pid
    end)
    assert(new, "no worker took over; error log:\n" .. error_log())
    local takeover = socket.gettime() - t0
    assert(wait_until(30, replica_matches), "replica never matched after the takeover; error log:\n" .. error_log())
    print(("# openresty: worker %d killed, worker %d polls after %.2f s, replica complete after %.2f s")
      :format(old, new, takeover, socket.gettime() - t0))
    assert.is_true(takeover < 10)
    note_workers()
  end)

  it("the new workers take over polling on a graceful reload, losing no change", function()
    note_workers()
    local old_workers = {}
    for _, w in ipairs(children(master)) do old_workers[w] = true end
    local old = stats().poller_pid
    assert.is_true(old_workers[old] == true, "the poller is one of the master's workers")
    for i = 30, 33 do put("r" .. i, "before-reload" .. i) end
    os.execute("kill -HUP " .. master)
    local t0 = socket.gettime()
    -- during the reload: the old generation is exiting, the new one is starting
    for i = 34, 37 do put("r" .. i, "during-reload" .. i) end
    put("k1", "during-reload-1")
    delete("k3")
    local function new_poller()
      local ok, s = pcall(stats)
      if not ok or type(s.poller_pid) ~= "number" or old_workers[s.poller_pid] then return nil end
      for _, w in ipairs(children(master)) do if w == s.poller_pid then return w end end
      return nil
    end
    local new = wait_until(10, new_poller)
    assert(new, "no new worker took over after the reload; error log:\n" .. error_log())
    local takeover = socket.gettime() - t0
    for i = 38, 41 do put("r" .. i, "after-reload" .. i) end
    put("k4", "after-reload-4")
    assert(wait_until(10, replica_matches), "replica never matched after the reload; error log:\n" .. error_log())
    print(("# openresty: reload: worker %d handed over to new worker %d after %.2f s, replica complete after %.2f s")
      :format(old, new, takeover, socket.gettime() - t0))
    assert.is_true(takeover < 10)
    assert.equals(new, new_poller(), "the poller is still a worker of the new generation")
    assert(wait_until(10, function() return not helper.alive(old) end), "the old polling worker never exited")
    note_workers()
  end)

  it("answers other locations within 50 ms while the poller waits on a slow upstream", function()
    proxy:reset()
    proxy:configure({ rate = 1, kinds = { slow = 1 }, slow_ms = 400, operations = { "GetRecords" } })
    socket.sleep(0.6)
    local poller = stats().poller_pid
    -- 40 requests over about 2 s, each on its own connection (reuseport spreads
    -- them over both workers); curl times each itself. A worker blocked by the
    -- poller would hold about half of them for up to 400 ms in every round; one
    -- outlier from a loaded machine gets a second round.
    local urls = {}
    for i = 1, 40 do urls[i] = q("http://127.0.0.1:" .. port .. "/ping?" .. i) end
    local n, worst, on_poller, slow
    for round = 1, 2 do
      proxy:reset()
      local out = sh("curl -s --rate 20/s -H 'Connection: close' -w ' %{time_total}\\n' " .. table.concat(urls, " "))
      n, worst, on_poller = 0, 0, 0
      for pid, t in out:gmatch("(%d+)%s+([%d.]+)") do
        n = n + 1
        worst = math.max(worst, tonumber(t))
        if tonumber(pid) == poller then on_poller = on_poller + 1 end
      end
      slow = (proxy:stats().faults or {}).slow or 0
      print(("# openresty: round %d: %d requests while %d GetRecords were held 400 ms; %d on the polling worker; slowest %.1f ms")
        :format(round, n, slow, on_poller, worst * 1000))
      if worst < 0.05 then break end
    end
    assert.equals(40, n)
    assert.is_true(slow >= 2, "the poller was not kept busy")
    assert.is_true(on_poller >= 1, "no request reached the polling worker")
    assert.is_true(worst < 0.05, ("slowest answer %.1f ms"):format(worst * 1000))

    -- and the replica still follows, through the slow upstream
    put("slow-1", "through the slow proxy")
    assert(wait_until(30, replica_matches), "replica never matched; error log:\n" .. error_log())
    proxy:configure({ rate = 0 })
  end)
end)

describe("examples/openresty started badly", function()
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local tmp, master
  local workers_seen = {}

  before_each(function()
    tmp = helper.tmpdir()
    workers_seen = {}
  end)

  after_each(function()
    if master then stop_example(master, workers_seen) end
    master = nil
    helper.rmdir(tmp)
  end)

  it("without DS_TABLE: /stats shows the start failure", function()
    local port = free_port()
    master = start_example(tmp, port, { "AWS_REGION=us-east-1" })
    local s = wait_until(10, function()
      local status, stats = get_json(port, "/stats")
      return status == 200 and type(stats.last_error) == "string" and stats
    end)
    assert(s, "no error in /stats; error log:\n" .. (helper.read_file(tmp .. "/logs/error.log") or ""))
    assert.matches("start failed: .*DS_TABLE is not set", s.last_error)
    assert.is_true(s.errors >= 1)
    assert.equals(0, s.records)
  end)

  it("without the LuaJIT build: the log names `make LUA=luajit` and the path searched", function()
    local port = free_port()
    local empty = tmp .. "/no-build"
    os.execute("mkdir -p " .. q(empty))
    master = start_example(tmp, port, { "AWS_REGION=us-east-1", "DS_TABLE=t", "DS_BUILD=" .. empty })
    local log = wait_until(10, function()
      local text = helper.read_file(tmp .. "/logs/error.log") or ""
      return text:find("make LUA=luajit", 1, true) and text
    end)
    assert(log, "no hint in the error log:\n" .. (helper.read_file(tmp .. "/logs/error.log") or ""))
    assert.matches("C core (dynamodb_stream/core.so) is missing", log, 1, true)
    assert.matches("lua_package_cpath searched: " .. empty .. "/?.so;", log, 1, true)
  end)
end)

describe("openresty.poller on_error", function()
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local server

  -- Two pollers: one whose run ends with an error, one whose start raises.
  local INIT = [[
    local openresty = require("dynamodb_stream.openresty")
    local d = ngx.shared.seen
    local function note(key)
      return function(what, err) d:set(key, what .. ": " .. tostring(err)) end
    end
    openresty.poller({ dict = "seen", key = "lock-run", retry = 0.1, on_error = note("run"), log = function() end,
      start = function()
        return { run = function() return nil, "run broke" end, stop = function() end }
      end })
    openresty.poller({ dict = "seen", key = "lock-start", retry = 0.1, on_error = note("start"), log = function() end,
      start = function() error("start broke", 0) end })
  ]]

  setup(function()
    server = nginx.start({ ready = "/ready",
      http = { "lua_shared_dict seen 1m;", "init_worker_by_lua_block {" .. INIT .. "}" },
      server = {
        "location = /ready { return 200; }",
        "location = /seen { content_by_lua_block { local d = ngx.shared.seen",
        "  ngx.print(tostring(d:get('run')), '|', tostring(d:get('start'))) } }",
      } })
  end)

  teardown(function()
    if server then server.stop() end
  end)

  it("is called with what failed and the error, for run and for start", function()
    local seen = wait_until(5, function()
      local text = server.get("/seen")
      return not text:find("nil", 1, true) and text
    end)
    assert.equals("run: run broke|start: start broke", seen)
  end)
end)
