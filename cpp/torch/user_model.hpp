// Models users write (cpp/model/cladbench_model.hpp), loaded from their shared library at run
// time and registered as the clad engine's kernels of a model of that name, so that the ops
// (torch.ops.cladbench.forward, loss) and the modules (cladbench::nn::Model) take them as they
// take the built-in mlp and cnn. No LibTorch here: errors are std::runtime_error.
#pragma once

#include <string>
#include <string_view>

#include "../model/model_abi.hpp"

namespace cladbench {

struct UserModel {
  std::string name;     // as the ops take it
  std::string source;   // "file.cpp:line" of its CLADBENCH_MODEL
  std::string library;  // the shared library it came from
  ModelSizes sizes;
};

// dlopens `library`, checks what its cladbench_model_abi() says and registers its kernels (engine
// "clad", row-major, CPU). Loading the same library again returns the model loaded before; another
// library with a model of the same name (the model rebuilt after an edit) replaces it, and a
// model named mlp or cnn is refused. Libraries are never closed: kernels may still point into them.
const UserModel& load_model(const std::string& library);
// nullptr when no model of that name was loaded.
const UserModel* find_user_model(std::string_view name);

}  // namespace cladbench
