--- The progress display of `dynamodb-stream replicate` (placeholder: one plain line per
-- update, until the terminal display lands).
-- @module dynamodb_stream.cli_progress
local M = {}

local Display = {}
Display.__index = Display

--- A display writing through opts.write.
-- @tparam table opts `write` (function(text)), `terminal`
-- @treturn table the display
function M.new(opts) return setmetatable({ write = opts.write }, Display) end

--- Shows p (see ds.replicate's progress).
-- @tparam table p the progress
function Display:update(p)
  self.write(("replicate: %s %d/%d items, %d changes applied\n"):format(p.phase, p.scanned, p.estimated, p.changes))
end

--- The last update.
-- @tparam table p the progress
function Display:finish(p) self:update(p) end

--- Nothing to clear with plain lines.
function Display.interrupt() end

return M
