--- The checks of what the service answered, and the stream's error values.
-- Answers are checked field by field before use: a field of the wrong type,
-- a shard id or iterator with a control character, a record that is not a
-- record make the fetch fail with InvalidResponse.
-- @module dynamodb_stream.stream.checks
local errors = require("dynamodb_stream.errors")
local seqnum = require("dynamodb_stream.seqnum")
local core = require("dynamodb_stream.core")
local NULL = core.null

local M = {}

--- An error value (errors.new) with extra fields.
-- @tparam string code
-- @tparam string message
-- @tparam[opt] table fields copied onto the error (retryable is passed to errors.new)
-- @return the error
function M.new_error(code, message, fields)
  local e = errors.new({ code = code, message = message, retryable = fields and fields.retryable })
  for k, v in pairs(fields or {}) do
    if e[k] == nil then e[k] = v end
  end
  return e
end

--- A client's error as an error value: tables with a code are kept, anything
-- else is wrapped as a retryable ClientError.
-- @param err what the client returned
-- @tparam string operation
-- @return the error
function M.as_error(err, operation)
  if type(err) == "table" and type(err.code) == "string" then return err end
  return M.new_error("ClientError", tostring(err), { operation = operation, retryable = true })
end

--- An InvalidResponse error.
-- @tparam string message
-- @tparam[opt] table fields
-- @return the error
function M.invalid(message, fields)
  return M.new_error("InvalidResponse", message, fields)
end

--- Whether a field of an answer is absent (nil, JSON null or "").
-- @param v
-- @treturn boolean
function M.absent(v) return v == nil or v == NULL or v == "" end

--- Whether s holds a control character (any byte < 0x20, DEL). Stream ARNs,
-- shard ids and iterators end up in request bodies: one with such a byte is
-- refused.
-- @tparam string s
-- @treturn boolean
function M.has_control(s) return s:find("[%z\1-\31\127]") ~= nil end

--- A printable excerpt of a bad value, for messages.
-- @param v
-- @treturn string
function M.show(v)
  if type(v) ~= "string" then return v == NULL and "null" or type(v) end
  local s = v:sub(1, 60):gsub("[%c\127-\255]", function(c) return string.format("\\%d", c:byte()) end)
  return "'" .. s .. (#v > 60 and "...'" or "'")
end

--- True for a table whose keys are exactly 1..n (the empty table included).
-- @param t
-- @treturn boolean
function M.is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

--- A shard id or iterator from an answer: a non-empty string without control
-- characters.
-- @param v
-- @return the value, or nil and why (an excerpt)
function M.good_name(v)
  if type(v) ~= "string" or v == "" then return nil, M.show(v) end
  if M.has_control(v) then return nil, M.show(v) .. " (control character)" end
  return v
end

local show, good_name, absent, invalid = M.show, M.good_name, M.absent, M.invalid

--- One shard entry of a DescribeStream page.
-- @param s the entry
-- @return { id, parent, closed }, or nil and an InvalidResponse error
function M.shard_entry(s)
  local function bad(what)
    return nil, invalid("DescribeStream: " .. what, { operation = "describe_stream" })
  end
  if type(s) ~= "table" then return bad("a shard is " .. show(s) .. ", not an object") end
  local id, why = good_name(s.ShardId)
  if not id then return bad("bad ShardId " .. why) end
  local parent = s.ParentShardId
  if parent == nil or parent == NULL or parent == "" then
    parent = nil
  else
    parent, why = good_name(parent)
    if not parent then return bad("bad ParentShardId " .. why .. " for shard " .. id) end
  end
  local range = s.SequenceNumberRange
  if range == nil or range == NULL then
    range = {}
  elseif type(range) ~= "table" then
    return bad("SequenceNumberRange is " .. show(range) .. " for shard " .. id)
  end
  local ending = range.EndingSequenceNumber
  if not absent(ending) and not seqnum.valid(ending) then
    return bad("bad EndingSequenceNumber " .. show(ending) .. " for shard " .. id)
  end
  return { id = id, parent = parent, closed = not absent(ending) }
end

--- The shape of a GetRecords page: Records an array, NextShardIterator absent
-- (the shard ended) or a good name that, for a closed shard, moves on.
-- @tparam table res the page
-- @tparam string sent the ShardIterator sent
-- @tparam boolean closed whether the shard is closed
-- @return the records and the next iterator (nil at the shard's end), or
-- false and what is wrong
function M.page_shape(res, sent, closed)
  local records, next_it = res.Records, res.NextShardIterator
  if not M.is_list(records) then return false, "Records is " .. show(records) .. ", not an array" end
  if absent(next_it) then return records, nil end
  local why
  next_it, why = good_name(next_it)
  if not next_it then return false, "bad NextShardIterator " .. why end
  if next_it == sent and #records == 0 and closed then
    -- it would never reach the end; an open shard at its tip may answer so
    -- (DynamoDB Local does): caught up
    return false, "NextShardIterator of a closed shard is the ShardIterator sent, with no records"
  end
  return records, next_it
end

local function bad_record(what) return nil, invalid("GetRecords: " .. what, { operation = "get_records" }) end
local OPTIONAL_IMAGES = { "NewImage", "OldImage" }

--- Checks the fields of a record that the consumer reads. An unknown
-- eventName (a string) is allowed: such a record is delivered as 'record' only.
-- @param record
-- @return its sequence number, or nil and an InvalidResponse error
function M.check_record(record)
  if type(record) ~= "table" then return bad_record("a record is " .. show(record) .. ", not an object") end
  if type(record.eventName) ~= "string" then return bad_record("eventName is " .. show(record.eventName)) end
  local ddb = record.dynamodb
  if type(ddb) ~= "table" then return bad_record("dynamodb is " .. show(ddb) .. ", not an object") end
  local seq = ddb.SequenceNumber
  if not seqnum.valid(seq) then return bad_record("bad SequenceNumber " .. show(seq)) end
  if type(ddb.Keys) ~= "table" then return bad_record("Keys is " .. show(ddb.Keys) .. " in record " .. seq) end
  for i = 1, 2 do
    local name = OPTIONAL_IMAGES[i]
    local v = ddb[name]
    if v ~= nil and v ~= NULL and type(v) ~= "table" then
      return bad_record(name .. " is " .. show(v) .. " in record " .. seq)
    end
  end
  return seq
end

return M
