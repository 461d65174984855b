// The C++ trainer behind cladbench-train: no Python at run time. Plain C++ header, so that the
// per-variant main() compiles in a blink (only the kernels vary per variant, DESIGN §4).
#pragma once

#include <string>

namespace cladbench {

// What a variant binary was built as.
struct Variant {
  std::string device;        // cpu
  std::string engine;        // clad, manual, libtorch
  std::string layout;        // rowmajor, colmajor
  std::string alloc;         // arena, dynamic
  std::string kernel_flags;  // how its kernels were compiled
};

// Parses the command line, trains, writes the JSON run record. Returns the exit status:
// 0 trained, 2 bad input (arguments, data files, engine), 3 training failed (non-finite loss).
int train_main(int argc, char** argv, const Variant& variant);

}  // namespace cladbench
