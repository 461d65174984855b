// Your own model on the kernel contract, with Clad's gradients, as a torch op and module.
//
// Write, in one C++ file, a forward function on raw pointers and its sizes, then name them:
//
//   #include "cladbench_model.hpp"
//   namespace mine {
//   using namespace cladbench::layers;  // dense, add, relu, tanh_act, sigmoid, conv1d, ... (onnx_ops.hpp)
//   constexpr cladbench::ModelSizes kSizes{.params = ..., .inputs = 784, .outputs = 10,
//                                          .workspace = ..., .output_offset = ...};
//   template <class T>
//   void forward(const T* params, const T* x, int batch, T* ws) { ... }  // the output into ws
//   }  // namespace mine
//   CLADBENCH_MODEL(mine, mine::forward, mine::kSizes)
//
// The contract (docs/architecture.md, "The kernel contract"): x is [batch x inputs] row-major;
// params is one flat vector; ws holds every intermediate tensor per sample, tensor k at ws +
// offset_k * batch, and the output [batch x outputs] at ws + output_offset * batch. forward writes
// only ws and allocates nothing. Clad differentiates it at compile time: the layers' custom
// derivatives (the BLAS for dense algebra) and Clad's own for the code between them. A function of
// your own from a header that Clad cannot differentiate needs a custom derivative
// (clad::custom_derivatives::<its namespace>::<name>_pullback): compiling with
// -fclad-porting-hints, as cladbench.compile_model and cladbench_add_model do, names its signature.
//
// CLADBENCH_MODEL(NAME, FORWARD, SIZES) checks FORWARD's signature and the sizes at compile time,
// asks Clad for the gradients, and exports `cladbench_model_abi()` (model_abi.hpp), the kernel
// contract's functions which cladbench::load_model registers as the model NAME: then
// torch.ops.cladbench.forward(params, x, "NAME", [], "clad", "rowmajor") gives the output and its
// vector-Jacobian product, torch.ops.cladbench.loss the fused mean cross-entropy (the output read
// as logits), and cladbench.nn.Model / cladbench::nn::Model wrap them as modules. Build it with
// cladbench.compile_model("file.cpp") from Python, or cladbench_add_model(NAME file.cpp) in CMake.
#pragma once

#include <type_traits>
#include <vector>

#include "clad/Differentiator/Differentiator.h"
#include "model_abi.hpp"
#include "onnx_ops.hpp"

namespace cladbench {
namespace layers = onnx_ops;  // the layer library, with its custom derivatives
}  // namespace cladbench

#define CLADBENCH_MODEL_STR2(x) #x
#define CLADBENCH_MODEL_STR(x) CLADBENCH_MODEL_STR2(x)
#ifdef __clang_version__
#define CLADBENCH_MODEL_COMPILER "clang " __clang_version__
#else
#define CLADBENCH_MODEL_COMPILER "unknown"
#endif

