/*
 * subproc.c -- see subproc.h: posix_spawnp with an argument vector, a stdout
 * pipe, an environment built from this process's plus overrides, waitpid.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np, pipe2 */
#include "subproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The child started last and not yet reaped, for sp_forward_signal (pid_t
 * is an int on every system this builds on; sig_atomic_t makes the read in
 * a handler whole). */
static volatile sig_atomic_t running_pid;

/* ---- lookup ---------------------------------------------------------------*/

static int is_exec_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int sp_which(const char *name, char *out, size_t len) {
  if (!name || !*name || !out || len == 0) return 0;
  if (strchr(name, '/')) {
    if (strlen(name) >= len || !is_exec_file(name)) return 0;
    memcpy(out, name, strlen(name) + 1);
    return 1;
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/bin:/bin";
  for (const char *p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t dlen = end ? (size_t)(end - p) : strlen(p);
    int n = dlen ? snprintf(out, len, "%.*s/%s", (int)dlen, p, name)
                 : snprintf(out, len, "./%s", name);
    if (n > 0 && (size_t)n < len && is_exec_file(out)) return 1;
    if (!end) break;
    p = end;
  }
  out[0] = '\0';
  return 0;
}

/* ---- environment ----------------------------------------------------------*/

/* Length of the name part of "NAME=value" (the whole string without '='). */
static size_t env_name_len(const char *e) {
  const char *eq = strchr(e, '=');
  return eq ? (size_t)(eq - e) : strlen(e);
}

/* This process's environment with the entries of `set` replacing those of
 * the same name, then the rest of `set` appended.  The array is malloc'd;
 * its strings are borrowed.  NULL when out of memory. */
static char **merged_env(const char *const *set) {
  size_t nenv = 0, nset = 0, k = 0;
  while (environ && environ[nenv]) nenv++;
  while (set && set[nset]) nset++;
  char **env = malloc((nenv + nset + 1) * sizeof *env);
  if (!env) return NULL;
  for (size_t i = 0; i < nenv; i++) {
    size_t nl = env_name_len(environ[i]);
    int replaced = 0;
    for (size_t j = 0; j < nset && !replaced; j++)
      replaced = env_name_len(set[j]) == nl && strncmp(set[j], environ[i], nl) == 0;
    if (!replaced) env[k++] = environ[i];
  }
  for (size_t j = 0; j < nset; j++) env[k++] = (char *)set[j];
  env[k] = NULL;
  return env;
}

/* ---- start and wait -------------------------------------------------------*/

int sp_start(const char *const argv[], const sp_opts *o, sp_proc *p,
             char *err, size_t errlen) {
  static const sp_opts defaults = {0};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, dfl;
  pid_t pid;
  int fds[2] = {-1, -1}, have_fa = 0, have_attr = 0, rc = -1, e = 0;
  char **env = NULL;
  const char *what = "posix_spawn";
  if (!o) o = &defaults;
  p->pid = -1;
  p->out = -1;
  if (!argv || !argv[0] || !*argv[0]) {
    snprintf(err, errlen, "no program to run");
    return -1;
  }
  if (o->env && !(env = merged_env(o->env))) {
    e = ENOMEM;
    what = "building the environment";
    goto cleanup;
  }
  if ((e = posix_spawn_file_actions_init(&fa)) != 0) goto cleanup;
  have_fa = 1;
  if ((e = posix_spawnattr_init(&attr)) != 0) goto cleanup;
  have_attr = 1;
  if (o->capture) {
    /* Both ends close-on-exec: the child's copy of the write end is the
     * dup2 onto its fd 1, which clears the flag. */
    if (pipe2(fds, O_CLOEXEC) != 0) {
      e = errno;
      what = "pipe";
      goto cleanup;
    }
    if ((e = posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO)) != 0)
      goto cleanup;
  } else if (o->quiet &&
             (e = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
                                                   O_WRONLY, 0)) != 0) {
    goto cleanup;
  }
  if (o->quiet && (e = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
                                                        O_WRONLY, 0)) != 0)
    goto cleanup;
  if (o->cwd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    if ((e = posix_spawn_file_actions_addchdir_np(&fa, o->cwd)) != 0) goto cleanup;
#else
    e = ENOSYS;
    what = "a working directory for the child";
    goto cleanup;
#endif
  }
  /* The child starts clean: handlers are reset by exec anyway, but an
   * ignored signal or a blocked mask would be inherited. */
  sigemptyset(&none);
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGINT);
  sigaddset(&dfl, SIGTERM);
  sigaddset(&dfl, SIGHUP);
  sigaddset(&dfl, SIGPIPE);
  if ((e = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
      (e = posix_spawnattr_setsigdefault(&attr, &dfl)) != 0 ||
      (e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF)) != 0)
    goto cleanup;
  e = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv,
                   env ? env : environ);
  if (e != 0) {
    what = NULL;
    goto cleanup;
  }
  running_pid = (sig_atomic_t)pid;
  p->pid = pid;
  if (o->capture) {
    p->out = fds[0];
    fds[0] = -1;
  }
  rc = 0;
