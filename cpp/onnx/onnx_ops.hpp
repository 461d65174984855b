// The layers that code emitted from ONNX graphs (src/cladbench/onnx/emit.py) is made of: plain C++
// on raw pointers, no LibTorch, no allocation. Activations are [batch x features] row-major (ONNX's
// layout); a Conv input/output is [batch][channels][length]. Clad differentiates the emitted model
// (the composition of these calls and its loss); each layer here has hand-written pullbacks, given
// to Clad as custom derivatives (the emitted file's clad::custom_derivatives namespace), because:
//  - Gemm / MatMul / Conv go through the BLAS LibTorch uses (docs/architecture.md, "The kernel contract");
//  - Clad 2.4 tapes the old value of every array element a loop overwrites, which would cost a
//    heap-growing tape per call for every activation buffer.
//
// Each layer has two pullbacks, matching the two gradients an emitted model offers:
//  - all arguments active (gradient with respect to params, x and ws): one adjoint per pointer;
//  - "input only" (params inactive: the weights and biases get no adjoint), for input gradients.
// Clad picks the overload whose signature matches the activity at the call site; int arguments
// get int* adjoints, which are ignored. Adjoints accumulate (+=) into caller-zeroed buffers.
#pragma once

#include <cmath>

#include "blas.hpp"
#include "layers.hpp"  // the cross-entropy, shared with the project's own models

namespace cladbench::onnx_ops {
// Internal linkage: Clad emits the derivatives it generates as strong symbols (see layers.hpp).
namespace {

// ---- Gemm / MatMul: y[batch x out] = x[batch x in] * op(W) (+ b) ------------------------------
// w_transposed = 1: W stored [out x in] (Gemm transB=1, torch's Linear); 0: W stored [in x out].

template <class T>
void dense(const T* x, const T* W, const T* b, T* y, int batch, int in, int out, int w_transposed) {
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) y[i * out + j] = b[j];
  gemm(false, w_transposed != 0, batch, out, in, T(1), x, in, W, w_transposed ? in : out, T(1), y, out);
}

template <class T>
void dense_x_pullback(const T* W, int batch, int in, int out, int w_transposed, T* d_x, const T* d_y) {
  // d_x += d_y op(W)^T
  gemm(false, w_transposed == 0, batch, in, out, T(1), d_y, out, W, w_transposed ? in : out, T(1), d_x, in);
}

template <class T>
void dense_w_pullback(const T* x, int batch, int in, int out, int w_transposed, T* d_W, const T* d_y) {
  if (w_transposed)
    gemm(true, false, out, in, batch, T(1), d_y, out, x, in, T(1), d_W, in);  // d_W += d_y^T x
  else
    gemm(true, false, in, out, batch, T(1), x, in, d_y, out, T(1), d_W, out);  // d_W += x^T d_y
}

template <class T>
void dense_pullback(const T* x, const T* W, const T* b, T* y, int batch, int in, int out, int w_transposed, T* d_x,
                    T* d_W, T* d_b, T* d_y, int*, int*, int*, int*) {
  dense_x_pullback(W, batch, in, out, w_transposed, d_x, d_y);
  dense_w_pullback(x, batch, in, out, w_transposed, d_W, d_y);
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) d_b[j] += d_y[i * out + j];
}

template <class T>  // input only
void dense_pullback(const T* x, const T* W, const T* b, T* y, int batch, int in, int out, int w_transposed, T* d_x,
                    T* d_y, int*, int*, int*, int*) {
  dense_x_pullback(W, batch, in, out, w_transposed, d_x, d_y);
}

template <class T>
void matmul(const T* x, const T* W, T* y, int batch, int in, int out, int w_transposed) {
  gemm(false, w_transposed != 0, batch, out, in, T(1), x, in, W, w_transposed ? in : out, T(0), y, out);
}

template <class T>
void matmul_pullback(const T* x, const T* W, T* y, int batch, int in, int out, int w_transposed, T* d_x, T* d_W, T* d_y,
                     int*, int*, int*, int*) {
  dense_x_pullback(W, batch, in, out, w_transposed, d_x, d_y);
  dense_w_pullback(x, batch, in, out, w_transposed, d_W, d_y);
}

template <class T>  // input only
void matmul_pullback(const T* x, const T* W, T* y, int batch, int in, int out, int w_transposed, T* d_x, T* d_y, int*,
                     int*, int*, int*) {
  dense_x_pullback(W, batch, in, out, w_transposed, d_x, d_y);
}

// ---- Add ---------------------------------------------------------------------------------------

