// The device work of the GPU engine: cuBLAS for the GEMMs, and kernels whose threads run
// threads.hpp's functions forward and, backward, the derivatives Clad wrote of them
// (device_derivatives.inc, generated at build time from derive_device.cpp).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "clad/Differentiator/BuiltinDerivatives.h"  // exp/log pushforwards the generated code calls
#include "launch.hpp"
#include "threads.hpp"

namespace cladbench::cuda {

#include "device_derivatives.inc"

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(int(status)));
}

// One handle for the process, on the default stream (the one LibTorch's tensors use too).
cublasHandle_t blas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check(cublasCreate(&h), "cublasCreate");
    return h;
  }();
  return handle;
}

constexpr int kThreads = 256;
int blocks(long n) { return int((n + kThreads - 1) / kThreads); }

__global__ void broadcast_bias(const float* b, float* y, int batch, int out) {
  const long k = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < long(batch) * out) y[k] = b[k % out];
}

__global__ void bias_backward(const float* d_y, float* d_b, int batch, int out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= out) return;
  float s = 0;
  for (int i = 0; i < batch; ++i) s += d_y[long(i) * out + j];
  d_b[j] += s;
}

__global__ void relu_forward(const float* z, float* h, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) relu_thread(z, h, i);
}

__global__ void relu_backward(const float* z, float* h, float* d_z, float* d_h, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) relu_thread_grad_0_1(z, h, i, d_z, d_h);
}

__global__ void cross_entropy_forward(const float* logits, const int* labels, int batch, int classes, float* losses) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < batch) cross_entropy_thread(logits, labels, classes, 1.f / batch, losses, i);
}

// *loss = sum of losses, by one block in a fixed order: the same loss every run.
__global__ void sum_losses(const float* losses, int batch, float* loss) {
  __shared__ float partial[kThreads];
  float s = 0;
  for (int i = threadIdx.x; i < batch; i += blockDim.x) s += losses[i];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *loss = partial[0];
}

// The sum's pullback (each sample's loss gets d_loss), then Clad's cross-entropy derivative.
__global__ void cross_entropy_backward(const float* logits, const int* labels, int batch, int classes, float* losses,
                                       float* d_logits, float* d_losses, const float* d_loss) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= batch) return;
  d_losses[i] += *d_loss;
  cross_entropy_thread_grad_0_4(logits, labels, classes, 1.f / batch, losses, i, d_logits, d_losses);
}

// torch.optim's SGD and Adam arithmetic, as the CPU engines' FlatOptimizer (cpp/trainer/trainer.cpp).
__global__ void sgd(float* p, float* g, long n, float lr) {
  const long i = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  p[i] -= lr * g[i];
  g[i] = 0.f;
}

__global__ void adam(float* p, float* g, float* m, float* v, long n, float step_size, float bc2_sqrt) {
  const long i = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  m[i] += (1.f - 0.9f) * (g[i] - m[i]);
  v[i] = 0.999f * v[i] + (1.f - 0.999f) * g[i] * g[i];
  p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + 1e-8f);
  g[i] = 0.f;
}

