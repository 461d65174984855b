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

  // The step's GEMMs (step_gemms, the calls the kernels make) one after another on seeded
  // random data, in buffers as large as the largest operand's.
  double gemm_floor_seconds(const std::vector<GemmCall>& calls, int repeats) override {
    long size = 1;
    for (const GemmCall& g : calls) size = std::max({size, long(g.M) * g.K, long(g.K) * g.N, long(g.M) * g.N});
    std::vector<float> host(size);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (float& v : host) v = uniform(rng);
    Buffer a(size), b(size), c(size);
    for (const Buffer* buffer : {&a, &b, &c}) copy_to_device(buffer->data(), host.data(), size * long(sizeof(float)));
    auto step = [&] {
      for (const GemmCall& g : calls) gemm(g.trans_a, g.trans_b, g.M, g.N, g.K, a.data(), b.data(), g.beta, c.data());
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
