#include "run_record.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "build_info.hpp"

namespace cladbench {

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

std::string utc_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

json base_record(const TrainOptions& o, const Variant& v) {
  return {
      {"status", "running"},
      {"purpose", o.purpose},
      {"error", nullptr},
      {"engine", v.engine},
      {"device", v.device},
      {"layout", v.layout},
      {"alloc", v.alloc},
      {"dataset", o.dataset},
      {"model", nullptr},
      {"batch", o.batch},
      {"threads", o.threads},
      {"seed", o.seed},
      {"repetition", o.repetition},
      {"optimizer", o.optimizer},
      {"lr", o.lr},
      {"epochs", o.epochs},
      {"warmup_steps", o.warmup},
      {"input", o.input},
      {"data_files", o.input != "file"       ? json{o.data}
                     : o.dataset == "gw-sim" ? json{o.data, o.real}
                                             : json{o.images, o.labels, o.test_images, o.test_labels}},
      {"train_range", {o.train_begin, o.train_end}},
      {"test_range", {o.test_begin, o.test_end}},
      {"gradient_generator", v.engine == "libtorch" ? "LibTorch " TORCH_VERSION " autograd" : ""},
      {"versions",
       {{"torch", TORCH_VERSION},
        {"clad", CLADBENCH_CLAD_VERSION},
        {"compiler", CLADBENCH_CXX_COMPILER},
        {"cuda", nullptr},
        {"python", nullptr}}},
      {"compile_flags", std::string(CLADBENCH_CXX_FLAGS) + " " + v.kernel_flags},
      {"git_commit", CLADBENCH_GIT_COMMIT},
      {"cpu_model", cpu_model()},
      {"hostname", hostname()},
      {"started_utc", utc_now()},
  };
}

void close_record(json& record, std::chrono::steady_clock::time_point t0) {
  record["wall_time_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  record["peak_rss_mb"] = peak_rss_mb();
}

void write_record(const std::string& path, const json& record) {
  if (path.empty()) {
    std::cout << record.dump(2) << std::endl;
    return;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << record.dump(2) << '\n';
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::rename(tmp.c_str(), path.c_str());  // a record is whole or absent
}

}  // namespace cladbench
