/* ds_http.h - core.http: HTTP(S) POSTs through libcurl; bodies in, status,
 * headers and bodies out, nothing of AWS. */
#ifndef DS_HTTP_H
#define DS_HTTP_H

#include "ds.h"

/* Adds http to the table at the top of the stack. [-0, +0] */
DS_HIDDEN void ds_open_http(lua_State *L);

#endif
