/*
 * tmpdir.c -- see tmpdir.h.
 *
 * The directory is emptied with the raw getdents64 system call rather than
 * readdir: readdir allocates and is not async-signal-safe, and the same
 * code serves the signal handler and the normal exit path, so the path a
 * signal takes is the one every run exercises.
 */
#define _GNU_SOURCE
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
#define NSIGS (sizeof sigs / sizeof sigs[0])

/* State read by the handler: written before the handler is armed (dir) or
 * published through a flag written last (extra). */
static char dir[PATH_MAX];                    /* "" when none            */
static char extra[PATH_MAX];                  /* valid while extra_set   */
static volatile sig_atomic_t extra_set;
static void (*volatile hook)(int sig);
static struct sigaction old_act[NSIGS];       /* restored by td_remove   */
static int armed[NSIGS];                      /* 1: we replaced sigs[i]  */

/* The records getdents64 returns (linux/dirent.h's linux_dirent64). */
struct dent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* Unlink every entry of path (not recursively), then remove it.
 * Async-signal-safe. */
static void sweep(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    /* Aligned for the records' 64-bit fields. */
    union {
      char bytes[4096];
      uint64_t align;
    } buf;
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf.bytes, sizeof buf.bytes)) > 0) {
      for (long off = 0; off < n;) {
        const struct dent64 *d = (const struct dent64 *)(void *)(buf.bytes + off);
        off += d->d_reclen;
        const char *s = d->d_name;
        if (s[0] == '.' && (s[1] == '\0' || (s[1] == '.' && s[2] == '\0')))
          continue;
        unlinkat(fd, s, 0);
      }
    }
    close(fd);
  }
  rmdir(path);
}

static void on_signal(int sig) {
  int saved = errno;
  void (*h)(int) = hook;
  if (h) h(sig);
  if (dir[0]) sweep(dir);
  if (extra_set) unlink(extra);
  /* The default action of the same signal, delivered when this returns
   * (sig is blocked while its handler runs), ends the process as the
   * sender meant: a shell sees "terminated by SIGTERM", not an exit code. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  raise(sig);
  errno = saved;
}

const char *td_root(void) {
  const char *t = getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

int td_create(const char *root, const char *prefix, char *out, size_t len,
              char *err, size_t errlen) {
  sigset_t block, old;
  int rc = -1;
  char tmpl[PATH_MAX];
  if (dir[0]) {
    snprintf(err, errlen, "a temporary directory already exists (%s)", dir);
    return -1;
  }
  int n = snprintf(tmpl, sizeof tmpl, "%s/%sXXXXXX", root, prefix);
  if (n < 0 || (size_t)n >= sizeof tmpl || (size_t)n >= len) {
    snprintf(err, errlen, "the path %s/%s... is too long", root, prefix);
    return -1;
  }
  sigemptyset(&block);
  for (size_t i = 0; i < NSIGS; i++) sigaddset(&block, sigs[i]);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  if (!mkdtemp(tmpl)) {
    snprintf(err, errlen, "cannot create a directory in %s: %s", root,
             strerror(errno));
    goto cleanup;
  }
  memcpy(dir, tmpl, (size_t)n + 1);
  memcpy(out, tmpl, (size_t)n + 1);
  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_signal;
  act.sa_mask = block; /* one cleanup at a time */
  for (size_t i = 0; i < NSIGS; i++) {
    armed[i] = 0;
    if (sigaction(sigs[i], NULL, &old_act[i]) != 0) continue;
    if (old_act[i].sa_handler == SIG_IGN) continue; /* nohup & co. */
    armed[i] = sigaction(sigs[i], &act, NULL) == 0;
  }
  rc = 0;
cleanup:
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

void td_extra(const char *path) {
  extra_set = 0;
  if (!path || strlen(path) >= sizeof extra) return;
  memcpy(extra, path, strlen(path) + 1);
  extra_set = 1;
}

void td_on_signal(void (*h)(int sig)) { hook = h; }

void td_remove(void) {
  /* Blocked while the files go and the old actions return: a signal in
   * between is delivered after, to the old action, with nothing left. */
  sigset_t block, old;
  sigemptyset(&block);
  for (size_t i = 0; i < NSIGS; i++) sigaddset(&block, sigs[i]);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  if (dir[0]) sweep(dir);
  dir[0] = '\0';
  extra_set = 0;
  for (size_t i = 0; i < NSIGS; i++)
    if (armed[i]) {
      sigaction(sigs[i], &old_act[i], NULL);
      armed[i] = 0;
    }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}
