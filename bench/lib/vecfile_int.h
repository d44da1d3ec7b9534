/*
 * vecfile_int.h -- what the files of the vector-file module share and no
 * one else needs: vecfile.c (raw, xvecs, npy) and idx.c (IDX).
 */
#ifndef RSN_BENCH_VECFILE_INT_H
#define RSN_BENCH_VECFILE_INT_H

#include <stddef.h>

/* Write a sentence into err[0..errlen) (nothing when err is NULL or errlen
 * is 0). */
void vf__set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* RSN_BENCH_VECFILE_INT_H */
