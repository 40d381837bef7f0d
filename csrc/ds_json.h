/* ds_json.h - core.json_encode and core.json_decode. */
#ifndef DS_JSON_H
#define DS_JSON_H

#include "ds.h"

/* Adds json_encode and json_decode to the table at the top of the stack. [-0, +0] */
DS_HIDDEN void ds_open_json(lua_State *L);

/* core.json_encode as a C function (compile_filter encodes a Lua pattern). */
DS_HIDDEN int ds_json_encode(lua_State *L);

/* core.json_decode as a C function (the exact path of decode_records). */
DS_HIDDEN int ds_json_decode(lua_State *L);

#endif