void launched(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace

// Row-major y += x W^T is column-major y^T += W x^T, with W's memory read as its [in x out] transpose.
void linear_gemm(const float* x, const float* W, float* y, int batch, int in, int out) {
  const float one = 1.f;
  check(cublasSgemm(blas(), CUBLAS_OP_T, CUBLAS_OP_N, out, batch, in, &one, W, in, x, in, &one, y, out),
        "cublasSgemm (linear)");
}

void linear_backward_gemms(const float* x, const float* W, const float* d_y, float* d_x, float* d_W, int batch, int in,
                           int out) {
  const float one = 1.f;
  if (d_x)  // d_x^T += W^T d_y^T
    check(cublasSgemm(blas(), CUBLAS_OP_N, CUBLAS_OP_N, in, batch, out, &one, W, in, d_y, out, &one, d_x, in),
          "cublasSgemm (d_x)");
  // d_W^T += x^T d_y
  check(cublasSgemm(blas(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, batch, &one, x, in, d_y, out, &one, d_W, in),
        "cublasSgemm (d_W)");
}

void gemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, const float* B, float beta, float* C) {
  // cuBLAS is column-major: the row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T,
  // with each operand's row-major leading dimension.
  const float one = 1.f;
  check(cublasSgemm(blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, B,
                    trans_b ? K : N, A, trans_a ? M : K, &beta, C, N),
        "cublasSgemm (floor)");
}

void launch_linear(const float* x, const float* W, const float* b, float* y, int batch, int in, int out) {
  broadcast_bias<<<blocks(long(batch) * out), kThreads>>>(b, y, batch, out);
  launched("broadcast_bias");
  linear_gemm(x, W, y, batch, in, out);
}

void launch_linear_backward(const float* x, const float* W, const float* d_y, float* d_x, float* d_W, float* d_b,
                            int batch, int in, int out) {
  linear_backward_gemms(x, W, d_y, d_x, d_W, batch, in, out);
  bias_backward<<<blocks(out), kThreads>>>(d_y, d_b, batch, out);
  launched("bias_backward");
}

void launch_relu(const float* z, float* h, int n) {
  relu_forward<<<blocks(n), kThreads>>>(z, h, n);
  launched("relu_forward");
}

void launch_relu_backward(const float* z, float* h, float* d_z, float* d_h, int n) {
  relu_backward<<<blocks(n), kThreads>>>(z, h, d_z, d_h, n);
  launched("relu_backward");
}

void launch_cross_entropy(const float* logits, const int* labels, int batch, int classes, float* losses, float* loss) {
  cross_entropy_forward<<<blocks(batch), kThreads>>>(logits, labels, batch, classes, losses);
  launched("cross_entropy_forward");
  sum_losses<<<1, kThreads>>>(losses, batch, loss);
  launched("sum_losses");
}

void launch_cross_entropy_backward(const float* logits, const int* labels, int batch, int classes, float* losses,
                                   float* d_logits, float* d_losses, const float* d_loss) {
  cross_entropy_backward<<<blocks(batch), kThreads>>>(logits, labels, batch, classes, losses, d_logits, d_losses,
                                                      d_loss);
  launched("cross_entropy_backward");
}

void fill_zero(float* p, long n) { check(cudaMemsetAsync(p, 0, n * sizeof(float)), "cudaMemsetAsync"); }

void sgd_step_and_zero(float* p, float* g, long n, float lr) {
  sgd<<<blocks(n), kThreads>>>(p, g, n, lr);
  launched("sgd");
}

void adam_step_and_zero(float* p, float* g, float* m, float* v, long n, float step_size, float bc2_sqrt) {
  adam<<<blocks(n), kThreads>>>(p, g, m, v, n, step_size, bc2_sqrt);
  launched("adam");
}

void copy_to_host(void* host, const void* device, long bytes) {
  check(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

void copy_to_device(void* device, const void* host, long bytes) {
  check(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
}

Buffer::Buffer(long floats) { check(cudaMalloc(&data_, floats * sizeof(float)), "cudaMalloc"); }
Buffer::~Buffer() { cudaFree(data_); }

EventTimer::EventTimer() {
  check(cudaEventCreate(reinterpret_cast<cudaEvent_t*>(&start_)), "cudaEventCreate");
  check(cudaEventCreate(reinterpret_cast<cudaEvent_t*>(&stop_)), "cudaEventCreate");
}
EventTimer::~EventTimer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}
void EventTimer::start() { check(cudaEventRecord(static_cast<cudaEvent_t>(start_)), "cudaEventRecord"); }
double EventTimer::stop_seconds() {
  check(cudaEventRecord(static_cast<cudaEvent_t>(stop_)), "cudaEventRecord");
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_), static_cast<cudaEvent_t>(stop_)),
        "cudaEventElapsedTime");
  return ms * 1e-3;
}

std::string device_name() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) return "";
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  return prop.name;
}

std::string runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

}  // namespace cladbench::cuda
