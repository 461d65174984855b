// The CUDA side of the clad engine on the GPU, as plain C++ declarations (no CUDA header), so
// that the host code Clad differentiates (mlp.hpp) compiles with any C++ compiler. launch.cu
// defines them. Every pointer is device memory; sizes are host ints. The backward launchers
// accumulate (+=) into their adjoints, as every pullback of the project does.
#pragma once

#include <string>

namespace cladbench::cuda {

// y[batch x out] = x[batch x in] W^T + b (W stored [out x in]), through cuBLAS.
void launch_linear(const float* x, const float* W, const float* b, float* y, int batch, int in, int out);
// d_x += d_y W (skipped when d_x is null), d_W += d_y^T x, d_b += column sums of d_y.
void launch_linear_backward(const float* x, const float* W, const float* d_y, float* d_x, float* d_W, float* d_b,
                            int batch, int in, int out);
// Their GEMMs alone, without the bias: what launch_linear(_backward) runs through cuBLAS.
void linear_gemm(const float* x, const float* W, float* y, int batch, int in, int out);
void linear_backward_gemms(const float* x, const float* W, const float* d_y, float* d_x, float* d_W, int batch, int in,
                           int out);
// A row-major C[M x N] = op(A) op(B) + beta C through cuBLAS, as the CPU's gemm() takes it: what
// the GEMM floor times for each of a step's GemmCalls.
void gemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, const float* B, float beta, float* C);
// h = relu(z) and its pullback: kernels over Clad's relu_thread and its derivative.
void launch_relu(const float* z, float* h, int n);
void launch_relu_backward(const float* z, float* h, float* d_z, float* d_h, int n);
// losses[i] = CE(logits row i, labels[i]) / batch, then *loss = sum of losses; and the pullback.
void launch_cross_entropy(const float* logits, const int* labels, int batch, int classes, float* losses, float* loss);
void launch_cross_entropy_backward(const float* logits, const int* labels, int batch, int classes, float* losses,
                                   float* d_logits, float* d_losses, const float* d_loss);

// The rest of a training step on the device.
void fill_zero(float* p, long n);
void sgd_step_and_zero(float* p, float* g, long n, float lr);
void adam_step_and_zero(float* p, float* g, float* m, float* v, long n, float step_size, float bc2_sqrt);
void copy_to_host(void* host, const void* device, long bytes);  // waits for the device
void copy_to_device(void* device, const void* host, long bytes);

// Device memory that frees itself.
class Buffer {
 public:
  explicit Buffer(long floats);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* data() const { return data_; }

 private:
  float* data_ = nullptr;
};

// Elapsed time of a span of device work, from CUDA events (docs/architecture.md, "Measuring").
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start();
  double stop_seconds();  // waits for the stop event
 private:
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

// The GPU's name ("NVIDIA H100 80GB HBM3"), or "" when none is visible; its CUDA runtime version.
std::string device_name();
std::string runtime_version();

}  // namespace cladbench::cuda
