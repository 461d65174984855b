// cladbench-train's options: defined, parsed and checked once, for the file-fed run (train_main)
// and the fed run (FedRun). cladbench.options holds the same flags for the Python engines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../torch/model_torch.hpp"

namespace cladbench {

// Every flag's default is cladbench.options' (generated/train_defaults.hpp, read by parse_args);
// only --input, which no Python engine takes, has its default here.
struct TrainOptions {
  std::string dataset;  // mnist (IDX --images/--labels) or gw-sim (HDF5 --data, --real)
  std::string images, labels, data, real;
  std::string test_images, test_labels;  // MNIST: a separate test file (t10k) when training on train
  std::string model;                     // mlp, or cnn (GW windows only) with --conv blocks and one --hidden
  std::string conv;
  std::string purpose;         // train (learning curves) or bench (timing runs); kept apart in the report
  std::string input = "file";  // where batches come from: file (the data files), ttree-/rntuple-macro, -pyroot (FedRun)
  long train_begin = 0, train_end = 0, test_begin = 0, test_end = 0;
  std::vector<int> hidden;
  int batch = 0, epochs = 0, threads = 0, warmup = 0, repetition = 0;
  double lr = 0;
  std::string optimizer;
  uint64_t seed = 0;
  std::string out;
  std::string params_out;  // --params-out: the trained flat parameters (.npy, the run's layout); empty: none
};

// The options from cladbench-train's command line; throws std::invalid_argument naming the
// offending flag (the usage on --help).
TrainOptions parse_args(int argc, char** argv);

// A model's shape from the options and the data: `features` per sample (channels x length) and
// `classes`.
ModelShape model_shape(const TrainOptions& o, int features, int channels, int length, int classes);

}  // namespace cladbench
