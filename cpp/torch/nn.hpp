// cladbench::nn: the kernel models as torch::nn modules for LibTorch programs, Python's
// cladbench.nn.MLP / CNN in C++ (docs/architecture.md, "Where each concept lives"). Each holds one
// registered parameter, "params", the flat vector of the kernel contract (per layer W then b, W in
// the module's layout), initialised as every engine is (init_params + pack_params), so the kernels
// read it without copies. forward(x) calls torch.ops.cladbench.forward through the dispatcher, so
// LibTorch autograd runs Clad's vector-Jacobian product in backward; loss(x, labels) is the fused
// training op torch.ops.cladbench.loss. Link a kernel engine's objects (the clad or manual kernels
// register themselves from static initializers): cpp/CMakeLists.txt, cladbench_example_libtorch.
//
//   cladbench::nn::MLP model({784, 128, 10});
//   torch::optim::SGD sgd(model->parameters(), 0.05);
//   sgd.zero_grad();
//   torch::nn::functional::cross_entropy(model->forward(x), y).backward();  // Clad's VJP
//   sgd.step();
//
// train() and eval() change nothing: the models have no dropout or batch norm.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model_torch.hpp"

namespace cladbench::nn {

// The shared part of MLP and CNN: a ModelShape, the kernel engine and layout, and "params".
class KernelModule : public torch::nn::Module {
 public:
  // name: the module's name in printouts, e.g. "cladbench::nn::MLP".
  KernelModule(const std::string& name, ModelShape shape, std::string engine, std::string layout, uint64_t seed);
  // With given initial parameters (the flat vector, float or double; copied).
  KernelModule(const std::string& name, ModelShape shape, std::string engine, std::string layout,
               const torch::Tensor& initial_params);

  // The logits [batch, classes] of x [batch, input_size] of the parameters' dtype.
  torch::Tensor forward(const torch::Tensor& x);
  // The fused mean softmax cross-entropy (labels of any integer type, converted to int32).
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& labels);
  // [W0, b0, W1, b1, ...] as views into params, W [out, in] (conv blocks [c_out, c_in * kernel]).
  std::vector<torch::Tensor> layers() const;

  const ModelShape& shape() const { return shape_; }
  const std::string& engine() const { return engine_; }
  const std::string& layout() const { return layout_; }
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor params;

 private:
  void check_input(const torch::Tensor& x) const;

  ModelShape shape_;
  std::vector<int64_t> dims_;  // the op's int[] dims
  std::string engine_, layout_;
};

// A multilayer perceptron with ReLU between layers: widths = {in, hidden..., classes}.
class MLPImpl : public KernelModule {
 public:
  explicit MLPImpl(std::vector<int> widths, std::string engine = "clad", std::string layout = "rowmajor",
                   uint64_t seed = 1);
};
// The holder (TORCH_MODULE's, plus a constructor that takes a braced widths list: MLP({784, 10})).
class MLP : public torch::nn::ModuleHolder<MLPImpl> {
 public:
  using torch::nn::ModuleHolder<MLPImpl>::ModuleHolder;
  using Impl = MLPImpl;
  MLP(std::vector<int> widths, std::string engine = "clad", std::string layout = "rowmajor", uint64_t seed = 1)
      : ModuleHolder(std::make_shared<MLPImpl>(std::move(widths), std::move(engine), std::move(layout), seed)) {}
};

// The GW 1D CNN (cnn.hpp): conv blocks "<c_out>k<kernel>p<pool>,..." (conv, max-pool, ReLU) over
// x [batch, channels * length] (channel-major), then a hidden linear layer with ReLU, then classes.
class CNNImpl : public KernelModule {
 public:
  CNNImpl(int channels, int length, const std::string& conv = "8k16p4,16k8p4,16k8p4", int hidden = 32, int classes = 2,
          std::string engine = "clad", std::string layout = "rowmajor", uint64_t seed = 1);
};
TORCH_MODULE(CNN);

// A user's model (cpp/model/cladbench_model.hpp), from cladbench::load_model(library): forward is
// its output [batch, outputs] with Clad's VJP behind it, loss the fused cross-entropy of that
// output read as logits. initial_params: the flat vector in the model's own order (copied); the
// other constructor draws every value from N(0, 0.05^2) with torch's CPU generator seeded by seed,
// since the project cannot know the model's layers. layers() is {params}.
class ModelImpl : public KernelModule {
 public:
  ModelImpl(const UserModel& model, const torch::Tensor& initial_params);
  explicit ModelImpl(const UserModel& model, uint64_t seed = 1);
};
TORCH_MODULE(Model);

}  // namespace cladbench::nn
