#include "gemm_floor.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include "parallel.hpp"

#include <algorithm>
#include <chrono>

namespace cladbench {

namespace {

// A linear layer y[rows x out] = x W^T + b and its pullback (layers.hpp): forward, then in the
// backward pass dX (when wanted) before dW.
void linear_gemms(std::vector<GemmCall>& fwd, std::vector<GemmCall>& bwd, Layout layout, int rows, int in, int out,
                  bool input_gradient, int group) {
  const bool rm = layout == Layout::RowMajor;
  fwd.push_back({false, rm, rows, out, in, 1, group});  // onto the broadcast bias
  std::vector<GemmCall> pullback;
  if (input_gradient) pullback.push_back({false, !rm, rows, in, out, 1, group});
  pullback.push_back(rm ? GemmCall{true, false, out, in, rows, 1, group}
                        : GemmCall{true, false, in, out, rows, 1, group});
  bwd.insert(bwd.begin(), pullback.begin(), pullback.end());  // the backward pass runs the layers in reverse
}

// A conv block (cnn.hpp's conv_block and its pullback): per chunk of samples, z = W col, then in the
// backward pass dW += dz col^T and, but for block 0 (x needs no gradient), d_col = W^T dz.
void conv_gemms(std::vector<GemmCall>& fwd, std::vector<GemmCall>& bwd, Layout layout, const ConvGeometry& g, int batch,
                bool input_gradient, int group) {
  const bool rm = layout == Layout::RowMajor;
  std::vector<GemmCall> pullback;
  for (int first = 0; first < batch; first += g.samples) {
    const int cols = std::min(g.samples, batch - first) * g.t_out;
    fwd.push_back({!rm, false, g.c_out, cols, g.width, 0, group});
    pullback.push_back(rm ? GemmCall{false, true, g.c_out, g.width, cols, 1, group}
                          : GemmCall{false, true, g.width, g.c_out, cols, 1, group});
    if (input_gradient) pullback.push_back({rm, false, g.width, cols, g.c_out, 0, group});
  }
  bwd.insert(bwd.begin(), pullback.begin(), pullback.end());
}

}  // namespace

std::vector<GemmCall> step_gemms(const ModelShape& shape, Layout layout, int batch) {
  std::vector<GemmCall> fwd, bwd;
  int group = 0;
  const auto sizes = shape.layer_sizes();
  size_t next = 0;  // the next linear layer in sizes
  if (shape.model == "cnn") {
    for (int l = 0; l < shape.count(); ++l)
      conv_gemms(fwd, bwd, layout, conv_geometry(shape.dims.data(), l), batch, l > 0, group++);
    next = shape.count();
  }
  for (; next < sizes.size(); ++next)  // the MLP's first layer reads x: no dX
    linear_gemms(fwd, bwd, layout, batch, sizes[next].first, sizes[next].second, shape.model == "cnn" || next > 0,
                 group++);
  fwd.insert(fwd.end(), bwd.begin(), bwd.end());
  return fwd;
}

double gemm_floor_seconds(const ModelShape& shape, Layout layout, int batch, int repeats) {
  const std::vector<GemmCall> calls = step_gemms(shape, layout, batch);
  long a_max = 0, b_max = 0, c_max = 0;
  for (const GemmCall& g : calls) {
    a_max = std::max(a_max, long(g.M) * g.K);
    b_max = std::max(b_max, long(g.K) * g.N);
    c_max = std::max(c_max, long(g.M) * g.N);
  }
  // Every parallel task gets its own operands, as every conv task has its own scratch.
  const int tasks = kConvTaskSlots;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const torch::Tensor a = torch::randn({tasks, a_max}, gen), b = torch::randn({tasks, b_max}, gen);
  const torch::Tensor c = torch::randn({tasks, c_max}, gen);
  auto run = [&](const GemmCall& g, long task) {
    const float* A = a[task].data_ptr<float>();
    const float* B = b[task].data_ptr<float>();
    float* C = c[task].data_ptr<float>();
    gemm(g.trans_a, g.trans_b, g.M, g.N, g.K, 1.f, A, g.trans_a ? g.M : g.K, B, g.trans_b ? g.K : g.N, g.beta, C, g.N);
  };
  auto step = [&] {
    for (size_t i = 0; i < calls.size();) {
      size_t end = i;
      while (end < calls.size() && calls[end].group == calls[i].group) ++end;
      // The calls of one group: one task per thread, as the kernels split a block's chunks.
      const long n = long(end - i), threads = std::min<long>({n, long(tasks), long(at::get_num_threads())});
      if (threads <= 1) {
        for (size_t j = i; j < end; ++j) run(calls[j], 0);
      } else {
        const auto tasks_of = [&](long t0, long t1) {
          for (long t = t0; t < t1; ++t)
            for (long j = n * t / threads; j < n * (t + 1) / threads; ++j) run(calls[i + j], t);
        };
        parallel_for(threads, 1, tasks_of);
      }
      i = end;
    }
  };
  for (int i = 0; i < 5; ++i) step();  // warm-up: BLAS buffers, caches
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace cladbench
