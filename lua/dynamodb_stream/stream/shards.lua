--- The shard map and its lineage: DescribeStream read (every page) into the
-- shards tracked, retired (read to their end, or gone) and ready (a child
-- is read only after its parent was read to its end).
-- Methods of dynamodb_stream.stream, mixed in by stream/init.lua.
-- @module dynamodb_stream.stream.shards
local checks = require("dynamodb_stream.stream.checks")
local core = require("dynamodb_stream.core")
local NULL = core.null

local invalid, show, is_list, good_name, shard_entry =
  checks.invalid, checks.show, checks.is_list, checks.good_name, checks.shard_entry

local M = {}

local MAX_DESCRIBE_PAGES = 10000

-- Starts tracking a shard that will be read from position.
function M:_track(id, parent, position)
  local sh = { shard_id = id, parent_shard_id = parent, position = position }
  self._shards[id] = sh
  self._order[#self._order + 1] = id
  return sh
end

-- Lists every shard (all pages of DescribeStream) and updates what we track.
-- A malformed page changes nothing (nil, InvalidResponse).
function M:_describe()
  local listing, parent_of, start_id = {}, {}, nil
  local seen = {}
  for _ = 1, MAX_DESCRIBE_PAGES do
    local res, err = self:_client("describe_stream",
      { StreamArn = self.stream_arn, ExclusiveStartShardId = start_id })
    if not res then return nil, err end
    local desc = res.StreamDescription
    if type(desc) ~= "table" then
      return nil, invalid("DescribeStream returned no StreamDescription", { operation = "describe_stream" })
    end
    self.stream_status = type(desc.StreamStatus) == "string" and desc.StreamStatus or nil
    local shards = desc.Shards
    if shards == nil or shards == NULL then
      shards = {}
    elseif not is_list(shards) then
      return nil, invalid("DescribeStream: Shards is " .. show(shards) .. ", not an array",
        { operation = "describe_stream" })
    end
    for _, s in ipairs(shards) do
      local entry, bad = shard_entry(s)
      if not entry then return nil, bad end
      if not seen[entry.id] then -- a shard listed twice is the same shard
        seen[entry.id] = true
        listing[#listing + 1] = entry
        parent_of[entry.id] = entry.parent or false
      end
    end
    local last = desc.LastEvaluatedShardId
    if last == nil or last == NULL or last == "" then start_id = nil break end
    local why
    last, why = good_name(last)
    if not last then
      return nil, invalid("DescribeStream: bad LastEvaluatedShardId " .. why, { operation = "describe_stream" })
    end
    if last == start_id then
      return nil, invalid("DescribeStream repeated LastEvaluatedShardId " .. last, { operation = "describe_stream" })
    end
    start_id = last
  end
  if start_id then return nil, invalid("DescribeStream did not end", { operation = "describe_stream" }) end
  if self._coordinator then return self:_lease_listed(listing) end -- shards are tracked when acquired

  -- After a restore (or start_at positions), shards we do not know that are
  -- ancestors of shards we do know were read before the state was saved.
  local done_before = {}
  if self._initial and self._restored then
    for id, sh in pairs(self._shards) do
      local p = sh.parent_shard_id or parent_of[id]
      local visited = {}
      while p and not visited[p] do
        visited[p] = true
        done_before[p] = true
        p = parent_of[p]
      end
    end
  end

  local new_ids = {}
  for _, s in ipairs(listing) do
    local sh = self._shards[s.id]
    if sh then
      if sh.announce then sh.announce = nil; new_ids[#new_ids + 1] = s.id end
    elseif self._retired[s.id] then -- luacheck: ignore 542
      -- read to its end already
    elseif self._initial and (done_before[s.id]
        or (not self._restored and self._start_type == "LATEST" and s.closed)) then
      -- nothing after "now" in a closed shard; an ancestor of a restored shard
      self._retired[s.id] = { shard_id = s.id, parent_shard_id = s.parent }
    else
      local start_type = self._initial and not self._restored and self._start_type or "TRIM_HORIZON"
      local sh_new = self:_track(s.id, s.parent, { type = start_type })
      sh_new.closed = s.closed
      new_ids[#new_ids + 1] = s.id
    end
  end
  self:_listed_now(listing)
  self:_notify("new shards", new_ids)
  return true
end

-- Takes a DescribeStream listing ({ { id, parent, closed }, ... }) in: the shards
-- tracked learn their parent and whether they are closed, retired shards no longer
-- listed are forgotten, and the first listing is behind us. -> listed (id -> entry).
function M:_listed_now(listing)
  local listed = {}
  for _, s in ipairs(listing) do
    listed[s.id] = s
    local sh = self._shards[s.id]
    if sh then
      sh.parent_shard_id = sh.parent_shard_id or s.parent
      sh.closed = s.closed
    end
  end
  for id in pairs(self._retired) do
    if not listed[id] then self._retired[id] = nil end
  end
  self._listed = listed
  self._initial = false
  self._described = true
  return listed
end

-- Stops tracking a shard (read to its end, or gone) and reports it once. A
-- finished shard is remembered while DescribeStream lists it, so that it does
-- not come back as new. fetch (the reader's summary) notes that the shard set
-- changed.
function M:_retire(sh, gone, fetch)
  self._shards[sh.shard_id] = nil
  if not gone or self._listed[sh.shard_id] then
    self._retired[sh.shard_id] = {
      shard_id = sh.shard_id, parent_shard_id = sh.parent_shard_id, sequence_number = sh.sequence_number,
    }
  end
  fetch.shards_changed = true
  self:_notify("remove shards", { sh.shard_id })
  if self._coordinator then self:_lease_finished(sh.shard_id) end
end

-- A child waits until its parent is read to its end; a parent we do not
-- track (finished, aged out of the stream, never seen) does not hold it back.
-- With leases, the shard's lease must be held and every parent's lease be at
-- SHARD_END or gone (the coordinator's readable).
function M:_ready(sh)
  local parent = sh.parent_shard_id and self._shards[sh.parent_shard_id]
  return parent == nil and (not self._coordinator or self._coordinator:readable(sh.shard_id))
end

-- Whether sh may be read now: its parent is read to its end and it is not
-- backing off (not_before, on the clock t).
function M:_readable(sh, t)
  return self:_ready(sh) and not (sh.not_before and t < sh.not_before)
end

return M
