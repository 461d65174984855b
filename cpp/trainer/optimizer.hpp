// The optimizers of the C++ engines: FlatOptimizer for the arena engines (flat arrays, on the
// trainer's threads or the GPU), torch.optim's for the dynamic and libtorch engines.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../cuda/runtime.hpp"
#include "../kernels/parallel.hpp"

namespace cladbench {

// The optimizer update of the arena engines, on flat arrays: the arithmetic of torch.optim's
// single-tensor SGD and Adam (default betas and eps), so every engine follows the same curve.
class FlatOptimizer {
 public:
  // gpu: the runtime of a CUDA run (p, g and the moments in device memory), else nullptr.
  FlatOptimizer(const std::string& kind, double lr, long n, const torch::Device& device, GpuRuntime* gpu)
      : adam_(kind == "adam"),
        lr_(lr),
        gpu_(gpu),
        m_(torch::zeros({adam_ ? n : 0}, torch::TensorOptions(torch::kFloat).device(device))),
        v_(torch::zeros_like(m_)) {}

  // Updates p from g and zeroes g as it goes: the next step's pullback accumulates into a clean
  // buffer without a separate pass over memory to clear it. Split over the same threads as the
  // GEMMs (torch's intra-op pool, kernels/parallel.hpp; inline at 1 thread).
  void step_and_zero(float* p, float* g, long n) {
    const float lr = float(lr_);
    if (!adam_ && gpu_) return gpu_->sgd_step_and_zero(p, g, n, lr);
    if (!adam_) {
      const auto range = [&](long begin, long end) { sgd(p + begin, g + begin, end - begin, lr); };
      parallel_for(n, kGrain, range);
      return;
    }
    ++t_;
    const double b1 = 0.9, b2 = 0.999;
    const float step_size = float(lr_ / (1 - std::pow(b1, t_)));
    const float bc2_sqrt = float(std::sqrt(1 - std::pow(b2, t_)));
    float* m = m_.data_ptr<float>();
    float* v = v_.data_ptr<float>();
    if (gpu_) return gpu_->adam_step_and_zero(p, g, m, v, n, step_size, bc2_sqrt);
    const auto range = [&](long begin, long end) {
      adam(p + begin, g + begin, m + begin, v + begin, end - begin, step_size, bc2_sqrt);
    };
    parallel_for(n, kGrain, range);
  }

 private:
  static constexpr long kGrain = 32768;  // elements per task: below this, threading costs more than it saves

  static void sgd(float* __restrict p, float* __restrict g, long n, float lr) {
    for (long i = 0; i < n; ++i) {
      p[i] -= lr * g[i];
      g[i] = 0.f;
    }
  }

  // torch.optim.Adam's arithmetic (no weight decay, no amsgrad).
  static void adam(float* __restrict p, float* __restrict g, float* __restrict m, float* __restrict v, long n,
                   float step_size, float bc2_sqrt) {
    const float one_minus_b1 = float(1 - 0.9), b2 = float(0.999), one_minus_b2 = float(1 - 0.999), eps = float(1e-8);
    for (long i = 0; i < n; ++i) {
      m[i] += one_minus_b1 * (g[i] - m[i]);
      v[i] = b2 * v[i] + one_minus_b2 * g[i] * g[i];
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
      g[i] = 0.f;
    }
  }

  bool adam_;
  double lr_;
  GpuRuntime* gpu_;
  torch::Tensor m_, v_;
  long t_ = 0;
};

inline std::unique_ptr<torch::optim::Optimizer> torch_optimizer(const std::string& kind, double lr,
                                                                std::vector<torch::Tensor> params) {
  if (kind == "adam") return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(lr));
  return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(lr));
}

}  // namespace cladbench
