// The floor a training step cannot beat: the GEMM calls the kernels make for one forward and
// backward pass (same shapes, same BLAS, same transposes, the conv blocks' chunks on the same
// parallel tasks), and nothing else. Timed in the trainer's process, so an engine's step time can
// be reported as a multiple of it. tests/test_kernels checks step_gemms against the BLAS calls a
// real step makes.
#pragma once

#include <vector>

#include "kernel_set.hpp"
#include "gemm_call.hpp"
#include "../torch/model_torch.hpp"

namespace cladbench {

// The GEMMs of one training step without the input's gradient, in the order the kernels call them.
std::vector<GemmCall> step_gemms(const ModelShape& shape, Layout layout, int batch);

// Median wall time (s) of one step's GEMM calls, over `repeats` after a warm-up, on seeded
// random data (never zeros), with the given threads already set.
double gemm_floor_seconds(const ModelShape& shape, Layout layout, int batch, int repeats = 50);

}  // namespace cladbench
