// The MLP on the GPU, on the kernel contract of cpp/kernels/mlp.hpp: the same function, with the
// same workspace layout, whose layers launch device work. Clad differentiates mlp_loss on the
// host (derive_host.cpp): it writes the chaining of the layers and calls the pullbacks below,
// which launch cuBLAS for the GEMMs and, for the elementwise parts, kernels over the derivatives
// Clad wrote of threads.hpp. Pointers are device memory, except dims (host).
#pragma once

#include "launch.hpp"

namespace cladbench::cuda {

// Each layer and its pullback, as Clad's custom derivatives (one adjoint per argument, int* for
// the ints). The pullbacks must have bodies Clad can see: it drops calls to a custom derivative
// whose body it cannot read or that writes nothing.
inline void linear(const float* x, const float* W, const float* b, float* y, int batch, int in, int out) {
  launch_linear(x, W, b, y, batch, in, out);
}

inline void linear_pullback(const float* x, const float* W, const float* b, float* y, int batch, int in, int out,
                            float* d_x, float* d_W, float* d_b, float* d_y, int*, int*, int*) {
  launch_linear_backward(x, W, d_y, d_x, d_W, d_b, batch, in, out);
}

inline void relu(const float* z, float* h, int n) { launch_relu(z, h, n); }

inline void relu_pullback(const float* z, float* h, int n, float* d_z, float* d_h, int*) {
  launch_relu_backward(z, h, d_z, d_h, n);
}

inline void cross_entropy(const float* logits, const int* labels, int batch, int classes, float* losses, float* loss) {
  launch_cross_entropy(logits, labels, batch, classes, losses, loss);
}

inline void cross_entropy_pullback(const float* logits, const int* labels, int batch, int classes, float* losses,
                                   float* loss, float* d_logits, int*, int*, float* d_losses, float* d_loss) {
  launch_cross_entropy_backward(logits, labels, batch, classes, losses, d_logits, d_losses, d_loss);
}

// Where layer l's weights start in params, and its pre-activations z_l in ws (cpp/kernels/mlp.hpp's
// layout: per layer z_l, then h_l = relu(z_l) for hidden layers). Functions of l rather than
// running offsets, so that the layer loop overwrites nothing and Clad keeps no tape.
inline int layer_params(const int* dims, int l) {
  int p = 0;
  for (int k = 0; k < l; ++k) p += dims[k] * dims[k + 1] + dims[k + 1];
  return p;
}

inline int layer_ws(const int* dims, int l, int batch) {
  int a = 0;
  for (int k = 0; k < l; ++k) a += 2 * batch * dims[k + 1];
  return a;
}

// Mean softmax cross-entropy of the MLP over a batch (weights row-major, W_l [out x in]). The
// per-sample losses go after the logits, in ws[workspace_size(...) - batch ...]: see
// mlp_workspace_size below.
inline void mlp_loss(const float* params, const float* x, const int* labels, const int* dims, int n_layers, int batch,
                     float* ws, float* loss) {
  linear(x, params, params + dims[0] * dims[1], ws, batch, dims[0], dims[1]);
  for (int l = 1; l < n_layers; ++l) {
    relu(ws + layer_ws(dims, l - 1, batch), ws + layer_ws(dims, l - 1, batch) + batch * dims[l], batch * dims[l]);
    linear(ws + layer_ws(dims, l - 1, batch) + batch * dims[l], params + layer_params(dims, l),
           params + layer_params(dims, l) + dims[l] * dims[l + 1], ws + layer_ws(dims, l, batch), batch, dims[l],
           dims[l + 1]);
  }
  cross_entropy(ws + layer_ws(dims, n_layers - 1, batch), labels, batch, dims[n_layers],
                ws + layer_ws(dims, n_layers - 1, batch) + batch * dims[n_layers], loss);
}

// ws of mlp_loss: the CPU MLP's workspace plus the batch's per-sample losses.
inline long mlp_workspace_size(const int* dims, int n_layers, int batch) {
  return long(layer_ws(dims, n_layers - 1, batch)) + long(batch) * dims[n_layers] + batch;
}

}  // namespace cladbench::cuda
