#include "user_model.hpp"

#include <dlfcn.h>

#include <deque>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "../kernels/kernel_set.hpp"

namespace cladbench {

namespace {

std::mutex& models_mutex() {
  static std::mutex m;
  return m;
}

// A deque keeps the references load_model hands out valid as models are added.
std::deque<UserModel>& models() {
  static std::deque<UserModel> loaded;
  return loaded;
}

std::string canonical(const std::string& path) {
  std::error_code error;
  const auto p = std::filesystem::canonical(path, error);
  if (error) throw std::runtime_error("model library " + path + ": " + error.message());
  return p.string();
}

}  // namespace

const UserModel& load_model(const std::string& library) {
  const std::string path = canonical(library);
  std::lock_guard<std::mutex> lock(models_mutex());
  for (const UserModel& m : models())
    if (m.library == path) return m;
  // Never closed: the registered kernels point into it.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) throw std::runtime_error("cannot load model library " + path + ": " + dlerror());
  using Entry = const ModelABI* (*)();
  const auto entry = reinterpret_cast<Entry>(dlsym(handle, "cladbench_model_abi"));
  if (!entry)
    throw std::runtime_error(path +
                             " is not a model library: it has no cladbench_model_abi() (a CLADBENCH_MODEL(...) "
                             "line, cladbench_model.hpp)");
  const ModelABI& abi = *entry();
  if (abi.version != kModelAbiVersion)
    throw std::runtime_error(path + " was built against model ABI version " + std::to_string(abi.version) +
                             ", this cladbench reads version " + std::to_string(kModelAbiVersion) + ": rebuild it");
  const std::string name = abi.name;
  if (name == "mlp" || name == "cnn")
    throw std::runtime_error(std::string(abi.source) + ": the model name '" + name +
                             "' is a built-in model's; choose another");
  ModelKernels kernels;
  kernels.model = name;
  kernels.engine = "clad";
  kernels.layout = Layout::RowMajor;
  kernels.generator = std::string("clad, ") + abi.compiler + ", from " + abi.source;
  kernels.f32 = abi.f32;
  kernels.f64 = abi.f64;
  register_kernels(kernels);  // replaces the kernels of an earlier library of that name
  const UserModel loaded{name, abi.source, path, abi.sizes};
  for (UserModel& m : models())
    if (m.name == name) return m = loaded;  // a rebuilt model: the newest library wins
  models().push_back(loaded);
  return models().back();
}

const UserModel* find_user_model(std::string_view name) {
  std::lock_guard<std::mutex> lock(models_mutex());
  for (const UserModel& m : models())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace cladbench
