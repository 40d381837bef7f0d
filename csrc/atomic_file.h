/* Lua-free: replace a file's contents so that a crash at any moment leaves
 * either the old or the new contents, never a torn file; and an advisory lock
 * so that one process at a time owns a file. */
#ifndef DS_ATOMIC_FILE_H
#define DS_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#pragma GCC visibility push(hidden)

/* Writes data to a temporary file of its own beside path (path.tmp.<pid>.<n>,
 * created with O_EXCL and the given mode, so concurrent writers never share
 * one), fsyncs it, renames it over path and fsyncs the directory. Returns 0,
 * or -1 with a message in err (which names the step and the errno text). */
int atomic_file_write(const char *path, const char *data, size_t len, mode_t mode,
                      char *err, size_t errlen);

/* Takes an exclusive advisory lock (flock, not waiting) on path.lock, a file
 * of mode 0600 that is never replaced (path itself is, by every write). Returns
 * the descriptor holding the lock (close it to release), or -1 with a message
 * in err; *busy is set when another open file holds the lock. A path that
 * names a directory is refused ("is a directory"). */
int atomic_file_lock(const char *path, int *busy, char *err, size_t errlen);

#pragma GCC visibility pop

#endif
