-- Every error path of the clients against spec/support/echo_server.py, for
-- spec/robustness/echo_server_spec.lua: the same code runs in plain Lua (the
-- libcurl transport) and inside nginx (the cosocket transport).
--
--   echo_cases.CREDENTIALS          the credentials the clients sign with
--   echo_cases.run(port) -> { { name =, code =, texts = { tostring(err), every string field } } ... }
-- for each form: a call, GetRecords decoded in C, call_many, a DynamoDB call, a
-- stream's fetch_stream_state, and tostring(client).
local ds = require("dynamodb_stream")

local echo_cases = {}

-- A session token as long as a real STS one (base64 with "/", "+" and "=").
local TOKEN = ("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDx+Zk3"):rep(16) .. "AQ=="

echo_cases.CREDENTIALS = {
  access_key_id = "AKIDECHOEXAMPLE",
  secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYECHOKEY",
  session_token = TOKEN,
}

echo_cases.FORMS = { "400-raw", "400-message", "400-type", "500-raw", "200-raw", "200-bare", "200-array",
  "200-string", "200-bad-json", "200-shards", "bad-status" }

local function texts(err)
  local out = { tostring(err) }
  for k, v in pairs(err) do
    if type(v) == "string" then out[#out + 1] = k .. "=" .. v end
  end
  return out
end

function echo_cases.run(port)
  local results = {}
  local function add(name, answer, err)
    results[#results + 1] = err and { name = name, code = err.code, texts = texts(err) }
      or { name = name, code = "no error", texts = { tostring(answer) } }
  end
  for _, form in ipairs(echo_cases.FORMS) do
    local opts = { region = "us-east-1", endpoint = "http://127.0.0.1:" .. port .. "/" .. form,
      credentials = echo_cases.CREDENTIALS, max_attempts = 1, timeout = 5 }
    local streams, dynamodb = ds.client(opts), ds.dynamodb(opts)
    add(form .. " call", streams:describe_stream({ StreamArn = "arn:echo" }))
    add(form .. " records", streams:get_records_unmarshalled({ ShardIterator = "it-echo" }))
    local answers, errs = streams:get_records_many({ { ShardIterator = "it-echo" } }, true)
    add(form .. " call_many", answers[1], errs[1])
    add(form .. " dynamodb", dynamodb:get_item({ TableName = "t", Key = { pk = { S = "k" } } }))
    local stream = ds.new(streams, "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/echo")
    stream:on("error", function() end)
    add(form .. " stream", stream:fetch_stream_state())
    results[#results + 1] = { name = form .. " tostring(client)", code = "none", texts = { tostring(streams) } }
    streams:close()
    dynamodb:close()
  end
  return results
end

return echo_cases
