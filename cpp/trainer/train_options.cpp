#include "train_options.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "train_defaults.hpp"

namespace cladbench {

namespace {

std::string usage() {
  std::string text =
      "usage: cladbench-train --images FILE --labels FILE [--out record.json]   (MNIST)\n"
      "       [--test-images FILE --test-labels FILE]   (MNIST: test on another file, e.g. t10k)\n"
      "       cladbench-train --dataset gw-sim --data FILE [--real FILE] [--model mlp|cnn] [--conv CkKpP,...]\n"
      "  [--train-range B:E] [--test-range B:E] [--hidden W[,W...]] [--batch N] [--epochs N] [--lr X]\n"
      "  [--optimizer sgd|adam] [--seed N] [--threads N] [--warmup N] [--repetition N] [--purpose train|bench]\n"
      "  [--params-out FILE.npy]   (the trained flat parameters, float32, in the run's layout)\n"
      "  (--input ttree-macro|ttree-pyroot|rntuple-macro|rntuple-pyroot: batches fed by a caller, cladbench::FedRun)\n"
      "defaults:";
  for (const auto& [flag, value] : generated::kDefaultFlags)
    if (*value) text += std::string(" --") + flag + " " + value;
  return text + "\n";
}

std::pair<long, long> parse_range(const std::string& s) {
  const size_t colon = s.find(':');
  if (colon == std::string::npos) throw std::invalid_argument("range '" + s + "' must be BEGIN:END");
  return {std::stol(s.substr(0, colon)), std::stol(s.substr(colon + 1))};
}

std::vector<int> parse_widths(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) {
      out.push_back(std::stoi(item));
      if (out.back() <= 0) throw std::invalid_argument("hidden widths must be positive");
    }
  return out;
}

}  // namespace

TrainOptions parse_args(int argc, char** argv) {
  TrainOptions o;
  std::map<std::string, std::string> kv;
  for (const auto& [flag, value] : generated::kDefaultFlags) kv[flag] = value;  // then the command line's
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "-h" || key == "--help") {
      std::cout << usage();
      std::exit(0);
    }
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) throw std::invalid_argument("bad argument '" + key + "'");
    kv[key.substr(2)] = argv[++i];
  }
  auto take = [&](const char* key, auto& field, auto convert) {
    auto it = kv.find(key);
    if (it == kv.end()) return;
    try {
      field = convert(it->second);
    } catch (const std::logic_error&) {
      throw std::invalid_argument(std::string("bad value for --") + key + ": '" + it->second + "'");
    }
    kv.erase(it);
  };
  auto str = [](const std::string& s) { return s; };
  auto to_int = [](const std::string& s) { return std::stoi(s); };
  take("images", o.images, str);
  take("labels", o.labels, str);
  take("out", o.out, str);
  take("params-out", o.params_out, str);
  take("dataset", o.dataset, str);
  take("data", o.data, str);
  take("test-images", o.test_images, str);
  take("test-labels", o.test_labels, str);
  take("real", o.real, str);
  take("model", o.model, str);
  take("conv", o.conv, str);
  take("purpose", o.purpose, str);
  take("input", o.input, str);
  take("optimizer", o.optimizer, str);
  take("hidden", o.hidden, parse_widths);
  take("batch", o.batch, to_int);
  take("epochs", o.epochs, to_int);
  take("threads", o.threads, to_int);
  take("warmup", o.warmup, to_int);
  take("repetition", o.repetition, to_int);
  take("lr", o.lr, [](const std::string& s) { return std::stod(s); });
  take("seed", o.seed, [](const std::string& s) { return uint64_t(std::stoull(s)); });
  std::pair<long, long> r;
  take("train-range", r, parse_range);
  std::tie(o.train_begin, o.train_end) = r;
  take("test-range", r, parse_range);
  std::tie(o.test_begin, o.test_end) = r;
  if (!kv.empty()) throw std::invalid_argument("unknown option --" + kv.begin()->first + "\n" + usage());
  const std::vector<std::string> inputs = {"file", "ttree-macro", "ttree-pyroot", "rntuple-macro", "rntuple-pyroot"};
  if (std::find(inputs.begin(), inputs.end(), o.input) == inputs.end())
    throw std::invalid_argument("--input must be file, ttree-macro, ttree-pyroot, rntuple-macro or rntuple-pyroot");
  if (o.input != "file") {
    // FedRun: the caller feeds the batches; --data names the file they come from, for the record.
    if (o.dataset != "mnist")
      throw std::invalid_argument("batches fed by the caller (--input " + o.input + ") are MNIST's");
    if (!o.params_out.empty())
      throw std::invalid_argument("--params-out: a fed run (--input " + o.input + ") does not write its parameters");
  } else if (o.dataset == "gw-sim") {
    if (o.data.empty()) throw std::invalid_argument(std::string("--dataset gw-sim needs --data FILE\n") + usage());
  } else if (o.images.empty() || o.labels.empty()) {
    throw std::invalid_argument(std::string("--images and --labels are required\n") + usage());
  }
  if (o.purpose != "train" && o.purpose != "bench") throw std::invalid_argument("--purpose must be train or bench");
  if (o.dataset != "mnist" && o.dataset != "gw-sim") throw std::invalid_argument("--dataset must be mnist or gw-sim");
  if (o.test_images.empty() != o.test_labels.empty())
    throw std::invalid_argument("--test-images and --test-labels go together");
  if (o.model != "mlp" && o.model != "cnn") throw std::invalid_argument("--model must be mlp or cnn");
  if (o.model == "cnn" && o.dataset != "gw-sim") throw std::invalid_argument("--model cnn trains on --dataset gw-sim");
  if (o.model == "cnn" && o.hidden.size() != 1) throw std::invalid_argument("--model cnn takes one --hidden width");
  if (o.optimizer != "sgd" && o.optimizer != "adam") throw std::invalid_argument("--optimizer must be sgd or adam");
  if (o.batch < 1 || o.epochs < 1 || o.threads < 1 || o.warmup < 0)
    throw std::invalid_argument("--batch, --epochs and --threads must be positive");
  return o;
}

ModelShape model_shape(const TrainOptions& o, int features, int channels, int length, int classes) {
  ModelShape shape{o.model, {}};
  if (o.model == "cnn") {
    shape.dims = {channels, length};
    for (int d : parse_conv(o.conv)) shape.dims.push_back(d);
  } else {
    shape.dims = {features};
  }
  shape.dims.insert(shape.dims.end(), o.hidden.begin(), o.hidden.end());
  shape.dims.push_back(classes);
  if (o.model == "cnn" && shape.param_count() <= 0)
    throw std::invalid_argument("--conv " + o.conv + " shrinks a window of " + std::to_string(length) +
                                " samples to nothing");
  return shape;
}

}  // namespace cladbench
