// The C++ gradient engines a trainer runs: the kernel engines (clad, manual) in arena and dynamic
// allocation, and libtorch (torch::nn and autograd). docs/architecture.md, "The variant matrix".
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "../cuda/runtime.hpp"
#include "../torch/model_torch.hpp"
#include "train_options.hpp"
#include "trainer.hpp"

namespace cladbench {

// One gradient engine being trained. Batches arrive as contiguous tensors gathered beforehand.
class Engine {
 public:
  virtual ~Engine() = default;
  // One training step (gradient and update); returns the batch loss.
  virtual double step(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor& y64) = 0;
  // The loss gradient as a flat vector in the engine's layout, parameters unchanged.
  virtual torch::Tensor gradient(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor& y64) = 0;
  // Current parameters as a flat vector in the engine's layout.
  virtual torch::Tensor flat_params() = 0;
  virtual Layout layout() const = 0;
  // Whether the optimizer's update happens inside the pullback (plain SGD in the arena engine).
  virtual bool update_in_pullback() const { return false; }
};

// The engine of variant `v` (its kernels, or torch::nn for libtorch) from the initial parameters
// [W0, b0, W1, b1, ...]; `generator` gets its kernels' gradient generator (unchanged for
// libtorch). gpu: the runtime of a CUDA run, else nullptr.
std::unique_ptr<Engine> make_engine(const Variant& v, const ModelShape& shape, const std::vector<torch::Tensor>& init,
                                    const TrainOptions& o, const torch::Device& device, GpuRuntime* gpu,
                                    std::string& generator);

}  // namespace cladbench
