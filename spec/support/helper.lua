-- Loaded by busted before every spec file (see .busted).
local helper = {}

-- The interpreter running the specs ("lua5.4", "luajit", ...): child Lua
-- processes (examples, consumers, run_lua) use the same one, so they load
-- the module build that package.cpath points at.
helper.lua = rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")

-- True under Lua 5.3+, where integers are 64-bit Lua integers; false under
-- LuaJIT and 5.1, where every number is a double and dynamodb_stream treats
-- integral numbers up to 2^53 as integers and keeps larger ones in the
-- decimal box.
helper.int64 = math.type ~= nil

-- math.type under 5.3+; under LuaJIT/5.1 "integer" for the numbers the
-- module writes as integers (integral, |x| <= 2^53), else "float".
function helper.math_type(x)
  if math.type then return math.type(x) end
  if type(x) ~= "number" then return nil end
  return (x == math.floor(x) and x >= -2 ^ 53 and x <= 2 ^ 53) and "integer" or "float"
end

helper.unpack = table.unpack or unpack

-- math.tointeger where there is one; else an integral number as it is, or nil.
helper.tointeger = math.tointeger or function(x)
  return type(x) == "number" and x == math.floor(x) and x or nil
end

-- Makes a garbage object whose finalizer calls fn: a table with __gc, or under
-- Lua 5.1/LuaJIT (where only userdata have finalizers) a newproxy userdata.
function helper.on_gc(fn)
  if newproxy then
    local u = newproxy(true)
    getmetatable(u).__gc = fn
    return u
  end
  return setmetatable({}, { __gc = fn })
end

-- Sets the collector's pause and step multiplier (collectgarbage("incremental",
-- pause, stepmul) under 5.4; "setpause" and "setstepmul" elsewhere).
function helper.gc_tune(pause, stepmul)
  if _VERSION >= "Lua 5.4" then return collectgarbage("incremental", pause, stepmul) end
  collectgarbage("setpause", pause)
  collectgarbage("setstepmul", stepmul)
end

-- Calls fn(v) with v as a to-be-closed variable: a real `local v <close>`
-- under Lua 5.4; elsewhere v's __close metamethod is called the same way,
-- after fn returns or raises (with the error), and the error passed on.
local run_closing = _VERSION >= "Lua 5.4" and assert(load("local v <close>, fn = ...; return fn(v)"))
  or function(v, fn)
    local ok, err = pcall(fn, v)
    getmetatable(v).__close(v, (not ok) and err or nil)
    if not ok then error(err, 0) end
  end
function helper.with_close(v, fn) return run_closing(v, fn) end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
helper.shell_quote = shell_quote

-- os.execute and io.popen(...):close() answering as in Lua 5.2+ (true, or
-- nil, "exit" | "signal", code) under LuaJIT and 5.1 too, where os.execute
-- returns the raw wait status and close() always true.
local native_status = io.popen("exit 3"):close() ~= true
function helper.execute(cmd)
  if native_status then return os.execute(cmd) end
  local st = os.execute(cmd)
  if st == 0 then return true, "exit", 0 end
  if st % 256 == 0 then return nil, "exit", st / 256 end
  return nil, "signal", st % 128
end

-- io.popen whose close() answers as above. Under LuaJIT the command runs in
-- its own `sh -c` (so `$$` in it is still the process that `exec` replaces)
-- and the outer shell records its status in a temporary file.
function helper.popen(cmd, mode)
  if native_status then return io.popen(cmd, mode) end
  local status = os.tmpname()
  local f, err = io.popen("sh -c " .. shell_quote(cmd) .. "; echo $? >" .. shell_quote(status), mode)
  if not f then os.remove(status) return nil, err end
  local proxy = {}
  for _, m in ipairs({ "read", "lines", "write", "flush", "setvbuf", "seek" }) do
    proxy[m] = function(_, ...) return f[m](f, ...) end
  end
  function proxy.close()
    f:close()
    local sf = io.open(status)
    local code = sf and tonumber(sf:read("*l") or "")
    if sf then sf:close() end
    os.remove(status)
    if code == 0 then return true, "exit", 0 end
    if code and code > 128 then return nil, "signal", code - 128 end
    return nil, "exit", code
  end
  return proxy
end

-- The endpoint of the DynamoDB Local that scripts/with-ddb-local started.
function helper.ddb_local_endpoint()
  local endpoint = os.getenv("DDB_LOCAL_ENDPOINT")
  assert(endpoint, "DDB_LOCAL_ENDPOINT is not set: run the specs through `make check` or scripts/with-ddb-local")
  return endpoint
end

