// What one CUDA thread computes in the elementwise parts of the MLP, as plain functions of an
// index. Clad differentiates these (derive_device.cpp) and writes their derivatives as source,
// which nvcc compiles into the kernels of launch.cu: the GPU runs derivatives Clad wrote, and no
// compiler of the CUDA build needs Clad (docs/cuda.md says why).
#pragma once

#include <cmath>

#ifdef __CUDACC__
#define CLADBENCH_HD __host__ __device__
#else
#define CLADBENCH_HD
#endif

namespace cladbench::cuda {

// The largest of n logits: the shift that keeps exp() finite. It cancels out of the loss, so its
// exact derivative is zero (the same reasoning as cpp/kernels/layers.hpp's max_shift).
CLADBENCH_HD inline float max_shift(const float* z, int n) {
  float m = z[0];
  for (int j = 1; j < n; ++j) m = z[j] > m ? z[j] : m;
  return m;
}

CLADBENCH_HD inline void max_shift_pullback(const float*, int, float, float*, int*) {}

// Cross-entropy of one sample's logits z[classes] against its label.
CLADBENCH_HD inline float sample_cross_entropy(const float* z, int label, int classes) {
  const float m = max_shift(z, classes);
  float s = 0;
  for (int j = 0; j < classes; ++j) s += std::exp(z[j] - m);
  return std::log(s) + m - z[label];
}

// Thread i of the ReLU: h[i] = max(z[i], 0).
CLADBENCH_HD inline void relu_thread(const float* z, float* h, int i) { h[i] = z[i] > 0.f ? z[i] : 0.f; }

// Thread i of the loss: sample i's cross-entropy, scaled by 1/batch (the mean's weight).
CLADBENCH_HD inline void cross_entropy_thread(const float* logits, const int* labels, int classes, float scale,
                                              float* losses, int i) {
  losses[i] = scale * sample_cross_entropy(logits + i * classes, labels[i], classes);
}

}  // namespace cladbench::cuda
