// The manual engine: the MLP's pullback written by hand, with the signature Clad generates for
// the clad engine, so both plug into the same wrapper. Includes no LibTorch header.
#include <cmath>

#include "kernel_set.hpp"

namespace cladbench {
namespace {

template <class T>
void mlp_loss_pullback(const T* params, const T* x, const int* labels, const int* dims,
                       int n_layers, int batch, T* ws, T* loss, T* d_params, T* d_x, T* d_ws,
                       T* d_loss) {
  mlp_loss(params, x, labels, dims, n_layers, batch, ws, loss);  // forward sweep fills ws

  // Softmax cross-entropy: d z_i = (softmax(z_i) - onehot(label_i)) * d_loss / batch.
  const int classes = dims[n_layers];
  const long logits = mlp_logits_offset(dims, n_layers, batch);
  const T scale = *d_loss / batch;
  *d_loss = 0;  // the seed is consumed, as in Clad's pullbacks
  for (int i = 0; i < batch; ++i) {
    const T* z = ws + logits + long(i) * classes;
    T* dz = d_ws + logits + long(i) * classes;
    const T m = max_shift(z, classes);
    T s = 0;
    for (int j = 0; j < classes; ++j) s += std::exp(z[j] - m);
    for (int j = 0; j < classes; ++j) dz[j] += (std::exp(z[j] - m) / s - T(j == labels[i])) * scale;
  }

  // Layers in reverse. p: layer l's weights in params; a: layer l's pre-activations in ws.
  long p = mlp_param_count(dims, n_layers), a = logits;
  for (int l = n_layers - 1; l >= 0; --l) {
    const int in = dims[l], out = dims[l + 1];
    p -= long(in) * out + out;
    const T* input = l == 0 ? x : ws + a - long(batch) * in;   // h_{l-1}, or x
    T* d_input = l == 0 ? d_x : d_ws + a - long(batch) * in;
    if (kLayout == Layout::RowMajor)
      linear_rowmajor_pullback(input, params + p, params + p + long(in) * out, ws + a, batch, in, out,
                               d_input, d_params + p, d_params + p + long(in) * out, d_ws + a,
                               nullptr, nullptr, nullptr);
    else
      linear_colmajor_pullback(input, params + p, params + p + long(in) * out, ws + a, batch, in, out,
                               d_input, d_params + p, d_params + p + long(in) * out, d_ws + a,
                               nullptr, nullptr, nullptr);
    if (l > 0) {
      const long n = long(batch) * in;
      a -= 2 * n;  // z_{l-1}, followed by h_{l-1}
      relu_pullback(ws + a, ws + a + n, int(n), d_ws + a, d_ws + a + n, nullptr);
    }
  }
}

MlpKernels manual_kernels() {
  MlpKernels k{"manual", kLayout, "hand-written"};
  k.f32 = {mlp_loss<float>, mlp_loss_pullback<float>};
  k.f64 = {mlp_loss<double>, mlp_loss_pullback<double>};
  return k;
}

const bool registered = register_mlp_kernels(manual_kernels());

}  // namespace
}  // namespace cladbench
