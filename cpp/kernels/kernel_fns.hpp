// The kernel contract's function types (docs/architecture.md, "The kernel contract"), per
// precision: the loss's forward and pullback, and the logits' forward and pullback. The project's
// models (kernel_set.hpp) and the models users write (cpp/model/cladbench_model.hpp) both fill
// them. Plain C++: no LibTorch, no Clad.
#pragma once

namespace cladbench {

template <class T>
struct KernelFns {
  // `count` is the model's number of layers (mlp) or conv blocks (cnn); see mlp.hpp, cnn.hpp.
  using Forward = void (*)(const T* params, const T* x, const int* labels, const int* dims, int count, int batch, T* ws,
                           T* loss);
  using Pullback = void (*)(const T* params, const T* x, const int* labels, const int* dims, int count, int batch,
                            T* ws, T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss);
  // The logits [batch x classes] into ws at the model's *_logits_offset, and their pullback over the
  // ws the forward left, seeded in d_ws (mlp.hpp's header comment).
  using Logits = void (*)(const T* params, const T* x, const int* dims, int count, int batch, T* ws);
  using LogitsPullback = void (*)(const T* params, const T* x, const int* dims, int count, int batch, T* ws,
                                  T* d_params, T* d_x, T* d_ws);
  Forward forward = nullptr;
  Pullback pullback = nullptr;
  Logits logits = nullptr;  // unset for the GPU engine
  LogitsPullback logits_pullback = nullptr;
};

}  // namespace cladbench