// y[batch x n] = a[batch x n] + b[n] (a bias from the weights, broadcast over the batch).
template <class T>
void add_bias(const T* a, const T* b, T* y, int batch, int n) {
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < n; ++j) y[i * n + j] = a[i * n + j] + b[j];
}

template <class T>
void add_bias_pullback(const T* a, const T* b, T* y, int batch, int n, T* d_a, T* d_b, T* d_y, int*, int*) {
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < n; ++j) {
      d_a[i * n + j] += d_y[i * n + j];
      d_b[j] += d_y[i * n + j];
    }
}

template <class T>  // input only
void add_bias_pullback(const T* a, const T* b, T* y, int batch, int n, T* d_a, T* d_y, int*, int*) {
  for (int i = 0; i < batch * n; ++i) d_a[i] += d_y[i];
}

// y[n] = a[n] + b[n] (two activations of the same shape, as in a residual connection).
template <class T>
void add(const T* a, const T* b, T* y, int n) {
  for (int i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <class T>
void add_pullback(const T* a, const T* b, T* y, int n, T* d_a, T* d_b, T* d_y, int*) {
  for (int i = 0; i < n; ++i) {
    d_a[i] += d_y[i];
    d_b[i] += d_y[i];
  }
}

// ---- Element-wise activations: h[n] = f(z[n]) -------------------------------------------------

// Its own ReLU, not layers.hpp's: called from the emitted forward function (a nested call),
// layers.hpp's was not taken as a custom derivative by Clad 2.4, which generated and taped its
// own pullback instead (seen with -fdump-derived-fn).
template <class T>
void relu(const T* z, T* h, int n) {
  for (int i = 0; i < n; ++i) h[i] = z[i] > T(0) ? z[i] : T(0);
}

template <class T>
void relu_pullback(const T* z, T* h, int n, T* d_z, T* d_h, int*) {
  for (int i = 0; i < n; ++i) {
    const T g = d_h[i];  // loaded unconditionally: a select, not a mispredicted branch (layers.hpp)
    d_z[i] += z[i] > T(0) ? g : T(0);
  }
}

template <class T>
void sigmoid(const T* z, T* h, int n) {
  for (int i = 0; i < n; ++i) h[i] = T(1) / (T(1) + std::exp(-z[i]));
}

template <class T>
void sigmoid_pullback(const T* z, T* h, int n, T* d_z, T* d_h, int*) {
  for (int i = 0; i < n; ++i) d_z[i] += d_h[i] * h[i] * (T(1) - h[i]);
}

template <class T>
void tanh_act(const T* z, T* h, int n) {
  for (int i = 0; i < n; ++i) h[i] = std::tanh(z[i]);
}

template <class T>
void tanh_act_pullback(const T* z, T* h, int n, T* d_z, T* d_h, int*) {
  for (int i = 0; i < n; ++i) d_z[i] += d_h[i] * (T(1) - h[i] * h[i]);
}

// ---- Softmax over the last axis: p[batch x n] -------------------------------------------------

template <class T>
void softmax(const T* z, T* p, int batch, int n) {
  for (int i = 0; i < batch; ++i) {
    const T* zi = z + i * n;
    T m = zi[0];
    for (int j = 1; j < n; ++j) m = zi[j] > m ? zi[j] : m;
    T s = 0;
    for (int j = 0; j < n; ++j) s += std::exp(zi[j] - m);
    for (int j = 0; j < n; ++j) p[i * n + j] = std::exp(zi[j] - m) / s;
  }
}

template <class T>
void softmax_pullback(const T* z, T* p, int batch, int n, T* d_z, T* d_p, int*, int*) {
  for (int i = 0; i < batch; ++i) {
    T dot = 0;  // sum_j d_p[j] p[j]
    for (int j = 0; j < n; ++j) dot += d_p[i * n + j] * p[i * n + j];
    for (int j = 0; j < n; ++j) d_z[i * n + j] += p[i * n + j] * (d_p[i * n + j] - dot);
  }
}

// ---- Conv over one spatial axis (Conv with a 1-D kernel, group 1) -----------------------------
// x [batch][c_in][length], W [c_out][c_in][kernel] (ONNX's and torch's layout), b [c_out],
// y [batch][c_out][l_out]. col (workspace, [batch][l_out][c_in*kernel]) holds the im2col matrix,
// so that the convolution is one GEMM per sample: y_b = W col_b^T + b.

template <class T>
void conv1d(const T* x, const T* W, const T* b, T* col, T* y, int batch, int c_in, int length, int c_out, int kernel,
            int stride, int pad, int dilation, int l_out) {
  const int width = c_in * kernel;
  for (int s = 0; s < batch; ++s) {
    T* col_s = col + long(s) * l_out * width;
    for (int t = 0; t < l_out; ++t)
      for (int c = 0; c < c_in; ++c)
        for (int k = 0; k < kernel; ++k) {
          const int pos = t * stride + k * dilation - pad;  // zero padding outside [0, length)
          col_s[t * width + c * kernel + k] = pos >= 0 && pos < length ? x[(long(s) * c_in + c) * length + pos] : T(0);
        }
    T* y_s = y + long(s) * c_out * l_out;
    for (int o = 0; o < c_out; ++o)
      for (int t = 0; t < l_out; ++t) y_s[o * l_out + t] = b[o];
    gemm(false, true, c_out, l_out, width, T(1), W, width, col_s, width, T(1), y_s, l_out);
  }
}

// d_x from d_y: d_col_s = d_y_s^T W, then the im2col gather's pullback, a scatter-add into d_x.
template <class T>
void conv1d_x_pullback(const T* W, int batch, int c_in, int length, int c_out, int kernel, int stride, int pad,
                       int dilation, int l_out, T* d_x, T* d_col, const T* d_y) {
  const int width = c_in * kernel;
  for (int s = 0; s < batch; ++s) {
    T* d_col_s = d_col + long(s) * l_out * width;
    gemm(true, false, l_out, width, c_out, T(1), d_y + long(s) * c_out * l_out, l_out, W, width, T(1), d_col_s, width);
    for (int t = 0; t < l_out; ++t)
      for (int c = 0; c < c_in; ++c)
        for (int k = 0; k < kernel; ++k) {
          const int pos = t * stride + k * dilation - pad;
          if (pos >= 0 && pos < length) d_x[(long(s) * c_in + c) * length + pos] += d_col_s[t * width + c * kernel + k];
        }
  }
}

template <class T>
void conv1d_pullback(const T* x, const T* W, const T* b, T* col, T* y, int batch, int c_in, int length, int c_out,
                     int kernel, int stride, int pad, int dilation, int l_out, T* d_x, T* d_W, T* d_b, T* d_col, T* d_y,
                     int*, int*, int*, int*, int*, int*, int*, int*, int*) {
  const int width = c_in * kernel;
  for (int s = 0; s < batch; ++s) {
    const T* d_y_s = d_y + long(s) * c_out * l_out;
    gemm(false, false, c_out, width, l_out, T(1), d_y_s, l_out, col + long(s) * l_out * width, width, T(1), d_W,
         width);  // d_W += d_y_s col_s
    for (int o = 0; o < c_out; ++o)
      for (int t = 0; t < l_out; ++t) d_b[o] += d_y_s[o * l_out + t];
  }
  conv1d_x_pullback(W, batch, c_in, length, c_out, kernel, stride, pad, dilation, l_out, d_x, d_col, d_y);
}

template <class T>  // input only
void conv1d_pullback(const T* x, const T* W, const T* b, T* col, T* y, int batch, int c_in, int length, int c_out,
                     int kernel, int stride, int pad, int dilation, int l_out, T* d_x, T* d_col, T* d_y, int*, int*,
                     int*, int*, int*, int*, int*, int*, int*) {
  conv1d_x_pullback(W, batch, c_in, length, c_out, kernel, stride, pad, dilation, l_out, d_x, d_col, d_y);
}

// ---- Losses on the model's output -------------------------------------------------------------

// Cross-entropy of one sample's logits z[classes] against its label (layers.hpp).
using ::cladbench::sample_cross_entropy;

}  // namespace
}  // namespace cladbench::onnx_ops

// The custom derivatives Clad picks up by name.
namespace clad::custom_derivatives::cladbench::onnx_ops {
using ::cladbench::onnx_ops::add_bias_pullback;
using ::cladbench::onnx_ops::add_pullback;
using ::cladbench::onnx_ops::conv1d_pullback;
using ::cladbench::onnx_ops::dense_pullback;
using ::cladbench::onnx_ops::matmul_pullback;
using ::cladbench::onnx_ops::relu_pullback;
using ::cladbench::onnx_ops::sigmoid_pullback;
using ::cladbench::onnx_ops::softmax_pullback;
using ::cladbench::onnx_ops::tanh_act_pullback;
}  // namespace clad::custom_derivatives::cladbench::onnx_ops

// The cross-entropy's max shift, shared with layers.hpp.
namespace clad::custom_derivatives::cladbench {
using ::cladbench::max_shift_pullback;
}  // namespace clad::custom_derivatives::cladbench
