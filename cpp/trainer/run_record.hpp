// The C++ writer of the run record (workflow/schemas/run_record.schema.yaml; the Python engines'
// writer is cladbench.engines.pytorch): what a run is, where it ran, and its totals.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train_options.hpp"
#include "trainer.hpp"

namespace cladbench {

using json = nlohmann::json;

// The record of a run about to start: its options, variant, versions and host; status "running".
json base_record(const TrainOptions& o, const Variant& v);
// The process's totals, when the run is over.
void close_record(json& record, std::chrono::steady_clock::time_point t0);
// To `path` whole or not at all (stdout when empty).
void write_record(const std::string& path, const json& record);
// The q-quantile of sorted values, interpolated (numpy's default); NaN when empty.
double quantile(const std::vector<double>& sorted, double q);

}  // namespace cladbench
