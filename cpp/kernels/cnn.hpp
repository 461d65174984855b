// The GW classifier: a 1D CNN on the kernel contract (see mlp.hpp), same pullback signature:
//
//   void cnn_loss(params, x, labels, dims, n_conv, batch, ws, loss)
//   void cnn_logits(params, x, dims, n_conv, batch, ws)      // and its logits pullback, as mlp.hpp's
//
// x is [batch][channels][length] (the two detectors' whitened strain). dims describes the net:
//   dims = {channels, length, (c_out, kernel, pool) per conv block ..., hidden, classes}
// Each conv block (conv_block below): valid convolution, bias, max-pooling by `pool`, ReLU, as
// torch's Conv1d -> MaxPool1d -> ReLU. Activations stay channels-first, [batch][channels][time],
// and the head flattens them as torch's Flatten does: linear to `hidden`, ReLU, linear to
// `classes`, softmax cross-entropy.
// params per conv block: W [c_out x c_in*kernel] (column index ci*kernel + k, as torch's
// [c_out][c_in][kernel]; transposed for the colmajor layout), b [c_out]; then the head's two
// layers as in the MLP.
// ws: the conv blocks' scratch (cnn_scratch_size, shared by the blocks: see conv_block), then per
// block its output h [batch][c_out][t_pool] and the position of each pooling window's maximum;
// then the head's z1, h1, logits. The adjoint of the scratch region is never used as one: the
// loss's pullback rebuilds im2col in ws' scratch, the logits' pullback in d_ws' (so that it leaves
// ws as the forward left it, and leaves d_ws zero but there).
#pragma once

#include <algorithm>
#include <cstring>

#include "mlp.hpp"

namespace cladbench {

inline int cnn_conv_out(int length, int kernel) { return length - kernel + 1; }

// One conv block's sizes, from its input (channels, length) and (c_out, kernel, pool).
struct ConvGeometry {
  int c_in, len, c_out, kernel, pool;
  int t_out, t_pool;  // conv outputs per sample; pooled outputs per sample (trailing steps drop)
  int width;          // c_in * kernel: the rows of the im2col matrix, the GEMMs' inner size
  int samples;        // samples per chunk: the chunk's im2col matrix stays in the core's cache
  long slot;          // scratch per parallel task: im2col (later its adjoint), conv outputs, dW, db

