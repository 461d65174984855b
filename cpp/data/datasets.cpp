#include "datasets.hpp"

#include <hdf5.h>

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
  d.x = ((torch::from_blob(images.data.data(), {n, features}, torch::kUInt8).to(torch::kFloat) / 255.0) - 0.1307) /
        0.3081;
  d.labels = torch::from_blob(labels.data.data(), {n}, torch::kUInt8).to(torch::kInt);
  d.classes = 10;
  d.channels = 1;
  d.length = int(features);
  if (n > 0 && d.labels.max().item<int>() >= d.classes)
    throw IdxError("IDX file " + labels_path + ": labels must be digits 0-9");
  return d;
}

namespace {

// An HDF5 file open for reading; HDF5's own error stack printing is turned off, errors are ours.
class H5File {
 public:
  explicit H5File(const std::string& path) : path_(path) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    id_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (id_ < 0) throw std::runtime_error("GW windows file " + path + ": cannot open as HDF5");
  }
  ~H5File() { H5Fclose(id_); }

  bool has(const char* name) const {
    return H5Lexists(id_, "windows", H5P_DEFAULT) > 0 && H5Lexists(id_, name, H5P_DEFAULT) > 0;
  }

  // A whole dataset as a tensor of the given type (HDF5 converts the stored type).
  torch::Tensor read(const char* name, torch::ScalarType type, hid_t mem_type) const {
    if (!has(name)) throw std::runtime_error("GW windows file " + path_ + ": no dataset " + name);
    const hid_t d = H5Dopen2(id_, name, H5P_DEFAULT);
    const hid_t space = H5Dget_space(d);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(rank);
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    torch::Tensor out = torch::empty(std::vector<int64_t>(dims.begin(), dims.end()), type);
    const herr_t rc = H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr());
    H5Sclose(space);
    H5Dclose(d);
    if (rc < 0) throw std::runtime_error("GW windows file " + path_ + ": cannot read " + name);
    return out;
  }

  double attribute_midpoint(const char* name, double fallback) const {
    if (H5Aexists(id_, name) <= 0) return fallback;
    double range[2] = {fallback, fallback};
    const hid_t a = H5Aopen(id_, name, H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_DOUBLE, range);
    H5Aclose(a);
    return 0.5 * (range[0] + range[1]);
  }

 private:
  std::string path_;
  hid_t id_;
};

}  // namespace

Dataset load_gw_windows(const std::string& path) {
  const H5File f(path);
  Dataset d;
  torch::Tensor strain = f.read("windows/strain", torch::kFloat, H5T_NATIVE_FLOAT);
  if (strain.dim() != 3)
    throw std::runtime_error("GW windows file " + path + ": windows/strain must be [n, channels, length]");
  const long n = strain.size(0);
  d.channels = int(strain.size(1));
  d.length = int(strain.size(2));
  d.x = strain.reshape({n, -1});  // channels-first per window, as cnn.hpp reads it
  d.classes = 2;
  d.labels =
      f.has("windows/label") ? f.read("windows/label", torch::kInt, H5T_NATIVE_INT) : torch::zeros({n}, torch::kInt);
  if (f.has("windows/snr")) d.snr = f.read("windows/snr", torch::kFloat, H5T_NATIVE_FLOAT);
  if (f.has("windows/t_start_gps")) d.t_start = f.read("windows/t_start_gps", torch::kDouble, H5T_NATIVE_DOUBLE);
  d.merger_offset = f.attribute_midpoint("merger_offset_range", 0.7);
  return d;
}

Dataset slice(const Dataset& data, long begin, long end, const std::string& what) {
  const long n = data.x.size(0);
  if (begin < 0 || end > n || begin >= end)
    throw std::invalid_argument(what + " range " + std::to_string(begin) + ":" + std::to_string(end) +
                                " does not fit a dataset of " + std::to_string(n) + " samples");
  Dataset out = data;
  out.x = data.x.slice(0, begin, end);
  out.labels = data.labels.slice(0, begin, end);
  if (data.snr.defined()) out.snr = data.snr.slice(0, begin, end);
  if (data.t_start.defined()) out.t_start = data.t_start.slice(0, begin, end);
  return out;
}

}  // namespace cladbench
