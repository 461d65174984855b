// Reading the weights file that comes with an emitted model (src/cladbench/onnx/emit.py writes it):
//
//   8 bytes  magic "CLADBW01"
//   uint64   n_values: the length of the model's params array
//   uint64   header_bytes, then that many bytes of JSON (tensor names, shapes, offsets; for people)
//   n_values float64, little-endian: the ONNX initializers, concatenated in the params order
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace cladbench::onnx_weights {

// Fills params[0, n_values) from the file, converting to T. Returns 0, or -1 when the file cannot
// be read, -2 when it is not a weights file, -3 when it holds a different number of values.
template <class T>
int load(const char* path, T* params, long n_values) {
  std::FILE* f = std::fopen(path, "rb");
  if (!f) return -1;
  char magic[8];
  std::uint64_t count = 0, header = 0;
  int rc = 0;
  if (std::fread(magic, 1, 8, f) != 8 || std::memcmp(magic, "CLADBW01", 8) != 0 || std::fread(&count, 8, 1, f) != 1 ||
      std::fread(&header, 8, 1, f) != 1 || std::fseek(f, long(header), SEEK_CUR))
    rc = -2;
  else if (count != std::uint64_t(n_values))
    rc = -3;
  for (long i = 0; rc == 0 && i < n_values; ++i) {
    double v;
    if (std::fread(&v, 8, 1, f) != 1) rc = -2;
    params[i] = T(v);
  }
  std::fclose(f);
  return rc;
}

}  // namespace cladbench::onnx_weights
