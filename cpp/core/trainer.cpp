#include "trainer.hpp"

#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../alloc/alloc_count.h"
#include "../kernels/parallel.hpp"
#include "build_info.hpp"
#include "datasets.hpp"
#include "idx.hpp"
#include "gemm_floor.hpp"
#include "gw_metrics.hpp"
#include "model_torch.hpp"
#include "../cuda/runtime.hpp"

namespace cladbench {

namespace {

using json = nlohmann::json;

struct TrainOptions {
  std::string dataset = "mnist";  // mnist (IDX --images/--labels) or gw-sim (HDF5 --data, --real)
  std::string images, labels, data, real;
  std::string test_images, test_labels;  // MNIST: a separate test file (t10k) when training on train
  std::string model = "mlp";             // mlp, or cnn (GW windows only) with --conv blocks and one --hidden
  std::string conv = "8k16p4,16k8p4,16k8p4";
  std::string purpose = "train";  // train (learning curves) or bench (timing runs); kept apart in the report
  std::string input = "file";     // where batches come from: file (the data files), ttree-macro, ttree-pyroot (FedRun)
  long train_begin = 0, train_end = 8000, test_begin = 8000, test_end = 10000;
  std::vector<int> hidden{128};
  int batch = 32, epochs = 3, threads = 1, warmup = 10, repetition = 0;
  double lr = 0.1;
  std::string optimizer = "sgd";
  uint64_t seed = 1;
  std::string out;
};

const char* kUsage =
    "usage: cladbench-train --images FILE --labels FILE [--out record.json]   (MNIST)\n"
    "       [--test-images FILE --test-labels FILE]   (MNIST: test on another file, e.g. t10k)\n"
    "       cladbench-train --dataset gw-sim --data FILE [--real FILE] [--model mlp|cnn] [--conv 8k16p4,...]\n"
    "  [--train-range 0:8000] [--test-range 8000:10000] [--hidden 128[,64...]] [--batch 32]\n"
    "  [--epochs 3] [--lr 0.1] [--optimizer sgd|adam] [--seed 1] [--threads 1] [--warmup 10]\n"
    "  [--dataset mnist] [--repetition 0] [--purpose train|bench]\n"
    "  (--input ttree-macro|ttree-pyroot: batches fed by a caller, cladbench::FedRun)\n";

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

TrainOptions parse_args(int argc, char** argv) {
  TrainOptions o;
  std::map<std::string, std::string> kv;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "-h" || key == "--help") {
      std::cout << kUsage;
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
  r = {o.train_begin, o.train_end};
  take("train-range", r, parse_range);
  std::tie(o.train_begin, o.train_end) = r;
  r = {o.test_begin, o.test_end};
  take("test-range", r, parse_range);
  std::tie(o.test_begin, o.test_end) = r;
  if (!kv.empty()) throw std::invalid_argument("unknown option --" + kv.begin()->first + "\n" + kUsage);
  if (o.input != "file" && o.input != "ttree-macro" && o.input != "ttree-pyroot")
    throw std::invalid_argument("--input must be file, ttree-macro or ttree-pyroot");
  if (o.input != "file") {
    // FedRun: the caller feeds the batches; --data names the file they come from, for the record.
    if (o.dataset != "mnist")
      throw std::invalid_argument("batches fed by the caller (--input " + o.input + ") are MNIST's");
  } else if (o.dataset == "gw-sim") {
    if (o.data.empty()) throw std::invalid_argument(std::string("--dataset gw-sim needs --data FILE\n") + kUsage);
  } else if (o.images.empty() || o.labels.empty()) {
    throw std::invalid_argument(std::string("--images and --labels are required\n") + kUsage);
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

// A run that cannot give a result: a non-finite loss, or a gradient that disagrees with autograd.
// Its record says so (status "failed") and the trainer exits 3.
struct TrainingFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The largest relative gradient error (float, against autograd in double) a run may have; beyond
// it the run is failed and kept out of every timing table (cladbench.options.GRADIENT_TOLERANCE).
constexpr double kGradientTolerance = 1e-4;

// The optimizer update of the arena engines, on flat arrays: the arithmetic of torch.optim's
// single-tensor SGD and Adam (default betas and eps), so every engine follows the same curve.
class FlatOptimizer {
 public:
  // gpu: the runtime of a CUDA run (p, g and the moments in device memory), else nullptr.
  FlatOptimizer(const std::string& kind, double lr, long n, const torch::Device& device, GpuRuntime* gpu)
      : adam_(kind == "adam"),
        lr_(lr),
        gpu_(gpu),
        m_(torch::zeros({adam_ ? n : 0}, torch::TensorOptions(torch::kFloat).device(device))),
        v_(torch::zeros_like(m_)) {}

  // Updates p from g and zeroes g as it goes: the next step's pullback accumulates into a clean
  // buffer without a separate pass over memory to clear it. Split over the same threads as the
  // GEMMs (torch's intra-op pool, kernels/parallel.hpp; inline at 1 thread).
  void step_and_zero(float* p, float* g, long n) {
    const float lr = float(lr_);
    if (!adam_ && gpu_) return gpu_->sgd_step_and_zero(p, g, n, lr);
    if (!adam_) {
      const auto range = [&](long begin, long end) { sgd(p + begin, g + begin, end - begin, lr); };
      parallel_for(n, kGrain, range);
      return;
    }
    ++t_;
    const double b1 = 0.9, b2 = 0.999;
    const float step_size = float(lr_ / (1 - std::pow(b1, t_)));
    const float bc2_sqrt = float(std::sqrt(1 - std::pow(b2, t_)));
    float* m = m_.data_ptr<float>();
    float* v = v_.data_ptr<float>();
    if (gpu_) return gpu_->adam_step_and_zero(p, g, m, v, n, step_size, bc2_sqrt);
    const auto range = [&](long begin, long end) {
      adam(p + begin, g + begin, m + begin, v + begin, end - begin, step_size, bc2_sqrt);
    };
    parallel_for(n, kGrain, range);
  }

 private:
  static constexpr long kGrain = 32768;  // elements per task: below this, threading costs more than it saves

  static void sgd(float* __restrict p, float* __restrict g, long n, float lr) {
    for (long i = 0; i < n; ++i) {
      p[i] -= lr * g[i];
      g[i] = 0.f;
    }
  }

  // torch.optim.Adam's arithmetic (no weight decay, no amsgrad).
  static void adam(float* __restrict p, float* __restrict g, float* __restrict m, float* __restrict v, long n,
                   float step_size, float bc2_sqrt) {
    const float one_minus_b1 = float(1 - 0.9), b2 = float(0.999), one_minus_b2 = float(1 - 0.999), eps = float(1e-8);
    for (long i = 0; i < n; ++i) {
      m[i] += one_minus_b1 * (g[i] - m[i]);
      v[i] = b2 * v[i] + one_minus_b2 * g[i] * g[i];
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
      g[i] = 0.f;
    }
  }

  bool adam_;
  double lr_;
  GpuRuntime* gpu_;
  torch::Tensor m_, v_;
  long t_ = 0;
};

std::unique_ptr<torch::optim::Optimizer> torch_optimizer(const std::string& kind, double lr,
                                                         std::vector<torch::Tensor> params) {
  if (kind == "adam") return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(lr));
  return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(lr));
}

// One gradient engine being trained. Batches arrive as contiguous tensors gathered beforehand.
class Engine {
 public:
  virtual ~Engine() = default;
  // One training step (gradient and update); returns the batch loss.
  virtual double step(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor& y64) = 0;
  // The loss gradient as a flat vector in the engine's layout, parameters unchanged.
  virtual torch::Tensor gradient(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor& y64) = 0;
  // Current parameters as a flat vector in the engine's layout.
  virtual torch::Tensor flat_params() = 0;
  virtual Layout layout() const = 0;
  // Whether the optimizer's update happens inside the pullback (plain SGD in the arena engine).
  virtual bool update_in_pullback() const { return false; }
};

// Kernel engine, arena: every buffer allocated once, a step is raw kernel calls (no heap).
// On a GPU (kernels for device cuda) the same buffers, the loss and its seed live in device memory.
class ArenaEngine : public Engine {
 public:
  ArenaEngine(const ModelKernels& k, const ModelShape& shape, const torch::Tensor& init, int batch,
              const TrainOptions& o, const torch::Device& device, GpuRuntime* gpu)
      : k_(k),
        shape_(shape),
        gpu_(gpu),
        sgd_in_pullback_(o.optimizer == "sgd" && !gpu),
        lr_(float(o.lr)),
        params_(init.to(device).clone()),
        grads_(torch::zeros_like(params_)),
        ws_(torch::zeros({shape.workspace_size(batch) + k.extra_workspace_per_sample * batch}, params_.options())),
        d_ws_(torch::zeros_like(ws_)),
        loss_(torch::zeros({1}, params_.options())),
        seed_(torch::ones_like(loss_)),
        opt_(o.optimizer, o.lr, params_.numel(), device, gpu) {}

