// One GEMM of a training step, as kernels/gemm_floor.cpp's step_gemms lists them: the one
// definition of which GEMMs a step needs, from which every floor (BLAS, cuBLAS, torch) is timed.
// Plain C++ (no LibTorch, no CUDA header), so the GPU runtime can take it too.
#pragma once

namespace cladbench {

// One row-major GEMM C[M x N] = op(A) op(B) + beta C, as kernels/blas.hpp's gemm() takes it.
struct GemmCall {
  bool trans_a, trans_b;
  int M, N, K;
  float beta;
  int group;  // calls of one group are independent (a conv block's chunks) and run on parallel tasks
};

}  // namespace cladbench
