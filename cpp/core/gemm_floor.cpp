#include "gemm_floor.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>

namespace cladbench {

namespace {

// One linear layer y[rows x out] = x[rows x in] W: forward, dW and (unless it reads the input) dX,
// with the transposes linear_rowmajor/colmajor and their pullbacks use.
struct LayerGemms {
  int rows, in, out;
  bool input_gradient;
};

std::vector<LayerGemms> step_gemms(const ModelShape& shape, int batch) {
  std::vector<LayerGemms> layers;
  const auto sizes = shape.layer_sizes();
  if (shape.model == "cnn") {
    int len = shape.dims[1];
    for (int l = 0; l < shape.count(); ++l) {
      const int k = shape.dims[3 + 3 * l], pool = shape.dims[4 + 3 * l], t_out = cnn_conv_out(len, k);
      layers.push_back({batch * t_out, sizes[l].first, sizes[l].second, l > 0});  // conv as GEMM on im2col
      len = t_out / pool;
    }
    for (size_t l = shape.count(); l < sizes.size(); ++l) layers.push_back({batch, sizes[l].first, sizes[l].second, true});
  } else {
    for (size_t l = 0; l < sizes.size(); ++l) layers.push_back({batch, sizes[l].first, sizes[l].second, l > 0});
  }
  return layers;
}

}  // namespace

double gemm_floor_seconds(const ModelShape& shape, Layout layout, int batch, int repeats) {
  const std::vector<LayerGemms> layers = step_gemms(shape, batch);
  long x_max = 0, w_max = 0, y_max = 0;
  for (const LayerGemms& g : layers) {
    x_max = std::max(x_max, long(g.rows) * g.in);
    w_max = std::max(w_max, long(g.in) * g.out);
    y_max = std::max(y_max, long(g.rows) * g.out);
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  torch::Tensor x = torch::randn({x_max}, gen), w = torch::randn({w_max}, gen), y = torch::randn({y_max}, gen);
  torch::Tensor dx = torch::zeros({x_max}), dw = torch::zeros({w_max});
  float *X = x.data_ptr<float>(), *Wt = w.data_ptr<float>(), *Y = y.data_ptr<float>();
  float *dX = dx.data_ptr<float>(), *dW = dw.data_ptr<float>();
  const bool rm = layout == Layout::RowMajor;
  auto step = [&] {
    for (const LayerGemms& g : layers) {  // forward: y = x W^T (rowmajor) or x W (colmajor)
      gemm(false, rm, g.rows, g.out, g.in, 1.f, X, g.in, Wt, rm ? g.in : g.out, 1.f, Y, g.out);
    }
    for (auto g = layers.rbegin(); g != layers.rend(); ++g) {  // backward: dW, then dX
      if (rm) gemm(true, false, g->out, g->in, g->rows, 1.f, Y, g->out, X, g->in, 1.f, dW, g->in);
      else gemm(true, false, g->in, g->out, g->rows, 1.f, X, g->in, Y, g->out, 1.f, dW, g->out);
      if (g->input_gradient) gemm(false, !rm, g->rows, g->in, g->out, 1.f, Y, g->out, Wt, rm ? g->in : g->out, 1.f, dX, g->in);
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
