// The GPU engine's derivatives, checked on a machine without a GPU: the code Clad wrote for the
// device (device_derivatives.inc) and for the host chain (host_derivatives.inc) compiled for the
// CPU, with launch.hpp's launchers played by host loops that call the same thread functions and
// their generated derivatives, one "thread" at a time. Its gradient must equal the CPU clad
// engine's (cpp/kernels) on the same MLP and batch. What this cannot check is launch.cu itself:
// the kernel launches and the cuBLAS calls, which need a GPU (tests/test_cuda.py on one).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "clad/Differentiator/BuiltinDerivatives.h"
#include "../kernels/kernel_set.hpp"
#include "mlp.hpp"
#include "threads.hpp"

namespace cladbench::cuda {

#include "device_derivatives.inc"
#include "host_derivatives.inc"

// y = x W^T + b, W [out x in] row-major, on host memory.
void launch_linear(const float* x, const float* W, const float* b, float* y, int batch, int in, int out) {
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) {
      float s = b[j];
      for (int k = 0; k < in; ++k) s += x[i * in + k] * W[j * in + k];
      y[i * out + j] = s;
    }
}

void launch_linear_backward(const float* x, const float* W, const float* d_y, float* d_x, float* d_W, float* d_b,
                            int batch, int in, int out) {
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < out; ++j) {
      const float g = d_y[i * out + j];
      d_b[j] += g;
      for (int k = 0; k < in; ++k) {
        d_W[j * in + k] += g * x[i * in + k];
        if (d_x) d_x[i * in + k] += g * W[j * in + k];
      }
    }
}

void launch_relu(const float* z, float* h, int n) {
  for (int i = 0; i < n; ++i) relu_thread(z, h, i);
}

void launch_relu_backward(const float* z, float* h, float* d_z, float* d_h, int n) {
  for (int i = 0; i < n; ++i) relu_thread_grad_0_1(z, h, i, d_z, d_h);
}

void launch_cross_entropy(const float* logits, const int* labels, int batch, int classes, float* losses, float* loss) {
  for (int i = 0; i < batch; ++i) cross_entropy_thread(logits, labels, classes, 1.f / batch, losses, i);
  *loss = 0;
  for (int i = 0; i < batch; ++i) *loss += losses[i];
}

void launch_cross_entropy_backward(const float* logits, const int* labels, int batch, int classes, float* losses,
                                   float* d_logits, float* d_losses, const float* d_loss) {
  for (int i = 0; i < batch; ++i) {
    d_losses[i] += *d_loss;
    cross_entropy_thread_grad_0_4(logits, labels, classes, 1.f / batch, losses, i, d_logits, d_losses);
  }
}

}  // namespace cladbench::cuda

int main() {
  using namespace cladbench;
  const ModelKernels* cpu = find_kernels("mlp", "clad", Layout::RowMajor);
  if (!cpu) {
    std::puts("the CPU clad engine is not linked in");
    return 1;
  }
  const std::vector<int> dims = {20, 16, 12, 5};  // two hidden layers, 5 classes
  const int n_layers = 3, batch = 7;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 0.5f);
  std::vector<float> params(mlp_param_count(dims.data(), n_layers)), x(batch * dims[0]);
  for (float& p : params) p = normal(rng);
  for (float& v : x) v = normal(rng);
  std::vector<int> labels(batch);
  for (int i = 0; i < batch; ++i) labels[i] = i % dims.back();

  auto gradient = [&](bool gpu_engine, float& loss) {
    const long ws_size = gpu_engine ? cuda::mlp_workspace_size(dims.data(), n_layers, batch)
                                    : mlp_workspace_size(dims.data(), n_layers, batch);
    std::vector<float> ws(ws_size), d_ws(ws_size), d_params(params.size());
    float seed = 1;
    if (gpu_engine)
      cuda::mlp_loss_grad_0_1_6_7(params.data(), x.data(), labels.data(), dims.data(), n_layers, batch, ws.data(),
                                  &loss, d_params.data(), nullptr, d_ws.data(), &seed);
    else
      cpu->f32.pullback(params.data(), x.data(), labels.data(), dims.data(), n_layers, batch, ws.data(), &loss,
                        d_params.data(), nullptr, d_ws.data(), &seed);
    return d_params;
  };
  float loss_gpu = 0, loss_cpu = 0;
  const std::vector<float> g_gpu = gradient(true, loss_gpu), g_cpu = gradient(false, loss_cpu);
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < g_cpu.size(); ++i) {
    max_diff = std::max(max_diff, double(std::fabs(g_gpu[i] - g_cpu[i])));
    max_ref = std::max(max_ref, double(std::fabs(g_cpu[i])));
  }
  const double rel = max_diff / max_ref;
  std::printf("GPU engine's generated code on the host: loss %.6f (CPU clad %.6f), gradient max rel diff %.2e\n",
              loss_gpu, loss_cpu, rel);
  const bool ok = std::fabs(loss_gpu - loss_cpu) < 1e-5 * std::fabs(loss_cpu) && rel < 1e-5 && max_ref > 0;
  return ok ? 0 : 1;
}
