// The C ABI (cladbench_c.h) over cladbench::FedRun: exceptions become return values and a message.
#include "cladbench_c.h"

#include <cmath>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "../trainer/trainer.hpp"
#include "../kernels/kernel_set.hpp"

struct cladbench_run {
  cladbench::FedRun run;
};

namespace {

thread_local std::string last_error;

// Runs f; on an exception stores its message and returns `failure`.
template <class F, class R>
R guarded(F&& f, R failure) {
  try {
    last_error.clear();
    return f();
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown error";
  }
  return failure;
}

// The kernel flags the variant's cladbench-train records, so file-fed and TTree-fed records match.
std::string kernel_flags(const std::string& engine, const std::string& layout) {
  std::string flags = engine == "clad" ? CLADBENCH_CLAD_FLAGS : "";
  if (engine != "libtorch" && layout == "colmajor") flags += " -DCLADBENCH_WEIGHTS_COLMAJOR";
  return flags;
}

}  // namespace

extern "C" {

const char* cladbench_last_error(void) { return last_error.c_str(); }

int cladbench_has_engine(const char* engine) {
  if (std::string(engine) == "libtorch") return 1;
  return cladbench::find_kernels("mlp", engine, cladbench::Layout::RowMajor) != nullptr;
}

cladbench_run* cladbench_run_create(const char* engine, const char* layout, const char* alloc, const char* options,
                                    long n_train, int features, int classes) {
  return guarded(
      [&]() -> cladbench_run* {
        std::vector<std::string> args;
        std::istringstream words(options ? options : "");
        for (std::string w; words >> w;) args.push_back(w);
        const cladbench::Variant variant{"cpu", engine, layout, alloc, kernel_flags(engine, layout)};
        return new cladbench_run{cladbench::FedRun(args, variant, n_train, features, classes)};
      },
      static_cast<cladbench_run*>(nullptr));
}

void cladbench_run_destroy(cladbench_run* run) { delete run; }

int cladbench_run_batch(const cladbench_run* run) { return run->run.batch(); }
int cladbench_run_epochs(const cladbench_run* run) { return run->run.epochs(); }
int cladbench_run_steps_per_epoch(const cladbench_run* run) { return run->run.steps_per_epoch(); }

int cladbench_run_epoch_order(const cladbench_run* run, int epoch, long* order) {
  return guarded(
      [&] {
        const std::vector<long> o = run->run.epoch_order(epoch);
        std::copy(o.begin(), o.end(), order);
        return 0;
      },
      -1);
}

int cladbench_run_set_test(cladbench_run* run, const float* x, const int* labels, long n) {
  return guarded(
      [&] {
        run->run.set_test(x, labels, n);
        return 0;
      },
      -1);
}

int cladbench_run_set_version(cladbench_run* run, const char* name, const char* value) {
  return guarded(
      [&] {
        run->run.set_version(name, value);
        return 0;
      },
      -1);
}

double cladbench_run_step(cladbench_run* run, const float* x, const int* labels) {
  return guarded(
      [&] {
        const double loss = run->run.step(x, labels);
        if (run->run.failed()) last_error = run->run.error();
        return loss;
      },
      std::nan(""));
}

int cladbench_run_end_epoch(cladbench_run* run) {
  return guarded(
      [&] {
        run->run.end_epoch();
        return 0;
      },
      -1);
}

int cladbench_run_finish(cladbench_run* run) {
  return guarded([&] { return run->run.finish(); }, -1);
}

}  // extern "C"
