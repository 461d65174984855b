/* See alloc_count.h. Forwards to glibc's own entry points (__libc_*), counting each call. */
#define _GNU_SOURCE
#include "alloc_count.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

static uint64_t allocations;

static void count(void) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); }

void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t k, size_t n) {
  count();
  return __libc_calloc(k, n);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) {
  count();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
  count();
  void* p = __libc_memalign(align, n);
  if (!p && n) return ENOMEM;
  *out = p;
  return 0;
}

uint64_t cladbench_alloc_count(void) { return __atomic_load_n(&allocations, __ATOMIC_RELAXED); }

int cladbench_alloc_count_active(void) {
  /* The process's malloc must come from this library. Compared by library, not by address: an
   * address taken here goes through the GOT, so it is libc's malloc when this library was merely
   * loaded (dlopen, e.g. by root.exe or Python) rather than linked first or preloaded. */
  Dl_info process_malloc, self;
  if (!dladdr(dlsym(RTLD_DEFAULT, "malloc"), &process_malloc) || !dladdr((void*)&cladbench_alloc_count, &self))
    return 0;
  return process_malloc.dli_fbase == self.dli_fbase;
}
