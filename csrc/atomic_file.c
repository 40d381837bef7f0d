#define _DEFAULT_SOURCE /* flock */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Formats "<step> <path>: <strerror(code)>" into err; returns -1. */
static int fail_errno(char *err, size_t errlen, const char *step, const char *path, int code)
{
    snprintf(err, errlen, "%s %s: %s", step, path, strerror(code));
    return -1;
}

static int fail(char *err, size_t errlen, const char *step, const char *path)
{
    return fail_errno(err, errlen, step, path, errno);
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

/* Creates a temporary file of a name no other writer uses (pid, a counter and
 * the clock; O_EXCL proves it, a name left by a killed process is skipped).
 * Returns the descriptor and the name in *tmp_out (malloc'd), or -1. */
static int create_temporary(const char *path, mode_t mode, char **tmp_out, char *err, size_t errlen)
{
    static unsigned long counter;
    size_t size = strlen(path) + 64;
    char *tmp = malloc(size);
    if (tmp == NULL)
        return fail(err, errlen, "allocate for", path);
    for (int tries = 0; tries < 100; tries++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        snprintf(tmp, size, "%s.tmp.%ld.%lx", path, (long)getpid(),
                 (unsigned long)now.tv_nsec ^ (++counter << 20));
        /* O_NOFOLLOW keeps a planted symlink from redirecting the write. */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST)
            break;
    }
    fail(err, errlen, "create", tmp);
    free(tmp);
    return -1;
}

int atomic_file_write(const char *path, const char *data, size_t len, mode_t mode,
                      char *err, size_t errlen)
{
    char *tmp = NULL;
    int fd = create_temporary(path, mode, &tmp, err, errlen);
    if (fd < 0)
        return -1;
    const char *step = NULL;
    int code = 0;
    if (fchmod(fd, mode) != 0) /* the umask may have taken bits away */
        step = "chmod", code = errno;
    for (size_t done = 0; step == NULL && done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno != EINTR)
            step = "write", code = errno;
        else if (n > 0)
            done += (size_t)n;
    }
    if (step == NULL && fsync(fd) != 0)
        step = "fsync", code = errno;
    if (close(fd) != 0 && step == NULL)
        step = "close", code = errno;
    if (step == NULL && rename(tmp, path) != 0)
        step = "rename", code = errno;
    if (step != NULL) {
        fail_errno(err, errlen, step, tmp, code);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return sync_parent(path, err, errlen);
}

int atomic_file_lock(const char *path, int *busy, char *err, size_t errlen)
{
    struct stat st;
    *busy = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "is a directory, not a file");
        return -1;
    }
    size_t plen = strlen(path);
    char *lock = malloc(plen + sizeof ".lock");
    if (lock == NULL)
        return fail(err, errlen, "allocate for", path);
    memcpy(lock, path, plen);
    memcpy(lock + plen, ".lock", sizeof ".lock");
    int fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail(err, errlen, "create", lock);
        free(lock);
        return -1;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK) {
            *busy = 1;
            snprintf(err, errlen, "%s is locked", lock);
        } else {
            fail(err, errlen, "lock", lock);
        }
        close(fd);
        free(lock);
        return -1;
    }
    free(lock);
    return fd;
}
