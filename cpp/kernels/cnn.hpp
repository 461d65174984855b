// The GW classifier: a 1D CNN on the kernel contract (see mlp.hpp), same pullback signature:
//
//   void cnn_loss(params, x, labels, dims, n_conv, batch, ws, loss)
//
// x is [batch][channels][length] (the two detectors' whitened strain). dims describes the net:
//   dims = {channels, length, (c_out, kernel, pool) per conv block ..., hidden, classes}
// Each conv block: valid convolution as im2col + the MLP's linear layer (so the same GEMM custom
// derivatives serve it), max-pooling by `pool`, then ReLU (equal to ReLU-then-pool, on fewer
// values). Activations after the first block are time-major: [batch][time][channels]. The head:
// flatten, linear to `hidden`, ReLU, linear to `classes`, softmax cross-entropy.
// params per conv block: W [c_out x c_in*kernel] (column index ci*kernel + k, as torch's
// [c_out][c_in][kernel]), b [c_out]; then the head's two layers as in the MLP.
// ws per conv block: col [batch*t_out x c_in*kernel], z [batch*t_out x c_out],
// pooled [batch*t_pool x c_out], h = relu(pooled); then the head's z1, h1, logits.
#pragma once

#include "mlp.hpp"

namespace cladbench {

inline int cnn_conv_out(int length, int kernel) { return length - kernel + 1; }

// Sizes, walking the blocks the way cnn_loss does.
inline long cnn_param_count(const int* dims, int n_conv) {
  long n = 0;
  int c_in = dims[0], len = dims[1];
  for (int l = 0; l < n_conv; ++l) {
    const int c_out = dims[2 + 3 * l], k = dims[3 + 3 * l], pool = dims[4 + 3 * l];
    n += long(c_out) * c_in * k + c_out;
    c_in = c_out;
    len = cnn_conv_out(len, k) / pool;
  }
  const int features = c_in * len, hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  return n + long(hidden) * features + hidden + long(classes) * hidden + classes;
}

inline long cnn_workspace_size(const int* dims, int n_conv, int batch) {
  long n = 0;
  int c_in = dims[0], len = dims[1];
  for (int l = 0; l < n_conv; ++l) {
    const int c_out = dims[2 + 3 * l], k = dims[3 + 3 * l], pool = dims[4 + 3 * l];
    const int t_out = cnn_conv_out(len, k), t_pool = t_out / pool;
    n += long(batch) * t_out * (long(c_in) * k + c_out) + 2L * batch * t_pool * c_out;
    c_in = c_out;
    len = t_pool;
  }
  const int hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  return n + 2L * batch * hidden + long(batch) * classes;
}

inline long cnn_logits_offset(const int* dims, int n_conv, int batch) {
  return cnn_workspace_size(dims, n_conv, batch) - long(batch) * dims[3 + 3 * n_conv];
}

namespace {  // internal linkage, see layers.hpp

// col[(b*t_out + t) x (c*kernel + k)] = in(b, t + k, c), for an input with element strides
// (sb, st, sc): channels-first x or time-major activations alike.
template <class T>
void im2col(const T* in, T* col, int batch, int length, int channels, int kernel, int sb, int st, int sc) {
  const int t_out = cnn_conv_out(length, kernel), width = channels * kernel;
  for (int b = 0; b < batch; ++b)
    for (int t = 0; t < t_out; ++t)
      for (int c = 0; c < channels; ++c)
        for (int k = 0; k < kernel; ++k)
          col[(long(b) * t_out + t) * width + c * kernel + k] = in[long(b) * sb + long(t + k) * st + long(c) * sc];
}

// Custom derivative (a gather's pullback is a scatter-add; Clad would tape every col element).
// d_in may be nullptr (x's gradient not wanted, as in training): nothing to scatter then.
template <class T>
void im2col_pullback(const T*, T*, int batch, int length, int channels, int kernel, int sb, int st, int sc,
                     T* d_in, T* d_col, int*, int*, int*, int*, int*, int*, int*) {
  if (!d_in) return;
  const int t_out = cnn_conv_out(length, kernel), width = channels * kernel;
  for (int b = 0; b < batch; ++b)
    for (int t = 0; t < t_out; ++t)
      for (int c = 0; c < channels; ++c)
        for (int k = 0; k < kernel; ++k)
          d_in[long(b) * sb + long(t + k) * st + long(c) * sc] += d_col[(long(b) * t_out + t) * width + c * kernel + k];
}

// out[b][j][c] = max over i < pool of z[b][j*pool + i][c]; trailing steps that fill no window drop.
template <class T>
void max_pool(const T* z, T* out, int batch, int length, int channels, int pool) {
  const int t_pool = length / pool;
  for (int b = 0; b < batch; ++b)
    for (int j = 0; j < t_pool; ++j)
      for (int c = 0; c < channels; ++c) {
        const T* window = z + (long(b) * length + long(j) * pool) * channels + c;
        T m = window[0];
        for (int i = 1; i < pool; ++i) m = window[long(i) * channels] > m ? window[long(i) * channels] : m;
        out[(long(b) * t_pool + j) * channels + c] = m;
      }
}

// Custom derivative: the gradient goes to the first maximum of each window, as in torch.
template <class T>
void max_pool_pullback(const T* z, T*, int batch, int length, int channels, int pool, T* d_z, T* d_out,
                       int*, int*, int*, int*) {
  const int t_pool = length / pool;
  for (int b = 0; b < batch; ++b)
    for (int j = 0; j < t_pool; ++j)
      for (int c = 0; c < channels; ++c) {
        const long base = (long(b) * length + long(j) * pool) * channels + c;
        // Selects, not branches: which element of a window is largest is data, and a branch on it
        // mispredicted often enough to make this the costliest loop of the CNN's pullback.
        int best = 0;
        T top = z[base];
        for (int i = 1; i < pool; ++i) {
          const T v = z[base + long(i) * channels];
          const bool larger = v > top;
          best = larger ? i : best;
          top = larger ? v : top;
        }
        d_z[base + long(best) * channels] += d_out[(long(b) * t_pool + j) * channels + c];
      }
}

// Mean softmax cross-entropy of the CNN over a batch. Written for Clad like mlp_loss: the first
// block (reading x) is peeled off the loop, and only int offsets are overwritten in loops.
template <class T>
void cnn_loss(const T* params, const T* x, const int* labels, const int* dims, int n_conv, int batch, T* ws,
              T* loss) {
  // Block 0 reads x, channels-first.
  int c_in = dims[0], len = dims[1];
  int t_out = len - dims[3] + 1;
  int width = c_in * dims[3];
  im2col(x, ws, batch, len, c_in, dims[3], c_in * len, 1, len);
  if (kLayout == Layout::RowMajor)
    linear_rowmajor(ws, params, params + dims[2] * width, ws + batch * t_out * width, batch * t_out, width, dims[2]);
  else
    linear_colmajor(ws, params, params + dims[2] * width, ws + batch * t_out * width, batch * t_out, width, dims[2]);
  int z = batch * t_out * width;  // offset of the block's conv output in ws
  int p = 0;                      // offset of the block's weights in params
  int a = z + batch * t_out * dims[2];  // offset of the block's pooled output
  max_pool(ws + z, ws + a, batch, t_out, dims[2], dims[4]);
  len = t_out / dims[4];
  relu(ws + a, ws + a + batch * len * dims[2], batch * len * dims[2]);
  c_in = dims[2];
  p += dims[2] * width + dims[2];
  for (int l = 1; l < n_conv; ++l) {
    const int h = a + batch * len * c_in;  // the previous block's activations, time-major
    const int c_out = dims[2 + 3 * l], k = dims[3 + 3 * l], pool = dims[4 + 3 * l];
    t_out = len - k + 1;
    width = c_in * k;
    const int col = h + batch * len * c_in;
    im2col(ws + h, ws + col, batch, len, c_in, k, len * c_in, c_in, 1);
    z = col + batch * t_out * width;
    if (kLayout == Layout::RowMajor)
      linear_rowmajor(ws + col, params + p, params + p + c_out * width, ws + z, batch * t_out, width, c_out);
    else
      linear_colmajor(ws + col, params + p, params + p + c_out * width, ws + z, batch * t_out, width, c_out);
    a = z + batch * t_out * c_out;
    max_pool(ws + z, ws + a, batch, t_out, c_out, pool);
    len = t_out / pool;
    relu(ws + a, ws + a + batch * len * c_out, batch * len * c_out);
    c_in = c_out;
    p += c_out * width + c_out;
  }
  // The head: flatten (time-major), linear, ReLU, linear, cross-entropy.
  const int features = len * c_in, hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  const int f = a + batch * features;  // the flattened activations
  const int z1 = f + batch * features;
  if (kLayout == Layout::RowMajor)
    linear_rowmajor(ws + f, params + p, params + p + hidden * features, ws + z1, batch, features, hidden);
  else
    linear_colmajor(ws + f, params + p, params + p + hidden * features, ws + z1, batch, features, hidden);
  relu(ws + z1, ws + z1 + batch * hidden, batch * hidden);
  const int q = p + hidden * features + hidden;
  const int logits = z1 + 2 * batch * hidden;
  if (kLayout == Layout::RowMajor)
    linear_rowmajor(ws + z1 + batch * hidden, params + q, params + q + classes * hidden, ws + logits, batch, hidden, classes);
  else
    linear_colmajor(ws + z1 + batch * hidden, params + q, params + q + classes * hidden, ws + logits, batch, hidden, classes);
  T total = 0;
  for (int i = 0; i < batch; ++i) total += sample_cross_entropy(ws + logits + i * classes, labels[i], classes);
  *loss = total / batch;
}

}  // namespace
}  // namespace cladbench
