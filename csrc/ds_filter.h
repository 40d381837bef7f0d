/* ds_filter.h - core.compile_filter and the filter userdata over filter.c. */
#ifndef DS_FILTER_BINDING_H
#define DS_FILTER_BINDING_H

#include "ds.h"

#define DS_FILTER_MT "dynamodb_stream.filter"

struct ds_filter;

/* Adds compile_filter to the table at the top of the stack and registers the
 * filter metatable. [-0, +0] */
DS_HIDDEN void ds_open_filter(lua_State *L);

/* The compiled program of the filter userdata at idx (raises when idx holds
 * something else, or a closed filter). */
DS_HIDDEN struct ds_filter *ds_filter_check(lua_State *L, int idx);

#endif
