#include "datasets.hpp"

#include "idx.hpp"

namespace cladbench {

Dataset load_mnist(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  if (images.shape.size() != 3)
    throw IdxError("IDX file " + images_path + ": expected images of rank 3 [n, rows, cols], got rank " +
                   std::to_string(images.shape.size()));
  if (labels.shape.size() != 1)
    throw IdxError("IDX file " + labels_path + ": expected labels of rank 1, got rank " +
                   std::to_string(labels.shape.size()));
  const int64_t n = images.shape[0], features = images.shape[1] * images.shape[2];
  if (labels.shape[0] != n)
    throw IdxError("IDX files " + images_path + " and " + labels_path + " disagree: " + std::to_string(n) +
                   " images but " + std::to_string(labels.shape[0]) + " labels");
  Dataset d;
  d.x = ((torch::from_blob(images.data.data(), {n, features}, torch::kUInt8).to(torch::kFloat) / 255.0) - 0.1307) / 0.3081;
  d.labels = torch::from_blob(labels.data.data(), {n}, torch::kUInt8).to(torch::kInt);
  d.classes = 10;
  if (n > 0 && d.labels.max().item<int>() >= d.classes)
    throw IdxError("IDX file " + labels_path + ": labels must be digits 0-9");
  return d;
}

Dataset slice(const Dataset& data, long begin, long end, const std::string& what) {
  const long n = data.x.size(0);
  if (begin < 0 || end > n || begin >= end)
    throw std::invalid_argument(what + " range " + std::to_string(begin) + ":" + std::to_string(end) +
                                " does not fit a dataset of " + std::to_string(n) + " samples");
  return {data.x.slice(0, begin, end), data.labels.slice(0, begin, end), data.classes};
}

}  // namespace cladbench
