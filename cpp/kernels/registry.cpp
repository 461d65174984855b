#include <deque>
#include <stdexcept>

#include "kernel_set.hpp"

namespace cladbench {

namespace {
// A deque keeps pointers handed out by find_kernels valid as sets are added.
std::deque<ModelKernels>& registry() {
  static std::deque<ModelKernels> sets;
  return sets;
}
}  // namespace

const char* layout_name(Layout layout) { return layout == Layout::RowMajor ? "rowmajor" : "colmajor"; }

Layout parse_layout(std::string_view name) {
  if (name == "rowmajor") return Layout::RowMajor;
  if (name == "colmajor") return Layout::ColMajor;
  throw std::invalid_argument("unknown layout '" + std::string(name) + "' (expected rowmajor or colmajor)");
}

bool register_kernels(const ModelKernels& kernels) {
  for (ModelKernels& k : registry())
    if (k.model == kernels.model && k.engine == kernels.engine && k.layout == kernels.layout &&
        k.device == kernels.device) {
      k = kernels;  // a user's model rebuilt and loaded again (user_model.cpp)
      return true;
    }
  registry().push_back(kernels);
  return true;
}

const ModelKernels* find_kernels(std::string_view model, std::string_view engine, Layout layout,
                                 std::string_view device) {
  for (const ModelKernels& k : registry())
    if (k.model == model && k.engine == engine && k.layout == layout && k.device == device) return &k;
  return nullptr;
}

std::vector<const ModelKernels*> registered_kernels() {
  std::vector<const ModelKernels*> out;
  for (const ModelKernels& k : registry()) out.push_back(&k);
  return out;
}

}  // namespace cladbench

#include "../cuda/runtime.hpp"

namespace cladbench {

namespace {
GpuRuntime* the_gpu_runtime = nullptr;
}

void set_gpu_runtime(GpuRuntime* runtime) { the_gpu_runtime = runtime; }
GpuRuntime* gpu_runtime() { return the_gpu_runtime; }

}  // namespace cladbench
