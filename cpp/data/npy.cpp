#include "npy.hpp"

#include <bit>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace cladbench {

void write_npy(const std::string& path, const float* values, long n) {
  static_assert(std::endian::native == std::endian::little, "'<f4' is written as the host's floats");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  header.append(63 - (10 + header.size()) % 64, ' ') += '\n';  // magic, version, length, header: 64-byte aligned
  const uint16_t length = uint16_t(header.size());
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    out.put(char(length & 0xff)).put(char(length >> 8)) << header;
    out.write(reinterpret_cast<const char*>(values), std::streamsize(n * sizeof(float)));
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

}  // namespace cladbench
