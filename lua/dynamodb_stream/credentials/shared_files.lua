--- The AWS shared config and credentials files (`~/.aws/config`, `~/.aws/credentials`).
-- @module dynamodb_stream.credentials.shared_files

local M = {}

-- Reads an AWS shared config/credentials file into { [section] = { key = value } }.
-- Indented lines belong to a nested block (e.g. `s3 =` sub-settings) and are skipped.
local function read_ini(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local sections, current = {}, nil
  for line in f:lines() do
    local indented = line:match("^%s+%S") ~= nil
    line = line:gsub("^%s+", ""):gsub("%s+$", "")
    if line == "" or line:match("^[#;]") then -- luacheck: ignore 542
      -- blank or comment
    elseif line:match("^%[.*%]$") then
      local name = line:sub(2, -2):gsub("^%s+", ""):gsub("%s+$", "")
      current = sections[name] or {}
      sections[name] = current
    elseif current and not indented then
      local key, value = line:match("^([^=]-)%s*=%s*(.-)$")
      if key then current[key:lower()] = value end
    end
  end
  f:close()
  return sections
end

--- The paths of the two files: `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`, or under `$HOME/.aws`.
-- @tparam function getenv `function(name) -> value or nil`
-- @treturn string the config file
-- @treturn string the credentials file
function M.paths(getenv)
  local home = getenv("HOME")
  local function under_home(relative) return home and (home .. "/" .. relative) or relative end
  return getenv("AWS_CONFIG_FILE") or under_home(".aws/config"),
    getenv("AWS_SHARED_CREDENTIALS_FILE") or under_home(".aws/credentials")
end

--- Both files read: `{ config = sections, credentials = sections }` (empty when a file is absent).
-- @tparam function getenv `function(name) -> value or nil`
-- @treturn table
function M.load(getenv)
  local config_path, credentials_path = M.paths(getenv)
  return { config = read_ini(config_path) or {}, credentials = read_ini(credentials_path) or {} }
end

--- The settings of one profile: the credentials file's `[name]` over the config file's
-- `[profile name]` (`[default]` in both files for the default profile).
-- @tparam table files what `load` returned
-- @tparam string name the profile
-- @treturn table the settings (empty when the profile is nowhere)
-- @treturn boolean whether either file has the profile
-- @treturn table the settings from the credentials file alone
function M.profile(files, name)
  local creds, conf = files.credentials, files.config
  local conf_section = conf[name == "default" and "default" or ("profile " .. name)]
    or (name == "default" and conf["profile default"]) or nil
  local merged = {}
  for k, v in pairs(conf_section or {}) do merged[k] = v end
  for k, v in pairs(creds[name] or {}) do merged[k] = v end
  return merged, (creds[name] or conf_section) ~= nil, creds[name] or {}
end

--- The `[sso-session name]` section of the config file, or nil.
-- @tparam table files what `load` returned
-- @tparam string name
-- @treturn table|nil
function M.sso_session(files, name)
  return files.config["sso-session " .. name]
end

return M
