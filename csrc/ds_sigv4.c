#include "ds.h"

/* placeholder until the sigv4 part lands */
void ds_open_sigv4(lua_State *L)
{
    (void)L;
}
