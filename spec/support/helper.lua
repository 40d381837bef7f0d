-- Loaded by busted before every spec file (see .busted).
local helper = {}

-- The endpoint of the DynamoDB Local that scripts/with-ddb-local started.
function helper.ddb_local_endpoint()
  local endpoint = os.getenv("DDB_LOCAL_ENDPOINT")
  assert(endpoint, "DDB_LOCAL_ENDPOINT is not set: run the specs through `make test`")
  return endpoint
end

package.loaded["helper"] = helper
return helper
