// The kernels' parallel loops (kernels/parallel.hpp) on LibTorch's intra-op pool.
#include <ATen/Parallel.h>

#include "../kernels/parallel.hpp"

extern "C" void cladbench_parallel_for(long n, long grain, void (*fn)(void* ctx, long begin, long end), void* ctx) {
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { fn(ctx, long(begin), long(end)); });
}

extern "C" int cladbench_threads() { return at::get_num_threads(); }
