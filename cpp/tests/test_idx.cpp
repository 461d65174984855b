// IDX reading: a good file round-trips; each kind of damage gives its own named error.
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "../data/idx.hpp"

using namespace cladbench;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << std::endl;
  failures += !ok;
}

std::string write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

std::string header(int rank, std::initializer_list<int> sizes) {
  std::string h = {0, 0, 8, char(rank)};
  for (int s : sizes) h += {char(s >> 24), char(s >> 16), char(s >> 8), char(s)};
  return h;
}

void expect_error(const std::string& path, const std::string& fragment) {
  try {
    read_idx(path);
    check(false, path + " should fail with '" + fragment + "'");
  } catch (const IdxError& e) {
    const std::string msg = e.what();
    check(msg.find(fragment) != std::string::npos && msg.find(path) != std::string::npos,
          "'" + msg + "' names the file and says '" + fragment + "'");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "idx_files";
  std::filesystem::create_directories(dir);
  const std::string data = header(2, {2, 3}) + std::string("\x01\x02\x03\x04\x05\x06", 6);

  IdxArray a = read_idx(write(dir / "good.idx", data));
  check(a.shape == std::vector<int64_t>{2, 3} && a.data.size() == 6 && a.data[5] == 6, "plain file reads");

  const std::string gz = (dir / "good.idx.gz").string();
  gzFile f = gzopen(gz.c_str(), "wb");
  gzwrite(f, data.data(), unsigned(data.size()));
  gzclose(f);
  check(read_idx(gz).data == a.data, "gzip file reads the same");

  expect_error(write(dir / "magic.idx", "PK\x03\x04 a zip archive, not IDX"), "bad magic number");
  std::string gz_bytes;
  {
    std::ifstream in(gz, std::ios::binary);
    gz_bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  expect_error(write(dir / "cut.idx.gz", gz_bytes.substr(0, gz_bytes.size() / 2)), "corrupt or unreadable");
  expect_error(write(dir / "type.idx", std::string("\0\0\x0d\x01", 4) + std::string(4, '\0')),
               "unsupported element type 0x0d");
  expect_error(write(dir / "short.idx", data.substr(0, data.size() - 2)), "truncated");
  expect_error(write(dir / "long.idx", data + "x"), "trailing bytes");
  expect_error((dir / "missing.idx").string(), "cannot open");

  std::cout << (failures ? "FAILED" : "all passed") << std::endl;
  return failures ? 1 : 0;
}
