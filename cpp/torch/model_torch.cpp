#include "model_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/library.h>

#include <cmath>

namespace cladbench {

int ModelShape::count() const { return model == "cnn" ? int(dims.size() - 4) / 3 : int(dims.size()) - 1; }

long ModelShape::param_count() const {
  return model == "cnn" ? cnn_param_count(dims.data(), count()) : mlp_param_count(dims.data(), count());
}

long ModelShape::workspace_size(int batch) const {
  return model == "cnn" ? cnn_workspace_size(dims.data(), count(), batch)
                        : mlp_workspace_size(dims.data(), count(), batch);
}

long ModelShape::logits_offset(int batch) const {
  return model == "cnn" ? cnn_logits_offset(dims.data(), count(), batch)
                        : mlp_logits_offset(dims.data(), count(), batch);
}

int ModelShape::input_size() const { return model == "cnn" ? dims[0] * dims[1] : dims[0]; }

std::vector<std::pair<int, int>> ModelShape::layer_sizes() const {
  std::vector<std::pair<int, int>> sizes;
  if (model != "cnn") {
    for (int l = 0; l < count(); ++l) sizes.push_back({dims[l], dims[l + 1]});
    return sizes;
  }
  int c_in = dims[0], len = dims[1];
  for (int l = 0; l < count(); ++l) {
    const int c_out = dims[2 + 3 * l], k = dims[3 + 3 * l], pool = dims[4 + 3 * l];
    sizes.push_back({c_in * k, c_out});
    c_in = c_out;
    len = cnn_conv_out(len, k) / pool;
  }
  sizes.push_back({c_in * len, dims[dims.size() - 2]});
  sizes.push_back({dims[dims.size() - 2], dims.back()});
  return sizes;
}

std::string ModelShape::name() const {
  if (model != "cnn") {
    std::string s = "mlp";
    for (int d : dims) s += "-" + std::to_string(d);
    return s;
  }
  std::string s = "cnn-gw-" + std::to_string(dims[0]) + "x" + std::to_string(dims[1]);
  for (int l = 0; l < count(); ++l)
    s += "-" + std::to_string(dims[2 + 3 * l]) + "k" + std::to_string(dims[3 + 3 * l]) + "p" +
         std::to_string(dims[4 + 3 * l]);
  return s + "-" + std::to_string(dims[dims.size() - 2]) + "-" + std::to_string(dims.back());
}

std::vector<torch::Tensor> init_params(const ModelShape& shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> layers;
  for (auto [in, out] : shape.layer_sizes()) {
    const double bound = 1.0 / std::sqrt(double(in));
    layers.push_back(torch::rand({out, in}, gen, torch::kFloat) * (2 * bound) - bound);
    layers.push_back(torch::rand({out}, gen, torch::kFloat) * (2 * bound) - bound);
  }
  return layers;
}

torch::Tensor pack_params(const std::vector<torch::Tensor>& layers, Layout layout) {
  std::vector<torch::Tensor> flat;
  for (size_t i = 0; i < layers.size(); i += 2) {
    const torch::Tensor& W = layers[i];
    flat.push_back((layout == Layout::RowMajor ? W : W.t()).contiguous().view(-1));
    flat.push_back(layers[i + 1].contiguous().view(-1));
  }
  return torch::cat(flat);
}

std::vector<torch::Tensor> unpack_params(const torch::Tensor& flat, const ModelShape& shape, Layout layout) {
  TORCH_CHECK(flat.dim() == 1 && flat.numel() == shape.param_count(), "expected ", shape.param_count(),
              " parameters for ", shape.name(), ", got ", flat.sizes());
  std::vector<torch::Tensor> layers;
  long p = 0;
  for (auto [in, out] : shape.layer_sizes()) {
    torch::Tensor W = flat.narrow(0, p, long(in) * out);
    layers.push_back(layout == Layout::RowMajor ? W.view({out, in}) : W.view({in, out}).t());
    layers.push_back(flat.narrow(0, p + long(in) * out, out));
    p += long(in) * out + out;
  }
  return layers;
}

torch::Tensor epoch_orders(long n, int epochs, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);  // independent of the init stream
  std::vector<torch::Tensor> orders;
  for (int e = 0; e < epochs; ++e) orders.push_back(torch::randperm(n, gen, torch::kLong));
  return torch::stack(orders);
}

