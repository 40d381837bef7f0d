/* ds_os.h - core.sleep, core.monotime, core.write_file_atomic, core.lock_file,
 * core.run_process. */
#ifndef DS_OS_H
#define DS_OS_H

#include "ds.h"

/* Adds sleep, monotime, write_file_atomic, lock_file and run_process to the
 * table at the top of the stack. [-0, +0] */
DS_HIDDEN void ds_open_os(lua_State *L);

#endif