cleanup:
  if (rc != 0) {
    if (what)
      snprintf(err, errlen, "cannot run %s: %s: %s", argv[0], what, strerror(e));
    else if (e == ENOENT)
      snprintf(err, errlen, "cannot run %s: not found", argv[0]);
    else
      snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(e));
  }
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
  if (have_fa) posix_spawn_file_actions_destroy(&fa);
  if (have_attr) posix_spawnattr_destroy(&attr);
  free(env);
  return rc;
}

int sp_wait(sp_proc *p, int *status, char *err, size_t errlen) {
  if (p->out >= 0) close(p->out);
  p->out = -1;
  if (p->pid <= 0) {
    snprintf(err, errlen, "no child to wait for");
    return -1;
  }
  pid_t r;
  while ((r = waitpid(p->pid, status, 0)) < 0 && errno == EINTR) {
  }
  int e = errno;
  if (running_pid == (sig_atomic_t)p->pid) running_pid = 0;
  p->pid = -1;
  if (r < 0) {
    snprintf(err, errlen, "waitpid: %s", strerror(e));
    return -1;
  }
  return 0;
}

int sp_run(const char *const argv[], const sp_opts *o, size_t max_out,
           char **out, size_t *out_len, int *status, char *err,
           size_t errlen) {
  sp_opts local = o ? *o : (sp_opts){0};
  sp_proc p;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int overflow = 0, read_err = 0;
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  local.capture = out != NULL;
  if (sp_start(argv, &local, &p, err, errlen) != 0) return -1;
  while (out) {
    char chunk[4096];
    ssize_t n = read(p.out, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_err = errno;
    if (n <= 0) break;
    if (overflow || len + (size_t)n > max_out) {
      overflow = 1; /* keep reading: a child blocked on a full pipe never ends */
      continue;
    }
    if (len + (size_t)n + 1 > cap) {
      size_t ncap = cap ? cap : 4096;
      while (ncap < len + (size_t)n + 1) ncap *= 2;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        read_err = ENOMEM;
        overflow = 1; /* drain, then report */
        continue;
      }
      buf = nb;
      cap = ncap;
    }
    memcpy(buf + len, chunk, (size_t)n);
    len += (size_t)n;
  }
  if (sp_wait(&p, status, err, errlen) != 0) {
    free(buf);
    return -1;
  }
  if (read_err || overflow) {
    if (read_err)
      snprintf(err, errlen, "reading the output of %s: %s", argv[0], strerror(read_err));
    else
      snprintf(err, errlen, "output of %s exceeds %zu bytes", argv[0], max_out);
    free(buf);
    return -1;
  }
  if (out) {
    if (!buf && !(buf = malloc(1))) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len) *out_len = len;
  }
  return 0;
}

/* ---- status ---------------------------------------------------------------*/

const char *sp_describe(int status, char *buf, size_t len) {
  if (WIFEXITED(status))
    snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else
    snprintf(buf, len, "ended with wait status 0x%x", (unsigned)status);
  return buf;
}

int sp_exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

void sp_forward_signal(int sig) {
  pid_t pid = (pid_t)running_pid;
  if (pid > 0) kill(pid, sig);
}
