/*
 * procfs.c -- /proc readers (procfs.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "procfs.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void bl_proc_rss(double *rss_mb, double *peak_mb) {
  *rss_mb = *peak_mb = NAN;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return;
  char line[256];
  long kb;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) *rss_mb = (double)kb / 1024;
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) *peak_mb = (double)kb / 1024;
  }
  fclose(f);
}

double bl_proc_rss_now(void) {
  double rss, peak;
  bl_proc_rss(&rss, &peak);
  return rss;
}

void bl_proc_reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return;
  fputs("5", f);
  fclose(f);
}

void bl_proc_cpu_model(char *out, size_t len) {
  snprintf(out, len, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) == 0 && colon) {
      colon += 1 + (colon[1] == ' ');
      colon[strcspn(colon, "\n")] = '\0';
      snprintf(out, len, "%s", colon);
      break;
    }
  }
  fclose(f);
}

/* Whether the blank-separated list `flags` holds the word `name`. */
static int has_word(const char *flags, const char *name) {
  size_t len = strlen(name);
  for (const char *p = flags; (p = strstr(p, name)) != NULL; p += len)
    if ((p == flags || p[-1] == ' ' || p[-1] == '\t') &&
        (p[len] == ' ' || p[len] == '\n' || p[len] == '\0'))
      return 1;
  return 0;
}

void bl_proc_cpu_flags(const char *const *names, size_t n, int *has) {
  for (size_t i = 0; i < n; i++) has[i] = -1;
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  /* The flags line of a recent x86 CPU is about 1,600 bytes. */
  char line[8192];
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "flags", 5) == 0 && colon) {
      for (size_t i = 0; i < n; i++) has[i] = has_word(colon + 1, names[i]);
      break;
    }
  }
  fclose(f);
}
