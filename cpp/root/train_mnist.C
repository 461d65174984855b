// Trains cladbench's MNIST MLP from a TTree, in root.exe with no Python in the process:
//
//   root -b -q 'cpp/root/train_mnist.C("results/root/mnist.root", "run.json")'
//   root -b -q 'cpp/root/train_mnist.C("results/root/mnist.root", "run.json", "--hidden 128 --batch 32 --epochs 3 --lr
//   0.1 --seed 1 --train-range 0:8000 --test-range 8000:10000", "clad")'
//
// The tree file holds trees "train" and "test" (written by `cladbench ttree mnist`): a float array
// branch x[784] (pixels as the trainers see them) and an int branch label. RDataFrame reads each
// tree once into memory; every epoch the batches are gathered in the order cladbench-train uses for
// the same --seed, so the run sees the same batches as the file-fed run and its losses match.
// Training goes through cladbench's C ABI (cpp/capi/cladbench_c.h, libcladbench_c.so): Clad's
// pullbacks come compiled in that library, and cling never parses a LibTorch header.
//
// Arguments: the tree file; where the run record goes; cladbench-train's flags for the model,
// optimizer and run; the engine (clad, manual, libtorch; "" = clad where it was built, else
// manual), layout and alloc. Run from the repository root (the library is build/libcladbench_c.so;
// another build: put its directory on LD_LIBRARY_PATH). Exits with cladbench-train's status: 0 trained,
// 2 bad input, 3 training failed.
#include "../capi/cladbench_c.h"

// The library, loaded as the macro is parsed (cling links the macro's calls before running it):
// build/ from the repository root, else a directory on LD_LIBRARY_PATH.
R__ADD_LIBRARY_PATH(build)
R__LOAD_LIBRARY(libcladbench_c)

#include <ROOT/RDataFrame.hxx>
#include <ROOT/RVec.hxx>
#include <TROOT.h>
#include <TSystem.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace train_mnist_macro {

// One tree as contiguous arrays: x [n][features], labels [n].
struct Samples {
  std::vector<float> x;
  std::vector<int> labels;
  int features = 0;
  long size() const { return long(labels.size()); }
};

Samples read_tree(const char* file, const char* tree) {
  ROOT::RDataFrame df(tree, file);
  auto x = df.Take<ROOT::RVecF>("x");
  auto labels = df.Take<int>("label");  // both filled by one pass over the tree
  Samples s;
  s.labels.assign(labels->begin(), labels->end());
  s.features = x->empty() ? 0 : int(x->front().size());
  s.x.reserve(x->size() * s.features);
  for (const ROOT::RVecF& row : *x) s.x.insert(s.x.end(), row.begin(), row.end());
  return s;
}

int fail(int status, const std::string& why) {
  std::fprintf(stderr, "train_mnist.C: %s\n", why.c_str());
  gSystem->Exit(status);  // root -b -q would otherwise exit 0
  return status;
}

}  // namespace train_mnist_macro

int train_mnist(const char* tree_file = "results/root/mnist.root", const char* out = "run.json",
                const char* options =
                    "--hidden 128 --batch 32 --epochs 3 --lr 0.1 --seed 1 --train-range 0:8000 --test-range 8000:10000",
                const char* engine = "", const char* layout = "rowmajor", const char* alloc = "arena") {
  using namespace train_mnist_macro;
  std::string chosen = engine;
  if (chosen.empty()) chosen = cladbench_has_engine("clad") ? "clad" : "manual";
  if (!cladbench_has_engine(chosen.c_str()))
    return fail(2, "the " + chosen + " engine is not in libcladbench_c (clad needs Clad when it is built)");

  std::fprintf(stderr, "train_mnist.C: reading %s\n", tree_file);
  const Samples train = read_tree(tree_file, "train"), test = read_tree(tree_file, "test");
  std::string flags = std::string(options) + " --dataset mnist --input ttree-macro --data " + tree_file;
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
