rockspec_format = "3.0"
package = "dynamodb_stream"
version = "scm-1"
source = {
  url = "git+file:///dev/null",
}
description = {
  summary = "A DynamoDB Streams consumer with an event-emitter API, with a C core",
  detailed = [[
    Consumes an Amazon DynamoDB stream: shard lineage, expiry and trimming handled,
    AttributeValues unmarshalled in C, SigV4 and HTTP through OpenSSL and libcurl.
    Mirrors the API and events of the npm package dynamodb-stream.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5", -- 5.4, 5.3, 5.1 and LuaJIT 2.1 (OpenResty); not 5.2
}
external_dependencies = {
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
  CURL = { library = "curl" },
  CJSON = { header = "cjson/cJSON.h", library = "cjson" },
}
build = {
  type = "builtin",
  modules = {
    ["dynamodb_stream.core"] = {
      sources = {
        "csrc/ds_core.c", "csrc/atomic_file.c", "csrc/ds_sigv4.c", "csrc/sigv4.c", "csrc/ds_http.c", "csrc/buffer.c",
        "csrc/ds_json.c", "csrc/ds_av.c", "csrc/number.c", "csrc/float_conv.c", "csrc/base64.c",
        "csrc/ds_decode.c", "csrc/ds_lua.c", "csrc/ds_os.c", "csrc/json_lex.c", "csrc/ds_body.c",
        "csrc/process.c", "csrc/filter.c", "csrc/ds_filter.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      -- Lua 5.1 and LuaJIT take the 5.3 API from compat-5.3.h, which Debian's
      -- lua-compat53-dev puts in /usr/include/lua5.1 (searched after
      -- LuaRocks' own LUA_INCDIR, so it never hides another version's lua.h).
      incdirs = { "$(OPENSSL_INCDIR)", "$(CJSON_INCDIR)", "/usr/include/lua5.1" },
      libdirs = { "$(OPENSSL_LIBDIR)", "$(CURL_LIBDIR)", "$(CJSON_LIBDIR)" },
      libraries = { "crypto", "curl", "cjson", "m" },
    },
    ["dynamodb_stream"] = "lua/dynamodb_stream/init.lua",
    ["dynamodb_stream.config"] = "lua/dynamodb_stream/config.lua",
    ["dynamodb_stream.credentials"] = "lua/dynamodb_stream/credentials/init.lua",
    ["dynamodb_stream.credentials.context"] = "lua/dynamodb_stream/credentials/context.lua",
    ["dynamodb_stream.credentials.provider"] = "lua/dynamodb_stream/credentials/provider.lua",
    ["dynamodb_stream.credentials.shared_dict"] = "lua/dynamodb_stream/credentials/shared_dict.lua",
    ["dynamodb_stream.credentials.shared_files"] = "lua/dynamodb_stream/credentials/shared_files.lua",
    ["dynamodb_stream.credentials.timestamp"] = "lua/dynamodb_stream/credentials/timestamp.lua",
    ["dynamodb_stream.errors"] = "lua/dynamodb_stream/errors.lua",
    ["dynamodb_stream.service"] = "lua/dynamodb_stream/service.lua",
    ["dynamodb_stream.client"] = "lua/dynamodb_stream/client.lua",
    ["dynamodb_stream.dynamodb"] = "lua/dynamodb_stream/dynamodb.lua",
    ["dynamodb_stream.pages"] = "lua/dynamodb_stream/pages.lua",
    ["dynamodb_stream.batch_write"] = "lua/dynamodb_stream/batch_write.lua",
    ["dynamodb_stream.table_key"] = "lua/dynamodb_stream/table_key.lua",
    ["dynamodb_stream.replicate"] = "lua/dynamodb_stream/replicate.lua",
    ["dynamodb_stream.cli_progress"] = "lua/dynamodb_stream/cli_progress.lua",
    ["dynamodb_stream.verify"] = "lua/dynamodb_stream/verify.lua",
    ["dynamodb_stream.leases.table"] = "lua/dynamodb_stream/leases/table.lua",
    ["dynamodb_stream.emitter"] = "lua/dynamodb_stream/emitter.lua",
    ["dynamodb_stream.stream"] = "lua/dynamodb_stream/stream/init.lua",
    ["dynamodb_stream.stream.checks"] = "lua/dynamodb_stream/stream/checks.lua",
    ["dynamodb_stream.stream.options"] = "lua/dynamodb_stream/stream/options.lua",
    ["dynamodb_stream.stream.shards"] = "lua/dynamodb_stream/stream/shards.lua",
    ["dynamodb_stream.stream.reader"] = "lua/dynamodb_stream/stream/reader.lua",
    ["dynamodb_stream.stream.records"] = "lua/dynamodb_stream/stream/records.lua",
    ["dynamodb_stream.stream.state"] = "lua/dynamodb_stream/stream/state.lua",
    ["dynamodb_stream.stream.leases"] = "lua/dynamodb_stream/stream/leases.lua",
    ["dynamodb_stream.stream.metrics"] = "lua/dynamodb_stream/stream/metrics.lua",
    ["dynamodb_stream.checkpoint"] = "lua/dynamodb_stream/checkpoint.lua",
    ["dynamodb_stream.leases.coordinator"] = "lua/dynamodb_stream/leases/coordinator.lua",
    ["dynamodb_stream.seqnum"] = "lua/dynamodb_stream/seqnum.lua",
    ["dynamodb_stream.retry"] = "lua/dynamodb_stream/retry.lua",
    ["dynamodb_stream.compat"] = "lua/dynamodb_stream/compat.lua",
    ["dynamodb_stream.ngx_http"] = "lua/dynamodb_stream/ngx_http.lua",
    ["dynamodb_stream.runtime"] = "lua/dynamodb_stream/runtime.lua",
    ["dynamodb_stream.openresty"] = "lua/dynamodb_stream/openresty.lua",
    ["dynamodb_stream.credentials.imds"] = "lua/dynamodb_stream/credentials/imds.lua",
    ["dynamodb_stream.credentials.container"] = "lua/dynamodb_stream/credentials/container.lua",
    ["dynamodb_stream.credentials.sts"] = "lua/dynamodb_stream/credentials/sts.lua",
    ["dynamodb_stream.credentials.sts_xml"] = "lua/dynamodb_stream/credentials/sts_xml.lua",
    ["dynamodb_stream.credentials.sso"] = "lua/dynamodb_stream/credentials/sso.lua",
    ["dynamodb_stream.credentials.process"] = "lua/dynamodb_stream/credentials/process.lua",
    ["dynamodb_stream.credentials.profile"] = "lua/dynamodb_stream/credentials/profile.lua",
    ["dynamodb_stream.cli"] = "lua/dynamodb_stream/cli.lua",
  },
  -- luarocks writes its own wrapper in the tree's bin/, with the tree's paths and interpreter
  install = { bin = { ["dynamodb-stream"] = "bin/dynamodb-stream" } },
  copy_directories = { "examples" },
}
test_dependencies = { "busted" }
test = { type = "busted" }