  double step(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor&) override {
    if (sgd_in_pullback_) {
      // Plain SGD is the pullback itself: it adds d_loss * dL/dparams into its d_params, so with
      // d_params = params and the seed d_loss = -lr it leaves params - lr * grad, with no gradient
      // buffer and no pass of the optimizer. Exact because every pullback reads its layer's
      // weights before it adds into their adjoint, and no weight is read twice (docs/performance.md).
      return pullback(x, y32, params_.data_ptr<float>(), -lr_);
    }
    const float loss = pullback(x, y32, grads_.data_ptr<float>(), 1.f);
    opt_.step_and_zero(params_.data_ptr<float>(), grads_.data_ptr<float>(), params_.numel());
    return loss;
  }

  torch::Tensor gradient(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor&) override {
    pullback(x, y32, grads_.data_ptr<float>(), 1.f);
    torch::Tensor g = grads_.clone();
    grads_.zero_();
    return g;
  }
  torch::Tensor flat_params() override { return params_; }
  Layout layout() const override { return k_.layout; }
  bool update_in_pullback() const override { return sgd_in_pullback_; }

 private:
  // Adds seed * the batch's gradient into d_params (grads_, all zeros between calls, or params_).
  // The CPU kernels leave d_ws zeroed after a pullback (kernels/layers.hpp), so it is zeroed once,
  // when allocated; the GPU kernels do not, so there it is cleared per step.
  float pullback(const torch::Tensor& x, const torch::Tensor& y32, float* d_params, float seed) {
    float* d_ws = d_ws_.data_ptr<float>();
    float* loss = loss_.data_ptr<float>();
    float* d_loss = seed_.data_ptr<float>();
    if (gpu_) {
      gpu_->fill_zero(d_ws, d_ws_.numel());
    } else {
      *d_loss = seed;  // Clad's CPU pullback consumes its seed
    }
    k_.f32.pullback(params_.data_ptr<float>(), x.data_ptr<float>(), y32.data_ptr<int>(), shape_.dims.data(),
                    shape_.count(), int(x.size(0)), ws_.data_ptr<float>(), loss, d_params, nullptr, d_ws, d_loss);
    return gpu_ ? gpu_->read_scalar(loss) : *loss;
  }

