// The training run of cladbench-train and of FedRun: the engine, the clock, the first-step
// gradient check, the per-epoch evaluation and the record's results. Options, engines, the
// optimizer and the record's writer live beside it (train_options, engines, optimizer, run_record).
#include "trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "../alloc/alloc_count.h"
#include "../cuda/runtime.hpp"
#include "../data/datasets.hpp"
#include "engines.hpp"
#include "../kernels/gemm_floor.hpp"
#include "gw_metrics.hpp"
#include "../data/idx.hpp"
#include "../data/npy.hpp"
#include "../torch/model_torch.hpp"
#include "run_record.hpp"
#include "train_defaults.hpp"  // kGradientTolerance, the prefetch rule: cladbench.options
#include "train_options.hpp"

namespace cladbench {

namespace {

// A run that cannot give a result: a non-finite loss, or a gradient that disagrees with autograd.
// Its record says so (status "failed") and the trainer exits 3.
struct TrainingFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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
    std::string generator;
    engine_ = make_engine(v, shape, init, o, device_, gpu_, generator);
    if (!generator.empty()) record["gradient_generator"] = generator;
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
    if (!(err <= generated::kGradientTolerance))
      throw TrainingFailed("the gradient disagrees with LibTorch autograd: max relative error " + std::to_string(err) +
                           " > " + std::to_string(generated::kGradientTolerance) + " at the first step");
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
  const int kPrefetch = int(std::clamp(generated::kPrefetchBytes / batch_bytes, 1L, generated::kPrefetchMax));
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
  if (!o.params_out.empty()) {  // before the record, which names the file
    const torch::Tensor params = run.engine().flat_params().detach().cpu().to(torch::kFloat).contiguous();
    write_npy(o.params_out, params.data_ptr<float>(), params.numel());
    record["params_file"] = o.params_out;
    record["model_kind"] = shape.model;
    record["model_dims"] = shape.dims;
  }
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
  if (st.o.input == "file")
    throw std::invalid_argument("a fed run needs --input ttree-macro, ttree-pyroot, rntuple-macro or rntuple-pyroot");
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
