// Trains cladbench's MNIST MLP from a TTree or an RNTuple, in root.exe with no Python in the process:
//
//   root -b -q 'cpp/root/train_mnist.C("resources/root/mnist-ttree.root", "run.json")'
//   root -b -q 'cpp/root/train_mnist.C("resources/root/mnist-rntuple.root", "run.json", "--hidden 128 --batch 32
//   --epochs 3 --lr 0.1 --seed 1 --train-range 0:8000 --test-range 8000:10000", "clad", "rowmajor", "arena",
//   "rntuple-macro", "rntuple")'
//
// The file holds trees or RNTuples "train" and "test" (written by `cladbench root write-mnist`): a
// float array column x[784] (pixels as the trainers see them) and an int column label. samples.h
// reads each into memory once (RDataFrame, or RNTupleReader for an RNTuple); every epoch the batches
// are gathered in the order cladbench-train uses for the same --seed, so the run sees the same
// batches as the file-fed run and its losses match.
// Training goes through cladbench's C ABI (cpp/capi/cladbench_c.h, libcladbench_c.so): Clad's
// pullbacks come compiled in that library, and cling never parses a LibTorch header.
//
// Arguments: the file; where the run record goes; cladbench-train's flags for the model, optimizer
// and run; the engine (clad, manual, libtorch; "" = clad where it was built, else manual), layout
// and alloc; the run record's input (ttree-macro, rntuple-macro); the reader (dataframe, rntuple). Run from the
// repository root (the library is build/libcladbench_c.so; another build: put its directory on LD_LIBRARY_PATH). Exits
// with cladbench-train's status: 0 trained, 2 bad input, 3 training failed.
#include "../capi/cladbench_c.h"

// The library, loaded as the macro is parsed (cling links the macro's calls before running it):
// build/ from the repository root, else a directory on LD_LIBRARY_PATH.
R__ADD_LIBRARY_PATH(build)
R__LOAD_LIBRARY(libcladbench_c)

#include <TROOT.h>
#include <TSystem.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "samples.h"  // the readers PyROOT uses too

namespace train_mnist_macro {

using cladbench_root::Samples;

int fail(int status, const std::string& why) {
  std::fprintf(stderr, "train_mnist.C: %s\n", why.c_str());
  gSystem->Exit(status);  // root -b -q would otherwise exit 0
  return status;
}

}  // namespace train_mnist_macro

int train_mnist(const char* file = "resources/root/mnist-ttree.root", const char* out = "run.json",
                const char* options =
                    "--hidden 128 --batch 32 --epochs 3 --lr 0.1 --seed 1 --train-range 0:8000 --test-range 8000:10000",
                const char* engine = "", const char* layout = "rowmajor", const char* alloc = "arena",
                const char* input = "ttree-macro", const char* reader = "dataframe") {
  using namespace train_mnist_macro;
  std::string chosen = engine;
  if (chosen.empty()) chosen = cladbench_has_engine("clad") ? "clad" : "manual";
  if (!cladbench_has_engine(chosen.c_str()))
    return fail(2, "the " + chosen + " engine is not in libcladbench_c (clad needs Clad when it is built)");

  const std::string how = reader;
  if (how != "dataframe" && how != "rntuple") return fail(2, "reader " + how + ": expected dataframe or rntuple");
  auto read = how == "rntuple" ? cladbench_root::read_rntuple : cladbench_root::read_dataframe;
  std::fprintf(stderr, "train_mnist.C: reading %s (%s)\n", file, reader);
  const Samples train = read(file, "train"), test = read(file, "test");
  std::string flags = std::string(options) + " --dataset mnist --input " + input + " --data " + file;
  if (out && *out) flags += std::string(" --out ") + out;  // else the record goes to stdout
  cladbench_run* run =
      cladbench_run_create(chosen.c_str(), layout, alloc, flags.c_str(), train.size(), train.features, 10);
  if (!run) return fail(2, cladbench_last_error());
  cladbench_run_set_version(run, "root", gROOT->GetVersion());
  if (cladbench_run_set_test(run, test.x.data(), test.labels.data(), test.size()) != 0)
    return fail(2, cladbench_last_error());

  const int batch = cladbench_run_batch(run), features = train.features;
  std::vector<long> order(train.size());
  std::vector<float> xb(long(batch) * features);
  std::vector<int> yb(batch);
  bool failed = false;
  for (int epoch = 0; epoch < cladbench_run_epochs(run) && !failed; ++epoch) {
    cladbench_run_epoch_order(run, epoch, order.data());
    for (int s = 0; s < cladbench_run_steps_per_epoch(run); ++s) {
      for (int i = 0; i < batch; ++i) {  // gather the batch: rows order[s*batch + i]
        const long row = order[long(s) * batch + i];
        std::copy_n(train.x.begin() + row * features, features, xb.begin() + long(i) * features);
        yb[i] = train.labels[row];
      }
      if (std::isnan(cladbench_run_step(run, xb.data(), yb.data()))) {
        std::fprintf(stderr, "train_mnist.C: %s\n", cladbench_last_error());
        failed = true;
        break;
      }
    }
    if (!failed && cladbench_run_end_epoch(run) != 0) return fail(2, cladbench_last_error());
  }
  const int status = cladbench_run_finish(run);
  cladbench_run_destroy(run);
  if (status < 0) return fail(2, cladbench_last_error());
  if (status != 0) return fail(status, "training failed (see the record)");
  if (out && *out) std::fprintf(stderr, "train_mnist.C: wrote %s\n", out);
  return 0;
}
