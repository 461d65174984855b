// The MLP's building blocks on raw pointers: forward functions and their pullbacks.
// Plain C++ (no LibTorch, no Clad). The pullbacks have the signatures Clad 2.x expects of a
// custom derivative (one adjoint per argument, int* for the int arguments, which it ignores),
// so the Clad engine uses them as custom derivatives and the manual engine calls them directly.
//
// Adjoints (docs/performance.md, "the adjoint workspace"): a pullback adds into the adjoints of
// its layer's inputs (+=), and consumes the adjoint of what its layer wrote: it reads it, then
// leaves it zero, as Clad's own derivative of an assignment does. So an adjoint workspace that
// starts zeroed stays zeroed between steps and nothing clears it per step.
//
// Why these have hand-written pullbacks and nothing else does:
//  - max_shift: a constant shift (see below).
//  - linear: dense linear algebra goes through the BLAS LibTorch uses.
//  - relu: Clad 2.4 tapes the old value of every array element a loop overwrites (it cannot
//    see that the activation buffer is write-only), which costs a heap-growing tape per step.
// The cross-entropy, the chaining of layers and the loss reduction are differentiated by Clad.
#pragma once

#include <cmath>

#include "blas.hpp"
#include "parallel.hpp"

// Clad's mark for a function it must not differentiate (an annotation other compilers ignore):
// the size and offset helpers the models call. Without it Clad 2.5.0~dev fails on cnn.hpp's loops
// over ConvGeometry ("member reference base type 'void' is not a structure or union").
#define CLADBENCH_NOT_DIFFERENTIATED __attribute__((annotate("non_differentiable")))

namespace cladbench {
// Internal linkage: Clad emits the derivatives it generates as strong symbols named after the
// original function, so every kernel TU keeps its own private copy.
namespace {

// Elements per task of the kernels' elementwise loops when threads > 1: below this, waking a
// second thread costs more than the loop.
constexpr long kElementsPerTask = 16384;

// b broadcast to every row of y[rows x out]: the start of y = x W^T + b.
template <class T>
void broadcast_rows(const T* __restrict b, T* __restrict y, int rows, int out) {
  const auto rows_of = [&](long begin, long end) {
    for (long i = begin; i < end; ++i)
      for (int j = 0; j < out; ++j) y[i * out + j] = b[j];
  };
  parallel_for(rows, kElementsPerTask / out + 1, rows_of);
}

// d_b[j] += sum_i d_y[i][j], and d_y consumed (left zero): the last reader of a layer's output adjoint.
template <class T>
void bias_pullback_consume(T* __restrict d_b, T* __restrict d_y, int rows, int out) {
  const auto columns = [&](long begin, long end) {
    for (int i = 0; i < rows; ++i)
      for (long j = begin; j < end; ++j) {
        d_b[j] += d_y[long(i) * out + j];
        d_y[long(i) * out + j] = T(0);
      }
  };
  parallel_for(out, kElementsPerTask / rows + 1, columns);
}

// d_x may be nullptr when the input's gradient is not wanted (training): its GEMM is skipped.

// y[batch x out] = x[batch x in] * W^T + b, with W stored [out x in] (torch's layout).
template <class T>
void linear_rowmajor(const T* x, const T* W, const T* b, T* y, int batch, int in, int out) {
  broadcast_rows(b, y, batch, out);
  gemm(false, true, batch, out, in, T(1), x, in, W, in, T(1), y, out);
}

template <class T>
void linear_rowmajor_pullback(const T* x, const T* W, const T* b, T* y, int batch, int in, int out, T* d_x, T* d_W,
                              T* d_b, T* d_y, int*, int*, int*) {
  if (d_x) gemm(false, false, batch, in, out, T(1), d_y, out, W, in, T(1), d_x, in);  // dx += dy W
  gemm(true, false, out, in, batch, T(1), d_y, out, x, in, T(1), d_W, in);            // dW += dy^T x
  bias_pullback_consume(d_b, d_y, batch, out);
}

// The same layer with W stored [in x out].
template <class T>
void linear_colmajor(const T* x, const T* W, const T* b, T* y, int batch, int in, int out) {
  broadcast_rows(b, y, batch, out);
  gemm(false, false, batch, out, in, T(1), x, in, W, out, T(1), y, out);
}

template <class T>
void linear_colmajor_pullback(const T* x, const T* W, const T* b, T* y, int batch, int in, int out, T* d_x, T* d_W,
                              T* d_b, T* d_y, int*, int*, int*) {
  if (d_x) gemm(false, true, batch, in, out, T(1), d_y, out, W, out, T(1), d_x, in);  // dx += dy W^T
  gemm(true, false, in, out, batch, T(1), x, in, d_y, out, T(1), d_W, out);           // dW += x^T dy
  bias_pullback_consume(d_b, d_y, batch, out);
}

// Branch-free and restrict-qualified, so that both loops vectorise: a branch on the sign of z
// mispredicts about half the time, which measured as the largest cost outside the GEMMs.
template <class T>
void relu(const T* __restrict z, T* __restrict h, int n) {
  const auto range = [&](long begin, long end) {
    for (long i = begin; i < end; ++i) h[i] = z[i] > T(0) ? z[i] : T(0);
  };
  parallel_for(n, kElementsPerTask, range);
}

template <class T>
void relu_pullback(const T* __restrict z, T*, int n, T* __restrict d_z, T* __restrict d_h, int*) {
  const auto range = [&](long begin, long end) {
    for (long i = begin; i < end; ++i) {
      const T g = d_h[i];  // loaded unconditionally: a select, not a branch
      d_h[i] = T(0);       // consumed
      d_z[i] += z[i] > T(0) ? g : T(0);
    }
  };
  parallel_for(n, kElementsPerTask, range);
}

// The largest of n values: the shift that keeps exp() finite in the cross-entropy. The shift
// cancels out of the loss, so its exact derivative is zero; its pullback says so, instead of
// letting rounding noise of that zero flow back into the argmax logit.
template <class T>
T max_shift(const T* z, int n) {
  T m = z[0];
  for (int j = 1; j < n; ++j) m = z[j] > m ? z[j] : m;
  return m;
}

template <class T>
void max_shift_pullback(const T*, int, T, T*, int*) {}

// Cross-entropy of one sample's logits z[classes] against its label.
template <class T>
T sample_cross_entropy(const T* z, int label, int classes) {
  const T m = max_shift(z, classes);
  T s = 0;
  for (int j = 0; j < classes; ++j) s += std::exp(z[j] - m);
  return std::log(s) + m - z[label];
}

}  // namespace
}  // namespace cladbench
