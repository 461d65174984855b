// The C++ trainer behind cladbench-train: no Python at run time. Plain C++ header, so that the
// per-variant main() compiles in a blink (only the kernels vary per variant: docs/architecture.md,
// "The variant matrix").
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace cladbench {

// What a variant binary was built as.
struct Variant {
  std::string device;        // cpu
  std::string engine;        // clad, manual, libtorch
  std::string layout;        // rowmajor, colmajor
  std::string alloc;         // arena, dynamic
  std::string kernel_flags;  // how its kernels were compiled
};

// Parses the command line, trains, writes the JSON run record. Returns the exit status:
// 0 trained, 2 bad input (arguments, data files, engine), 3 training failed (non-finite loss).
int train_main(int argc, char** argv, const Variant& variant);

// A training run whose batches its caller feeds, one at a time: the ROOT macro through the C ABI
// (cpp/capi) and PyROOT through the Python module, both reading a TTree. The same engines, clock,
// checks, evaluation and run record as train_main; the caller feeds, in each epoch, the samples
// of epoch_order(epoch) in that order, batch() at a time, so that a run sees the same batches as
// the file-fed run with the same seed.
class FedRun {
 public:
  // `args`: cladbench-train's flags for the model, optimizer and run (--hidden, --batch, --epochs,
  // --lr, --optimizer, --seed, --threads, --warmup, --train-range, --test-range, --repetition,
  // --purpose, --out), with --input ttree-macro|ttree-pyroot and --data FILE (where the samples
  // come from, for the record). The training set: n_train samples of `features` floats in
  // `classes` classes. Throws std::invalid_argument.
  FedRun(const std::vector<std::string>& args, const Variant& variant, long n_train, int features, int classes);
  ~FedRun();
  FedRun(const FedRun&) = delete;
  FedRun& operator=(const FedRun&) = delete;

  int batch() const;
  int epochs() const;
  int steps_per_epoch() const;
  long n_train() const;
  int features() const;
  // The training-set indices of epoch `epoch`, in the order to feed them (n_train() of them).
  std::vector<long> epoch_order(int epoch) const;
  // The test set, before the first end_epoch(): n samples of features() floats.
  void set_test(const float* x, const int* labels, long n);
  // Records a version the core cannot know, e.g. ("root", "6.40.00") or ("python", "3.11.2").
  void set_version(const std::string& name, const std::string& value);
  // One training step on batch() samples; returns the batch loss. A non-finite loss fails the
  // run (failed() turns true, error() says why) and is returned as it is.
  double step(const float* x, const int* labels);
  // After steps_per_epoch() steps: the epoch's training and test loss, test accuracy.
  void end_epoch();
  bool failed() const;
  std::string error() const;
  // Writes the run record (to --out, or stdout); returns the exit status cladbench-train would:
  // 0 trained, 3 training failed.
  int finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cladbench
