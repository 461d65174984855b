// The clad engine: Clad writes the MLP's pullback at compile time from mlp_loss (mlp.hpp).
// Compiled by clang with the Clad plugin; includes no LibTorch header.
#include "clad/Differentiator/Differentiator.h"
#include "clad/Differentiator/Version.h"
#include "kernel_set.hpp"

// Custom derivatives Clad picks up by name (see layers.hpp for why these two are hand-written).
namespace clad::custom_derivatives::cladbench {
using ::cladbench::linear_colmajor_pullback;
using ::cladbench::linear_rowmajor_pullback;
using ::cladbench::max_shift_pullback;
using ::cladbench::relu_pullback;
}  // namespace clad::custom_derivatives::cladbench

namespace cladbench {
namespace {

const std::string kGenerator = "clad " CLAD_VERSION_STRING " (clang " __clang_version__ ")";

// The derivatives Clad generates at compile time, one per precision.
const auto kGradientF32 = clad::gradient(mlp_loss<float>, "params, x, ws, loss");
const auto kGradientF64 = clad::gradient(mlp_loss<double>, "params, x, ws, loss");

template <class T>
const auto& clad_gradient() {
  if constexpr (std::is_same_v<T, float>) return kGradientF32; else return kGradientF64;
}

// The contract's pullback signature over Clad's generated code. (Clad's raw function pointer is
// an overload with an adjoint for every argument; execute() passes the four requested ones.)
template <class T>
void mlp_loss_clad_pullback(const T* params, const T* x, const int* labels, const int* dims,
                            int n_layers, int batch, T* ws, T* loss, T* d_params, T* d_x, T* d_ws,
                            T* d_loss) {
  clad_gradient<T>().execute(params, x, labels, dims, n_layers, batch, ws, loss, d_params, d_x, d_ws, d_loss);
}

MlpKernels clad_kernels() {
  MlpKernels k{"clad", kLayout, kGenerator};
  k.f32 = {mlp_loss<float>, mlp_loss_clad_pullback<float>};
  k.f64 = {mlp_loss<double>, mlp_loss_clad_pullback<double>};
  return k;
}

const bool registered = register_mlp_kernels(clad_kernels());

}  // namespace
}  // namespace cladbench
