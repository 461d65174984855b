// Clad's input for the device half of the GPU engine: the derivatives of what one thread computes
// (threads.hpp). The build runs clang with the Clad plugin on this file only to write them as
// source (-fgenerate-source-file); launch.cu compiles that source with nvcc as device code.
#include "clad/Differentiator/Differentiator.h"
#include "threads.hpp"

namespace clad::custom_derivatives::cladbench::cuda {
using ::cladbench::cuda::max_shift_pullback;
}  // namespace clad::custom_derivatives::cladbench::cuda

const auto relu_gradient = clad::gradient(cladbench::cuda::relu_thread, "z, h");
const auto cross_entropy_gradient = clad::gradient(cladbench::cuda::cross_entropy_thread, "logits, losses");
