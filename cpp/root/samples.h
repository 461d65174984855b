// Samples in ROOT files, for ROOT's interpreter: read by the macro (cpp/root/train_mnist.C) and,
// declared through gInterpreter, by PyROOT (cladbench.root). One place for both, so that the
// macro and PyROOT read a file the same way and the feeding benchmark times what training uses.
//
// A sample file holds TTrees or RNTuples with a float array column x (the features, as the
// trainers see them) and an int column label, plus other scalar columns (the GW windows' snr).
// In a TTree, x is a fixed-size branch x[n]/F; in an RNTuple, a std::vector<float> field.
#pragma once

#include <ROOT/RDataFrame.hxx>
#include <ROOT/RNTupleModel.hxx>
#include <ROOT/RNTupleReader.hxx>
#include <ROOT/RNTupleWriter.hxx>
#include <ROOT/RVec.hxx>
#include <TFile.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cladbench_root {

// One tree or RNTuple in memory: x [n][features] contiguous, labels [n].
struct Samples {
  std::vector<float> x;
  std::vector<int> labels;
  int features = 0;
  long size() const { return long(labels.size()); }
};

// Through RDataFrame, which reads a TTree or an RNTuple alike: one pass fills both columns.
inline Samples read_dataframe(const std::string& file, const std::string& name) {
  ROOT::RDataFrame df(name, file);
  auto x = df.Take<ROOT::RVecF>("x");
  auto labels = df.Take<int>("label");
  Samples s;
  s.labels.assign(labels->begin(), labels->end());
  s.features = x->empty() ? 0 : int(x->front().size());
  s.x.reserve(x->size() * s.features);
  for (const ROOT::RVecF& row : *x) s.x.insert(s.x.end(), row.begin(), row.end());
  return s;
}

// An RNTuple through RNTupleReader's views, without RDataFrame's event loop.
inline Samples read_rntuple(const std::string& file, const std::string& name) {
  auto reader = ROOT::RNTupleReader::Open(name, file);
  auto x = reader->GetView<std::vector<float>>("x");
  auto label = reader->GetView<int>("label");
  Samples s;
  s.labels.resize(reader->GetNEntries());
  for (auto i : reader->GetEntryRange()) {
    const std::vector<float>& row = x(i);
    if (i == 0) {
      s.features = int(row.size());
      s.x.reserve(s.labels.size() * row.size());
    }
    s.x.insert(s.x.end(), row.begin(), row.end());
    s.labels[i] = label(i);
  }
  return s;
}

// Writes `rows` rows of columns given as arrays (a float array column, row-major, or scalar
// columns) as one RNTuple in an open file.
class RNTupleColumns {
 public:
  explicit RNTupleColumns(long rows) : rows_(rows), model_(ROOT::RNTupleModel::Create()) {}

  void add(const std::string& name, const float* data, int width) {
    auto field = model_->MakeField<std::vector<float>>(name);
    fill_.push_back([field, data, width](long i) { field->assign(data + i * width, data + (i + 1) * width); });
  }
  void add(const std::string& name, const int* data) { add_scalar(name, data); }
  void add(const std::string& name, const float* data) { add_scalar(name, data); }
  void add(const std::string& name, const double* data) { add_scalar(name, data); }

  void write(TFile& file, const std::string& name) {
    auto writer = ROOT::RNTupleWriter::Append(std::move(model_), name, file);
    for (long i = 0; i < rows_; ++i) {
      for (auto& fill : fill_) fill(i);
      writer->Fill();
    }
  }  // the writer commits the RNTuple as it goes out of scope

 private:
  template <class T>
  void add_scalar(const std::string& name, const T* data) {
    auto field = model_->MakeField<T>(name);
    fill_.push_back([field, data](long i) { *field = data[i]; });
  }

  long rows_;
  std::unique_ptr<ROOT::RNTupleModel> model_;
  std::vector<std::function<void(long)>> fill_;
};

}  // namespace cladbench_root
