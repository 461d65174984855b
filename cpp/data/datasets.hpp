// Datasets as tensors for the trainers (the IDX parsing itself is in idx.hpp).
#pragma once

#include <torch/torch.h>

#include <string>

namespace cladbench {

struct Dataset {
  torch::Tensor x;       // float32 [n, features]
  torch::Tensor labels;  // int32 [n]
  int classes = 0;
  int channels = 1;  // features = channels x length (GW windows: 2 detectors x 2048 samples)
  int length = 0;
  torch::Tensor snr;         // GW simulated windows: float32 [n] network optimal SNR, 0 for noise
  torch::Tensor t_start;     // GW real windows: float64 [n] GPS time of each window's start
  double merger_offset = 0;  // GW: where in a window the simulated mergers sit (s), the range's midpoint
};

// MNIST IDX images [n, 28, 28] and labels [n], as pixels scaled to [0, 1] and standardised with
// MNIST's training mean and deviation (0.1307, 0.3081). Throws IdxError / std::invalid_argument.
Dataset load_mnist(const std::string& images_path, const std::string& labels_path);

// GW windows written by cladbench.data.gw (HDF5): windows/strain [n, channels, length] float32, and
// windows/label, windows/snr (simulated) or windows/t_start_gps (real). Throws std::runtime_error
// naming the file and what is missing.
Dataset load_gw_windows(const std::string& path);

// Rows [begin, end) of a dataset, checked against its size.
Dataset slice(const Dataset& data, long begin, long end, const std::string& what);

}  // namespace cladbench