  const ModelKernels& k_;
  ModelShape shape_;
  GpuRuntime* gpu_;
  bool sgd_in_pullback_;
  float lr_;
  torch::Tensor params_, grads_, ws_, d_ws_, loss_, seed_;
  FlatOptimizer opt_;
};

// Kernel engine, dynamic: the generic autograd::Function and torch.optim, allocating as autograd does.
class DynamicEngine : public Engine {
 public:
  DynamicEngine(const ModelKernels& k, const ModelShape& shape, const torch::Tensor& init, const TrainOptions& o,
                const torch::Device& device)
      : k_(k),
        shape_(shape),
        params_(init.to(device).clone().requires_grad_()),
        opt_(torch_optimizer(o.optimizer, o.lr, {params_})) {}

  double step(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor&) override {
    opt_->zero_grad();
    torch::Tensor loss = kernel_loss(k_, params_, x, y32, shape_);
    loss.backward();
    opt_->step();
    return loss.item<double>();
  }
  torch::Tensor gradient(const torch::Tensor& x, const torch::Tensor& y32, const torch::Tensor&) override {
    return torch::autograd::grad({kernel_loss(k_, params_, x, y32, shape_)}, {params_})[0];
  }
  torch::Tensor flat_params() override { return params_.detach(); }
  Layout layout() const override { return k_.layout; }

 private:
  const ModelKernels& k_;
  ModelShape shape_;
  torch::Tensor params_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
};

// The libtorch engine: torch::nn layers, cross_entropy and autograd, as a LibTorch user writes it.
class LibtorchEngine : public Engine {
 public:
  LibtorchEngine(const ModelShape& shape, const std::vector<torch::Tensor>& init, const TrainOptions& o,
                 const torch::Device& device) {
    torch::NoGradGuard no_grad;
    size_t next = 0;  // the next layer of `init`
    if (shape.model == "cnn") {
      model_->push_back(torch::nn::Unflatten(torch::nn::UnflattenOptions(1, {shape.dims[0], shape.dims[1]})));
      int c_in = shape.dims[0];
      for (int l = 0; l < shape.count(); ++l, ++next) {
        const int c_out = shape.dims[2 + 3 * l], k = shape.dims[3 + 3 * l], pool = shape.dims[4 + 3 * l];
        torch::nn::Conv1d conv(torch::nn::Conv1dOptions(c_in, c_out, k));
        conv->weight.copy_(init[2 * next].view({c_out, c_in, k}));
        conv->bias.copy_(init[2 * next + 1]);
        model_->push_back(conv);
        model_->push_back(torch::nn::MaxPool1d(pool));
        model_->push_back(torch::nn::ReLU());
        c_in = c_out;
      }
      model_->push_back(torch::nn::Flatten());
    }
    const size_t n_layers = init.size() / 2;
    for (; next < n_layers; ++next) {
      torch::nn::Linear linear(init[2 * next].size(1), init[2 * next].size(0));
      linear->weight.copy_(init[2 * next]);
      linear->bias.copy_(init[2 * next + 1]);
      model_->push_back(linear);
      if (next + 1 < n_layers) model_->push_back(torch::nn::ReLU());
    }
    model_->to(device);
    opt_ = torch_optimizer(o.optimizer, o.lr, model_->parameters());
  }

