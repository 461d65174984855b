// The manual engine: the pullbacks of mlp_loss and cnn_loss written by hand, with the signature
// Clad generates for the clad engine, so both plug into the same wrapper. No LibTorch header.
#include <cmath>

#include "kernel_set.hpp"

namespace cladbench {
namespace {

// Softmax cross-entropy: d z_i += (softmax(z_i) - onehot(label_i)) * *d_loss / batch; consumes the
// seed, as Clad's pullbacks do.
template <class T>
void cross_entropy_pullback(const T* logits, const int* labels, int batch, int classes, T* d_logits, T* d_loss) {
  const T scale = *d_loss / batch;
  *d_loss = 0;
  for (int i = 0; i < batch; ++i) {
    const T* z = logits + long(i) * classes;
    T* dz = d_logits + long(i) * classes;
    const T m = max_shift(z, classes);
    T s = 0;
    for (int j = 0; j < classes; ++j) s += std::exp(z[j] - m);
    for (int j = 0; j < classes; ++j) dz[j] += (std::exp(z[j] - m) / s - T(j == labels[i])) * scale;
  }
}

template <class T>
void linear_pullback(const T* x, const T* W, const T* b, T* y, int batch, int in, int out, T* d_x, T* d_W, T* d_b,
                     T* d_y) {
  if (kLayout == Layout::RowMajor)
    linear_rowmajor_pullback(x, W, b, y, batch, in, out, d_x, d_W, d_b, d_y, nullptr, nullptr, nullptr);
  else
    linear_colmajor_pullback(x, W, b, y, batch, in, out, d_x, d_W, d_b, d_y, nullptr, nullptr, nullptr);
}

template <class T>
void mlp_loss_pullback(const T* params, const T* x, const int* labels, const int* dims, int n_layers, int batch,
                       T* ws, T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  mlp_loss(params, x, labels, dims, n_layers, batch, ws, loss);  // forward sweep fills ws
  const long logits = mlp_logits_offset(dims, n_layers, batch);
  cross_entropy_pullback(ws + logits, labels, batch, dims[n_layers], d_ws + logits, d_loss);

  // Layers in reverse. p: layer l's weights in params; a: layer l's pre-activations in ws.
  long p = mlp_param_count(dims, n_layers), a = logits;
  for (int l = n_layers - 1; l >= 0; --l) {
    const int in = dims[l], out = dims[l + 1];
    p -= long(in) * out + out;
    const T* input = l == 0 ? x : ws + a - long(batch) * in;  // h_{l-1}, or x
    T* d_input = l == 0 ? d_x : d_ws + a - long(batch) * in;
    linear_pullback(input, params + p, params + p + long(in) * out, ws + a, batch, in, out, d_input, d_params + p,
                    d_params + p + long(in) * out, d_ws + a);
    if (l > 0) {
      const long n = long(batch) * in;
      a -= 2 * n;  // z_{l-1}, followed by h_{l-1}
      relu_pullback(ws + a, ws + a + n, int(n), d_ws + a, d_ws + a + n, nullptr);
    }
  }
}

// Where one conv block's tensors are, walked in forward order (cnn.hpp gives the layout).
struct ConvBlock {
  int c_in, len, c_out, kernel, pool, t_out, t_pool;
  long input, col, z, pooled, h, params;  // offsets; input is in ws except for block 0 (x)
};

constexpr int kMaxConvBlocks = 16;

template <class T>
void cnn_loss_pullback(const T* params, const T* x, const int* labels, const int* dims, int n_conv, int batch, T* ws,
                       T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  cnn_loss(params, x, labels, dims, n_conv, batch, ws, loss);  // forward sweep fills ws

  ConvBlock blocks[kMaxConvBlocks];  // fixed size: a pullback allocates nothing
  long w = 0, p = 0;
  int c_in = dims[0], len = dims[1];
  for (int l = 0; l < n_conv && l < kMaxConvBlocks; ++l) {
    ConvBlock& B = blocks[l];
    B = {c_in, len, dims[2 + 3 * l], dims[3 + 3 * l], dims[4 + 3 * l], 0, 0, l == 0 ? 0 : w - long(batch) * len * c_in,
         w, 0, 0, 0, p};
    B.t_out = cnn_conv_out(len, B.kernel);
    B.t_pool = B.t_out / B.pool;
    B.z = B.col + long(batch) * B.t_out * c_in * B.kernel;
    B.pooled = B.z + long(batch) * B.t_out * B.c_out;
    B.h = B.pooled + long(batch) * B.t_pool * B.c_out;
    w = B.h + long(batch) * B.t_pool * B.c_out;
    p += long(B.c_out) * c_in * B.kernel + B.c_out;
    c_in = B.c_out;
    len = B.t_pool;
  }
  // The head, in reverse.
  const int features = len * c_in, hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  const long f = w - long(batch) * features, z1 = w, h1 = z1 + long(batch) * hidden, logits = h1 + long(batch) * hidden;
  const long q = p + long(hidden) * features + hidden;
  cross_entropy_pullback(ws + logits, labels, batch, classes, d_ws + logits, d_loss);
  linear_pullback(ws + h1, params + q, params + q + long(classes) * hidden, ws + logits, batch, hidden, classes,
                  d_ws + h1, d_params + q, d_params + q + long(classes) * hidden, d_ws + logits);
  relu_pullback(ws + z1, ws + h1, batch * hidden, d_ws + z1, d_ws + h1, nullptr);
  linear_pullback(ws + f, params + p, params + p + long(hidden) * features, ws + z1, batch, features, hidden,
                  d_ws + f, d_params + p, d_params + p + long(hidden) * features, d_ws + z1);
  // The conv blocks, in reverse.
  for (int l = n_conv - 1; l >= 0; --l) {
    const ConvBlock& B = blocks[l];
    const int width = B.c_in * B.kernel, rows = batch * B.t_out;
    relu_pullback(ws + B.pooled, ws + B.h, batch * B.t_pool * B.c_out, d_ws + B.pooled, d_ws + B.h, nullptr);
    max_pool_pullback(ws + B.z, ws + B.pooled, batch, B.t_out, B.c_out, B.pool, d_ws + B.z, d_ws + B.pooled,
                      nullptr, nullptr, nullptr, nullptr);
    linear_pullback(ws + B.col, params + B.params, params + B.params + long(B.c_out) * width, ws + B.z, rows, width,
                    B.c_out, d_ws + B.col, d_params + B.params, d_params + B.params + long(B.c_out) * width, d_ws + B.z);
    if (l > 0)
      im2col_pullback(ws + B.input, ws + B.col, batch, B.len, B.c_in, B.kernel, B.len * B.c_in, B.c_in, 1,
                      d_ws + B.input, d_ws + B.col, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    else
      im2col_pullback(x, ws + B.col, batch, B.len, B.c_in, B.kernel, B.c_in * B.len, 1, B.len, d_x, d_ws + B.col,
                      nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  }
}

ModelKernels mlp() {
  ModelKernels k{"mlp", "manual", kLayout, "hand-written"};
  k.f32 = {mlp_loss<float>, mlp_loss_pullback<float>};
  k.f64 = {mlp_loss<double>, mlp_loss_pullback<double>};
  return k;
}

ModelKernels cnn() {
  ModelKernels k{"cnn", "manual", kLayout, "hand-written"};
  k.f32 = {cnn_loss<float>, cnn_loss_pullback<float>};
  k.f64 = {cnn_loss<double>, cnn_loss_pullback<double>};
  return k;
}

const bool registered = register_kernels(mlp()) && register_kernels(cnn());

}  // namespace
}  // namespace cladbench
