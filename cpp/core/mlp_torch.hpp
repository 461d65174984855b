// The MLP as LibTorch sees it: parameters as tensors, the kernel pullbacks wrapped in one generic
// torch::autograd::Function, and the same loss written in torch ops for reference.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../kernels/kernel_set.hpp"

namespace cladbench {

// Widths dims[0] (input) .. dims.back() (classes).
struct MlpShape {
  std::vector<int> dims;
  int n_layers() const { return int(dims.size()) - 1; }
  long param_count() const { return mlp_param_count(dims.data(), n_layers()); }
  std::string name() const;  // e.g. "mlp-784-128-10"
};

// Per layer W [out, in] and b [out], drawn from U(-1/sqrt(in), 1/sqrt(in)) (torch.nn.Linear's
// bounds) with torch's CPU generator seeded by `seed`: every engine starts from these values.
std::vector<torch::Tensor> init_mlp_params(const MlpShape& shape, uint64_t seed);
// The flat parameter vector of the kernel contract, weights in the given layout.
torch::Tensor pack_params(const std::vector<torch::Tensor>& layers, Layout layout);
// Views into a flat vector, as W [out, in] and b [out] per layer.
std::vector<torch::Tensor> unpack_params(const torch::Tensor& flat, const MlpShape& shape, Layout layout);

// The order of the training samples in each epoch: row e is a permutation of 0..n-1.
torch::Tensor epoch_orders(long n, int epochs, uint64_t seed);

// Mean cross-entropy loss whose backward is the kernels' pullback (the generic autograd wrapper).
// params float or double, flat; x [batch, dims[0]] of the same dtype; labels int32 [batch].
torch::Tensor mlp_loss(const MlpKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                       const torch::Tensor& labels, const MlpShape& shape);

// The same loss in torch ops (autograd differentiates it): the reference every engine is checked
// against. labels int32 or int64.
torch::Tensor reference_mlp_loss(const torch::Tensor& params, const torch::Tensor& x,
                                 const torch::Tensor& labels, const MlpShape& shape, Layout layout);
torch::Tensor reference_mlp_logits(const torch::Tensor& params, const torch::Tensor& x,
                                   const MlpShape& shape, Layout layout);

// Looks an engine up by name, with a message saying why it is missing.
const MlpKernels& require_mlp_kernels(const std::string& engine, Layout layout);

// The largest elementwise difference relative to the largest reference value (infinity norms).
double max_rel_err(const torch::Tensor& value, const torch::Tensor& reference);

}  // namespace cladbench