  double step(const torch::Tensor& x, const torch::Tensor&, const torch::Tensor& y64) override {
    opt_->zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model_->forward(x), y64);
    loss.backward();
    opt_->step();
    return loss.item<double>();
  }
  torch::Tensor gradient(const torch::Tensor& x, const torch::Tensor&, const torch::Tensor& y64) override {
    const auto params = model_->parameters();  // W0, b0, W1, b1, ... as in init_params (conv W as [c_out][c_in][k])
    const auto grads = torch::autograd::grad({torch::nn::functional::cross_entropy(model_->forward(x), y64)}, params);
    return pack_params(grads, Layout::RowMajor);  // row-major flattening is the same for [c_out][c_in*k]
  }
  torch::Tensor flat_params() override {
    torch::NoGradGuard no_grad;
    return pack_params(model_->parameters(), Layout::RowMajor);
  }
  Layout layout() const override { return Layout::RowMajor; }

 private:
  torch::nn::Sequential model_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
};

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

std::string utc_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Logits of a whole dataset, from the reference forward (the function every engine computes),
// in chunks so that a CNN's activations stay small.
torch::Tensor logits_of(Engine& engine, const Dataset& data, const ModelShape& shape) {
  torch::NoGradGuard no_grad;
  const torch::Tensor params = engine.flat_params().cpu();  // evaluated on the CPU, where the data sets are
  std::vector<torch::Tensor> chunks;
  for (long i = 0; i < data.x.size(0); i += 512)
    chunks.push_back(reference_logits(params, data.x.slice(0, i, i + 512), shape, engine.layout()));
  return torch::cat(chunks);
}

// Test loss and accuracy.
std::pair<double, double> evaluate(const torch::Tensor& logits, const Dataset& test) {
  const torch::Tensor y = test.labels.to(torch::kLong);
  const double loss = torch::nn::functional::cross_entropy(logits, y).item<double>();
  const double accuracy = logits.argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
  return {loss, accuracy};
}

void gw_metrics(Engine& engine, const Dataset& test, const torch::Tensor& test_logits, const std::string& real_path,
                const ModelShape& shape, json& record) {
  const torch::Tensor score = torch::softmax(test_logits, 1).select(1, 1);
  torch::Tensor real_score, real_t_start;
  if (!real_path.empty()) {
    const Dataset real = load_gw_windows(real_path);
    if (!real.t_start.defined()) throw std::runtime_error("GW windows file " + real_path + ": no windows/t_start_gps");
    real_score = torch::softmax(logits_of(engine, real, shape), 1).select(1, 1);
    real_t_start = real.t_start;
  }
  record.update(gw_scores_metrics(score, test.labels, test.snr, test.merger_offset, real_score, real_t_start));
}

// "8k16p4,16k8p4" -> {8, 16, 4, 16, 8, 4}: channels, kernel and pool of each conv block.
std::vector<int> parse_conv(const std::string& spec) {
  std::vector<int> out;
  std::stringstream ss(spec);
  for (std::string block; std::getline(ss, block, ',');) {
    int c = 0, k = 0, p = 0;
    if (std::sscanf(block.c_str(), "%dk%dp%d", &c, &k, &p) != 3 || c < 1 || k < 1 || p < 1)
      throw std::invalid_argument("--conv block '" + block + "' is not CkKpP, e.g. 8k16p4");
    out.insert(out.end(), {c, k, p});
  }
  return out;
}

// A model's shape from the options and the data: `features` per sample (channels x length) and
// `classes`.
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

// One training run: its engine, clock, checks and per-epoch results, fed one batch at a time,
// by train() from the data files or by FedRun from its caller (a TTree through the C ABI or PyROOT).
// The caller puts each batch into xb and yb32, or points them at it (contiguous, on device()): the
// samples of orders[epoch], in order; then calls step().
class Run {
 public:
  Run(const TrainOptions& o, const Variant& v, const ModelShape& shape, long n_train, json& record)
      : o_(o), v_(v), shape_(shape), record_(record), steps_per_epoch(int(n_train / o.batch)) {
    torch::set_num_threads(o.threads);
    record["model"] = shape.name();
    if (steps_per_epoch < 1) throw std::invalid_argument("--batch is larger than the training set");
    if (long(steps_per_epoch) * o.epochs <= o.warmup)
      throw std::invalid_argument("--warmup " + std::to_string(o.warmup) + " leaves no step to time (" +
                                  std::to_string(long(steps_per_epoch) * o.epochs) + " steps in all)");
    if (v.device == "cuda") {
      gpu_ = gpu_runtime();
      if (!gpu_) throw std::invalid_argument("this program was built without the GPU engine (libcladbench_cuda)");
      if (!torch::cuda::is_available())
        throw std::invalid_argument("no CUDA device: LibTorch " TORCH_VERSION
                                    " sees no GPU (a CPU-only build, or a node without one)");
      device_ = torch::Device(torch::kCUDA);
      record["gpu_model"] = gpu_->device_name();
      record["versions"]["cuda"] = gpu_->runtime_version();
    }
    record["timer"] = gpu_ ? "cuda-events" : "steady-clock";
    const std::vector<torch::Tensor> init = init_params(shape, o.seed);
    if (v.engine == "libtorch") {
      engine_ = std::make_unique<LibtorchEngine>(shape, init, o, device_);
    } else {
      const Layout layout = parse_layout(v.layout);
      const ModelKernels& k = require_kernels(shape.model, v.engine, layout, v.device);
      record["gradient_generator"] = k.generator;
      const torch::Tensor flat = pack_params(init, layout);
      if (v.alloc == "arena")
        engine_ = std::make_unique<ArenaEngine>(k, shape, flat, o.batch, o, device_, gpu_);
      else
        engine_ = std::make_unique<DynamicEngine>(k, shape, flat, o, device_);
    }
    record["update_in_pullback"] = engine_->update_in_pullback();
    xb = torch::empty({o.batch, shape.input_size()}, torch::TensorOptions(torch::kFloat).device(device_));
    yb32 = torch::empty({o.batch}, torch::TensorOptions(torch::kInt).device(device_));
    yb64_ = torch::empty({o.batch}, torch::TensorOptions(torch::kLong).device(device_));
    orders = epoch_orders(n_train, o.epochs, o.seed);
  }

