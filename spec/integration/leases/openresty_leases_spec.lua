-- Two nginx instances as two "nodes" (spec/support/lease_node.lua: one poller
-- each, with the leases option) share a live 8-shard fake stream through one
-- lease table in DynamoDB Local while a writer appends: each node holds about
-- half the shards; a graceful stop of one (SIGQUIT: its poller checkpoints and
-- releases) moves all its shards to the other while the writer goes on, and no
-- change is lost.
local ds = require("dynamodb_stream")
local helper = require("helper")
local nginx = require("nginx")
local live = require("live_streams")
local monotime = require("dynamodb_stream.core").monotime

local HAVE_LEASES, WHY = pcall(require, "dynamodb_stream.leases.coordinator")
-- The first node takes every shard; the second steals one per lease duration
-- until balanced: 8 shards, 4 steals, about 8 s (16 shards took 16 s).
local SHARDS = 8
local LEASE_DURATION = 2
-- The writer goes on until 1 s after the handover (stop_writer), at most this long.
local MAX_CHANGES, KEYS, RATE = 100 * 150, 200, 150

describe("leases in OpenResty: two nginx nodes share a stream", function()
  if not HAVE_LEASES then
    pending("the lease code is not there yet (require dynamodb_stream.leases.coordinator: "
      .. (tostring(WHY):match("^[^\n]*"):gsub(":$", "")) .. ")")
    return
  end
  if nginx.skip_reason() then
    pending(nginx.skip_reason())
    return
  end

  local srv, tmp
  local nodes = {}

  setup(function()
    tmp = helper.tmpdir()
  end)

  teardown(function()
    for _, n in pairs(nodes) do n.stop() end
    if srv then srv.stop() end
    if tmp then helper.rmdir(tmp) end
  end)

  it("each node holds about half the shards; stopping one moves its shards to the other", function()
    srv = live.start({ "--shards", tostring(SHARDS), "--records", "0" }, 300)
    -- nginx's workers run as another user: their logs go where they may write.
    os.execute("chmod 755 " .. helper.shell_quote(tmp) .. " && mkdir -m 777 " .. helper.shell_quote(tmp .. "/nodes"))
    local namespace = "leasenginx" .. os.time()
    local function start_node(name)
      local cfg = {
        node = name, endpoint = srv.endpoint, arn = srv.arn, ddb = helper.ddb_local_endpoint(),
        namespace = namespace, table = "nginx_leases", lease_duration = LEASE_DURATION,
        log = tmp .. "/nodes/" .. name .. ".log",
      }
      local node = nginx.start({
        ready = "/status",
        http = {
          "lua_shared_dict lease_node 1m;",
          "init_worker_by_lua_block { require('lease_node').start(require('dynamodb_stream').json_decode("
            .. string.format("%q", ds.json_encode(cfg)) .. ")) }",
        },
        server = { "location = /status { content_by_lua_block { require('lease_node').status() } }" },
      })
      node.name, node.log = name, cfg.log
      nodes[name] = node
      return node
    end
    local function status(node)
      local text = node.get("/status", 5)
      local s = ds.json_decode(text)
      assert(type(s) == "table", node.name .. " /status: " .. text .. node.error_log())
      return s
    end
    local function wait_until(seconds, fn)
      local deadline = monotime() + seconds
      repeat
        local v = fn()
        if v then return v end
        ds.sleep(0.2)
      until monotime() > deadline
      return nil
    end

    local a, b = start_node("a"), start_node("b")
    srv.start_writer(MAX_CHANGES, KEYS, RATE, 5)

    -- Balanced: 8 shards, each node ceil(8 / 2) = 4 (one off while a steal is on its way),
    -- and both delivering (a node that has just taken its share may not have read yet).
    local split = wait_until(8 * LEASE_DURATION, function()
      local sa, sb = status(a), status(b)
      if #sa.held + #sb.held == SHARDS and math.abs(#sa.held - #sb.held) <= 2
        and sa.delivered > 0 and sb.delivered > 0 then
        return { sa, sb }
      end
    end)
    local sa, sb = status(a), status(b)
    assert(split, string.format("no balance: a holds %d, b holds %d (errors: %s / %s)\n%s%s",
      #sa.held, #sb.held, tostring(sa.last_error), tostring(sb.last_error), a.error_log(), b.error_log()))
    local held_by_a = {}
    for _, id in ipairs(split[1].held) do held_by_a[id] = true end
    for _, id in ipairs(split[2].held) do assert(not held_by_a[id], id .. " is held by both nodes") end

    -- A graceful stop of a: SIGQUIT to its master; b takes every shard.
    local t0 = monotime()
    os.execute("kill -QUIT " .. a.master)
    assert(wait_until(10, function() return not helper.alive(a.master) end), "node a did not stop")
    local moved = wait_until(3 * LEASE_DURATION, function() return #status(b).held == SHARDS end)
    local took = monotime() - t0
    io.stderr:write(string.format("\n# openresty leases: a held %d and b %d shards; after a's graceful stop b held "
      .. "all %d after %.2f s\n", #split[1].held, #split[2].held, SHARDS, took))
    assert(moved, "b holds " .. #status(b).held .. " shards " .. (3 * LEASE_DURATION) .. " s after a stopped\n"
      .. b.error_log())
    assert.is_true(srv.writer().running, "the writer had ended before the handover")
    ds.sleep(1) -- b reads what is written after it took every shard
    local written = srv.stop_writer().written

    -- Nothing lost: every change written is in a's or b's log.
    local changes = srv.changes()
    local function missing()
      local seen, n, first = {}, 0, nil
      for _, node in ipairs({ a, b }) do
        for key, v in (helper.read_file(node.log) or ""):gmatch("D %S+ %S+ (%S+) (%d+)\n") do seen[key .. " " .. v] = true end
      end
      for _, c in ipairs(changes) do
        if not seen[c.key .. " " .. c.version] then n, first = n + 1, first or (c.key .. " " .. c.version) end
      end
      return n, first
    end
    wait_until(20, function() return missing() == 0 end)
    local n, first = missing()
    assert(n == 0, n .. " of " .. #changes .. " changes never delivered, first " .. tostring(first))
    assert.equals(written, #changes)
  end)
end)
