/* The growable byte buffer of the module: response bodies and headers
 * (ds_http.c), json_encode's output (ds_json.c), the records decoder's
 * scratch (ds_decode.c). Lua-free (no lua.h) and never raises, so it can be
 * used from libcurl callbacks; a binding that owns one in a userdata raises
 * itself when it cannot grow. */
#ifndef DS_BUFFER_H
#define DS_BUFFER_H

#include <stddef.h>
#include <string.h>

#pragma GCC visibility push(hidden)

typedef struct {
    char *data; /* NULL until the first append; not NUL-terminated */
    size_t len;
    size_t cap;
    int mapped; /* data is an anonymous mapping (see buffer.c), else malloc's */
} ds_buf;

/* Room for n more bytes after the contents: where they go (count them in
 * with b->len += n once written), or NULL on allocation failure or size
 * overflow (the buffer is then unchanged). Moves the contents when it grows:
 * a pointer into them is stale afterwards. */
char *ds_buf_reserve(ds_buf *b, size_t n);

/* ds_buf_append when the buffer has to grow first. */
int ds_buf_grow_append(ds_buf *b, const void *p, size_t n);

/* Appends n bytes. 0 on success, -1 on allocation failure or size overflow
 * (the buffer is then unchanged). Inline: decoders append many short runs,
 * and most fit. */
static inline int ds_buf_append(ds_buf *b, const void *p, size_t n)
{
    if (b->data == NULL || b->cap - b->len < n)
        return ds_buf_grow_append(b, p, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Gives back the room beyond the contents when it is more than slack
 * bytes; keeps the buffer as it is when that fails. */
void ds_buf_shrink(ds_buf *b, size_t slack);

/* The buffer, whose allocation the caller now owns; b is left empty. */
ds_buf ds_buf_take(ds_buf *b);

/* Forgets the contents but keeps the allocation for reuse. */
void ds_buf_reset(ds_buf *b);

/* Releases the allocation; the buffer is empty and reusable afterwards. */
void ds_buf_free(ds_buf *b);

/* What reused buffers may keep between uses: a moving high-water mark, the
 * largest size used in the last DS_KEEP_WINDOW uses. A steady stream of
 * large answers keeps its room; after a run of small ones it is given back. */
#define DS_KEEP_WINDOW 8
/* Allocations this small are always kept: giving them back saves nothing. */
#define DS_KEEP_SMALL 65536

typedef struct {
    size_t used[DS_KEEP_WINDOW]; /* the sizes of the last uses, a ring */
    unsigned next;
} ds_keep;

/* Counts one use of `used` bytes. */
void ds_keep_note(ds_keep *k, size_t used);

/* Whether an allocation of cap bytes is worth keeping: a small one, or one
 * at most twice the high-water mark (a buffer grown by doubling to hold it). */
int ds_keep_fits(const ds_keep *k, size_t cap);

#pragma GCC visibility pop

#endif
