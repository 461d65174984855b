// The MLP's building blocks on raw pointers: forward functions and their pullbacks.
// Plain C++ (no LibTorch, no Clad). The pullbacks have the signatures Clad 2.x expects of a
// custom derivative (one adjoint per argument, int* for the int arguments, which it ignores),
// so the Clad engine uses them as custom derivatives and the manual engine calls them directly.
//
// Why these have hand-written pullbacks and nothing else does:
//  - max_shift: a constant shift (see below).
//  - linear: dense linear algebra goes through the BLAS LibTorch uses (DESIGN §3).
//  - relu: Clad 2.4 tapes the old value of every array element a loop overwrites (it cannot
//    see that the activation buffer is write-only), which costs a heap-growing tape per step.
// The cross-entropy, the chaining of layers and the loss reduction are differentiated by Clad.
#pragma once

#include <cmath>

#include "blas.hpp"

namespace cladbench {
// Internal linkage: Clad emits the derivatives it generates as strong symbols named after the
// original function, so every kernel TU keeps its own private copy.
namespace {

// Adjoints are accumulated (+=) into caller-zeroed buffers, as Clad's own derivatives do.
// d_x may be nullptr when the input's gradient is not wanted (training): its GEMM is skipped.

// y[batch x out] = x[batch x in] * W^T + b, with W stored [out x in] (torch's layout).
template <class T>
void linear_rowmajor(const T* x, const T* W, const T* b, T* y, int batch, int in, int out) {
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) y[i * out + j] = b[j];
  gemm(false, true, batch, out, in, T(1), x, in, W, in, T(1), y, out);
}

template <class T>
void linear_rowmajor_pullback(const T* x, const T* W, const T* b, T* y, int batch, int in, int out,
                              T* d_x, T* d_W, T* d_b, T* d_y, int*, int*, int*) {
  if (d_x) gemm(false, false, batch, in, out, T(1), d_y, out, W, in, T(1), d_x, in);  // dx += dy W
  gemm(true, false, out, in, batch, T(1), d_y, out, x, in, T(1), d_W, in);    // dW += dy^T x
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) d_b[j] += d_y[i * out + j];
}

// The same layer with W stored [in x out].
template <class T>
void linear_colmajor(const T* x, const T* W, const T* b, T* y, int batch, int in, int out) {
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) y[i * out + j] = b[j];
  gemm(false, false, batch, out, in, T(1), x, in, W, out, T(1), y, out);
}

template <class T>
void linear_colmajor_pullback(const T* x, const T* W, const T* b, T* y, int batch, int in, int out,
                              T* d_x, T* d_W, T* d_b, T* d_y, int*, int*, int*) {
  if (d_x) gemm(false, true, batch, in, out, T(1), d_y, out, W, out, T(1), d_x, in);  // dx += dy W^T
  gemm(true, false, in, out, batch, T(1), x, in, d_y, out, T(1), d_W, out);   // dW += x^T dy
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) d_b[j] += d_y[i * out + j];
}

// Branch-free and restrict-qualified, so that both loops vectorise: a branch on the sign of z
// mispredicts about half the time, which measured as the largest cost outside the GEMMs.
template <class T>
void relu(const T* __restrict z, T* __restrict h, int n) {
  for (int i = 0; i < n; ++i) h[i] = z[i] > T(0) ? z[i] : T(0);
}

template <class T>
void relu_pullback(const T* __restrict z, T*, int n, T* __restrict d_z, T* __restrict d_h, int*) {
  for (int i = 0; i < n; ++i) {
    const T g = d_h[i];  // loaded unconditionally: a select, not a branch
    d_z[i] += z[i] > T(0) ? g : T(0);
  }
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