torch::Tensor reference_logits(const torch::Tensor& params, const torch::Tensor& x, const ModelShape& shape,
                               Layout layout) {
  const std::vector<torch::Tensor> layers = unpack_params(params, shape, layout);
  torch::Tensor h = x;
  size_t next = 0;  // the next layer's index in `layers` / 2
  if (shape.model == "cnn") {
    const int n_conv = shape.count();
    h = x.reshape({x.size(0), shape.dims[0], shape.dims[1]});  // channels-first, as torch's conv1d wants
    int c_in = shape.dims[0];
    for (int l = 0; l < n_conv; ++l, ++next) {
      const int c_out = shape.dims[2 + 3 * l], k = shape.dims[3 + 3 * l], pool = shape.dims[4 + 3 * l];
      h = torch::conv1d(h, layers[2 * next].reshape({c_out, c_in, k}), layers[2 * next + 1]);
      h = torch::relu(torch::max_pool1d(h, pool));
      c_in = c_out;
    }
    h = h.flatten(1);  // [batch][channels][time], flattened as torch's Flatten does
  }
  const size_t n_layers = layers.size() / 2;
  for (; next < n_layers; ++next) {
    h = torch::addmm(layers[2 * next + 1], h, layers[2 * next].t());
    if (next + 1 < n_layers) h = torch::relu(h);
  }
  return h;
}

torch::Tensor reference_loss(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                             const ModelShape& shape, Layout layout) {
  return torch::nn::functional::cross_entropy(reference_logits(params, x, shape, layout), labels.to(torch::kLong));
}

