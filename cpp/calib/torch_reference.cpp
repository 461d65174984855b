#include "torch_reference.hpp"

#include <torch/torch.h>

#include "stages.hpp"

namespace cladbench::calib {

struct TorchLoss::Tensors {
  int regions;
  torch::Tensor e1, e2, opening, peak, half_width, sigma, mix, r1, r2;
};

TorchLoss::TorchLoss(const Sample& s) : tensors_(std::make_unique<Tensors>()) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor rows = torch::from_blob(const_cast<double*>(s.rows.data()), {s.events, kColumns}, f64).clone();
  const torch::Tensor region =
      torch::from_blob(const_cast<int*>(s.region.data()), {s.events, 2}, torch::kInt32).to(torch::kInt64);
  auto column = [&](int c) { return rows.select(1, c).contiguous(); };
  *tensors_ = {s.regions,
               column(kEnergy1),
               column(kEnergy2),
               column(kOpening),
               column(kPeak),
               column(kHalfWidth),
               column(kSigma),
               column(kMix),
               region.select(1, 0).contiguous(),
               region.select(1, 1).contiguous()};
}

TorchLoss::~TorchLoss() = default;

double TorchLoss::operator()(const double* gains_in, double* d_gains) const {
  const Tensors& t = *tensors_;
  torch::Tensor gains = torch::from_blob(const_cast<double*>(gains_in), {t.regions}, torch::kFloat64)
                            .clone()
                            .requires_grad_(d_gains != nullptr);
  // calibrate -> invariant mass -> pseudo-Voigt NLL with the Jacobian term, as stages.hpp.
  const torch::Tensor m =
      torch::sqrt(t.e1 / gains.index_select(0, t.r1) * (t.e2 / gains.index_select(0, t.r2)) * t.opening);
  const torch::Tensor u = m - t.peak;
  const torch::Tensor lorentz = t.half_width / (M_PI * (u * u + t.half_width * t.half_width));
  const torch::Tensor gauss = torch::exp(-u * u / (2 * t.sigma * t.sigma)) / (t.sigma * std::sqrt(2 * M_PI));
  const torch::Tensor loss = (-torch::log(m * (t.mix * lorentz + (1 - t.mix) * gauss))).mean();
  if (d_gains) {
    loss.backward();
    const torch::Tensor grad = gains.grad();
    const double* g = grad.data_ptr<double>();
    for (int r = 0; r < t.regions; ++r) d_gains[r] += g[r];
  }
  return loss.item<double>();
}

}  // namespace cladbench::calib
