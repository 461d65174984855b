#include "engines.hpp"

#include "optimizer.hpp"

namespace cladbench {

namespace {

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

}  // namespace

std::unique_ptr<Engine> make_engine(const Variant& v, const ModelShape& shape, const std::vector<torch::Tensor>& init,
                                    const TrainOptions& o, const torch::Device& device, GpuRuntime* gpu,
                                    std::string& generator) {
  if (v.engine == "libtorch") return std::make_unique<LibtorchEngine>(shape, init, o, device);
  const Layout layout = parse_layout(v.layout);
  const ModelKernels& k = require_kernels(shape.model, v.engine, layout, v.device);
  generator = k.generator;
  const torch::Tensor flat = pack_params(init, layout);
  if (v.alloc == "arena") return std::make_unique<ArenaEngine>(k, shape, flat, o.batch, o, device, gpu);
  return std::make_unique<DynamicEngine>(k, shape, flat, o, device);
}

}  // namespace cladbench
