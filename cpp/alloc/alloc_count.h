/* Counts heap allocations in this process by interposing malloc and friends (glibc).
 * Linked ahead of libc into the trainers, or LD_PRELOADed under Python, so that "allocations per
 * training step" is counted, not assumed. C interface: also read from Python with ctypes. */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * operator new through malloc) since the process started, in all threads. */
uint64_t cladbench_alloc_count(void);
/* 1 when this library's malloc is the one the process uses, so the count is meaningful. */
int cladbench_alloc_count_active(void);

#ifdef __cplusplus
}
#endif
