--- The pages of a Scan or a Query, one at a time (`ddb:scan_pages`, `ddb:query_pages`).
-- Only the pages of the current round are held, never the whole table.
-- @module dynamodb_stream.pages

local compat = require("dynamodb_stream.compat")

local pages = {}

local MAX_SEGMENTS = 1000000 -- DynamoDB's limit on TotalSegments
local MAX_IN_FLIGHT = 1024   -- what a transport's post_many takes at once

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- params checked (raising at level, for error()) -> the request to send (a
-- copy, without segments) and the number of segments.
local function checked(caller, params, scan, level)
  level = level + 1
  if type(params) ~= "table" then error(caller .. ": params must be a table", level) end
  if type(params.TableName) ~= "string" or params.TableName == "" then
    error(caller .. ": params.TableName must be a non-empty string", level)
  end
  local segments = params.segments
  if segments ~= nil then
    if not scan then error(caller .. ": segments is for scans only", level) end
    if not compat.is_integer(segments) or segments < 1 or segments > MAX_SEGMENTS then
      error(caller .. ": params.segments must be an integer from 1 to " .. MAX_SEGMENTS, level)
    end
    if params.Segment ~= nil or params.TotalSegments ~= nil then
      error(caller .. ": give segments, or Segment and TotalSegments, not both", level)
    end
    if segments > 1 and params.ExclusiveStartKey ~= nil then
      error(caller .. ": ExclusiveStartKey is a place in one segment; it cannot start a scan of several", level)
    end
  end
  local request = copy(params)
  request.segments = nil
  return request, segments or 1
end

-- The iterator over the pages of one operation, one call after another
-- (each page with segment 0).
local function one_by_one(client, operation, request)
  local finished = false
  return function()
    if finished then return nil end
    local page, err = client:call(operation, request)
    if not page then
      finished = true
      return false, err
    end
    request.ExclusiveStartKey = page.LastEvaluatedKey
    finished = page.LastEvaluatedKey == nil
    return page, 0
  end
end

-- The iterator over the pages of a parallel scan: each round asks the next
-- page of every live segment (at most MAX_IN_FLIGHT; more are taken in turn)
-- through one call_many, then hands out what came, in segment order, each
-- with its segment number. After a failed call no round starts: the pages of
-- that round come first, then the error. starts: see pages.scan.
local function parallel(client, request, segments, starts)
  -- The live segments, first to ask at the head: { segment, start key }.
  local queue, head, tail = {}, 1, 0
  for s = 0, segments - 1 do
    local key = starts[s]
    if key ~= false then
      tail = tail + 1
      queue[tail] = { segment = s, key = key }
    end
  end
  local ready, at, failure, finished = {}, 1, nil, false

  local function round()
    local asked, list = {}, {}
    while #asked < MAX_IN_FLIGHT and head <= tail do
      local s = queue[head]
      queue[head], head = nil, head + 1
      local params = copy(request)
      params.Segment, params.TotalSegments, params.ExclusiveStartKey = s.segment, segments, s.key
      asked[#asked + 1], list[#list + 1] = s, params
    end
    local answers, errs = client:call_many("Scan", list, nil, #list)
    local got = {}
    for k, s in ipairs(asked) do
      local page = answers[k]
      if page then
        got[#got + 1] = { page = page, segment = s.segment }
        if page.LastEvaluatedKey ~= nil then
          s.key, tail = page.LastEvaluatedKey, tail + 1
          queue[tail] = s
        end
      elseif not failure then
        failure = errs[k]
        failure.segment = s.segment
      end
    end
    return got
  end

  return function()
    if finished then return nil end
    while ready[at] == nil do
      if failure or head > tail then
        finished = true
        if failure then return false, failure end
        return nil
      end
      ready, at = round(), 1
    end
    local got = ready[at]
    ready[at], at = nil, at + 1
    return got.page, got.segment
  end
end

--- An iterator over the pages of a Scan (see `dynamodb_stream.dynamodb:scan_pages`):
-- each step gives a page and its segment number (0 to segments - 1).
-- @param client a DynamoDB client
-- @tparam table params Scan parameters, plus `segments`
-- @tparam[opt="scan_pages"] string caller the name bad arguments are raised under
-- @tparam[opt] table starts where to resume a scan, by segment number: a
-- LastEvaluatedKey to start after, or false for a segment already scanned to
-- its end (absent: from its start)
-- @treturn function the iterator; raises on bad params
function pages.scan(client, params, caller, starts)
  local request, segments = checked(caller or "scan_pages", params, true, 2)
  starts = starts or {}
  if segments > 1 then return parallel(client, request, segments, starts) end
  if starts[0] == false then return function() return nil end end
  request.ExclusiveStartKey = starts[0] or request.ExclusiveStartKey
  return one_by_one(client, "Scan", request)
end

--- An iterator over the pages of a Query (see `dynamodb_stream.dynamodb:query_pages`).
-- @param client a DynamoDB client
-- @tparam table params Query parameters
-- @treturn function the iterator; raises on bad params
function pages.query(client, params)
  local request = checked("query_pages", params, false, 2)
  return one_by_one(client, "Query", request)
end

return pages
