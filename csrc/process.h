/* Lua-free: run a program without a shell, under a deadline and an output
 * cap, capturing what it prints (core.run_process, for credential_process). */
#ifndef DS_PROCESS_H
#define DS_PROCESS_H

#include <stddef.h>

#include "buffer.h"

#pragma GCC visibility push(hidden)

typedef enum {
    PROCESS_OK = 0,
    PROCESS_TIMEOUT,    /* the deadline passed: the group was killed */
    PROCESS_TOO_LARGE,  /* more than max_output bytes: the group was killed */
    PROCESS_SPAWN,      /* the program could not be started (missing, not executable) */
    PROCESS_SYSTEM,     /* pipe, fork or wait failed */
} process_outcome;

typedef struct {
    ds_buf out; /* stdout */
    ds_buf err; /* stderr */
    int status; /* the exit code, or 128 + the signal that killed it */
} process_result;

/* Runs argv[0] (searched in PATH as execvp does) with argv, a NULL-terminated
 * list, with stdin from /dev/null and stdout and stderr into res (which must
 * start empty; free it with process_result_free whatever the outcome). The
 * child leads a process group of its own; on timeout, on too much output,
 * and when it exits leaving descendants that hold its pipes open, the whole
 * group is killed (SIGKILL). The child is always reaped before returning.
 * max_output bounds stdout and stderr together. On anything but PROCESS_OK,
 * why holds a message (without the output). */
process_outcome process_run(char *const argv[], double timeout, size_t max_output,
                            process_result *res, char *why, size_t whylen);

void process_result_free(process_result *res);

#pragma GCC visibility pop

#endif
