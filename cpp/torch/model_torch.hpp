// The models as LibTorch sees them: parameters as tensors, the kernel pullbacks wrapped in
// torch::autograd::Functions (ops.cpp), and the same losses written in torch ops for reference.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../kernels/kernel_set.hpp"
#include "user_model.hpp"

namespace cladbench {

// A model and its size description, as in the kernels: mlp dims = widths (mlp.hpp); cnn dims =
// {channels, length, (c_out, kernel, pool)..., hidden, classes} (cnn.hpp); a user's model
// (user_model.hpp) has no dims, its sizes are fixed.
struct ModelShape {
  std::string model;  // "mlp", "cnn", or a loaded user model's name
  std::vector<int> dims;
  const UserModel* user = nullptr;  // set for a user's model (shape_of)

  int count() const;  // the kernels' count argument: layers (mlp) or conv blocks (cnn)
  long param_count() const;
  long workspace_size(int batch) const;
  long logits_offset(int batch) const;
  long scratch_size() const;  // the start of ws (and d_ws) that is scratch: the CNN's conv blocks', else 0
  int input_size() const;     // features per sample, x is [batch, input_size]
  int classes() const;        // the logits per sample
  std::string name() const;   // e.g. "mlp-784-128-10", "cnn-gw-2x2048-8k16p4-32-2"
  // (in, out) of every weight matrix, in params order: conv blocks as [c_out x c_in*kernel].
  std::vector<std::pair<int, int>> layer_sizes() const;
};

// The shape of a built-in model, or of the loaded user model of that name (then dims must be empty).
ModelShape shape_of(const std::string& model, const std::vector<int>& dims);

// "8k16p4,16k8p4" -> {8, 16, 4, 16, 8, 4}: c_out, kernel and pool of each conv block, as
// cladbench-train's --conv and cladbench::nn::CNN take them (throws std::invalid_argument).
std::vector<int> parse_conv(const std::string& spec);

// Per layer W [out, in] and b [out], drawn from U(-1/sqrt(in), 1/sqrt(in)) (torch.nn.Linear's and
// Conv1d's bounds) with torch's CPU generator seeded by `seed`: every engine starts from these.
std::vector<torch::Tensor> init_params(const ModelShape& shape, uint64_t seed);
// The flat parameter vector of the kernel contract, weights in the given layout.
torch::Tensor pack_params(const std::vector<torch::Tensor>& layers, Layout layout);
// Views into a flat vector, as W [out, in] and b [out] per layer.
std::vector<torch::Tensor> unpack_params(const torch::Tensor& flat, const ModelShape& shape, Layout layout);

// The order of the training samples in each epoch: row e is a permutation of 0..n-1.
torch::Tensor epoch_orders(long n, int epochs, uint64_t seed);

// Mean cross-entropy loss whose backward is the kernels' pullback (the generic autograd wrapper,
// torch.ops.cladbench.loss: cpp/torch/ops.cpp). params float or double, flat; x [batch, input_size]
// of the same dtype; labels int32 [batch].
torch::Tensor kernel_loss(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                          const torch::Tensor& labels, const ModelShape& shape);
// The logits [batch, classes], whose backward is the kernels' logits pullback seeded with the
// incoming gradient (torch.ops.cladbench.forward): any torch loss composes with it. CPU only.
torch::Tensor kernel_logits(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                            const ModelShape& shape);

// The same loss in torch ops (autograd differentiates it): the reference every engine is checked
// against. labels int32 or int64.
torch::Tensor reference_loss(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                             const ModelShape& shape, Layout layout);
torch::Tensor reference_logits(const torch::Tensor& params, const torch::Tensor& x, const ModelShape& shape,
                               Layout layout);

// Looks kernels up by name, with a message saying why they are missing.
const ModelKernels& require_kernels(const std::string& model, const std::string& engine, Layout layout,
                                    const std::string& device = "cpu");

// The largest elementwise difference relative to the largest reference value (infinity norms).
double max_rel_err(const torch::Tensor& value, const torch::Tensor& reference);

}  // namespace cladbench
