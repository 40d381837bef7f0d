/* ds_body.h - the body userdata (metatable "dynamodb_stream.body"): the
 * bytes of an answer held in C memory, so that they reach a decoder without
 * being copied into a Lua string. Generic: it knows nothing of what the
 * bytes are. ds_http.c makes them; core.decode_records reads them. */
#ifndef DS_BODY_H
#define DS_BODY_H

#include "buffer.h"
#include "ds.h"

#define DS_BODY_MT "dynamodb_stream.body"

/* Pushes a body that takes over b's allocation (no copy); b is left empty.
 * On a raise (memory) b is untouched and still the caller's. [-0, +1] */
DS_HIDDEN void ds_body_push(lua_State *L, ds_buf *b);

/* The bytes of the body at idx and their count, or NULL when the value at
 * idx is not a body. Raises on a closed body. The body is pinned: a close
 * meanwhile (from a finalizer) waits for ds_body_unpin, so the bytes stay
 * valid while the body stays on the stack; __gc frees them in any case.
 * [-0, +0] */
DS_HIDDEN const char *ds_body_pin(lua_State *L, int idx, size_t *len);

/* Ends a ds_body_pin of the body at idx (does the close it deferred). [-0, +0] */
DS_HIDDEN void ds_body_unpin(lua_State *L, int idx);

/* Gives an empty b (no block) the block of a closed body, kept for reuse,
 * if there is one; else leaves b as it is. Never raises, allocates no Lua
 * memory. [-0, +0] */
DS_HIDDEN void ds_body_adopt(lua_State *L, ds_buf *b);

/* The bytes of the blocks the pool keeps for the next answers. [-0, +0] */
DS_HIDDEN size_t ds_body_pool_bytes(lua_State *L);

/* Creates the body metatable and the pool of blocks. [-0, +0] */
DS_HIDDEN void ds_open_body(lua_State *L);

#endif
