/* ds_core.c - luaopen_dynamodb_stream_core: the module table, filled by each
 * part's ds_open_*. Nothing else of the module calls into this file. */
#include "ds.h"
#include "ds_av.h"
#include "ds_body.h"
#include "ds_decode.h"
#include "ds_filter.h"
#include "ds_http.h"
#include "ds_json.h"
#include "ds_lua.h"
#include "ds_os.h"
#include "ds_sigv4.h"

/* The only exported symbol. */
DS_EXPORT int luaopen_dynamodb_stream_core(lua_State *L);

DS_EXPORT int luaopen_dynamodb_stream_core(lua_State *L)
{
    lua_newtable(L);
    ds_open_os(L);
    ds_open_markers(L);
    ds_open_sigv4(L);
    ds_open_body(L);
    ds_open_http(L);
    ds_open_json(L);
    ds_open_av(L);
    ds_open_decode(L);
    ds_open_filter(L);
    ds_pushnull(L);
    lua_setfield(L, -2, "null");
    lua_pushliteral(L, DS_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
