/* Lua-free: replace a file's contents so that a crash at any moment leaves
 * either the old or the new contents, never a torn file. */
#ifndef DS_ATOMIC_FILE_H
#define DS_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes data to path.tmp (created with the given mode), fsyncs it, renames
 * it over path and fsyncs the directory. Returns 0, or -1
 * with a message in err (which names the step and the errno text). */
int atomic_file_write(const char *path, const char *data, size_t len, mode_t mode,
                      char *err, size_t errlen);

#endif
