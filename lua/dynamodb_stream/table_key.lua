--- The key of a DynamoDB table, read with DescribeTable: one reading for
-- `batch_write_all`, `ds.verify` and `ds.replicate`. Clients need only
-- `call(operation, params)`.
-- @module dynamodb_stream.table_key
local errors = require("dynamodb_stream.errors")

local table_key = {}

local KEY_TYPES = { S = true, N = true, B = true }

--- DescribeTable's `Table`.
-- @param client anything with `call(operation, params)`
-- @tparam string name the table
-- @tparam[opt] string role what messages call it ("source", "target")
-- @treturn table the description, or nil and an error (a missing table: a
-- ResourceNotFoundException whose message names it)
function table_key.describe(client, name, role)
  local what = (role and role .. " " or "") .. "table '" .. name .. "'"
  local answer, err = client:call("DescribeTable", { TableName = name })
  if not answer then
    if type(err) == "table" and err.code == "ResourceNotFoundException" then
      return nil, errors.new({ code = err.code, retryable = false, message = what .. " not found" })
    end
    return nil, err
  end
  if type(answer.Table) ~= "table" then
    return nil, errors.new({ code = "InvalidResponse", operation = "DescribeTable",
      message = "no Table in the answer for " .. what })
  end
  return answer.Table
end

--- The key of a described table.
-- @tparam table description DescribeTable's `Table`
-- @treturn table `{ names = { hash[, range] }, types = { "S" | "N" | "B", ... },
-- text = "pk (S), sk (N)" }`, or nil when it holds no valid key schema
function table_key.of(description)
  local types = {}
  for _, d in ipairs(type(description.AttributeDefinitions) == "table" and description.AttributeDefinitions or {}) do
    if type(d) == "table" and type(d.AttributeName) == "string" then types[d.AttributeName] = d.AttributeType end
  end
  local key = { names = {}, types = {} }
  for _, element in ipairs(type(description.KeySchema) == "table" and description.KeySchema or {}) do
    local name = type(element) == "table" and element.AttributeName
    local kind = types[name]
    if type(name) ~= "string" or not KEY_TYPES[kind] then return nil end
    local at = element.KeyType == "HASH" and 1 or #key.names + 1
    table.insert(key.names, at, name)
    table.insert(key.types, at, kind)
  end
  if #key.names == 0 or #key.names > 2 then return nil end
  local parts = {}
  for i, name in ipairs(key.names) do parts[i] = name .. " (" .. key.types[i] .. ")" end
  key.text = table.concat(parts, ", ")
  return key
end

--- describe, then of.
-- @param client anything with `call(operation, params)`
-- @tparam string name the table
-- @tparam[opt] string role what messages call it
-- @treturn table the key (see `of`), or nil and an error (InvalidResponse when the
-- answer holds no key schema)
-- @treturn table the description
function table_key.read(client, name, role)
  local description, err = table_key.describe(client, name, role)
  if not description then return nil, err end
  local key = table_key.of(description)
  if not key then
    return nil, errors.new({ code = "InvalidResponse", operation = "DescribeTable",
      message = "no key schema in the answer for " .. (role and role .. " " or "") .. "table '" .. name .. "'" })
  end
  return key, description
end

return table_key
