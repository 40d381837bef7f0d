-- credential_process: the command line split as botocore (shlex) splits it, the program's
-- JSON checked, failures named without ever quoting its stdout.
local helper = require("helper")
local context = require("dynamodb_stream.credentials.context")
local process = require("dynamodb_stream.credentials.process")
local timestamp = require("dynamodb_stream.credentials.timestamp")

local NOW = timestamp.parse("2026-09-01T12:00:00Z")
local SECRET = "wJalrSECRETfromStdout"

describe("credentials.process", function()
  local dir, now, ctx

  before_each(function()
    dir = helper.tmpdir()
    now = NOW
    ctx = context.new({ env = {}, clock = function() return now end })
  end)
  after_each(function() helper.rmdir(dir) end)

  -- A fake credential_process: a shell script that counts its runs in dir/count and prints body
  -- (a shell word list for printf) with the run number as %s.
  local function script(body, name)
    local path = dir .. "/" .. (name or "creds")
    helper.write_file(path, "#!/bin/sh\n"
      .. "n=$(( $(cat " .. helper.shell_quote(dir .. "/count") .. " 2>/dev/null || echo 0) + 1 ))\n"
      .. "echo $n > " .. helper.shell_quote(dir .. "/count") .. "\n" .. body .. "\n")
    os.execute("chmod +x " .. helper.shell_quote(path))
    return path
  end

  local function runs()
    return tonumber(helper.read_file(dir .. "/count") or "0")
  end

  local function json(fields)
    return "cat <<'EOF'\n" .. fields .. "\nEOF"
  end

  local function fetch_error(command_line)
    local p = assert(process.provider(ctx, command_line, "dev"))
    local creds, err = p:get()
    assert.is_nil(creds)
    assert.is_not_nil(err)
    assert.is_nil(tostring(err):find(SECRET, 1, true))
    return err
  end

  describe("split", function()
    local cases = {
      "/opt/bin/creds --profile dev",
      "  spaced   out\twords \n",
      "'/path with spaces/creds' \"a b\" c\\ d",
      "a\"b c\"d 'e'\"f\"g",
      [["a \"quoted\" word" "back\\slash" "\$HOME" "\n"]],
      [[no\$expansion $HOME `date` ~ * # not-a-comment]],
      "'' \"\" x",
      [['it'\''s']],
      "",
    }

    it("splits as Python's shlex.split", function()
      local py = { "import json, shlex, sys", "for line in json.load(sys.stdin): print(json.dumps(shlex.split(line)))" }
      local input = dir .. "/lines.json"
      local encoded = {}
      for i, line in ipairs(cases) do
        encoded[i] = require("dynamodb_stream.core").json_encode(line)
      end
      helper.write_file(input, "[" .. table.concat(encoded, ",") .. "]")
      local out = helper.capture("python3 -c " .. helper.shell_quote(table.concat(py, "\n")) .. " < " .. input)
      local i = 0
      for expected in out:gmatch("[^\n]+") do
        i = i + 1
        local words = assert(process.split(cases[i]))
        assert.same(require("dynamodb_stream.core").json_decode(expected), setmetatable(words, nil), cases[i])
      end
      assert.equals(#cases, i)
    end)

    it("refuses an unclosed quote and a trailing backslash", function()
      assert.same({ nil, "has no closing quotation" }, { process.split("creds 'dev") })
      assert.same({ nil, "has no closing quotation" }, { process.split('creds "dev') })
      assert.same({ nil, "has no closing quotation" }, { process.split('creds "dev\\"') })
      assert.same({ nil, "ends with a lone backslash" }, { process.split("creds dev\\") })
    end)
  end)

  it("is refused when the command line is empty or cannot be split, before running anything", function()
    assert.same({ nil, "profile dev: credential_process is empty" }, { process.provider(ctx, "  ", "dev") })
    assert.same({ nil, "profile dev: credential_process has no closing quotation" },
      { process.provider(ctx, "'/opt/creds", "dev") })
  end)

  it("runs nothing until the first get, then hands out what the program printed", function()
    local path = script(json('{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "' .. SECRET
      .. '", "SessionToken": "tok", "Expiration": "2026-09-01T13:00:00Z"}'))
    local p = assert(process.provider(ctx, path, "dev"))
    assert.equals(0, runs())
    local creds = assert(p:get())
    assert.equals("AKIDPROC", creds.access_key_id)
    assert.equals(SECRET, creds.secret_access_key)
    assert.equals("tok", creds.session_token)
    assert.equals(NOW + 3600, creds.expiration)
    assert.equals(1, runs())
    assert.equals("credentials provider (credential_process of profile dev)", tostring(p))
  end)

  it("runs the program again before an Expiration, never for credentials without one", function()
    local path = script('printf \'{"Version":1,"AccessKeyId":"AKID%s","SecretAccessKey":"s",'
      .. '"Expiration":"%s"}\' "$n" "$EXP"')
    ctx = context.new({ env = {}, clock = function() return now end })
    -- The Expiration an hour after each run: the script reads it from its environment.
    local function provider_with_expiry(exp)
      return assert(process.provider(ctx, "env EXP=" .. exp .. " " .. path, "dev"))
    end
    local p = provider_with_expiry("2026-09-01T13:00:00Z")
    assert.equals("AKID1", assert(p:get()).access_key_id)
    now = NOW + 50 * 60 -- within the advance window of 15 min
    assert.equals("AKID2", assert(p:get()).access_key_id)
    assert.equals(2, runs())

    local long = assert(process.provider(ctx, script(json(
      '{"Version": 1, "AccessKeyId": "AKIDLONG", "SecretAccessKey": "s"}'), "long"), "dev"))
    local creds = assert(long:get())
    assert.is_nil(creds.expiration)
    now = NOW + 365 * 86400
    assert.equals("AKIDLONG", assert(long:get()).access_key_id)
    assert.equals(3, runs())
  end)

  it("passes arguments with spaces, quoted in the command line, to a program whose path has a space", function()
    local path = script('printf \'%s\\n\' "$@" > ' .. helper.shell_quote(dir .. "/args") .. "\n"
      .. json('{"Version": 1, "AccessKeyId": "AKID", "SecretAccessKey": "s"}'), "my creds")
    local p = assert(process.provider(ctx, "'" .. path .. "' --profile \"team a\" it\\'s '$HOME'", "dev"))
    assert(p:get())
    assert.equals("--profile\nteam a\nit's\n$HOME\n", helper.read_file(dir .. "/args"))
  end)

  it("times out a program that hangs, with code Timeout", function()
    ctx.process_timeout = 0.2
    local err = fetch_error(script("sleep 30"))
    assert.equals("Timeout", err.code)
    assert.matches("did not finish within 0.2 s", err.message, 1, true)
    assert.matches("credential_process of profile dev", err.message, 1, true)
  end)

  it("reports a non-zero exit with its status and stderr, not its stdout", function()
    local err = fetch_error(script("echo '{\"SecretAccessKey\": \"" .. SECRET .. "\"}'\n"
      .. "echo 'token expired:' >&2; printf '\\033[31mrun login\\033[0m\\n' >&2; exit 3"))
    assert.equals("CredentialsError", err.code)
    assert.matches("exited with status 3: token expired: [31mrun login [0m", err.message, 1, true)
    assert.is_nil(err.message:find("\27", 1, true))
  end)

  it("caps the stderr it quotes", function()
    local err = fetch_error(script("head -c 5000 /dev/zero | tr '\\0' x >&2; exit 1"))
    assert.matches("exited with status 1: " .. ("x"):rep(process.MAX_STDERR) .. "...$", err.message)
  end)

  it("says 'did not print JSON' without quoting what it printed", function()
    local err = fetch_error(script("echo 'AccessKeyId=AKID SecretAccessKey=" .. SECRET .. "'"))
    assert.equals("CredentialsError", err.code)
    assert.matches("did not print JSON", err.message, 1, true)
    err = fetch_error(script("echo '\"" .. SECRET .. "\"'"))
    assert.matches("did not print JSON", err.message, 1, true)
    err = fetch_error(script("true"))
    assert.matches("did not print JSON", err.message, 1, true)
  end)

  it("wants Version to be the number 1", function()
    local err = fetch_error(script(json('{"Version": 2, "AccessKeyId": "AKID", "SecretAccessKey": "' .. SECRET .. '"}')))
    assert.matches("printed Version 2; only the number 1 is understood", err.message, 1, true)
    err = fetch_error(script(json('{"Version": "1", "AccessKeyId": "AKID", "SecretAccessKey": "' .. SECRET .. '"}')))
    assert.matches("printed Version as a string; only the number 1 is understood", err.message, 1, true)
    err = fetch_error(script(json('{"AccessKeyId": "AKID", "SecretAccessKey": "' .. SECRET .. '"}')))
    assert.matches("printed no Version", err.message, 1, true)
    err = fetch_error(script(json('[1, "' .. SECRET .. '"]')))
    assert.matches("printed no Version", err.message, 1, true)
  end)

  it("wants a key id and a secret", function()
    local err = fetch_error(script(json('{"Version": 1, "AccessKeyId": "AKID"}')))
    assert.matches("printed no SecretAccessKey", err.message, 1, true)
    err = fetch_error(script(json('{"Version": 1, "AccessKeyId": "", "SecretAccessKey": "' .. SECRET .. '"}')))
    assert.matches("printed no AccessKeyId", err.message, 1, true)
    err = fetch_error(script(json('{"Version": 1, "AccessKeyId": 5, "SecretAccessKey": "' .. SECRET .. '"}')))
    assert.matches("printed no AccessKeyId", err.message, 1, true)
    err = fetch_error(script(json('{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "' .. SECRET
      .. '", "SessionToken": 7}')))
    assert.matches("SessionToken that is not a string", err.message, 1, true)
  end)

  it("takes a null SessionToken or Expiration as absent", function()
    local p = assert(process.provider(ctx, script(json('{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "s",'
      .. ' "SessionToken": null, "Expiration": null}')), "dev"))
    local creds = assert(p:get())
    assert.is_nil(creds.session_token)
    assert.is_nil(creds.expiration)
  end)

  it("refuses an Expiration in the past or that is not a time", function()
    local err = fetch_error(script(json('{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "' .. SECRET
      .. '", "Expiration": "2026-09-01T11:59:59Z"}')))
    assert.matches("printed an Expiration in the past (2026-09-01T11:59:59Z, now is 2026-09-01T12:00:00Z)",
      err.message, 1, true)
    err = fetch_error(script(json('{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "' .. SECRET
      .. '", "Expiration": "tomorrow"}')))
    assert.matches("printed an Expiration that is not an RFC 3339 time", err.message, 1, true)
    err = fetch_error(script(json('{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "' .. SECRET
      .. '", "Expiration": 1788292800}')))
    assert.matches("printed an Expiration that is not an RFC 3339 time", err.message, 1, true)
  end)

  it("names a program that cannot be run", function()
    local err = fetch_error(dir .. "/no-such-creds --profile x")
    assert.equals("CredentialsError", err.code)
    assert.matches("cannot run '" .. dir .. "/no-such-creds': No such file or directory", err.message, 1, true)
  end)

  it("never quotes stdout in any failure", function()
    for _, body in ipairs({
      "echo " .. SECRET .. "; exit 1",
      "echo " .. SECRET .. "; echo oops >&2; exit 2",
      json('{"Version": 1, "AccessKeyId": "' .. SECRET .. '"}'),
      json('{"Version": 1, "SecretAccessKey": "' .. SECRET .. '"'),
      "head -c 2000000 /dev/zero; echo " .. SECRET,
    }) do
      local err = fetch_error(script(body))
      assert.is_nil(err.message:find(SECRET, 1, true), body)
    end
  end)
end)
