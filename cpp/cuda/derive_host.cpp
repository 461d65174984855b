// Clad's input for the host half of the GPU engine: the derivative of mlp_loss (mlp.hpp). The
// build runs clang with the Clad plugin on this file only to write that derivative as source
// (-fgenerate-source-file); engine.cpp compiles the source with any C++ compiler.
#include "clad/Differentiator/Differentiator.h"
#include "mlp.hpp"

namespace clad::custom_derivatives::cladbench::cuda {
using ::cladbench::cuda::cross_entropy_pullback;
using ::cladbench::cuda::linear_pullback;
using ::cladbench::cuda::relu_pullback;
}  // namespace clad::custom_derivatives::cladbench::cuda

const auto mlp_gradient = clad::gradient(cladbench::cuda::mlp_loss, "params, x, ws, loss");
