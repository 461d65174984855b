// Parallel loops for the kernels' own (non-GEMM) work, on the thread pool the process already
// has: LibTorch's intra-op pool, which also sizes MKL's GEMMs (torch::set_num_threads). The pool
// lives in the LibTorch-facing core (cpp/kernels/parallel.cpp); the kernels see only these plain
// declarations, so that they still compile without a LibTorch header.
#pragma once

extern "C" {
// Calls fn(ctx, begin, end) on disjoint ranges that cover [0, n), each at least `grain` long
// where n allows; inline (one call) when the process runs one thread.
void cladbench_parallel_for(long n, long grain, void (*fn)(void* ctx, long begin, long end), void* ctx);
// The threads such a loop may use (torch::get_num_threads()).
int cladbench_threads();
}

namespace cladbench {

// parallel_for(n, grain, body) with body(long begin, long end): a callable over the C hook above.
// Kernels that Clad sees name their lambdas before passing them: Clad 2.5.0~dev crashes on a
// lambda written as a call's argument inside a function it meets (docs/performance.md).
template <class F>
void parallel_for(long n, long grain, const F& body) {
  if (n <= grain || cladbench_threads() == 1) {  // the common case stays a plain call
    if (n > 0) body(0L, n);
    return;
  }
  auto trampoline = [](void* ctx, long begin, long end) { (*static_cast<const F*>(ctx))(begin, end); };
  cladbench_parallel_for(n, grain, trampoline, const_cast<F*>(&body));
}

}  // namespace cladbench
