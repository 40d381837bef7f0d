#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *step, const char *path)
{
    snprintf(err, errlen, "%s %s: %s", step, path, strerror(errno));
    return -1;
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int sync_parent(const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (dir == NULL)
        return fail(err, errlen, "allocate for", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (rc != 0)
        fail(err, errlen, "fsync directory", dir);
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

int atomic_file_write(const char *path, const char *data, size_t len, mode_t mode,
                      char *err, size_t errlen)
{
    /* A fixed name beside the file: a crash leaves at most one stale temporary
     * file, which the next write truncates and reuses. O_NOFOLLOW keeps a
     * planted symlink from redirecting the write. */
    static const char suffix[] = ".tmp";
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof suffix);
    if (tmp == NULL)
        return fail(err, errlen, "allocate for", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        fail(err, errlen, "create", tmp);
        free(tmp);
        return -1;
    }
    const char *step = NULL;
    if (fchmod(fd, mode) != 0) /* the file may have existed with another mode */
        step = "chmod";
    for (size_t done = 0; step == NULL && done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno != EINTR)
            step = "write";
        else if (n > 0)
            done += (size_t)n;
    }
    if (step == NULL && fsync(fd) != 0)
        step = "fsync";
    if (close(fd) != 0 && step == NULL)
        step = "close";
    if (step == NULL && rename(tmp, path) != 0)
        step = "rename";
    if (step != NULL) {
        fail(err, errlen, step, tmp);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return sync_parent(path, err, errlen);
}
