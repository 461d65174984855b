// What a training run needs of the GPU beyond LibTorch's tensors, as a plain C++ interface: the
// trainer (cpp/trainer) compiles without any CUDA header, and a GPU build's libcladbench_cuda
// registers the implementation (runtime.cpp) when it loads. gpu_runtime() is nullptr in a
// program built without it.
#pragma once

#include <string>
#include <vector>

#include "../kernels/gemm_call.hpp"

namespace cladbench {

class GpuRuntime {
 public:
  virtual ~GpuRuntime() = default;
  // The arena engine's step around the pullback (device pointers).
  virtual void fill_zero(float* p, long n) = 0;
  virtual void sgd_step_and_zero(float* p, float* g, long n, float lr) = 0;
  virtual void adam_step_and_zero(float* p, float* g, float* m, float* v, long n, float step_size, float bc2_sqrt) = 0;
  virtual float read_scalar(const float* device_value) = 0;  // waits for the device
  // CUDA events around a span of device work (docs/architecture.md, "Measuring").
  virtual void timer_start() = 0;
  virtual double timer_stop_seconds() = 0;
  // A step's GEMMs (step_gemms) as cuBLAS calls alone, on seeded random data: the median of `repeats`.
  virtual double gemm_floor_seconds(const std::vector<GemmCall>& calls, int repeats) = 0;
  virtual std::string device_name() = 0;      // e.g. "NVIDIA H100 80GB HBM3"
  virtual std::string runtime_version() = 0;  // e.g. "13.0"
};

void set_gpu_runtime(GpuRuntime* runtime);
GpuRuntime* gpu_runtime();

}  // namespace cladbench
