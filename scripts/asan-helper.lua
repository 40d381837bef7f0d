-- busted helper for `make asan` (scripts/run-specs --phase asan): the specs
-- running in this process get the ASan+UBSan build of dynamodb_stream.core
-- (ASAN_MODULE, e.g. build-asan/dynamodb_stream/core.so) through
-- package.preload, while package.cpath stays as .busted sets it. Processes the
-- specs spawn with `env -i` (examples, config runs) inherit package.cpath and
-- so load the normal build: they run without the ASan runtime, which a
-- sanitized module cannot load without.
local so = assert(os.getenv("ASAN_MODULE"), "ASAN_MODULE is not set")
local open = assert(package.loadlib(so, "luaopen_dynamodb_stream_core"))
package.preload["dynamodb_stream.core"] = function(...) return open(...) end
dofile("spec/support/helper.lua")
