/* ds_decode.h - core.decode_records and core.decode_stats. */
#ifndef DS_DECODE_H
#define DS_DECODE_H

#include "ds.h"

/* Adds decode_records and decode_stats to the table at the top of the
 * stack. [-0, +0] */
DS_HIDDEN void ds_open_decode(lua_State *L);

#endif