// The gradient of FORWARD's VJP reruns the forward (Clad's pullbacks include the forward sweep):
// into a private workspace, as the contract keeps the caller's ws read-only. A caller that wants
// no input gradient (d_x nullptr) gets it computed into a scratch and dropped.
#define CLADBENCH_MODEL(NAME, FORWARD, SIZES)                                                                          \
  namespace cladbench_model_##NAME {                                                                                   \
    namespace {                                                                                                        \
    constexpr ::cladbench::ModelSizes kSizes = SIZES;                                                                  \
    constexpr long kInputs = kSizes.inputs, kOutputs = kSizes.outputs, kWorkspace = kSizes.workspace,                  \
                   kOutputOffset = kSizes.output_offset;                                                               \
    static_assert(std::is_same_v<decltype(&FORWARD<float>), void (*)(const float*, const float*, int, float*)>,        \
                  "cladbench: " #FORWARD " must be `template <class T> void " #FORWARD                                 \
                  "(const T* params, const T* x, int batch, T* ws)` (cladbench_model.hpp)");                           \
    static_assert(kSizes.params > 0 && kInputs > 0 && kOutputs > 0,                                                    \
                  "cladbench: " #SIZES " must give params, inputs and outputs > 0");                                   \
    static_assert(kOutputOffset >= 0 && kOutputOffset + kOutputs <= kWorkspace,                                        \
                  "cladbench: the output (" #SIZES ".output_offset + outputs) must lie inside the workspace");         \
                                                                                                                       \
    template <class T>                                                                                                 \
    void cross_entropy(const T* params, const T* x, const int* labels, int batch, T* ws, T* loss) {                    \
      FORWARD(params, x, batch, ws);                                                                                   \
      T total = 0;                                                                                                     \
      for (int i = 0; i < batch; ++i)                                                                                  \
        total +=                                                                                                       \
            ::cladbench::sample_cross_entropy(ws + kOutputOffset * batch + i * kOutputs, labels[i], int(kOutputs));    \
      *loss = total / batch;                                                                                           \
    }                                                                                                                  \
                                                                                                                       \
    const auto kVjpF32 = clad::gradient(FORWARD<float>, "params, x, ws");                                              \
    const auto kVjpF64 = clad::gradient(FORWARD<double>, "params, x, ws");                                             \
    const auto kLossF32 = clad::gradient(cross_entropy<float>, "params, x, ws, loss");                                 \
    const auto kLossF64 = clad::gradient(cross_entropy<double>, "params, x, ws, loss");                                \
                                                                                                                       \
    template <class T>                                                                                                 \
    T* zeroed(std::vector<T>& buffer, long n) {                                                                        \
      buffer.assign(n, T(0));                                                                                          \
      return buffer.data();                                                                                            \
    }                                                                                                                  \
                                                                                                                       \
    template <class T>                                                                                                 \
    void abi_logits(const T* params, const T* x, const int*, int, int batch, T* ws) {                                  \
      FORWARD(params, x, batch, ws);                                                                                   \
    }                                                                                                                  \
                                                                                                                       \
    template <class T>                                                                                                 \
    void abi_logits_pullback(const T* params, const T* x, const int*, int, int batch, T* ws, T* d_params, T* d_x,      \
                             T* d_ws) {                                                                                \
      thread_local std::vector<T> own_ws, unused_d_x;                                                                  \
      own_ws.resize(long(batch) * kWorkspace);                                                                         \
      if (!d_x) d_x = zeroed(unused_d_x, long(batch) * kInputs);                                                       \
      if constexpr (std::is_same_v<T, float>)                                                                          \
        kVjpF32.execute(params, x, batch, own_ws.data(), d_params, d_x, d_ws);                                         \
      else                                                                                                             \
        kVjpF64.execute(params, x, batch, own_ws.data(), d_params, d_x, d_ws);                                         \
    }                                                                                                                  \
                                                                                                                       \
    template <class T>                                                                                                 \
    void abi_loss(const T* params, const T* x, const int* labels, const int*, int, int batch, T* ws, T* loss) {        \
      cross_entropy(params, x, labels, batch, ws, loss);                                                               \
    }                                                                                                                  \
                                                                                                                       \
    template <class T>                                                                                                 \
    void abi_loss_pullback(const T* params, const T* x, const int* labels, const int*, int, int batch, T* ws, T* loss, \
                           T* d_params, T* d_x, T* d_ws, T* d_loss) {                                                  \
      thread_local std::vector<T> unused_d_x;                                                                          \
      if (!d_x) d_x = zeroed(unused_d_x, long(batch) * kInputs);                                                       \
      if constexpr (std::is_same_v<T, float>)                                                                          \
        kLossF32.execute(params, x, labels, batch, ws, loss, d_params, d_x, d_ws, d_loss);                             \
      else                                                                                                             \
        kLossF64.execute(params, x, labels, batch, ws, loss, d_params, d_x, d_ws, d_loss);                             \
    }                                                                                                                  \
    }                                                                                                                  \
  }                                                                                                                    \
                                                                                                                       \
  extern "C" __attribute__((visibility("default"))) const ::cladbench::ModelABI* cladbench_model_abi() {               \
    using namespace cladbench_model_##NAME;                                                                            \
    static const ::cladbench::ModelABI abi{                                                                            \
        ::cladbench::kModelAbiVersion,                                                                                 \
        #NAME,                                                                                                         \
        __FILE__ ":" CLADBENCH_MODEL_STR(__LINE__),                                                                    \
        CLADBENCH_MODEL_COMPILER,                                                                                      \
        kSizes,                                                                                                        \
        {abi_loss<float>, abi_loss_pullback<float>, abi_logits<float>, abi_logits_pullback<float>},                    \
        {abi_loss<double>, abi_loss_pullback<double>, abi_logits<double>, abi_logits_pullback<double>}};               \
    return &abi;                                                                                                       \
  }