  torch::Tensor xb, yb32;  // the batch the next step() trains on, on device()
  const torch::Device& device() const { return device_; }
  torch::Tensor orders;  // [epochs, n_train]: row e is the order of the samples in epoch e
  const int steps_per_epoch;

  // One timed step (gradient and update) on xb, yb32; returns the batch loss. The first step
  // first checks the engine's gradient. Throws TrainingFailed.
  double step() {
    if (epoch_ >= o_.epochs || step_in_epoch_ >= steps_per_epoch)
      throw std::logic_error("step " + std::to_string(step_in_epoch_ + 1) + " of epoch " + std::to_string(epoch_ + 1) +
                             ": the run has " + std::to_string(o_.epochs) + " epochs of " +
                             std::to_string(steps_per_epoch) + " steps");
    yb64_.copy_(yb32);
    if (global_step_ == 0) check_gradient();
    const uint64_t a0 = cladbench_alloc_count();
    const auto t0 = std::chrono::steady_clock::now();
    if (gpu_) gpu_->timer_start();
    const double loss = engine_->step(xb, yb32, yb64_);
    const double gpu_seconds = gpu_ ? gpu_->timer_stop_seconds() : 0;
    const auto t1 = std::chrono::steady_clock::now();
    const uint64_t a1 = cladbench_alloc_count();
    if (!std::isfinite(loss))
      throw TrainingFailed("non-finite loss (" + std::to_string(loss) + ") at step " + std::to_string(global_step_) +
                           " (epoch " + std::to_string(epoch_ + 1) + "); try a smaller --lr");
    if (global_step_ >= o_.warmup) {
      step_times_.push_back(gpu_ ? gpu_seconds : std::chrono::duration<double>(t1 - t0).count());
      allocations_ += a1 - a0;
    }
    loss_sum_ += loss;
    ++global_step_;
    ++step_in_epoch_;
    return loss;
  }

