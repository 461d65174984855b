// IDX files (the MNIST format): a magic number giving the element type and rank, big-endian
// int32 sizes, then the data. Read plain or gzip-compressed. Plain C++.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace cladbench {

struct IdxError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct IdxArray {
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // unsigned bytes, the only element type MNIST uses
};

// Throws IdxError naming the file and what is wrong: bad magic number, unsupported type,
// truncated data, trailing bytes, corrupt gzip stream.
IdxArray read_idx(const std::string& path);

}  // namespace cladbench
