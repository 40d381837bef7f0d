--- `credential_process`: credentials printed as JSON by a program a profile names.
--
-- The command line is split as a POSIX shell would split it (quotes and backslashes; no
-- expansion, no shell), as botocore does, and run with `core.run_process` under a timeout.
-- The program must exit 0 and print `{"Version": 1, "AccessKeyId", "SecretAccessKey",
-- "SessionToken"?, "Expiration"?}`; with an `Expiration` the credentials are fetched again
-- (the program run again) before then, without one they never expire. A failure names the
-- exit status and quotes the program's stderr, never its stdout, which may hold a secret.
-- @module dynamodb_stream.credentials.process

local core = require("dynamodb_stream.core")
local errors = require("dynamodb_stream.errors")
local provider = require("dynamodb_stream.credentials.provider")
local timestamp = require("dynamodb_stream.credentials.timestamp")

local M = {
  DEFAULT_TIMEOUT = 60, -- seconds; a context's `process_timeout` replaces it
  MAX_STDERR = 400,     -- bytes of stderr quoted in a failure
}

local SPACE = { [" "] = true, ["\t"] = true, ["\n"] = true, ["\r"] = true }

--- Splits a command line into words as Python's `shlex.split` does (POSIX rules): words
-- are separated by white space; `'...'` keeps everything; in `"..."` a backslash escapes
-- only `"` and `\`; elsewhere a backslash escapes any character. Nothing is expanded.
-- @tparam string line
-- @treturn {string,...} the words, or `nil, why` (an unclosed quote, a trailing backslash)
function M.split(line)
  local words, word, i, n = {}, nil, 1, #line
  while i <= n do
    local c = line:sub(i, i)
    if SPACE[c] then
      if word then words[#words + 1], word = word, nil end
    elseif c == "\\" then
      if i == n then return nil, "ends with a lone backslash" end
      word, i = (word or "") .. line:sub(i + 1, i + 1), i + 1
    elseif c == "'" then
      local close = line:find("'", i + 1, true)
      if not close then return nil, "has no closing quotation" end
      word, i = (word or "") .. line:sub(i + 1, close - 1), close
    elseif c == '"' then
      local parts = { word or "" }
      i = i + 1
      while true do
        if i > n then return nil, "has no closing quotation" end
        local d = line:sub(i, i)
        if d == '"' then break end
        local nxt = line:sub(i + 1, i + 1)
        if d == "\\" and (nxt == '"' or nxt == "\\") then
          d, i = nxt, i + 1
        end
        parts[#parts + 1] = d
        i = i + 1
      end
      word = table.concat(parts)
    else
      word = (word or "") .. c
    end
    i = i + 1
  end
  if word then words[#words + 1] = word end
  return words
end

-- The program's stderr as one line fit to quote: control characters out, capped.
local function quoted_stderr(text)
  text = text:gsub("[%c]+", " "):gsub("^%s+", ""):gsub("%s+$", "")
  if text == "" then return "" end
  if #text > M.MAX_STDERR then text = text:sub(1, M.MAX_STDERR) .. "..." end
  return ": " .. text
end

local function version_text(v)
  if type(v) == "number" then return ("Version %g"):format(v) end
  if type(v) == "string" then return "Version as a string" end
  return v == nil and "no Version" or ("a Version of type " .. type(v))
end

local function optional(v)
  if v == core.null then return nil end
  return v
end

-- The credentials in what the program printed, or nil, why (never quoting it).
local function parse_output(out, now)
  local doc = core.json_decode(out)
  if type(doc) ~= "table" then return nil, "did not print JSON (an object with Version 1)" end
  if doc.Version ~= 1 then
    return nil, "printed " .. version_text(doc.Version) .. "; only the number 1 is understood"
  end
  for _, field in ipairs({ "AccessKeyId", "SecretAccessKey" }) do
    local v = doc[field]
    if type(v) ~= "string" or v == "" then return nil, "printed no " .. field .. " (a non-empty string)" end
  end
  local token = optional(doc.SessionToken)
  if token ~= nil and type(token) ~= "string" then return nil, "printed a SessionToken that is not a string" end
  local expiration = optional(doc.Expiration)
  if expiration ~= nil then
    local epoch, why = timestamp.parse(expiration)
    if not epoch then return nil, "printed an Expiration that is not an RFC 3339 time (" .. why .. ")" end
    if epoch <= now then
      return nil, "printed an Expiration in the past (" .. timestamp.format(epoch) .. ", now is "
        .. timestamp.format(now) .. ")"
    end
    expiration = epoch
  end
  return {
    access_key_id = doc.AccessKeyId,
    secret_access_key = doc.SecretAccessKey,
    session_token = token,
    expiration = expiration,
  }
end

--- A provider that runs a profile's `credential_process`. Nothing runs until the first `get`.
-- @tparam table ctx the context (`ctx:now()`; `ctx.process_timeout`, seconds, default 60)
-- @tparam string command_line the setting's value
-- @tparam string profile_name the profile, for messages
-- @return the provider, or `nil, why` for a command line that cannot be split or is empty
function M.provider(ctx, command_line, profile_name)
  assert(type(command_line) == "string", "command_line must be a string")
  assert(type(profile_name) == "string", "profile_name must be a string")
  local where = "profile " .. profile_name .. ": credential_process"
  local argv, why = M.split(command_line)
  if not argv then return nil, where .. " " .. why end
  if #argv == 0 then return nil, where .. " is empty" end
  local name = "credential_process of profile " .. profile_name
  local prefix = "credentials (" .. name .. "): "
  local function fail(code, message)
    return nil, errors.new({ code = code, message = prefix .. message })
  end
  local function fetch()
    local timeout = ctx.process_timeout or M.DEFAULT_TIMEOUT
    local out, stderr, status = core.run_process(argv, { timeout = timeout })
    if not out then
      -- It did not run to its end: stderr is then "Code: message" (naming the program, never
      -- quoting its output) and status the code.
      return fail(status == "Timeout" and "Timeout" or "CredentialsError", (stderr:gsub("^%w+: ", "", 1)))
    end
    if status ~= 0 then
      return fail("CredentialsError", "'" .. argv[1] .. "' exited with status " .. status .. quoted_stderr(stderr))
    end
    local creds, problem = parse_output(out, ctx:now())
    if not creds then return fail("CredentialsError", "'" .. argv[1] .. "' " .. problem) end
    return creds
  end
  return provider.new(name, fetch, { clock = function() return ctx:now() end })
end

return M
