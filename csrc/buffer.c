/* Growable byte buffer, see buffer.h. */
#if defined(__linux__)
#define _GNU_SOURCE /* mremap */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

/* On Linux a buffer of DS_BUF_MAP_MIN bytes or more is an anonymous
 * mapping of its own: it grows with mremap (no copy, and never the old and
 * new block at once) and goes back to the system when freed. From malloc,
 * a freed page-sized body made glibc raise its mmap threshold, so the next
 * ones came from the heap, were copied as they grew and kept their pages
 * there: 8 MB more peak RSS reading pages of 5 MB. Not under ASan, whose
 * red zones around malloc's blocks are what checks the readers of a body. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DS_BUF_ASAN 1
#endif
#endif
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__) && !defined(DS_BUF_ASAN)
#include <sys/mman.h>
#include <unistd.h>
#define DS_BUF_MAP_MIN (256 * 1024)

/* cap rounded up to whole pages, or 0 on overflow. */
static size_t page_round(size_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return cap > SIZE_MAX - page ? 0 : (cap + page - 1) / page * page;
}

/* Moves b's contents into a block of cap bytes (mapped when large), or
 * returns -1 with b unchanged. cap >= b->len. */
static int resize(ds_buf *b, size_t cap)
{
    char *d;
    if (cap >= DS_BUF_MAP_MIN) {
        if ((cap = page_round(cap)) == 0)
            return -1;
        if (b->mapped) {
            d = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
        } else {
            d = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (d != MAP_FAILED && b->len)
                memcpy(d, b->data, b->len);
            if (d != MAP_FAILED)
                free(b->data);
        }
        if (d == MAP_FAILED)
            return -1;
        b->mapped = 1;
    } else if (b->mapped) {
        if ((d = malloc(cap)) == NULL)
            return -1;
        memcpy(d, b->data, b->len);
        munmap(b->data, b->cap);
        b->mapped = 0;
    } else if ((d = realloc(b->data, cap)) == NULL) {
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

static void release(ds_buf *b)
{
    if (b->mapped)
        munmap(b->data, b->cap);
    else
        free(b->data);
}
#else
static int resize(ds_buf *b, size_t cap)
{
    char *d = realloc(b->data, cap);
    if (d == NULL)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

static void release(ds_buf *b)
{
    free(b->data);
}
#endif

char *ds_buf_reserve(ds_buf *b, size_t n)
{
    if (n > SIZE_MAX - b->len)
        return NULL;
    if (b->data == NULL || b->len + n > b->cap) { /* never NULL on success, even for n == 0 */
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        if (resize(b, cap) != 0)
            return NULL;
    }
    return b->data + b->len;
}

int ds_buf_grow_append(ds_buf *b, const void *p, size_t n)
{
    char *room;
    if (n == 0)
        return 0;
    if ((room = ds_buf_reserve(b, n)) == NULL)
        return -1;
    memcpy(room, p, n);
    b->len += n;
    return 0;
}

void ds_buf_shrink(ds_buf *b, size_t slack)
{
    if (b->data != NULL && b->cap - b->len > slack)
        (void)resize(b, b->len ? b->len : 1);
}

ds_buf ds_buf_take(ds_buf *b)
{
    ds_buf taken = *b;
    memset(b, 0, sizeof *b);
    return taken;
}

void ds_buf_reset(ds_buf *b)
{
    b->len = 0;
}

void ds_buf_free(ds_buf *b)
{
    release(b);
    b->data = NULL;
    b->len = b->cap = 0;
    b->mapped = 0;
}

void ds_keep_note(ds_keep *k, size_t used)
{
    k->used[k->next] = used;
    k->next = (k->next + 1) % DS_KEEP_WINDOW;
}

int ds_keep_fits(const ds_keep *k, size_t cap)
{
    size_t mark = 0;
    if (cap <= DS_KEEP_SMALL)
        return 1;
    for (int i = 0; i < DS_KEEP_WINDOW; i++)
        if (k->used[i] > mark)
            mark = k->used[i];
    return cap / 2 <= mark;
}