-- Runs a Lua chunk in a fresh interpreter (lua, default helper.lua) with
-- exactly the given environment (plus this process's module paths unless env
-- sets them) and returns its stdout and whether it succeeded.
function helper.run_lua(env, code, lua)
  local full = {}
  for k, v in pairs(env) do full[k] = v end
  full.LUA_PATH = env.LUA_PATH or package.path
  full.LUA_CPATH = env.LUA_CPATH or package.cpath
  local p = assert(helper.popen(helper.env_command(full, (lua or helper.lua) .. " -e " .. shell_quote(code) .. " 2>&1")))
  local out = p:read("*a")
  local ok = p:close()
  return out, ok
end

-- A shell command line that runs command with exactly the variables of env.
function helper.env_command(env, command)
  local parts = { "env -i" }
  for k, v in pairs(env) do parts[#parts + 1] = shell_quote(k .. "=" .. v) end
  parts[#parts + 1] = command
  return table.concat(parts, " ")
end

-- A fresh directory under /tmp, removed by the caller with helper.rmdir.
function helper.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/ds-spec.XXXXXX"))
  local dir = p:read("*l")
  p:close()
  return dir
end

function helper.rmdir(dir)
  assert(dir:match("^/tmp/ds%-spec%."), "refusing to remove " .. dir)
  os.execute("rm -rf " .. shell_quote(dir))
end

function helper.write_file(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- A self-signed certificate for 127.0.0.1 made with the openssl CLI, as
-- dir/<name>-cert.pem and dir/<name>-key.pem; returns their paths, or nil.
function helper.make_cert(dir, name)
  local cert, key = dir .. "/" .. (name or "tls") .. "-cert.pem", dir .. "/" .. (name or "tls") .. "-key.pem"
  local ok = helper.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    .. " -keyout %s -out %s -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    .. " >/dev/null 2>&1"):format(shell_quote(key), shell_quote(cert)))
  if ok then return cert, key end
end

-- Starts spec/support/http_server.py (with TLS too when given a certificate
-- and key); returns { pid, pipe, http, refused, https? }.
function helper.http_server(cert, key)
  local cmd = "exec /usr/bin/python3 spec/support/http_server.py"
  if cert then cmd = cmd .. " --tls-cert " .. shell_quote(cert) .. " --tls-key " .. shell_quote(key) end
  local pipe = assert(io.popen(cmd, "r"))
  local srv = { pipe = pipe }
  for k, v in (pipe:read("*l") or ""):gmatch("(%w+)=(%d+)") do srv[k] = tonumber(v) end
  return srv
end

function helper.stop_http_server(srv)
  if srv and srv.pid then os.execute("kill " .. srv.pid .. " 2>/dev/null") end
  if srv and srv.pipe then srv.pipe:close() end
end

-- Starts http_server.py; returns its ports ({ http =, refused = }) and a
-- function that stops it.
function helper.start_http_server()
  local srv = helper.http_server()
  assert(srv.http, "http_server.py did not start")
  return srv, function() helper.stop_http_server(srv) end
end

-- The /echo answer of http_server.py: method, headers (lower-case name ->
-- value), body_length, body.
function helper.parse_echo(text)
  local head, body = text:match("^(.-)\n\n(.*)$")
  local r = { headers = {}, body = body }
  for line in head:gmatch("[^\n]+") do
    r.method = r.method or line:match("^method (.*)$")
    local name, value = line:match("^header ([^:]+): ?(.*)$")
    if name then r.headers[name:lower()] = value end
    local n = line:match("^body%-length (%d+)$")
    if n then r.body_length = tonumber(n) end
  end
  return r
end

-- Static credentials and a region for DynamoDB Local; a distinct access key id
-- gives a spec its own namespace of tables there (DynamoDB Local accepts only
-- letters and digits in it, so anything else is dropped).
function helper.local_opts(namespace)
  return {
    endpoint = helper.ddb_local_endpoint(),
    region = "us-east-1",
    credentials = { access_key_id = (namespace or "spec"):gsub("[^%w]", ""), secret_access_key = "local-secret" },
  }
end

-- Creates a table keyed by "pk" (string) with a stream of the given view
-- type (NEW_AND_OLD_IMAGES by default); returns the stream ARN.
function helper.create_stream_table(ddb, name, view_type)
  assert(ddb:create_table({
    TableName = name,
    AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
    KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
    BillingMode = "PAY_PER_REQUEST",
    StreamSpecification = { StreamEnabled = true, StreamViewType = view_type or "NEW_AND_OLD_IMAGES" },
  }))
  return assert(ddb:describe_table({ TableName = name })).Table.LatestStreamArn
end

-- Whether process pid still runs (a zombie waiting for its parent does not).
function helper.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("*a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- The contents of a file, or nil when it cannot be read.
function helper.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- Whether a file can be opened for reading.
function helper.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The standard output of a shell command.
function helper.capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- Runs a luarocks command line as a user types it, in a copy of the
-- repository's tracked files at dir/src (luarocks make compiles in place),
-- with dir/tree as the only rocks tree (through LUAROCKS_CONFIG). Returns
-- whether it succeeded and its output.
function helper.luarocks(dir, command)
  local log = dir .. "/luarocks.log"
  helper.write_file(dir .. "/luarocks-config.lua", "rocks_trees = { [[" .. dir .. "/tree]] }\n")
  local ok = helper.execute(table.concat({
    "mkdir -p " .. shell_quote(dir .. "/src"),
    "git ls-files -z | xargs -0 cp --parents -t " .. shell_quote(dir .. "/src"),
    "cd " .. shell_quote(dir .. "/src"),
    "LUAROCKS_CONFIG=" .. shell_quote(dir .. "/luarocks-config.lua") .. " " .. command .. " >" .. shell_quote(log) .. " 2>&1",
  }, " && "))
  return ok, helper.read_file(log) or ""
end

package.loaded["helper"] = helper
-- Hex of s, written independently of core.hex, so that specs of the signer
-- never check core with itself.
function helper.tohex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- A copy of t with its nested tables copied too.
function helper.deep_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = type(v) == "table" and helper.deep_copy(v) or v end
  return c
end

-- Whether this process runs under valgrind (its preload is mapped).
local valgrind_seen
function helper.under_valgrind()
  if valgrind_seen == nil then
    valgrind_seen = (os.getenv("LD_PRELOAD") or ""):find("vgpreload", 1, true) ~= nil
      or (helper.read_file("/proc/self/maps") or ""):find("vgpreload", 1, true) ~= nil
  end
  return valgrind_seen
end

-- list, or under valgrind (the slowest phase) its first n items only: for loops
-- whose other items run the same C paths again with other data. Every other
-- phase, ASan's included, runs the whole list.
function helper.valgrind_subset(list, n)
  if not helper.under_valgrind() then return list end
  return { helper.unpack(list, 1, n) }
end

-- Whether this is a main test phase: Lua 5.4 or LuaJIT (what OpenResty runs),
-- without the sanitizers or valgrind. Long system specs of plain Lua run only
-- there: the other phases run the unit specs of the same code, and their timings
-- would mean nothing under valgrind.
function helper.main_phase()
  return os.getenv("ASAN_MODULE") == nil and (helper.lua == "lua5.4" or helper.lua == "luajit")
    and not helper.under_valgrind()
end

-- busted's `it` (pass it and `pending`, the spec's own) where this phase runs
-- the test, elsewhere a pending test that says where it runs. where: "main"
-- (helper.main_phase) for long system specs; "lua5.4" (its Lua 5.4 phase) for
-- specs of what no interpreter, build or sanitizer of the phase changes (a C
-- program, a luarocks build from a copy of the sources), which every phase
-- would only repeat.
function helper.phase_it(it, pending, where)
  if helper.main_phase() and (where == "main" or helper.lua == "lua5.4") then return it end
  local only = where == "main" and " (in the Lua 5.4 and LuaJIT phases only)" or " (in the Lua 5.4 phase only)"
  return function(title) pending(title .. only) end
end

-- The shell command that runs bin/dynamodb-stream with this interpreter and the
-- spec's module paths, against DynamoDB Local (opts: helper.local_opts(...), its
-- credentials in the environment and nothing else of ours: HOME = dir, no ~/.aws).
function helper.cli_command(opts, dir, args)
  local env = {
    LUA_PATH = package.path, LUA_CPATH = package.cpath, PATH = os.getenv("PATH"), HOME = dir,
    AWS_ACCESS_KEY_ID = opts.credentials.access_key_id,
    AWS_SECRET_ACCESS_KEY = opts.credentials.secret_access_key,
  }
  local words = { helper.lua, "bin/dynamodb-stream" }
  for _, a in ipairs(args) do words[#words + 1] = shell_quote(a) end
  words[#words + 1] = "--endpoint-url " .. shell_quote(opts.endpoint) .. " --region us-east-1"
  return helper.env_command(env, table.concat(words, " "))
end

-- Runs that command (see cli_command) to its end: exit status, stdout, stderr
-- (kept in dir).
function helper.run_cli(opts, dir, args)
  local out, err = dir .. "/cli-stdout", dir .. "/cli-stderr"
  local _, _, code = helper.execute(helper.cli_command(opts, dir, args)
    .. " >" .. shell_quote(out) .. " 2>" .. shell_quote(err))
  return code, helper.read_file(out), helper.read_file(err)
end

return helper
