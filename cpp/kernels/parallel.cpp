// The kernels' parallel loops (kernels/parallel.hpp) on LibTorch's intra-op pool.
//
// LibTorch's CPU build runs its intra-op work (and MKL's) on libgomp's OpenMP threads, but
// at::parallel_for is a header template whose `#pragma omp parallel` only takes effect in code
// compiled with -fopenmp for libgomp; clang's -fopenmp targets LLVM's libomp instead, a second
// pool. So here the parallel region is opened through libgomp's own entry point, GOMP_parallel
// (what g++ emits for the pragma): the same threads as torch's and MKL's. Where LibTorch does not
// use OpenMP, at::parallel_for (then a plain function of torch's own pool) is used.
#include <ATen/Config.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "parallel.hpp"

extern "C" {
void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags) __attribute__((weak));
int omp_get_thread_num() __attribute__((weak));
int omp_get_num_threads() __attribute__((weak));
// MKL's per-thread thread count; libtorch_cpu exports MKL's Fortran entry (argument by pointer).
// Weak, so that a LibTorch on another BLAS links without it.
int mkl_set_num_threads_local_(const int* threads) __attribute__((weak));
}

namespace {

struct Loop {
  long n, grain;
  void (*fn)(void*, long, long);
  void* ctx;
};

// One range of the loop on the calling thread. A GEMM inside it runs on this thread alone: left to
// itself MKL would open a nested region per call (measured: 80 % of the conv blocks' time in
// libgomp's waits at 2 threads).
void run_range(const Loop& loop, long begin, long end) {
  const int one = 1;
  const int previous = mkl_set_num_threads_local_ ? mkl_set_num_threads_local_(&one) : 0;
  loop.fn(loop.ctx, begin, end);
  if (mkl_set_num_threads_local_) mkl_set_num_threads_local_(&previous);
}

// The body of the OpenMP region: thread t of T takes the t-th of at most n / grain equal ranges,
// as at::parallel_for splits a loop.
void run_team_member(void* data) {
  const Loop& loop = *static_cast<const Loop*>(data);
  const long tasks = std::min<long>(omp_get_num_threads(), (loop.n + loop.grain - 1) / loop.grain);
  const long chunk = (loop.n + tasks - 1) / tasks, begin = omp_get_thread_num() * chunk;
  if (begin < loop.n) {
    at::internal::ThreadIdGuard id(omp_get_thread_num());  // at::get_thread_num() inside, as in torch's loops
    run_range(loop, begin, std::min(loop.n, begin + chunk));
  }
}

}  // namespace

extern "C" void cladbench_parallel_for(long n, long grain, void (*fn)(void* ctx, long begin, long end), void* ctx) {
  const Loop loop{n, std::max(1L, grain), fn, ctx};
  if (AT_PARALLEL_OPENMP && GOMP_parallel && omp_get_thread_num && omp_get_num_threads) {
    if (at::in_parallel_region() || at::get_num_threads() == 1 || n <= loop.grain) return fn(ctx, 0, n);
    // 0: the pool's own size (torch avoids a num_threads clause: GOMP rebuilds its team when it changes).
    GOMP_parallel(run_team_member, const_cast<Loop*>(&loop), 0, 0);
    return;
  }
  at::parallel_for(0, n, loop.grain, [&](int64_t begin, int64_t end) { run_range(loop, long(begin), long(end)); });
}

extern "C" int cladbench_threads() { return at::get_num_threads(); }
