// The calibration loss written in LibTorch ops, differentiated by LibTorch autograd: the reference
// the clad and manual pullbacks are checked against, and the libtorch engine of the benchmark.
// The header keeps LibTorch types out, so the module's other TUs do not pay for its headers.
#pragma once

#include <memory>

#include "sample.hpp"

namespace cladbench::calib {

class TorchLoss {
 public:
  explicit TorchLoss(const Sample& sample);  // views of the sample's rows, indices as int64 once
  ~TorchLoss();
  // The loss at gains[regions]; with d_gains, also accumulates its gradient there (autograd).
  double operator()(const double* gains, double* d_gains) const;

 private:
  struct Tensors;
  std::unique_ptr<Tensors> tensors_;
};

}  // namespace cladbench::calib
