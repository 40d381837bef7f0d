/* asan-unpreload.c - preloaded after libasan into the lua5.4 that runs the
 * specs under `make asan`: removes LD_PRELOAD from the environment as soon as
 * the process starts, so what the specs spawn (python test servers, shells,
 * gcc via luarocks, other lua5.4) runs without the ASan runtime and its leak
 * checker. Only the lua5.4 process itself is sanitized. */
#include <stdlib.h>

__attribute__((constructor)) static void asan_unpreload(void)
{
    unsetenv("LD_PRELOAD");
}