  // After an epoch's steps: its mean training loss, and the test loss and accuracy.
  void end_epoch(const Dataset& test) {
    if (step_in_epoch_ != steps_per_epoch)
      throw std::logic_error("epoch " + std::to_string(epoch_ + 1) + " ended after " + std::to_string(step_in_epoch_) +
                             " steps, not " + std::to_string(steps_per_epoch));
    test_logits = logits_of(*engine_, test, shape_);
    const auto [tl, ta] = evaluate(test_logits, test);
    train_loss_.push_back(loss_sum_ / steps_per_epoch);
    test_loss_.push_back(tl);
    test_acc_.push_back(ta);
    std::cerr << "[" << v_.engine << "-" << v_.layout << "-" << v_.alloc << "] epoch " << epoch_ + 1 << "/" << o_.epochs
              << ": train loss " << loss_sum_ / steps_per_epoch << ", test accuracy " << ta << std::endl;
    ++epoch_;
    step_in_epoch_ = 0;
    loss_sum_ = 0;
  }

  // After the last epoch: timing, allocations, floor and curves into the record.
  void finish() {
    if (epoch_ != o_.epochs)
      throw std::logic_error("the run finished after " + std::to_string(epoch_) + " of " + std::to_string(o_.epochs) +
                             " epochs");
    std::vector<double> sorted = step_times_;
    std::sort(sorted.begin(), sorted.end());
    const double median = quantile(sorted, 0.5);
    const bool counting = cladbench_alloc_count_active();
    record_["steps_per_epoch"] = steps_per_epoch;
    record_["steps_timed"] = sorted.size();
    record_["step_time_median_s"] = median;
    record_["step_time_q1_s"] = quantile(sorted, 0.25);
    record_["step_time_q3_s"] = quantile(sorted, 0.75);
    record_["samples_per_s"] = o_.batch / median;
    // The same process, the same threads: the step's GEMM calls alone, the floor it cannot beat.
    // On a GPU, the same GEMMs (step_gemms) as cuBLAS calls.
    record_["gemm_floor_median_s"] =
        !gpu_ ? gemm_floor_seconds(shape_, engine_->layout(), o_.batch)
              : gpu_->gemm_floor_seconds(step_gemms(shape_, engine_->layout(), o_.batch), 50);
    record_["allocs_per_step"] =
        counting && !sorted.empty() ? json(double(allocations_) / double(sorted.size())) : json();
    record_["epoch_train_loss"] = train_loss_;
    record_["epoch_test_loss"] = test_loss_;
    record_["epoch_test_accuracy"] = test_acc_;
    record_["final_loss"] = train_loss_.back();
    record_["test_accuracy"] = test_acc_.back();
  }

  Engine& engine() { return *engine_; }
  torch::Tensor test_logits;  // of the last end_epoch()

 private:
  // Gradient agreement: the engine's float gradient against LibTorch autograd in double on the
  // same parameters and batch.
  void check_gradient() {
    const torch::Tensor g = engine_->gradient(xb, yb32, yb64_);
    torch::Tensor p = engine_->flat_params().detach().to(torch::kDouble).requires_grad_();
    torch::Tensor ref_loss = reference_loss(p, xb.to(torch::kDouble), yb32, shape_, engine_->layout());
    const double err = max_rel_err(g, torch::autograd::grad({ref_loss}, {p})[0]);
    record_["grad_max_rel_err"] = err;
    if (!(err <= kGradientTolerance))
      throw TrainingFailed("the gradient disagrees with LibTorch autograd: max relative error " + std::to_string(err) +
                           " > " + std::to_string(kGradientTolerance) + " at the first step");
  }

