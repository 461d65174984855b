// cladbench-train for one variant of the matrix (docs/architecture.md, "The variant matrix"). CMake
// compiles this file once per variant with CLADBENCH_ENGINE/LAYOUT/ALLOC defined and links that
// engine's kernels.
#include "trainer.hpp"

int main(int argc, char** argv) {
  const cladbench::Variant variant{CLADBENCH_DEVICE, CLADBENCH_ENGINE, CLADBENCH_LAYOUT, CLADBENCH_ALLOC,
                                   CLADBENCH_KERNEL_FLAGS};
  return cladbench::train_main(argc, argv, variant);
}