  ConvGeometry(int c_in_, int len_, int c_out_, int kernel_, int pool_)
      : c_in(c_in_),
        len(len_),
        c_out(c_out_),
        kernel(kernel_),
        pool(pool_),
        t_out(cnn_conv_out(len_, kernel_)),
        t_pool(t_out / pool_),
        width(c_in_ * kernel_) {
    // About 256 KiB of im2col per chunk: in L2 while its GEMMs read it (measured on the CNN's
    // blocks: per-sample chunks beat one batch-wide matrix by 1.5-2x; docs/performance.md).
    samples = int(std::max(1L, kChunkFloats / (long(width) * t_out)));
    const long cols = long(samples) * t_out;
    slot = long(width) * cols + long(c_out) * cols + long(c_out) * width + c_out;
  }
  static constexpr long kChunkFloats = 65536;
};

// Parallel tasks a conv block splits its chunks over (each with its own scratch slot); the
// workspace holds this many slots whatever the thread count, so it does not depend on it.
constexpr int kConvTaskSlots = 16;

// Block l's geometry, walking the blocks before it.
inline ConvGeometry conv_geometry(const int* dims, int l) {
  int c_in = dims[0], len = dims[1];
  for (int i = 0; i < l; ++i) {
    c_in = dims[2 + 3 * i];
    len = cnn_conv_out(len, dims[3 + 3 * i]) / dims[4 + 3 * i];
  }
  return ConvGeometry(c_in, len, dims[2 + 3 * l], dims[3 + 3 * l], dims[4 + 3 * l]);
}

// The flattened features the head reads: the last block's outputs per sample.
CLADBENCH_NOT_DIFFERENTIATED inline int cnn_features(const int* dims, int n_conv) {
  const ConvGeometry last = conv_geometry(dims, n_conv - 1);
  return last.c_out * last.t_pool;
}

inline long cnn_param_count(const int* dims, int n_conv) {
  long n = 0;
  for (int l = 0; l < n_conv; ++l) {
    const ConvGeometry g = conv_geometry(dims, l);
    n += long(g.c_out) * g.width + g.c_out;
  }
  const long features = cnn_features(dims, n_conv), hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  return n + hidden * features + hidden + classes * hidden + classes;
}

inline long cnn_scratch_size(const int* dims, int n_conv) {
  long slot = 0;
  for (int l = 0; l < n_conv; ++l) slot = std::max(slot, conv_geometry(dims, l).slot);
  return kConvTaskSlots * slot;
}

inline long cnn_workspace_size(const int* dims, int n_conv, int batch) {
  long n = cnn_scratch_size(dims, n_conv);
  for (int l = 0; l < n_conv; ++l) {
    const ConvGeometry g = conv_geometry(dims, l);
    n += 2L * batch * g.c_out * g.t_pool;
  }
  const int hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  return n + 2L * batch * hidden + long(batch) * classes;
}

CLADBENCH_NOT_DIFFERENTIATED inline long cnn_logits_offset(const int* dims, int n_conv, int batch) {
  return cnn_workspace_size(dims, n_conv, batch) - long(batch) * dims[3 + 3 * n_conv];
}

// Where things are, as functions of the block index: cnn_loss's block loop keeps no running
// offsets or sizes, because Clad 2.5.0~dev does not restore the ints a loop overwrites before the
// reverse sweep's calls that read them (it gave the first block the last block's offsets), and
// prunes the int adjoints of a custom derivative's arguments that are such helpers' results.
// Block l's weights and bias in params.
CLADBENCH_NOT_DIFFERENTIATED inline long conv_weights_offset(const int* dims, int l) {
  long p = 0;
  for (int i = 0; i < l; ++i) p += long(dims[2 + 3 * i]) * conv_geometry(dims, i).width + dims[2 + 3 * i];
  return p;
}
CLADBENCH_NOT_DIFFERENTIATED inline long conv_bias_offset(const int* dims, int l) {
  return conv_weights_offset(dims, l) + long(dims[2 + 3 * l]) * conv_geometry(dims, l).width;
}
// Block l's output h in ws (its argmax follows it); l = n_conv: where the head's z1 starts.
CLADBENCH_NOT_DIFFERENTIATED inline long conv_output_offset(const int* dims, int n_conv, int batch, int l) {
  long w = cnn_scratch_size(dims, n_conv);
  for (int i = 0; i < l; ++i) w += 2L * batch * dims[2 + 3 * i] * conv_geometry(dims, i).t_pool;
  return w;
}
CLADBENCH_NOT_DIFFERENTIATED inline long conv_argmax_offset(const int* dims, int n_conv, int batch, int l) {
  return conv_output_offset(dims, n_conv, batch, l) + long(batch) * dims[2 + 3 * l] * conv_geometry(dims, l).t_pool;
}

namespace {  // internal linkage, see layers.hpp

inline long conv_chunks(const ConvGeometry& g, int batch) { return (batch + g.samples - 1) / g.samples; }
// One task per thread, at most one per chunk and per scratch slot.
inline int conv_tasks(const ConvGeometry& g, int batch) {
  return int(std::min<long>({conv_chunks(g, batch), long(kConvTaskSlots), long(cladbench_threads())}));
}

// The chunks of a block's batch, split into conv_tasks tasks of contiguous chunks:
// f(slot, first_sample, samples) for each chunk, slot being its task's own scratch.
template <class F>
void for_each_chunk(const ConvGeometry& g, int batch, const F& f) {
  const long chunks = conv_chunks(g, batch), tasks = conv_tasks(g, batch);
  const auto run_tasks = [&](long first_task, long end_task) {
    for (long task = first_task; task < end_task; ++task)
      for (long c = chunks * task / tasks; c < chunks * (task + 1) / tasks; ++c) {
        const int first = int(c * g.samples);
        f(int(task), first, std::min(g.samples, batch - first));
      }
  };
  parallel_for(tasks, 1, run_tasks);  // (lambdas named before the call: see parallel.hpp)
}

// The chunk's im2col matrix, transposed: col[ci*kernel + k][s*t_out + t] = in[first + s][ci][t + k].
// Each of its rows is a slice of one input row, so building it is one memcpy per (row, sample).
template <class T>
void im2col_rows(const T* in, T* col, const ConvGeometry& g, int first, int samples) {
  const long cols = long(samples) * g.t_out;
  for (int ci = 0; ci < g.c_in; ++ci)
    for (int k = 0; k < g.kernel; ++k)
      for (int s = 0; s < samples; ++s)
        std::memcpy(col + long(ci * g.kernel + k) * cols + long(s) * g.t_out,
                    in + (long(first + s) * g.c_in + ci) * g.len + k, sizeof(T) * g.t_out);
}

// Max-pooling of one row z[n * P] by windows of P, then bias and ReLU: h[j] = relu(max_i z[j*P + i] + b),
// and where the maximum was (the first, as torch). P known at compile time for the pools the models
// use, so that the loop over windows vectorises (about 2.5x faster than with P at run time).
template <int P, class T>
void pool_windows(const T* __restrict z, T b, T* __restrict h, T* __restrict argmax, int n, int pool) {
  const int p = P ? P : pool;
  for (int j = 0; j < n; ++j) {
    T top = z[long(j) * p], best = 0;
    for (int i = 1; i < p; ++i) {  // selects, not branches: which element is largest is data
      const T v = z[long(j) * p + i];
      best = v > top ? T(i) : best;
      top = v > top ? v : top;
    }
    const T v = top + b;
    h[j] = v > T(0) ? v : T(0);
    argmax[j] = best;
  }
}

template <class T>
void pool_bias_relu(const T* z, T b, T* h, T* argmax, int n, int pool) {
  if (pool == 4) return pool_windows<4>(z, b, h, argmax, n, pool);
  if (pool == 2) return pool_windows<2>(z, b, h, argmax, n, pool);
  pool_windows<0>(z, b, h, argmax, n, pool);
}

// Its pullback: dz[j*P + i] = d_h[j] where i is the window's maximum and the ReLU passed, else 0
// (every element of the n windows written: no separate zeroing); d_h consumed. Returns the sum of
// the passed gradients, the bias's adjoint.
template <int P, class T>
T unpool_windows(const T* __restrict h, const T* __restrict argmax, T* __restrict d_h, T* __restrict dz, int n,
                 int pool) {
  const int p = P ? P : pool;
  T sum = 0;
  for (int j = 0; j < n; ++j) {
    const T grad = h[j] > T(0) ? d_h[j] : T(0);
    d_h[j] = T(0);
    for (int i = 0; i < p; ++i) dz[long(j) * p + i] = argmax[j] == T(i) ? grad : T(0);
    sum += grad;
  }
  return sum;
}

template <class T>
T pool_bias_relu_pullback(const T* h, const T* argmax, T* d_h, T* dz, int n, int pool) {
  if (pool == 4) return unpool_windows<4>(h, argmax, d_h, dz, n, pool);
  if (pool == 2) return unpool_windows<2>(h, argmax, d_h, dz, n, pool);
  return unpool_windows<0>(h, argmax, d_h, dz, n, pool);
}

// Conv, bias, max-pool and ReLU of block l (of dims), on input `in` [batch][c_in][len], into
// h [batch][c_out][t_pool]; argmax [batch][c_out][t_pool] keeps where each window's maximum was
// (as a float index) for the pullback. Per chunk of samples: im2col into the task's scratch, one
// GEMM z = W col (channels-first: z [c_out x chunk time steps]), then pool, bias and ReLU in one
// pass over z. The bias is added after the max: max(z + b) = max(z) + b, also in floating point
// (rounding is monotonic), and one add per window instead of per step.
template <class T>
void conv_block(const T* in, const T* W, const T* b, T* h, T* argmax, T* scratch, const int* dims, int l, int batch) {
  const ConvGeometry g = conv_geometry(dims, l);
  const auto chunk = [&](int slot, int first, int samples) {
    T* col = scratch + slot * g.slot;
    const long cols = long(samples) * g.t_out;
    T* z = col + long(g.width) * cols;
    im2col_rows(in, col, g, first, samples);
    if (kLayout == Layout::RowMajor)
      gemm(false, false, g.c_out, int(cols), g.width, T(1), W, g.width, col, int(cols), T(0), z, int(cols));
    else
      gemm(true, false, g.c_out, int(cols), g.width, T(1), W, g.c_out, col, int(cols), T(0), z, int(cols));
    for (int c = 0; c < g.c_out; ++c)
      for (int s = 0; s < samples; ++s) {
        const long out = (long(first + s) * g.c_out + c) * g.t_pool;
        pool_bias_relu(z + long(c) * cols + long(s) * g.t_out, b[c], h + out, argmax + out, g.t_pool, g.pool);
      }
  };
  for_each_chunk(g, batch, chunk);
}

// Custom derivative of the whole block, for the reasons layers.hpp gives for its own: the GEMMs go
// through the BLAS, and Clad's derivative of the im2col copy and of the pooling loop would tape
// every element they overwrite (a heap-growing tape per step). One pass builds the conv outputs'
// adjoint (each window's maximum gets d_h where the ReLU let it through, the rest zero), then
// dW += dz col^T with col rebuilt in cache (cheaper than keeping it: it would leave the cache
// between the sweeps), and, when the input's gradient is wanted (not for x in training: d_in is
// nullptr), d_col = W^T dz and its scatter-add into d_in. Each task sums dW and db in its own
// slot; they are added up last. d_h is consumed (see layers.hpp).
template <class T>
void conv_block_pullback(const T* in, const T* W, const T* b, T* h, T* argmax, T* scratch, const int* dims, int l,
                         int batch, T* d_in, T* d_W, T* d_b, T* d_h, T*, T*, int*, int*) {
  (void)b;
  const ConvGeometry g = conv_geometry(dims, l);
  const long weights = long(g.c_out) * g.width, partial = weights + g.c_out;
  const long chunk_cols = long(g.samples) * g.t_out;
  auto partials = [&](int slot) { return scratch + slot * g.slot + (g.width + g.c_out) * chunk_cols; };
  const int tasks = conv_tasks(g, batch);
  for (int slot = 0; slot < tasks; ++slot) std::fill(partials(slot), partials(slot) + partial, T(0));
  const auto chunk = [&](int slot, int first, int samples) {
    T* col = scratch + slot * g.slot;
    const long cols = long(samples) * g.t_out;
    T* dz = col + long(g.width) * chunk_cols;
    T* dW = partials(slot);
    T* db = dW + weights;
    for (int c = 0; c < g.c_out; ++c)
      for (int s = 0; s < samples; ++s) {
        const long out = (long(first + s) * g.c_out + c) * g.t_pool;
        T* dzs = dz + long(c) * cols + long(s) * g.t_out;
        db[c] += pool_bias_relu_pullback(h + out, argmax + out, d_h + out, dzs, g.t_pool, g.pool);
        std::fill(dzs + g.t_pool * g.pool, dzs + g.t_out, T(0));  // the steps no window covers
      }
    im2col_rows(in, col, g, first, samples);
    if (kLayout == Layout::RowMajor)  // dW [c_out x width] += dz col^T
      gemm(false, true, g.c_out, g.width, int(cols), T(1), dz, int(cols), col, int(cols), T(1), dW, g.width);
    else  // dW [width x c_out] += col dz^T
      gemm(false, true, g.width, g.c_out, int(cols), T(1), col, int(cols), dz, int(cols), T(1), dW, g.c_out);
    if (!d_in) return;
    T* d_col = col;  // col is spent: its memory takes its adjoint
    if (kLayout == Layout::RowMajor)
      gemm(true, false, g.width, int(cols), g.c_out, T(1), W, g.width, dz, int(cols), T(0), d_col, int(cols));
    else
      gemm(false, false, g.width, int(cols), g.c_out, T(1), W, g.c_out, dz, int(cols), T(0), d_col, int(cols));
    for (int ci = 0; ci < g.c_in; ++ci)
      for (int k = 0; k < g.kernel; ++k)
        for (int s = 0; s < samples; ++s) {
          T* __restrict dst = d_in + (long(first + s) * g.c_in + ci) * g.len + k;
          const T* __restrict src = d_col + long(ci * g.kernel + k) * cols + long(s) * g.t_out;
          for (int t = 0; t < g.t_out; ++t) dst[t] += src[t];
        }
  };
  for_each_chunk(g, batch, chunk);
  for (int slot = 0; slot < tasks; ++slot) {
    const T* p = partials(slot);
    for (long i = 0; i < weights; ++i) d_W[i] += p[i];
    for (int c = 0; c < g.c_out; ++c) d_b[c] += p[weights + c];
  }
}

// Block l as the model calls it: nothing when `saved` (its output and argmax are in ws), and a
// custom derivative that always runs conv_block_pullback (see linear_layer in mlp.hpp).
template <class T>
void conv_layer(const T* in, const T* W, const T* b, T* h, T* argmax, T* scratch, const int* dims, int l, int batch,
                int saved) {
  if (!saved) conv_block(in, W, b, h, argmax, scratch, dims, l, batch);
}

template <class T>
void conv_layer_pullback(const T* in, const T* W, const T* b, T* h, T* argmax, T* scratch, const int* dims, int l,
                         int batch, int, T* d_in, T* d_W, T* d_b, T* d_h, T* d_argmax, T* d_scratch, int* d_l,
                         int* d_batch, int*) {
  conv_block_pullback(in, W, b, h, argmax, scratch, dims, l, batch, d_in, d_W, d_b, d_h, d_argmax, d_scratch, d_l,
                      d_batch);
}

// The CNN's layer sequence, its one definition (mlp_layers says how saved and Clad meet): the conv
// blocks, then the head: flatten (the last h is already [batch][features]), linear, ReLU, linear,
// into the logits at cnn_logits_offset. `scratch`: where the conv blocks work (see the header
// comment); its adjoint is never used. Written for Clad like mlp_layers: the first block (reading x) is
// peeled off the loop, and the loop's offsets are functions of l (above).
template <class T>
void cnn_layers(const T* params, const T* x, const int* dims, int n_conv, int batch, T* ws, T* scratch, int saved) {
  conv_layer(x, params, params + conv_bias_offset(dims, 0), ws + conv_output_offset(dims, n_conv, batch, 0),
             ws + conv_argmax_offset(dims, n_conv, batch, 0), scratch, dims, 0, batch, saved);
  for (int l = 1; l < n_conv; ++l)
    conv_layer(ws + conv_output_offset(dims, n_conv, batch, l - 1), params + conv_weights_offset(dims, l),
               params + conv_bias_offset(dims, l), ws + conv_output_offset(dims, n_conv, batch, l),
               ws + conv_argmax_offset(dims, n_conv, batch, l), scratch, dims, l, batch, saved);
  const int f = int(conv_output_offset(dims, n_conv, batch, n_conv - 1));  // the flattened features
  const int z1 = int(conv_output_offset(dims, n_conv, batch, n_conv));
  const int p = int(conv_weights_offset(dims, n_conv));  // the head's first weights
  const int features = cnn_features(dims, n_conv), hidden = dims[2 + 3 * n_conv], classes = dims[3 + 3 * n_conv];
  linear_layer(ws + f, params + p, params + p + hidden * features, ws + z1, batch, features, hidden, saved);
  relu_layer(ws + z1, ws + z1 + batch * hidden, batch * hidden, saved);
  const int q = p + hidden * features + hidden;
  const int logits = z1 + 2 * batch * hidden;
  linear_layer(ws + z1 + batch * hidden, params + q, params + q + classes * hidden, ws + logits, batch, hidden, classes,
               saved);
}

// The contract's logits forward (mlp.hpp's header comment), at cnn_logits_offset in ws.
template <class T>
void cnn_logits(const T* params, const T* x, const int* dims, int n_conv, int batch, T* ws) {
  cnn_layers(params, x, dims, n_conv, batch, ws, ws, 0);
}

// Mean softmax cross-entropy of the CNN over a batch.
template <class T>
void cnn_loss(const T* params, const T* x, const int* labels, const int* dims, int n_conv, int batch, T* ws, T* loss) {
  cnn_layers(params, x, dims, n_conv, batch, ws, ws, 0);
  const int logits = int(cnn_logits_offset(dims, n_conv, batch)), classes = dims[3 + 3 * n_conv];
  T total = 0;
  for (int i = 0; i < batch; ++i) total += sample_cross_entropy(ws + logits + i * classes, labels[i], classes);
  *loss = total / batch;
}

}  // namespace
}  // namespace cladbench
