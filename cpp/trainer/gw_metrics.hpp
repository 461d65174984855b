// GW classifier metrics, shared by the C++ trainer and the pytorch engine (through _core).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

namespace cladbench {

constexpr double kGW150914MergerGps = 1126259462.4;

// From the signal class's scores (softmax) on held-out simulated windows and, when real_score is
// defined, on the real GW150914 windows: roc_auc (signals with SNR >= 10 against all noise),
// roc_auc_all_snr, n_test_signal_snr_ge_10, and gw150914_peak_offset_s (the best window's start
// plus merger_offset, minus the merger's GPS time) with the scores it came from; and the held-out
// scores, labels and SNRs (gw_test_*) for ROC curves.
nlohmann::json gw_scores_metrics(const torch::Tensor& score, const torch::Tensor& labels, const torch::Tensor& snr,
                                 double merger_offset, const torch::Tensor& real_score = {},
                                 const torch::Tensor& real_t_start = {});

}  // namespace cladbench
