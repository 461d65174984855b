#include "gw_metrics.hpp"

#include <cmath>

namespace cladbench {

using json = nlohmann::json;

namespace {

// Area under the ROC curve: the probability that a positive scores above a negative (ties half).
double roc_auc(const torch::Tensor& positive, const torch::Tensor& negative) {
  if (positive.numel() == 0 || negative.numel() == 0) return std::nan("");
  const torch::Tensor p = positive.to(torch::kDouble).unsqueeze(1), n = negative.to(torch::kDouble).unsqueeze(0);
  return (p.gt(n).to(torch::kDouble) + 0.5 * p.eq(n).to(torch::kDouble)).mean().item<double>();
}

}  // namespace

json gw_scores_metrics(const torch::Tensor& score, const torch::Tensor& labels, const torch::Tensor& snr,
                       double merger_offset, const torch::Tensor& real_score, const torch::Tensor& real_t_start) {
  json m;
  const torch::Tensor signal = labels.eq(1), noise = labels.eq(0);
  m["roc_auc"] = roc_auc(score.masked_select(signal & snr.ge(10)), score.masked_select(noise));
  m["roc_auc_all_snr"] = roc_auc(score.masked_select(signal), score.masked_select(noise));
  m["n_test_signal_snr_ge_10"] = (signal & snr.ge(10)).sum().item<long>();
  auto as_vector = [](const torch::Tensor& t) {
    const torch::Tensor d = t.to(torch::kDouble).contiguous();
    return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  };
  // The held-out scores themselves, so that the report can draw the ROC curve from the records.
  m["gw_test_scores"] = as_vector(score);
  m["gw_test_labels"] = as_vector(labels);
  m["gw_test_snr"] = as_vector(snr);
  m["gw150914_peak_offset_s"] = nullptr;
  if (!real_score.defined()) return m;
  const long peak = real_score.argmax().item<long>();
  // A window scores highest when a merger sits where training put them (merger_offset into it).
  m["gw150914_peak_offset_s"] = real_t_start[peak].item<double>() + merger_offset - kGW150914MergerGps;
  m["gw150914_peak_score"] = real_score[peak].item<double>();
  m["gw150914_scores"] = as_vector(real_score);
  m["gw150914_t_start_gps"] = as_vector(real_t_start);
  return m;
}

}  // namespace cladbench
