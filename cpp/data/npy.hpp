// NumPy .npy files (format 1.0): a 1-D float32 array, as numpy.load reads it. Plain C++.
#pragma once

#include <string>

namespace cladbench {

// Writes values[0..n) to `path` as a little-endian '<f4' array of shape (n,), whole or not at all
// (a temporary file beside it, then renamed), creating its directory. Throws std::runtime_error.
void write_npy(const std::string& path, const float* values, long n);

}  // namespace cladbench
