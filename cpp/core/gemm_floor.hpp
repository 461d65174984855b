// The floor a training step cannot beat: the same GEMM calls the kernels make for one forward and
// backward pass (same shapes, same BLAS, same transposes as the layout), and nothing else.
// Timed in the trainer's process, so an engine's step time can be reported as a multiple of it.
#pragma once

#include "../kernels/kernel_set.hpp"
#include "model_torch.hpp"

namespace cladbench {

// Median wall time (s) of one step's GEMM calls, over `repeats` after a warm-up, on seeded
// random data (never zeros), with the given threads already set.
double gemm_floor_seconds(const ModelShape& shape, Layout layout, int batch, int repeats = 50);

}  // namespace cladbench
