/*
 * tmpdir.h -- a private temporary directory that does not outlive the
 * process, even when SIGINT, SIGTERM or SIGHUP ends it.  `resonance bench`
 * keeps its copies of the base vectors (GBs for a large set), its
 * temporary databases and the comparison's outputs there.
 *
 * td_create makes "<root>/<prefix>XXXXXX" (mode 0700, mkdtemp) and installs
 * a handler (sigaction) for the three signals; signals that were ignored
 * when it was called (nohup, a background job of a script) stay ignored.
 * The handler is async-signal-safe: the directory's path and the extra
 * file's are kept in static buffers, and it only calls open, getdents64,
 * unlinkat, close, rmdir, unlink, sigaction and raise.  It removes every
 * file in the directory (it is flat: subdirectories are left), the
 * directory, and the extra file, then takes the default action of the same
 * signal, so the process still ends as the sender meant.
 *
 * One directory per process at a time.  Linux only (getdents64).
 */
#ifndef RSN_TMPDIR_H
#define RSN_TMPDIR_H

#include <stddef.h>

/* The root for temporary files: $TMPDIR when set and not empty, else
 * "/tmp". */
const char *td_root(void);

/* Create the directory under root into out[0..len) and arm the handler.
 * Returns 0, or -1 with a sentence in err (nothing created, nothing armed).
 * Signals are blocked while the two happen, so no window leaves a
 * directory behind. */
int td_create(const char *root, const char *prefix, char *out, size_t len,
              char *err, size_t errlen);

/* Also remove `path` (a file outside the directory, such as a cache being
 * written beside its final name) if a signal comes; NULL forgets it.  The
 * path is copied; one at a time. */
void td_extra(const char *path);

/* Run hook(sig) first in the handler (it must be async-signal-safe), e.g.
 * sp_forward_signal so that a running child does not outlive its parent.
 * NULL for none. */
void td_on_signal(void (*hook)(int sig));

/* Restore the signal actions td_create replaced, then remove the directory
 * and its files.  For the normal ends of the process; a no-op when nothing
 * was created. */
void td_remove(void);

#endif /* RSN_TMPDIR_H */