  const TrainOptions& o_;
  const Variant& v_;
  ModelShape shape_;
  json& record_;
  GpuRuntime* gpu_ = nullptr;  // set for a CUDA run
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<Engine> engine_;
  torch::Tensor yb64_;
  std::vector<double> step_times_;
  uint64_t allocations_ = 0;
  long global_step_ = 0;
  int epoch_ = 0, step_in_epoch_ = 0;
  double loss_sum_ = 0;
  json train_loss_ = json::array(), test_loss_ = json::array(), test_acc_ = json::array();
};

// The file-fed run: the data files, the batches gathered by the epoch orders.
void train(const TrainOptions& o, const Variant& v, json& record) {
  const Dataset all = o.dataset == "gw-sim" ? load_gw_windows(o.data) : load_mnist(o.images, o.labels);
  const Dataset train_set = slice(all, o.train_begin, o.train_end, "--train-range");
  const bool test_file = !o.test_images.empty();
  const Dataset test_set =
      slice(test_file ? load_mnist(o.test_images, o.test_labels) : all, o.test_begin, o.test_end, "--test-range");
  const ModelShape shape = model_shape(o, int(all.x.size(1)), all.channels, all.length, all.classes);
  Run run(o, v, shape, train_set.x.size(0), record);
  // The training set where the run trains (the GPU's memory for a CUDA run).
  const torch::Tensor train_x = train_set.x.to(run.device()), train_labels = train_set.labels.to(run.device());
  // Batches are gathered ahead of their steps, before the clock starts (a step is gradient +
  // update): as many as fit in 1 MiB, at most 16, the rule of the Python engines
  // (cladbench.options.prefetch_steps, which says why), so every engine runs on ready batches.
  const long b = o.batch, batch_bytes = b * train_x.size(1) * long(sizeof(float));
  const int kPrefetch = int(std::clamp((1L << 20) / batch_bytes, 1L, 16L));
  const torch::Tensor ahead_x = torch::empty({kPrefetch * b, train_x.size(1)}, train_x.options());
  const torch::Tensor ahead_y = torch::empty({kPrefetch * b}, train_labels.options());
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    for (int first = 0; first < run.steps_per_epoch; first += kPrefetch) {
      const int n = std::min(kPrefetch, run.steps_per_epoch - first);
      const torch::Tensor idx = run.orders[epoch].slice(0, first * b, (first + n) * b).to(run.device());
      torch::Tensor xs = ahead_x.narrow(0, 0, n * b), ys = ahead_y.narrow(0, 0, n * b);
      torch::index_select_out(xs, train_x, 0, idx);
      torch::index_select_out(ys, train_labels, 0, idx);
      for (int i = 0; i < n; ++i) {
        run.xb = ahead_x.narrow(0, i * b, b);
        run.yb32 = ahead_y.narrow(0, i * b, b);
        run.step();
      }
    }
    run.end_epoch(test_set);
  }
  run.finish();
  if (o.dataset == "gw-sim") gw_metrics(run.engine(), test_set, run.test_logits, o.real, shape, record);
}

json base_record(const TrainOptions& o, const Variant& v) {
  return {
      {"status", "running"},
      {"purpose", o.purpose},
      {"error", nullptr},
      {"engine", v.engine},
      {"device", v.device},
      {"layout", v.layout},
      {"alloc", v.alloc},
      {"dataset", o.dataset},
      {"model", nullptr},
      {"batch", o.batch},
      {"threads", o.threads},
      {"seed", o.seed},
      {"repetition", o.repetition},
      {"optimizer", o.optimizer},
      {"lr", o.lr},
      {"epochs", o.epochs},
      {"warmup_steps", o.warmup},
      {"input", o.input},
      {"data_files", o.input != "file"       ? json{o.data}
                     : o.dataset == "gw-sim" ? json{o.data, o.real}
                                             : json{o.images, o.labels, o.test_images, o.test_labels}},
      {"train_range", {o.train_begin, o.train_end}},
      {"test_range", {o.test_begin, o.test_end}},
      {"gradient_generator", v.engine == "libtorch" ? "LibTorch " TORCH_VERSION " autograd" : ""},
      {"versions",
       {{"torch", TORCH_VERSION},
        {"clad", CLADBENCH_CLAD_VERSION},
        {"compiler", CLADBENCH_CXX_COMPILER},
        {"cuda", nullptr},
        {"python", nullptr}}},
      {"compile_flags", std::string(CLADBENCH_CXX_FLAGS) + " " + v.kernel_flags},
      {"git_commit", CLADBENCH_GIT_COMMIT},
      {"cpu_model", cpu_model()},
      {"hostname", hostname()},
      {"started_utc", utc_now()},
  };
}

