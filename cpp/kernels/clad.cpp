// The clad engine: Clad writes the pullbacks of mlp_loss (mlp.hpp) and cnn_loss (cnn.hpp), and of
// their layer sequences mlp_layers and cnn_layers (the logits' pullback), at compile time.
// Compiled by clang with the Clad plugin; includes no LibTorch header.
#include "clad/Differentiator/Differentiator.h"
#include "clad/Differentiator/Version.h"
#include "kernel_set.hpp"

// Custom derivatives Clad picks up by name (mlp.hpp, layers.hpp and cnn.hpp say why each is hand-written).
namespace clad::custom_derivatives::cladbench {
using ::cladbench::conv_layer_pullback;
using ::cladbench::linear_layer_pullback;
using ::cladbench::max_shift_pullback;
using ::cladbench::relu_layer_pullback;
}  // namespace clad::custom_derivatives::cladbench

namespace cladbench {
namespace {

const std::string kGenerator = "clad " CLAD_VERSION_STRING " (clang " __clang_version__ ")";

// The layer sequences' derivatives: the logits' pullback (mlp.hpp's header comment).
const auto kMlpLayersF32 = clad::gradient(mlp_layers<float>, "params, x, ws");
const auto kMlpLayersF64 = clad::gradient(mlp_layers<double>, "params, x, ws");
// (Clad differentiates every non-const pointer: the CNN's scratch gets an adjoint, never used.)
const auto kCnnLayersF32 = clad::gradient(cnn_layers<float>, "params, x, ws, scratch");
const auto kCnnLayersF64 = clad::gradient(cnn_layers<double>, "params, x, ws, scratch");

// The contract's logits pullbacks over Clad's: called with saved = 1, so that the layers compute
// nothing in its forward sweep and its reverse sweep reads the activations the forward left in ws.
template <const auto& gradient, class T>
void clad_mlp_logits_pullback(const T* params, const T* x, const int* dims, int count, int batch, T* ws, T* d_params,
                              T* d_x, T* d_ws) {
  gradient.execute(params, x, dims, count, batch, ws, 1, d_params, d_x, d_ws);
}

// The CNN's works in d_ws' scratch region (cnn.hpp), leaving ws as it was.
template <const auto& gradient, class T>
void clad_cnn_logits_pullback(const T* params, const T* x, const int* dims, int count, int batch, T* ws, T* d_params,
                              T* d_x, T* d_ws) {
  gradient.execute(params, x, dims, count, batch, ws, d_ws, 1, d_params, d_x, d_ws, d_ws);
}

}  // namespace
}  // namespace cladbench

// The layer sequences' own custom derivatives, for the losses' pullbacks: the loss runs the layers
// in its forward sweep, and this runs only their reverse sweep. (Clad's pullback of a nested call
// would first run that function's forward sweep again: every layer twice per step.)
namespace clad::custom_derivatives::cladbench {
template <class T>
void mlp_layers_pullback(const T* params, const T* x, const int* dims, int n_layers, int batch, T* ws, int, T* d_params,
                         T* d_x, int*, int*, T* d_ws, int*) {
  using namespace ::cladbench;
  if constexpr (::std::is_same_v<T, float>)
    clad_mlp_logits_pullback<kMlpLayersF32, T>(params, x, dims, n_layers, batch, ws, d_params, d_x, d_ws);
  else
    clad_mlp_logits_pullback<kMlpLayersF64, T>(params, x, dims, n_layers, batch, ws, d_params, d_x, d_ws);
}

template <class T>
void cnn_layers_pullback(const T* params, const T* x, const int* dims, int n_conv, int batch, T* ws, T* scratch, int,
                         T* d_params, T* d_x, int*, int*, T* d_ws, T* d_scratch, int*) {
  using namespace ::cladbench;
  if constexpr (::std::is_same_v<T, float>)
    kCnnLayersF32.execute(params, x, dims, n_conv, batch, ws, scratch, 1, d_params, d_x, d_ws, d_scratch);
  else
    kCnnLayersF64.execute(params, x, dims, n_conv, batch, ws, scratch, 1, d_params, d_x, d_ws, d_scratch);
}
}  // namespace clad::custom_derivatives::cladbench

namespace cladbench {
namespace {

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
  k.f32 = {mlp_loss<float>, clad_pullback<kMlpF32, float>, mlp_logits<float>,
           clad_mlp_logits_pullback<kMlpLayersF32, float>};
  k.f64 = {mlp_loss<double>, clad_pullback<kMlpF64, double>, mlp_logits<double>,
           clad_mlp_logits_pullback<kMlpLayersF64, double>};
  return k;
}

ModelKernels cnn() {
  ModelKernels k{"cnn", "clad", kLayout, kGenerator};
  k.f32 = {cnn_loss<float>, clad_pullback<kCnnF32, float>, cnn_logits<float>,
           clad_cnn_logits_pullback<kCnnLayersF32, float>};
  k.f64 = {cnn_loss<double>, clad_pullback<kCnnF64, double>, cnn_logits<double>,
           clad_cnn_logits_pullback<kCnnLayersF64, double>};
  return k;
}

const bool registered = register_kernels(mlp()) && register_kernels(cnn());

}  // namespace
}  // namespace cladbench
