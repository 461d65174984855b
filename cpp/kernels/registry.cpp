#include <deque>
#include <stdexcept>

#include "kernel_set.hpp"

namespace cladbench {

namespace {
// A deque keeps pointers handed out by find_mlp_kernels valid as sets are added.
std::deque<MlpKernels>& registry() {
  static std::deque<MlpKernels> sets;
  return sets;
}
}  // namespace

const char* layout_name(Layout layout) {
  return layout == Layout::RowMajor ? "rowmajor" : "colmajor";
}

Layout parse_layout(std::string_view name) {
  if (name == "rowmajor") return Layout::RowMajor;
  if (name == "colmajor") return Layout::ColMajor;
  throw std::invalid_argument("unknown layout '" + std::string(name) +
                              "' (expected rowmajor or colmajor)");
}

bool register_mlp_kernels(const MlpKernels& kernels) {
  registry().push_back(kernels);
  return true;
}

const MlpKernels* find_mlp_kernels(std::string_view engine, Layout layout) {
  for (const MlpKernels& k : registry())
    if (k.engine == engine && k.layout == layout) return &k;
  return nullptr;
}

std::vector<const MlpKernels*> registered_mlp_kernels() {
  std::vector<const MlpKernels*> out;
  for (const MlpKernels& k : registry()) out.push_back(&k);
  return out;
}

}  // namespace cladbench
