#include "ds.h"

/* placeholder until the http part lands */
void ds_open_http(lua_State *L)
{
    (void)L;
}
