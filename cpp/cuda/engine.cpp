// The host half of the GPU engine: Clad's derivative of mlp_loss (written at build time from
// derive_host.cpp into host_derivatives.inc), registered as the clad engine's kernels for device
// cuda. Plain C++: compiled by the host compiler, no Clad plugin, no CUDA header.
#include "../kernels/kernel_set.hpp"
#include "mlp.hpp"

namespace cladbench::cuda {

#include "host_derivatives.inc"

namespace {

// The kernel contract's pullback over the generated function (cpp/kernels/mlp.hpp describes the
// contract; here every pointer but dims is device memory).
void mlp_pullback(const float* params, const float* x, const int* labels, const int* dims, int n_layers, int batch,
                  float* ws, float* loss, float* d_params, float* d_x, float* d_ws, float* d_loss) {
  mlp_loss_grad_0_1_6_7(params, x, labels, dims, n_layers, batch, ws, loss, d_params, d_x, d_ws, d_loss);
}

ModelKernels gpu_mlp() {
  ModelKernels k{"mlp", "clad", Layout::RowMajor, CLADBENCH_CUDA_GENERATOR};
  k.f32 = {mlp_loss, mlp_pullback};
  k.device = "cuda";
  k.extra_workspace_per_sample = 1;  // mlp.hpp's per-sample losses
  return k;
}

const bool registered = register_kernels(gpu_mlp());

}  // namespace
}  // namespace cladbench::cuda
