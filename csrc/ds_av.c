#include "ds.h"

/* placeholder until the av part lands */
void ds_open_av(lua_State *L)
{
    (void)L;
}
