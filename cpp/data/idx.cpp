#include "idx.hpp"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <memory>

namespace cladbench {

namespace {

// gzread reads gzip and plain files alike.
struct GzFile {
  explicit GzFile(const std::string& path) : file(gzopen(path.c_str(), "rb")) {}
  ~GzFile() {
    if (file) gzclose(file);
  }
  gzFile file;
};

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw IdxError("IDX file " + path + ": " + why);
}

// Reads up to n bytes; returns how many were read, failing on a corrupt stream.
size_t read_some(GzFile& f, const std::string& path, void* out, size_t n) {
  size_t total = 0;
  while (total < n) {
    const unsigned chunk = unsigned(std::min<size_t>(n - total, 1u << 30));
    const int got = gzread(f.file, static_cast<char*>(out) + total, chunk);
    int err = Z_OK;
    const char* message = gzerror(f.file, &err);
    // A cut gzip stream ends with got == 0 and Z_BUF_ERROR set, not with got < 0.
    if (got < 0 || (err != Z_OK && err != Z_STREAM_END))
      fail(path, std::string("corrupt or unreadable data (") + message + ")");
    if (got == 0) break;
    total += size_t(got);
  }
  return total;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  GzFile f(path);
  if (!f.file) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");

  unsigned char magic[4];
  if (read_some(f, path, magic, 4) != 4) fail(path, "truncated header (shorter than 4 bytes)");
  if (magic[0] != 0 || magic[1] != 0)
    fail(path, "bad magic number (the first two bytes must be zero; is this an IDX file?)");
  if (magic[2] != 0x08) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", magic[2]);
    fail(path, std::string("unsupported element type ") + hex + " (expected 0x08, unsigned byte)");
  }
  const int rank = magic[3];
  if (rank < 1 || rank > 4) fail(path, "bad rank " + std::to_string(rank) + " (expected 1 to 4)");

  IdxArray out;
  size_t count = 1;
  for (int d = 0; d < rank; ++d) {
    unsigned char b[4];
    if (read_some(f, path, b, 4) != 4) fail(path, "truncated header (sizes missing)");
    const int64_t size = (int64_t(b[0]) << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    out.shape.push_back(size);
    count *= size_t(size);
  }
  out.data.resize(count);
  const size_t got = read_some(f, path, out.data.data(), count);
  if (got != count)
    fail(path,
         "truncated: the header promises " + std::to_string(count) + " bytes of data, found " + std::to_string(got));
  unsigned char extra;
  if (read_some(f, path, &extra, 1) != 0) fail(path, "trailing bytes after the data the header describes");
  return out;
}

}  // namespace cladbench
