/* Growable byte buffer, see buffer.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

int ds_buf_append(ds_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > SIZE_MAX - b->len)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
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
