// The manual engine: the pullbacks of mlp_loss and cnn_loss, and of their logits, written by hand, with the signature
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

// The logits' pullback (mlp.hpp's header comment): the layers in reverse over the saved ws.
template <class T>
void mlp_logits_pullback(const T* params, const T* x, const int* dims, int n_layers, int batch, T* ws, T* d_params,
                         T* d_x, T* d_ws) {
  // p: layer l's weights in params; a: layer l's pre-activations in ws.
  long p = mlp_param_count(dims, n_layers), a = mlp_logits_offset(dims, n_layers, batch);
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

template <class T>
void mlp_loss_pullback(const T* params, const T* x, const int* labels, const int* dims, int n_layers, int batch, T* ws,
                       T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  mlp_loss(params, x, labels, dims, n_layers, batch, ws, loss);  // forward sweep fills ws
  const long logits = mlp_logits_offset(dims, n_layers, batch);
  cross_entropy_pullback(ws + logits, labels, batch, dims[n_layers], d_ws + logits, d_loss);
  mlp_logits_pullback(params, x, dims, n_layers, batch, ws, d_params, d_x, d_ws);
}

// The layers in reverse, the conv blocks working in `scratch` (cnn.hpp's header comment).
template <class T>
void cnn_layers_pullback(const T* params, const T* x, const int* dims, int n_conv, int batch, T* ws, T* scratch,
                         T* d_params, T* d_x, T* d_ws) {
  // The head, in reverse (cnn.hpp's layout).
  const int features = cnn_features(dims, n_conv), hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  const long f = conv_output_offset(dims, n_conv, batch, n_conv - 1),
             z1 = conv_output_offset(dims, n_conv, batch, n_conv);
  const long h1 = z1 + long(batch) * hidden, logits = h1 + long(batch) * hidden;
  const long p = conv_weights_offset(dims, n_conv), q = p + long(hidden) * features + hidden;
  linear_pullback(ws + h1, params + q, params + q + long(classes) * hidden, ws + logits, batch, hidden, classes,
                  d_ws + h1, d_params + q, d_params + q + long(classes) * hidden, d_ws + logits);
  relu_pullback(ws + z1, ws + h1, batch * hidden, d_ws + z1, d_ws + h1, nullptr);
  linear_pullback(ws + f, params + p, params + p + long(hidden) * features, ws + z1, batch, features, hidden, d_ws + f,
                  d_params + p, d_params + p + long(hidden) * features, d_ws + z1);
  // The conv blocks, in reverse; block 0 reads x.
  for (int l = n_conv - 1; l >= 0; --l) {
    const long input = l == 0 ? 0 : conv_output_offset(dims, n_conv, batch, l - 1);
    const long h = conv_output_offset(dims, n_conv, batch, l), argmax = conv_argmax_offset(dims, n_conv, batch, l);
    const long w = conv_weights_offset(dims, l), b = conv_bias_offset(dims, l);
    conv_block_pullback<T>(l == 0 ? x : ws + input, params + w, params + b, ws + h, ws + argmax, scratch, dims, l,
                           batch, l == 0 ? d_x : d_ws + input, d_params + w, d_params + b, d_ws + h, nullptr, nullptr,
                           nullptr, nullptr);
  }
}

template <class T>
void cnn_loss_pullback(const T* params, const T* x, const int* labels, const int* dims, int n_conv, int batch, T* ws,
                       T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  cnn_loss(params, x, labels, dims, n_conv, batch, ws, loss);  // forward sweep fills ws
  const long logits = cnn_logits_offset(dims, n_conv, batch);
  cross_entropy_pullback(ws + logits, labels, batch, dims[3 + 3 * n_conv], d_ws + logits, d_loss);
  cnn_layers_pullback(params, x, dims, n_conv, batch, ws, ws, d_params, d_x, d_ws);
}

// The logits' pullback: scratch in d_ws, so that ws is left as it was.
template <class T>
void cnn_logits_pullback(const T* params, const T* x, const int* dims, int n_conv, int batch, T* ws, T* d_params,
                         T* d_x, T* d_ws) {
  cnn_layers_pullback(params, x, dims, n_conv, batch, ws, d_ws, d_params, d_x, d_ws);
}

ModelKernels mlp() {
  ModelKernels k{"mlp", "manual", kLayout, "hand-written"};
  k.f32 = {mlp_loss<float>, mlp_loss_pullback<float>, mlp_logits<float>, mlp_logits_pullback<float>};
  k.f64 = {mlp_loss<double>, mlp_loss_pullback<double>, mlp_logits<double>, mlp_logits_pullback<double>};
  return k;
}

ModelKernels cnn() {
  ModelKernels k{"cnn", "manual", kLayout, "hand-written"};
  k.f32 = {cnn_loss<float>, cnn_loss_pullback<float>, cnn_logits<float>, cnn_logits_pullback<float>};
  k.f64 = {cnn_loss<double>, cnn_loss_pullback<double>, cnn_logits<double>, cnn_logits_pullback<double>};
  return k;
}

const bool registered = register_kernels(mlp()) && register_kernels(cnn());

}  // namespace
}  // namespace cladbench
