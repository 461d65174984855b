// The clad engine: Clad writes the pullbacks of mlp_loss (mlp.hpp) and cnn_loss (cnn.hpp) at
// compile time. Compiled by clang with the Clad plugin; includes no LibTorch header.
#include "clad/Differentiator/Differentiator.h"
#include "clad/Differentiator/Version.h"
#include "kernel_set.hpp"

// Custom derivatives Clad picks up by name (layers.hpp and cnn.hpp say why each is hand-written).
namespace clad::custom_derivatives::cladbench {
using ::cladbench::conv_block_pullback;
using ::cladbench::linear_colmajor_pullback;
using ::cladbench::linear_rowmajor_pullback;
using ::cladbench::max_shift_pullback;
using ::cladbench::relu_pullback;
}  // namespace clad::custom_derivatives::cladbench

namespace cladbench {
namespace {

const std::string kGenerator = "clad " CLAD_VERSION_STRING " (clang " __clang_version__ ")";

// The derivatives Clad generates at compile time, per model and precision.
const auto kMlpF32 = clad::gradient(mlp_loss<float>, "params, x, ws, loss");
const auto kMlpF64 = clad::gradient(mlp_loss<double>, "params, x, ws, loss");
const auto kCnnF32 = clad::gradient(cnn_loss<float>, "params, x, ws, loss");
const auto kCnnF64 = clad::gradient(cnn_loss<double>, "params, x, ws, loss");

// The contract's pullback signature over Clad's generated code. (Clad's raw function pointer is
// an overload with an adjoint for every argument; execute() passes the four requested ones.)
template <const auto& gradient, class T>
void clad_pullback(const T* params, const T* x, const int* labels, const int* dims, int count, int batch, T* ws,
                   T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  gradient.execute(params, x, labels, dims, count, batch, ws, loss, d_params, d_x, d_ws, d_loss);
}

ModelKernels mlp() {
  ModelKernels k{"mlp", "clad", kLayout, kGenerator};
  k.f32 = {mlp_loss<float>, clad_pullback<kMlpF32, float>};
  k.f64 = {mlp_loss<double>, clad_pullback<kMlpF64, double>};
  return k;
}

ModelKernels cnn() {
  ModelKernels k{"cnn", "clad", kLayout, kGenerator};
  k.f32 = {cnn_loss<float>, clad_pullback<kCnnF32, float>};
  k.f64 = {cnn_loss<double>, clad_pullback<kCnnF64, double>};
  return k;
}

const bool registered = register_kernels(mlp()) && register_kernels(cnn());

}  // namespace
}  // namespace cladbench