// The process's totals, when the run is over.
void close_record(json& record, std::chrono::steady_clock::time_point t0) {
  record["wall_time_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  record["peak_rss_mb"] = peak_rss_mb();
}

void write_record(const std::string& path, const json& record) {
  if (path.empty()) {
    std::cout << record.dump(2) << std::endl;
    return;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << record.dump(2) << '\n';
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::rename(tmp.c_str(), path.c_str());  // a record is whole or absent
}

}  // namespace

int train_main(int argc, char** argv, const Variant& variant) {
  TrainOptions o;
  try {
    o = parse_args(argc, argv);
    if (o.input != "file")
      throw std::invalid_argument("--input " + o.input + ": cladbench-train reads files (--input file)");
  } catch (const std::exception& e) {
    std::cerr << "cladbench-train: " << e.what() << std::endl;
    return 2;
  }
  json record = base_record(o, variant);
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  try {
    train(o, variant, record);
    record["status"] = "ok";
  } catch (const TrainingFailed& e) {
    record["status"] = "failed";
    record["error"] = e.what();
    status = 3;
  } catch (const std::exception& e) {  // IdxError, invalid_argument, c10::Error
    std::cerr << "cladbench-train: " << e.what() << std::endl;
    return 2;
  }
  close_record(record, t0);
  if (status) std::cerr << "cladbench-train: training failed: " << record["error"].get<std::string>() << std::endl;
  write_record(o.out, record);
  return status;
}

struct FedRun::State {
  TrainOptions o;
  Variant v;
  json record;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  long n_train = 0;
  int features = 0, classes = 0;
  std::unique_ptr<Run> run;
  Dataset test;
};

FedRun::FedRun(const std::vector<std::string>& args, const Variant& variant, long n_train, int features, int classes)
    : state_(std::make_unique<State>()) {
  State& st = *state_;
  std::vector<std::string> argv_strings{"cladbench-fed-run"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  st.o = parse_args(int(argv.size()), argv.data());
  if (st.o.input == "file") throw std::invalid_argument("a fed run needs --input ttree-macro or ttree-pyroot");
  if (n_train != st.o.train_end - st.o.train_begin)
    throw std::invalid_argument("the training set has " + std::to_string(n_train) + " samples but --train-range " +
                                std::to_string(st.o.train_begin) + ":" + std::to_string(st.o.train_end) + " names " +
                                std::to_string(st.o.train_end - st.o.train_begin));
  if (features < 1 || classes < 2) throw std::invalid_argument("features must be positive and classes at least 2");
  st.v = variant;
  st.n_train = n_train;
  st.features = features;
  st.classes = classes;
  st.record = base_record(st.o, st.v);
  st.run = std::make_unique<Run>(st.o, st.v, model_shape(st.o, features, 1, features, classes), n_train, st.record);
}

FedRun::~FedRun() = default;

int FedRun::batch() const { return state_->o.batch; }
int FedRun::epochs() const { return state_->o.epochs; }
int FedRun::steps_per_epoch() const { return state_->run->steps_per_epoch; }
long FedRun::n_train() const { return state_->n_train; }
int FedRun::features() const { return state_->features; }

std::vector<long> FedRun::epoch_order(int epoch) const {
  if (epoch < 0 || epoch >= epochs()) throw std::invalid_argument("no epoch " + std::to_string(epoch));
  const torch::Tensor order = state_->run->orders[epoch].contiguous();
  return {order.data_ptr<int64_t>(), order.data_ptr<int64_t>() + order.numel()};
}

void FedRun::set_test(const float* x, const int* labels, long n) {
  if (n < 1) throw std::invalid_argument("the test set is empty");
  Dataset& test = state_->test;
  test.x = torch::from_blob(const_cast<float*>(x), {n, state_->features}, torch::kFloat).clone();
  test.labels = torch::from_blob(const_cast<int*>(labels), {n}, torch::kInt).clone();
  test.classes = state_->classes;
  test.length = state_->features;
}

void FedRun::set_version(const std::string& name, const std::string& value) {
  state_->record["versions"][name] = value;
}

double FedRun::step(const float* x, const int* labels) {
  State& st = *state_;
  if (failed()) throw std::logic_error("the run has failed: " + error());
  Run& run = *st.run;
  run.xb.copy_(torch::from_blob(const_cast<float*>(x), run.xb.sizes(), torch::kFloat));
  run.yb32.copy_(torch::from_blob(const_cast<int*>(labels), run.yb32.sizes(), torch::kInt));
  try {
    return run.step();
  } catch (const TrainingFailed& e) {
    st.record["status"] = "failed";
    st.record["error"] = e.what();
    return std::nan("");
  }
}

void FedRun::end_epoch() {
  if (!state_->test.x.defined()) throw std::logic_error("no test set: call set_test before the first end_epoch");
  state_->run->end_epoch(state_->test);
}

bool FedRun::failed() const { return state_->record["status"] == "failed"; }

std::string FedRun::error() const {
  const json& e = state_->record["error"];
  return e.is_string() ? e.get<std::string>() : "";
}

int FedRun::finish() {
  State& st = *state_;
  if (!failed()) {
    st.run->finish();
    st.record["status"] = "ok";
  }
  close_record(st.record, st.t0);
  write_record(st.o.out, st.record);
  return failed() ? 3 : 0;
}

}  // namespace cladbench