double max_rel_err(const torch::Tensor& value, const torch::Tensor& reference) {
  const torch::Tensor ref = reference.to(torch::kDouble);
  const double scale = ref.abs().max().item<double>();
  const double diff = (value.to(torch::kDouble) - ref).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

const ModelKernels& require_kernels(const std::string& model, const std::string& engine, Layout layout,
                                    const std::string& device) {
  if (const ModelKernels* k = find_kernels(model, engine, layout, device)) return *k;
  std::string have;
  for (const ModelKernels* k : registered_kernels())
    if (k->model == model)
      have += (have.empty() ? "" : ", ") + k->device + "/" + k->engine + "/" + layout_name(k->layout);
  std::string why = device != "cpu"    ? " (the GPU engine is the clad engine's row-major MLP: docs/cuda.md)"
                    : engine == "clad" ? " (Clad was not found when this was built: run `cladbench doctor`)"
                                       : "";
  throw std::invalid_argument(model + " engine '" + engine + "' with " + layout_name(layout) + " weights on " + device +
                              " is not built into this program" + why + "; available: " + have);
}

namespace {

void check_inputs(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                  const torch::Tensor& labels, const ModelShape& shape) {
  TORCH_CHECK(params.scalar_type() == torch::kFloat || params.scalar_type() == torch::kDouble,
              "params must be float32 or float64");
  TORCH_CHECK(x.scalar_type() == params.scalar_type(), "x and params must share a dtype");
  TORCH_CHECK(labels.scalar_type() == torch::kInt, "labels must be int32");
  TORCH_CHECK(params.dim() == 1 && params.numel() == shape.param_count(), "expected ", shape.param_count(),
              " parameters for ", shape.name());
  TORCH_CHECK(x.dim() == 2 && x.size(1) == shape.input_size(), "x must be [batch, ", shape.input_size(), "]");
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == x.size(0), "labels must be [batch]");
  const bool on_gpu = kernels.device == "cuda";
  TORCH_CHECK(params.device() == x.device() && labels.device() == x.device() && params.is_cuda() == on_gpu, "the ",
              kernels.device, " kernels take params, x and labels on ", on_gpu ? "one CUDA device" : "the CPU");
  if (on_gpu) TORCH_CHECK(params.scalar_type() == torch::kFloat, "the GPU engine trains in float32");
  // A plain loop: this runs on every training step of the dynamic engines.
  const int classes = shape.classes();
  const torch::Tensor ys = labels.contiguous().cpu();
  const int* y = ys.data_ptr<int>();
  for (int64_t i = 0; i < ys.numel(); ++i)
    TORCH_CHECK(y[i] >= 0 && y[i] < classes, "labels must lie in [0, ", classes, "), got ", y[i]);
}

// Runs the kernels' forward, or their pullback when gradients are wanted (d_params defined).
// The loss is a scalar, so its pullback seeded with 1 is the whole Jacobian: backward only scales it.
template <class T>
T run_kernels(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
              const torch::Tensor& labels, const ModelShape& shape, torch::Tensor d_params, torch::Tensor d_x) {
  const int batch = int(x.size(0));
  torch::Tensor ws = torch::empty({shape.workspace_size(batch) + kernels.extra_workspace_per_sample * batch},
                                  params.options());  // dynamic: per call
  // The loss and its seed: on the stack, or in device memory for the GPU kernels.
  T host_scalars[2] = {0, 1};
  const torch::Tensor device_scalars =
      kernels.device == "cuda" ? torch::tensor({T(0), T(1)}, params.options()) : torch::Tensor();
  T* loss = device_scalars.defined() ? device_scalars.data_ptr<T>() : host_scalars;
  T* seed = loss + 1;
  const KernelFns<T>& fns = kernels.fns<T>();
  if (!d_params.defined()) {
    fns.forward(params.data_ptr<T>(), x.data_ptr<T>(), labels.data_ptr<int>(), shape.dims.data(), shape.count(), batch,
                ws.data_ptr<T>(), loss);
  } else {
    torch::Tensor d_ws = torch::zeros_like(ws);
    fns.pullback(params.data_ptr<T>(), x.data_ptr<T>(), labels.data_ptr<int>(), shape.dims.data(), shape.count(), batch,
                 ws.data_ptr<T>(), loss, d_params.data_ptr<T>(), d_x.defined() ? d_x.data_ptr<T>() : nullptr,
                 d_ws.data_ptr<T>(), seed);
  }
  return device_scalars.defined() ? device_scalars[0].item<T>() : host_scalars[0];
}

torch::Tensor run_loss(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                       const torch::Tensor& labels, const ModelShape& shape, torch::Tensor d_params = {},
                       torch::Tensor d_x = {}) {
  check_inputs(kernels, params, x, labels, shape);
  const torch::Tensor p = params.contiguous(), xs = x.contiguous(), ys = labels.contiguous();
  const auto on_params_device = torch::TensorOptions().device(params.device());
  if (params.scalar_type() == torch::kFloat)
    return torch::tensor(run_kernels<float>(kernels, p, xs, ys, shape, d_params, d_x), on_params_device);
  return torch::tensor(run_kernels<double>(kernels, p, xs, ys, shape, d_params, d_x),
                       on_params_device.dtype(torch::kDouble));
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The one autograd wrapper every kernel engine goes through. Forward runs the pullback right away
// (Clad's gradient includes the forward sweep), so backward is a scaling of the saved gradients.
struct KernelLossFunction : torch::autograd::Function<KernelLossFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& params, const torch::Tensor& x,
                               const torch::Tensor& labels, const ModelKernels* kernels, const ModelShape& shape) {
    torch::Tensor d_params = torch::zeros_like(params, torch::MemoryFormat::Contiguous);
    torch::Tensor d_x = x.requires_grad() ? torch::zeros_like(x, torch::MemoryFormat::Contiguous) : torch::Tensor();
    torch::Tensor loss = run_loss(*kernels, params, x, labels, shape, d_params, d_x);
    ctx->save_for_backward({d_params, d_x});
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor g = grad_out[0];
    return {saved[0] * g, saved[1].defined() ? saved[1] * g : torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

ModelShape shape_from(c10::string_view model, c10::IntArrayRef dims) {
  ModelShape shape{std::string(model), {}};
  TORCH_CHECK(shape.model == "mlp" || shape.model == "cnn", "model must be mlp or cnn, not ", shape.model);
  for (int64_t d : dims) shape.dims.push_back(int(d));
  TORCH_CHECK(
      shape.model == "mlp" ? shape.dims.size() >= 2 : shape.dims.size() >= 7 && (shape.dims.size() - 4) % 3 == 0,
      "dims do not describe a ", shape.model, " (see cnn.hpp / mlp.hpp)");
  return shape;
}

// torch.ops.cladbench.loss: without autograd, the kernels' forward ...
torch::Tensor loss_op_cpu(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                          c10::string_view model, c10::IntArrayRef dims, c10::string_view engine,
                          c10::string_view layout) {
  const ModelKernels& k = require_kernels(std::string(model), std::string(engine), parse_layout(layout));
  return run_loss(k, params, x, labels, shape_from(model, dims));
}

// ... and with autograd, the generic wrapper.
torch::Tensor loss_op_autograd(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                               c10::string_view model, c10::IntArrayRef dims, c10::string_view engine,
                               c10::string_view layout) {
  const ModelKernels& k = require_kernels(std::string(model), std::string(engine), parse_layout(layout));
  return KernelLossFunction::apply(params, x, labels, &k, shape_from(model, dims));
}

// The reference engine: the contract's pullback computed by LibTorch autograd.
template <bool Cnn, Layout L, class T>
void autograd_pullback(const T* params, const T* x, const int* labels, const int* dims, int count, int batch, T* ws,
                       T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  (void)ws, (void)d_ws;
  const auto dtype = torch::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const ModelShape shape{Cnn ? "cnn" : "mlp", std::vector<int>(dims, dims + (Cnn ? 4 + 3 * count : count + 1))};
  torch::Tensor P =
      torch::from_blob(const_cast<T*>(params), {int64_t(shape.param_count())}, dtype).clone().requires_grad_();
  torch::Tensor X = torch::from_blob(const_cast<T*>(x), {int64_t(batch), int64_t(shape.input_size())}, dtype)
                        .clone()
                        .requires_grad_(d_x != nullptr);
  torch::Tensor Y = torch::from_blob(const_cast<int*>(labels), {int64_t(batch)}, torch::kInt);
  torch::Tensor l = reference_loss(P, X, Y, shape, L);
  l.backward();
  *loss = l.item<T>();
  const T seed = *d_loss;
  *d_loss = 0;
  torch::from_blob(d_params, {int64_t(shape.param_count())}, dtype).add_(P.grad(), seed);
  if (d_x) torch::from_blob(d_x, {int64_t(batch), int64_t(shape.input_size())}, dtype).add_(X.grad(), seed);
}

template <bool Cnn, Layout L, class T>
void autograd_forward(const T* params, const T* x, const int* labels, const int* dims, int count, int batch, T* ws,
                      T* loss) {
  T seed = 0;
  const long n = Cnn ? cnn_param_count(dims, count) : mlp_param_count(dims, count);
  std::vector<T> d_params(n);
  autograd_pullback<Cnn, L, T>(params, x, labels, dims, count, batch, ws, loss, d_params.data(), nullptr, nullptr,
                               &seed);
}

template <bool Cnn, Layout L>
ModelKernels autograd_kernels() {
  ModelKernels k{Cnn ? "cnn" : "mlp", "autograd", L, "LibTorch " TORCH_VERSION " autograd"};
  k.f32 = {autograd_forward<Cnn, L, float>, autograd_pullback<Cnn, L, float>};
  k.f64 = {autograd_forward<Cnn, L, double>, autograd_pullback<Cnn, L, double>};
  return k;
}

const bool registered = register_kernels(autograd_kernels<false, Layout::RowMajor>()) &&
                        register_kernels(autograd_kernels<false, Layout::ColMajor>()) &&
                        register_kernels(autograd_kernels<true, Layout::RowMajor>()) &&
                        register_kernels(autograd_kernels<true, Layout::ColMajor>());

}  // namespace

torch::Tensor kernel_loss(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                          const torch::Tensor& labels, const ModelShape& shape) {
  return KernelLossFunction::apply(params, x, labels, &kernels, shape);
}

TORCH_LIBRARY(cladbench, m) {
  m.def("loss(Tensor params, Tensor x, Tensor labels, str model, int[] dims, str engine, str layout) -> Tensor");
}

TORCH_LIBRARY_IMPL(cladbench, CPU, m) { m.impl("loss", loss_op_cpu); }

TORCH_LIBRARY_IMPL(cladbench, Autograd, m) { m.impl("loss", loss_op_autograd); }

}  // namespace cladbench
