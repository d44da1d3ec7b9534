/*
 * subproc.h -- run another program from an argument vector, never from a
 * shell command line (STYLE.md: "Processes are spawned with an argument
 * vector").  posix_spawnp starts it, optionally with its stdout on a pipe,
 * extra environment variables and a working directory; waitpid reaps it.
 * Arguments reach the program byte for byte: quotes, `backticks`, $(...),
 * semicolons and newlines in them mean nothing to anybody on the way.
 *
 * Part of the bench library (bench/lib): used by `resonance bench`
 * (bench/compare.py, gnuplot) and by the tests.  Depends only on libc
 * (glibc >= 2.29 for a working directory).
 *
 * Errors are sentences written into the caller's buffer (err, errlen) with
 * a return of -1; nothing here prints.  A wait status is the raw value of
 * waitpid: sp_describe() turns it into words, sp_exit_code() into the
 * shell's number.
 */
#ifndef RSN_SUBPROC_H
#define RSN_SUBPROC_H

#include <stddef.h>
#include <sys/types.h>

/* How to start a child; a zeroed struct means "as this process": same
 * environment and directory, stdout and stderr inherited. */
typedef struct sp_opts {
  const char *const *env; /* "NAME=value" entries that replace or extend this
                             process's environment in the child; ends with
                             NULL; NULL for none                          */
  const char *cwd;        /* directory the child starts in, or NULL       */
  int capture;            /* 1: the child's stdout goes to a pipe (sp_proc.out) */
  int quiet;              /* 1: its stderr (and stdout unless captured) go
                             to /dev/null                                 */
} sp_opts;

/* A started child. */
typedef struct sp_proc {
  pid_t pid; /* the child; -1 once sp_wait reaped it                     */
  int out;   /* read end of its stdout with capture, else -1             */
} sp_proc;

/* Find `name` as the shell's `command -v` would, without a shell: a name
 * with a '/' is checked as it is, else each directory of $PATH (empty
 * entries meaning ".", an unset PATH meaning "/usr/bin:/bin") for a regular
 * executable file.  Returns 1 and the path in out[0..len) when found, 0
 * when not (or when the path does not fit). */
int sp_which(const char *name, char *out, size_t len);

/* Start argv[0] (looked up in $PATH unless it holds a '/') with argv,
 * which ends with NULL.  The child gets the default action for SIGINT,
 * SIGTERM, SIGHUP and SIGPIPE and an empty signal mask, whatever this
 * process has.  Returns 0 with *p filled, or -1 with a sentence in err: a
 * program that does not exist is "cannot run NAME: not found".  The caller
 * must sp_wait(p) exactly once. */
int sp_start(const char *const argv[], const sp_opts *o, sp_proc *p,
             char *err, size_t errlen);

/* Close p->out (a child still writing to it then gets SIGPIPE) and reap
 * the child, retrying when interrupted.  *status gets the wait status.
 * Returns 0, or -1 with a sentence in err if waitpid failed. */
int sp_wait(sp_proc *p, int *status, char *err, size_t errlen);

/* Start, collect the child's stdout (when out is not NULL) and wait.  The
 * output is NUL-terminated in *out (malloc'd; the caller frees it) with its
 * length in *out_len (may be NULL).  More than max_out bytes of output is
 * an error, not a silent cut: the rest is read and dropped so the child can
 * finish, then -1 with "output ... exceeds" in err and *out NULL.  Returns
 * 0 with *status set once the child ran and was reaped, whatever its exit
 * status; -1 when it could not be started or reaped. */
int sp_run(const char *const argv[], const sp_opts *o, size_t max_out,
           char **out, size_t *out_len, int *status, char *err,
           size_t errlen);

/* "exited with status 3", "killed by signal 15 (Terminated)". */
const char *sp_describe(int status, char *buf, size_t len);
/* The exit code (0..255), or 128 + the signal number, as shells report. */
int sp_exit_code(int status);

/* Send sig to the child this process started last and has not yet reaped,
 * if any.  Async-signal-safe: for a signal handler that is about to end the
 * process and should not leave the child running. */
void sp_forward_signal(int sig);

#endif /* RSN_SUBPROC_H */
