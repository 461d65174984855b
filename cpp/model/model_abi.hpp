// What a model library (a user's model, cladbench_model.hpp's CLADBENCH_MODEL) hands the project:
// one struct, returned by the library's `cladbench_model_abi()`, read by cladbench::load_model
// (cpp/torch/user_model.cpp) after dlopen. Plain C++: no LibTorch, no Clad.
#pragma once

#include "../kernels/kernel_fns.hpp"

namespace cladbench {

// Bumped when ModelABI changes, so an old library is refused by name instead of misread.
constexpr int kModelAbiVersion = 1;

// A model's sizes, in values: params is the flat parameter vector, x is [batch x inputs], the
// output [batch x outputs] lies in ws at output_offset * batch, and ws holds workspace values per
// sample (every intermediate tensor: tensor k starts at ws + offset_k * batch).
struct ModelSizes {
  long params = 0;
  long inputs = 0;
  long outputs = 0;
  long workspace = 0;
  long output_offset = 0;
};

struct ModelABI {
  int version;
  const char* name;    // the model's name, as the ops take it (torch.ops.cladbench.forward's `model`)
  const char* source;  // the file and line of its CLADBENCH_MODEL, for messages
  const char* compiler;
  ModelSizes sizes;
  // The kernel contract's functions; dims and count are unused (the sizes are fixed).
  KernelFns<float> f32;
  KernelFns<double> f64;
};

}  // namespace cladbench
