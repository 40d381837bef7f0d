/* process.c - run a program without a shell under a deadline and an output
 * cap (see process.h). Lua-free. */
#define _GNU_SOURCE /* pipe2, syscall(SYS_pidfd_open) */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process.h"

/* Without a pidfd, how often the child's exit is looked at while its pipes are quiet. */
#define EXIT_CHECK_MS 50
#define READ_CHUNK 65536

static double monotonic_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A descriptor moved above 0-2, so that the child's dup2 onto 0, 1 and 2
 * never overwrites one it still needs (a daemon may run with 0-2 closed). */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

static int cloexec_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    fds[0] = above_stdio(fds[0]);
    fds[1] = above_stdio(fds[1]);
    return fds[0] < 0 || fds[1] < 0 ? -1 : 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void run_child(char *const argv[], int devnull, int out, int err, int report)
{
    setpgid(0, 0); /* a group of its own, so that its descendants can be killed with it */
    /* Ignored signals survive exec (nginx ignores SIGPIPE); the mask too. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 32; sig++)
        sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(devnull, 0) >= 0 && dup2(out, 1) >= 0 && dup2(err, 2) >= 0)
        execvp(argv[0], argv);
    int e = errno;
    ssize_t ignored = write(report, &e, sizeof e);
    (void)ignored;
    _exit(127);
}

/* Whether the child has exited, without reaping it (its pid, and so its
 * process group's id, stays reserved until waitpid). -1 on failure; with
 * ECHILD, something else reaped it (SIGCHLD ignored, or a handler of another
 * thread that waits for any child). */
static int has_exited(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int r;
    do
        r = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT);
    while (r != 0 && errno == EINTR);
    if (r != 0)
        return -1;
    return info.si_pid == pid;
}

static int reap(pid_t pid, int *wstatus)
{
    pid_t r;
    do
        r = waitpid(pid, wstatus, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? 0 : -1;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? above_stdio(fd) : -1; /* pidfds are close-on-exec */
#else
    (void)pid;
    return -1;
#endif
}

/* Reads what one pipe has: 1 read, 0 at end of file (the pipe is closed),
 * -1 on failure (errno set; ENOMEM when the buffer cannot grow). */
static int read_some(int *fd, ds_buf *b, size_t *total)
{
    char *room = ds_buf_reserve(b, READ_CHUNK);
    if (!room) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n = read(*fd, room, READ_CHUNK);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -1;
    if (n == 0) {
        close_fd(fd);
        return 0;
    }
    b->len += (size_t)n;
    *total += (size_t)n;
    return 1;
}

void process_result_free(process_result *res)
{
    ds_buf_free(&res->out);
    ds_buf_free(&res->err);
}

process_outcome process_run(char *const argv[], double timeout, size_t max_output,
                            process_result *res, char *why, size_t whylen)
{
    int devnull = -1, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1}, pidfd = -1;
    process_outcome outcome = PROCESS_OK;
    res->status = -1;
    why[0] = '\0';

    /* SIGCHLD held back until the child is reaped: a handler that reaps every
     * child (nginx's in a worker) would otherwise take its exit status. */
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);

    devnull = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (devnull < 0 || cloexec_pipe(out) != 0 || cloexec_pipe(err) != 0 || cloexec_pipe(report) != 0) {
        snprintf(why, whylen, "cannot make pipes: %s", strerror(errno));
        outcome = PROCESS_SYSTEM;
        goto done;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        outcome = PROCESS_SYSTEM;
        goto done;
    }
    if (pid == 0)
        run_child(argv, devnull, out[1], err[1], report[1]);
    close_fd(&devnull);
    close_fd(&out[1]);
    close_fd(&err[1]);
    close_fd(&report[1]);

    /* The report pipe closes at exec, or carries exec's errno. */
    int exec_errno = 0;
    ssize_t n;
    do
        n = read(report[0], &exec_errno, sizeof exec_errno);
    while (n < 0 && errno == EINTR);
    close_fd(&report[0]);
    int wstatus = 0;
    if (n == (ssize_t)sizeof exec_errno) {
        reap(pid, &wstatus);
        snprintf(why, whylen, "cannot run '%s': %s", argv[0], strerror(exec_errno));
        outcome = PROCESS_SPAWN;
        goto done;
    }

    pidfd = open_pidfd(pid);
    double deadline = monotonic_now() + timeout;
    size_t total = 0;
    int exited = 0, kill_group = 0, reaped_elsewhere = 0;
    for (;;) {
        if (!exited) {
            exited = has_exited(pid);
            if (exited < 0 && errno == ECHILD) {
                /* Gone, its status with it; its pid may be reused: signal nothing. */
                exited = reaped_elsewhere = 1;
            } else if (exited < 0) {
                snprintf(why, whylen, "cannot wait for the child: %s", strerror(errno));
                outcome = PROCESS_SYSTEM;
                break;
            }
        }
        if (exited && out[0] < 0 && err[0] < 0)
            break;
        int wait_ms = 0; /* once it has exited, only what is already in the pipes is read */
        if (!exited) {
            double left = deadline - monotonic_now();
            if (left <= 0) {
                snprintf(why, whylen, "'%s' did not finish within %g s", argv[0], timeout);
                outcome = PROCESS_TIMEOUT;
                break;
            }
            wait_ms = (int)ceil(left * 1000);
            if (pidfd < 0 && wait_ms > EXIT_CHECK_MS)
                wait_ms = EXIT_CHECK_MS;
        }
        struct pollfd fds[3] = {
            {out[0], POLLIN, 0},
            {err[0], POLLIN, 0},
            {exited ? -1 : pidfd, POLLIN, 0},
        };
        int ready = poll(fds, 3, wait_ms);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            snprintf(why, whylen, "poll: %s", strerror(errno));
            outcome = PROCESS_SYSTEM;
            break;
        }
        if (ready == 0 && exited) {
            /* Its descendants hold the pipes open: they go with it. */
            kill_group = 1;
            break;
        }
        int failed = 0;
        for (int i = 0; i < 2 && !failed; i++) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                failed = read_some(i == 0 ? &out[0] : &err[0], i == 0 ? &res->out : &res->err, &total) < 0;
        }
        if (failed) {
            snprintf(why, whylen, "reading its output: %s", strerror(errno));
            outcome = PROCESS_SYSTEM;
            break;
        }
        if (total > max_output) {
            snprintf(why, whylen, "'%s' printed more than %zu bytes", argv[0], max_output);
            outcome = PROCESS_TOO_LARGE;
            break;
        }
    }
    if (reaped_elsewhere) {
        if (outcome == PROCESS_OK) {
            snprintf(why, whylen, "the exit status of '%s' was taken by another wait (is SIGCHLD ignored?)",
                     argv[0]);
            outcome = PROCESS_SYSTEM;
        }
        goto done;
    }
    if (outcome != PROCESS_OK || kill_group)
        kill(-pid, SIGKILL);
    if (reap(pid, &wstatus) != 0 && outcome == PROCESS_OK) {
        snprintf(why, whylen, "cannot wait for the child: %s", strerror(errno));
        outcome = PROCESS_SYSTEM;
    }
    if (WIFEXITED(wstatus))
        res->status = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus))
        res->status = 128 + WTERMSIG(wstatus);

done:
    close_fd(&devnull);
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&err[0]);
    close_fd(&err[1]);
    close_fd(&report[0]);
    close_fd(&report[1]);
    close_fd(&pidfd);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return outcome;
}
