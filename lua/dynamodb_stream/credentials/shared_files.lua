--- The AWS shared config and credentials files (`~/.aws/config`, `~/.aws/credentials`).
--
-- Read as botocore reads them: `#` and `;` start a comment only at the start of a line
-- (`key = v # x` keeps `# x`); keys are lower-cased; `=` or `:` separates key and value;
-- indented lines under a key with an empty value are a nested block (`s3 =`), skipped here.
-- In the credentials file every `[name]` is a profile. In the config file a profile is
-- `[profile name]` (the name may be quoted), or `[default]` for the default profile;
-- `[profile default]` wins over `[default]` when both are there (as in the JS SDK; botocore
-- takes whichever comes last); a bare `[name]` is not a profile. `[sso-session name]`
-- sections are SSO sessions.
-- @module dynamodb_stream.credentials.shared_files

local split = require("dynamodb_stream.credentials.process").split

local M = {}

-- Reads an AWS shared config/credentials file into { [section] = { key = value } }.
-- A section or key written twice is merged (botocore refuses the file).
local function read_ini(path)
  local f = path and io.open(path, "r")
  if not f then return nil end
  local sections, current, first = {}, nil, true
  for line in f:lines() do
    if first then line, first = line:gsub("^\239\187\191", ""), false end -- a UTF-8 byte order mark
    local indented = line:match("^%s+%S") ~= nil
    line = line:gsub("^%s+", ""):gsub("%s+$", "")
    if line == "" or line:match("^[#;]") then -- luacheck: ignore 542
      -- blank or comment
    elseif line:match("^%[.*%]$") then
      local name = line:sub(2, -2):gsub("^%s+", ""):gsub("%s+$", "")
      current = sections[name] or {}
      sections[name] = current
    elseif current and not indented then
      local key, value = line:match("^([^=:]-)%s*[=:]%s*(.-)$")
      if key and key ~= "" then current[key:lower()] = value end
    end
  end
  f:close()
  return sections
end

-- A path of the environment with a leading `~/` taken as the home directory (nil when
-- there is no HOME to expand it with).
local function expand_home(path, home)
  if path == "~" or path:sub(1, 2) == "~/" then
    return home and (home .. path:sub(2)) or nil
  end
  return path
end

--- The paths of the two files: `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` (a
-- leading `~/` is the home directory), or `~/.aws/config` and `~/.aws/credentials`.
-- @tparam function getenv `function(name) -> value or nil`
-- @treturn string|nil the config file (nil when it would be under an unknown HOME)
-- @treturn string|nil the credentials file (likewise)
function M.paths(getenv)
  local home = getenv("HOME")
  return expand_home(getenv("AWS_CONFIG_FILE") or "~/.aws/config", home),
    expand_home(getenv("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", home)
end

-- The sections of the config file named `[kind name]`, by name: { [name] = settings }.
-- The name may be quoted as a shell word (`[profile "my dev"]`).
local function named_sections(config, kind)
  local found, spelled = {}, {}
  for raw, settings in pairs(config) do
    if raw:sub(1, #kind) == kind then
      local words = split(raw)
      if words and #words == 2 and words[1] == kind then
        local name = words[2]
        -- Two spellings of one name: the plain one wins, so that the choice is not pairs' order.
        if not spelled[name] or raw == kind .. " " .. name then
          found[name], spelled[name] = settings, raw
        end
      end
    end
  end
  return found
end

local function config_profiles(config)
  local profiles = named_sections(config, "profile")
  if profiles.default == nil then profiles.default = config.default end
  return profiles
end

--- Both files read: `{ config = sections, credentials = sections, profiles = the config
-- file's profiles by name, sso_sessions = its sso-session sections by name }` (empty when
-- a file is absent).
-- @tparam function getenv `function(name) -> value or nil`
-- @treturn table
function M.load(getenv)
  local config_path, credentials_path = M.paths(getenv)
  local config = read_ini(config_path) or {}
  return {
    config = config,
    credentials = read_ini(credentials_path) or {},
    profiles = config_profiles(config),
    sso_sessions = named_sections(config, "sso-session"),
  }
end

--- The settings of one profile: the credentials file's `[name]` over the config file's
-- `[profile name]` (or `[default]` for the default profile).
-- @tparam table files what `load` returned (or just `{ config = ..., credentials = ... }`)
-- @tparam string name the profile
-- @treturn table the settings (empty when the profile is nowhere)
-- @treturn boolean whether either file has the profile
-- @treturn table the settings from the credentials file alone
-- @treturn table the settings from the config file alone
function M.profile(files, name)
  local from_credentials = files.credentials[name]
  local from_config = (files.profiles or config_profiles(files.config))[name]
  local merged = {}
  for k, v in pairs(from_config or {}) do merged[k] = v end
  for k, v in pairs(from_credentials or {}) do merged[k] = v end
  return merged, (from_credentials or from_config) ~= nil, from_credentials or {}, from_config or {}
end

--- The `[sso-session name]` section of the config file, or nil.
-- @tparam table files what `load` returned
-- @tparam string name
-- @treturn table|nil
function M.sso_session(files, name)
  return (files.sso_sessions or named_sections(files.config, "sso-session"))[name]
end

return M
