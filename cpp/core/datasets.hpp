// Datasets as tensors for the trainers (the IDX parsing itself is in idx.hpp).
#pragma once

#include <torch/torch.h>

#include <string>

namespace cladbench {

struct Dataset {
  torch::Tensor x;       // float32 [n, features]
  torch::Tensor labels;  // int32 [n]
  int classes = 0;
};

// MNIST IDX images [n, 28, 28] and labels [n], as pixels scaled to [0, 1] and standardised with
// MNIST's training mean and deviation (0.1307, 0.3081). Throws IdxError / std::invalid_argument.
Dataset load_mnist(const std::string& images_path, const std::string& labels_path);

// Rows [begin, end) of a dataset, checked against its size.
Dataset slice(const Dataset& data, long begin, long end, const std::string& what);

}  // namespace cladbench
