-- Lua decode benchmarks on one GetRecords page.
--
--   lua5.4 bench/decode/decode.lua IMPL PAGE.json [runs] [min_seconds_per_run]
--
-- IMPL:
--   cjson  lua-cjson decode + a plain-Lua recursive unmarshall (what a user
--          would write: N -> tonumber, B -> base64-decoded bytes, NULL ->
--          cjson.null, sets -> sequences) of Keys, NewImage, OldImage.
--   ours   ds.decode_records(text)
--   ours_filtered  ds.decode_records(text, { filter = ORDERS_FILTER }) (below:
--          the orders page's records whose new image has customer.age >= 84,
--          98 of its 1,000; bench/node/decode.js's "filtered" writes the same
--          condition in JavaScript)
--   lua_build  the Lua side's floor: the values ds.decode_records gives for
--          the page, built again from a tape recorded once (no JSON read;
--          bench/lua_build_floor.c)
-- Prints: RESULT <name> <records/s> <MB/s> <records per page> <bytes>
-- where name is lua_cjson, ours_decode_records, ours_filtered or lua_build
-- (records/s counts every record of the page, kept or not); under LuaJIT
-- (all but cjson) luajit_ours_decode_records, luajit_ours_filtered,
-- luajit_lua_build. ours_filtered
-- also prints KEPT <name> <records kept> (bench/report.lua checks that every
-- filtered decoder kept as many).
-- Timing: CPU time of the process (os.clock: steal and waits on a busy
-- machine do not count), warm-up run first, then `runs` runs each long enough
-- to last min_seconds; the median run is reported. GC cost is included.

local impl, file = arg[1], arg[2]
local runs = tonumber(arg[3] or 7)
local min_sec = tonumber(arg[4] or 0.25)
if not impl or not file then
  io.stderr:write("usage: lua5.4 bench/decode/decode.lua cjson|ours|ours_filtered|lua_build PAGE.json [runs] [min_s]\n")
  os.exit(2)
end

local fh = assert(io.open(file, "rb"))
local text = fh:read("*a")
fh:close()

local clock = os.clock
local here = arg[0]:match("^(.*)/[^/]*$") or "."

local name, decode
local kept  -- records a filter kept, in the last decode

if impl == "cjson" then
  package.path = here .. "/?.lua;" .. package.path
  local decode_page = require("lua_cjson_unmarshall")
  name = "lua_cjson"
  decode = function() return decode_page(text) end
elseif impl == "ours" then
  local decode_records = require("dynamodb_stream").decode_records
  name = "ours_decode_records"
  decode = function()
    local recs, err = decode_records(text)
    if not recs then error(tostring(err)) end
    return #recs
  end
elseif impl == "ours_filtered" then
  -- Lambda's FilterCriteria pattern (every orders record is a MODIFY; the
  -- numeric rule on an N value is our extension, see README.md's Filters).
  local ORDERS_FILTER = '{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"customer":'
    .. '{"M":{"age":{"N":[{"numeric":[">=",84]}]}}}}}}'
  local decode_records = require("dynamodb_stream").decode_records
  local opts = { filter = ORDERS_FILTER }
  name = "ours_filtered"
  decode = function()
    local recs, err, filtered = decode_records(text, opts)
    if not recs then error(tostring(err)) end
    kept = #recs
    return #recs + filtered
  end
elseif impl == "lua_build" then
  -- bench/Makefile builds one lua_build_floor.so per interpreter.
  package.cpath = here .. (jit and "/../out/luajit/?.so;" or "/../out/?.so;") .. package.cpath
  local floor = require("lua_build_floor")
  local page = assert(require("dynamodb_stream").decode_records(text))
  local tape = floor.record(page)
  -- The replay must be the same values: equal leaves, the same shared
  -- metatables (with a __name), per-table ones equal but new.
  local function check(a, b, path)
    if type(a) ~= "table" or type(b) ~= "table" then
      assert(a == b, "lua_build: the replay differs at " .. path)
      return
    end
    for k, v in pairs(a) do check(v, b[k], path .. "." .. tostring(k)) end
    for k in pairs(b) do assert(a[k] ~= nil, "lua_build: the replay has more at " .. path) end
    local ma, mb = getmetatable(a), getmetatable(b)
    if ma and not ma.__name then
      assert(mb ~= ma, "lua_build: a per-table metatable is shared at " .. path)
      check(ma, mb, path .. "<metatable>")
    else
      assert(ma == mb, "lua_build: another metatable at " .. path)
    end
  end
  check(page, floor.replay(tape), "records")
  page = nil
  name = "lua_build"
  decode = function() return #floor.replay(tape) end
else
  error("unknown IMPL " .. impl)
end

if jit then name = "luajit_" .. name end
local nrec = decode()  -- warm-up; also checks the page decodes
local iters = 1
while true do
  local t0 = clock()
  for _ = 1, iters do decode() end
  if clock() - t0 >= min_sec then break end
  iters = iters * 2
end
local rates = {}
for r = 1, runs do
  local t0 = clock()
  for _ = 1, iters do decode() end
  rates[r] = iters / (clock() - t0)
end
table.sort(rates)
local pages = rates[math.floor((runs + 1) / 2)]
print(string.format("RESULT %s %.0f %.1f %d %d", name, pages * nrec, pages * #text / 1e6, nrec, #text))
if kept then print(string.format("KEPT %s %d", name, kept)) end
