// A set of model kernels as the rest of the project sees them: per precision the loss's forward
// function and pullback, and the logits' forward and pullback (the composable op's VJP), for one
// model (mlp, cnn), one engine and one weight layout. Engines register their sets at load time;
// callers look them up by name. Plain C++: no LibTorch, no Clad.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cnn.hpp"
#include "kernel_fns.hpp"
#include "mlp.hpp"

namespace cladbench {

struct ModelKernels {
  std::string model;   // "mlp", "cnn"
  std::string engine;  // "clad", "manual", "autograd" (the LibTorch reference)
  Layout layout = Layout::RowMajor;
  std::string generator;  // who wrote the pullback, e.g. "clad 2.4.0 (clang 19.1.7)"
  KernelFns<float> f32;
  KernelFns<double> f64;                // unset (nullptr) for the GPU engine, which trains in float only
  std::string device = "cpu";           // "cuda": every pointer of the contract but dims is device memory
  long extra_workspace_per_sample = 0;  // ws beyond the model's workspace_size (the GPU MLP's per-sample losses)

  template <class T>
  const KernelFns<T>& fns() const {
    if constexpr (std::is_same_v<T, float>)
      return f32;
    else
      return f64;
  }
};

const char* layout_name(Layout layout);
Layout parse_layout(std::string_view name);  // throws std::invalid_argument

// Adds a set, or replaces the one of the same model, engine, layout and device; returns true so
// that a TU can register from a static initializer.
bool register_kernels(const ModelKernels& kernels);
// nullptr when no such model/engine/layout was linked in for that device.
const ModelKernels* find_kernels(std::string_view model, std::string_view engine, Layout layout,
                                 std::string_view device = "cpu");
std::vector<const ModelKernels*> registered_kernels();

}  // namespace cladbench
