/* Growable byte buffer, see buffer.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

char *ds_buf_reserve(ds_buf *b, size_t n)
{
    if (n > SIZE_MAX - b->len)
        return NULL;
    if (b->data == NULL || b->len + n > b->cap) { /* never NULL on success, even for n == 0 */
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return NULL;
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

int ds_buf_append(ds_buf *b, const void *p, size_t n)
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

void ds_buf_reset(ds_buf *b)
{
    b->len = 0;
}

void ds_buf_free(ds_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
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
