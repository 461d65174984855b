// The GpuRuntime (runtime.hpp) of a GPU build, over launch.cu, registered when the library loads.
#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "launch.hpp"
#include "runtime.hpp"

namespace cladbench::cuda {
namespace {

class CudaRuntime final : public GpuRuntime {
 public:
  void fill_zero(float* p, long n) override { cuda::fill_zero(p, n); }
  void sgd_step_and_zero(float* p, float* g, long n, float lr) override { cuda::sgd_step_and_zero(p, g, n, lr); }
  void adam_step_and_zero(float* p, float* g, float* m, float* v, long n, float step_size, float bc2_sqrt) override {
    cuda::adam_step_and_zero(p, g, m, v, n, step_size, bc2_sqrt);
  }
  float read_scalar(const float* device_value) override {
    float value = 0;
    copy_to_host(&value, device_value, sizeof(float));
    return value;
  }
  void timer_start() override { timer().start(); }
  double timer_stop_seconds() override { return timer().stop_seconds(); }

  // The GEMMs of one forward and backward pass of the MLP (launch_linear and
  // launch_linear_backward without their bias kernels; no d_x for the first layer), on seeded
  // random data, in buffers as large as the largest layer's.
  double mlp_gemm_floor_seconds(const int* dims, int n_layers, int batch, int repeats) override {
    long size = 0;
    for (int l = 0; l < n_layers; ++l)
      size = std::max({size, long(batch) * dims[l], long(batch) * dims[l + 1], long(dims[l]) * dims[l + 1]});
    std::vector<float> host(size);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (float& v : host) v = uniform(rng);
    Buffer x(size), W(size), y(size), d_x(size), d_W(size);
    for (const Buffer* buffer : {&x, &W, &y, &d_x, &d_W})
      copy_to_device(buffer->data(), host.data(), size * long(sizeof(float)));
    auto step = [&] {
      for (int l = 0; l < n_layers; ++l) linear_gemm(x.data(), W.data(), y.data(), batch, dims[l], dims[l + 1]);
      for (int l = n_layers - 1; l >= 0; --l)
        linear_backward_gemms(x.data(), W.data(), y.data(), l > 0 ? d_x.data() : nullptr, d_W.data(), batch, dims[l],
                              dims[l + 1]);
    };
    for (int i = 0; i < 5; ++i) step();  // warm-up: cuBLAS picks its kernels
    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) {
      timer().start();
      step();
      times.push_back(timer().stop_seconds());
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
  }

  std::string device_name() override { return cuda::device_name(); }
  std::string runtime_version() override { return cuda::runtime_version(); }

 private:
  EventTimer& timer() {
    if (!timer_) timer_ = std::make_unique<EventTimer>();
    return *timer_;
  }
  std::unique_ptr<EventTimer> timer_;
};

CudaRuntime runtime;
const bool registered = (set_gpu_runtime(&runtime), true);

}  // namespace
}  // namespace cladbench::cuda
