/* A growable byte buffer. Lua-free (no lua.h), so it can be used from
 * contexts that must never raise, such as libcurl callbacks. */
#ifndef DS_BUFFER_H
#define DS_BUFFER_H

#include <stddef.h>

#define DS_BUF_HIDDEN __attribute__((visibility("hidden")))

typedef struct {
    char *data; /* NULL until the first append; not NUL-terminated */
    size_t len;
    size_t cap;
} ds_buf;

/* Appends n bytes. 0 on success, -1 on allocation failure or size overflow
 * (the buffer is then unchanged). */
DS_BUF_HIDDEN int ds_buf_append(ds_buf *b, const void *p, size_t n);

/* Forgets the contents but keeps the allocation for reuse. */
DS_BUF_HIDDEN void ds_buf_reset(ds_buf *b);

/* Releases the allocation; the buffer is empty and reusable afterwards. */
DS_BUF_HIDDEN void ds_buf_free(ds_buf *b);

#endif
