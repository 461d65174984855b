#include "mlp_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/library.h>

#include <cmath>

namespace cladbench {

std::string MlpShape::name() const {
  std::string s = "mlp";
  for (int d : dims) s += "-" + std::to_string(d);
  return s;
}

std::vector<torch::Tensor> init_mlp_params(const MlpShape& shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> layers;
  for (int l = 0; l < shape.n_layers(); ++l) {
    const int in = shape.dims[l], out = shape.dims[l + 1];
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

std::vector<torch::Tensor> unpack_params(const torch::Tensor& flat, const MlpShape& shape, Layout layout) {
  TORCH_CHECK(flat.dim() == 1 && flat.numel() == shape.param_count(), "expected ",
              shape.param_count(), " parameters for ", shape.name(), ", got ", flat.sizes());
  std::vector<torch::Tensor> layers;
  long p = 0;
  for (int l = 0; l < shape.n_layers(); ++l) {
    const int in = shape.dims[l], out = shape.dims[l + 1];
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

torch::Tensor reference_mlp_logits(const torch::Tensor& params, const torch::Tensor& x,
                                   const MlpShape& shape, Layout layout) {
  const std::vector<torch::Tensor> layers = unpack_params(params, shape, layout);
  torch::Tensor h = x;
  for (int l = 0; l < shape.n_layers(); ++l) {
    h = torch::addmm(layers[2 * l + 1], h, layers[2 * l].t());
    if (l + 1 < shape.n_layers()) h = torch::relu(h);
  }
  return h;
}

torch::Tensor reference_mlp_loss(const torch::Tensor& params, const torch::Tensor& x,
                                 const torch::Tensor& labels, const MlpShape& shape, Layout layout) {
  return torch::nn::functional::cross_entropy(reference_mlp_logits(params, x, shape, layout),
                                              labels.to(torch::kLong));
}

double max_rel_err(const torch::Tensor& value, const torch::Tensor& reference) {
  const torch::Tensor ref = reference.to(torch::kDouble);
  const double scale = ref.abs().max().item<double>();
  const double diff = (value.to(torch::kDouble) - ref).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

const MlpKernels& require_mlp_kernels(const std::string& engine, Layout layout) {
  if (const MlpKernels* k = find_mlp_kernels(engine, layout)) return *k;
  std::string have;
  for (const MlpKernels* k : registered_mlp_kernels())
    have += (have.empty() ? "" : ", ") + k->engine + "/" + layout_name(k->layout);
  std::string why = engine == "clad" ? " (Clad was not found when this was built: run `cladbench doctor`)" : "";
  throw std::invalid_argument("engine '" + engine + "' with " + layout_name(layout) +
                              " weights is not built into this program" + why + "; available: " + have);
}

namespace {

void check_inputs(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                  const MlpShape& shape) {
  TORCH_CHECK(params.scalar_type() == torch::kFloat || params.scalar_type() == torch::kDouble,
              "params must be float32 or float64");
  TORCH_CHECK(x.scalar_type() == params.scalar_type(), "x and params must share a dtype");
  TORCH_CHECK(labels.scalar_type() == torch::kInt, "labels must be int32");
  TORCH_CHECK(params.dim() == 1 && params.numel() == shape.param_count(), "expected ",
              shape.param_count(), " parameters for ", shape.name());
  TORCH_CHECK(x.dim() == 2 && x.size(1) == shape.dims[0], "x must be [batch, ", shape.dims[0], "]");
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == x.size(0), "labels must be [batch]");
  TORCH_CHECK(params.device().is_cpu() && x.device().is_cpu(), "the MLP kernels run on CPU tensors");
  // A plain loop: this runs on every training step of the dynamic engines.
  const int classes = shape.dims.back();
  const torch::Tensor ys = labels.contiguous();
  const int* y = ys.data_ptr<int>();
  for (int64_t i = 0; i < ys.numel(); ++i)
    TORCH_CHECK(y[i] >= 0 && y[i] < classes, "labels must lie in [0, ", classes, "), got ", y[i]);
}

// Runs the kernels' forward, or their pullback when gradients are wanted (d_params/d_x defined).
// The loss is a scalar, so its pullback seeded with 1 is the whole Jacobian: backward only scales it.
template <class T>
T run_kernels(const MlpKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
              const torch::Tensor& labels, const MlpShape& shape, torch::Tensor d_params, torch::Tensor d_x) {
  const int batch = int(x.size(0));
  const long ws_size = mlp_workspace_size(shape.dims.data(), shape.n_layers(), batch);
  torch::Tensor ws = torch::empty({ws_size}, params.options());  // dynamic: allocated per call
  T loss = 0;
  const MlpFns<T>& fns = kernels.fns<T>();
  if (!d_params.defined()) {
    fns.forward(params.data_ptr<T>(), x.data_ptr<T>(), labels.data_ptr<int>(), shape.dims.data(),
                shape.n_layers(), batch, ws.data_ptr<T>(), &loss);
    return loss;
  }
  torch::Tensor d_ws = torch::zeros({ws_size}, params.options());
  T seed = 1;
  fns.pullback(params.data_ptr<T>(), x.data_ptr<T>(), labels.data_ptr<int>(), shape.dims.data(),
               shape.n_layers(), batch, ws.data_ptr<T>(), &loss, d_params.data_ptr<T>(),
               d_x.defined() ? d_x.data_ptr<T>() : nullptr, d_ws.data_ptr<T>(), &seed);
  return loss;
}

torch::Tensor kernel_loss(const MlpKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                          const torch::Tensor& labels, const MlpShape& shape, torch::Tensor d_params = {},
                          torch::Tensor d_x = {}) {
  check_inputs(params, x, labels, shape);
  const torch::Tensor p = params.contiguous(), xs = x.contiguous(), ys = labels.contiguous();
  if (params.scalar_type() == torch::kFloat)
    return torch::tensor(run_kernels<float>(kernels, p, xs, ys, shape, d_params, d_x));
  return torch::tensor(run_kernels<double>(kernels, p, xs, ys, shape, d_params, d_x), torch::kDouble);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The one autograd wrapper every kernel engine goes through. Forward runs the pullback right away
// (Clad's gradient includes the forward sweep), so backward is a scaling of the saved gradients.
struct MlpLossFunction : torch::autograd::Function<MlpLossFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& params, const torch::Tensor& x,
                               const torch::Tensor& labels, const MlpKernels* kernels, const MlpShape& shape) {
    torch::Tensor d_params = torch::zeros_like(params, torch::MemoryFormat::Contiguous);
    torch::Tensor d_x = x.requires_grad() ? torch::zeros_like(x, torch::MemoryFormat::Contiguous) : torch::Tensor();
    torch::Tensor loss = kernel_loss(*kernels, params, x, labels, shape, d_params, d_x);
    ctx->save_for_backward({d_params, d_x});
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor g = grad_out[0];
    return {saved[0] * g, saved[1].defined() ? saved[1] * g : torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

MlpShape shape_from(c10::IntArrayRef dims) {
  MlpShape shape;
  for (int64_t d : dims) shape.dims.push_back(int(d));
  TORCH_CHECK(shape.dims.size() >= 2, "dims needs an input and an output width");
  return shape;
}

// torch.ops.cladbench.mlp_loss: without autograd, the kernels' forward ...
torch::Tensor mlp_loss_op_cpu(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                              c10::IntArrayRef dims, c10::string_view engine, c10::string_view layout) {
  const MlpKernels& k = require_mlp_kernels(std::string(engine), parse_layout(layout));
  return kernel_loss(k, params, x, labels, shape_from(dims));
}

// ... and with autograd, the generic wrapper.
torch::Tensor mlp_loss_op_autograd(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                                   c10::IntArrayRef dims, c10::string_view engine, c10::string_view layout) {
  const MlpKernels& k = require_mlp_kernels(std::string(engine), parse_layout(layout));
  return MlpLossFunction::apply(params, x, labels, &k, shape_from(dims));
}

// The reference engine: the contract's pullback computed by LibTorch autograd.
template <Layout L, class T>
void autograd_pullback(const T* params, const T* x, const int* labels, const int* dims, int n_layers, int batch,
                       T* ws, T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  (void)ws, (void)d_ws;
  const auto dtype = torch::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const MlpShape shape{std::vector<int>(dims, dims + n_layers + 1)};
  torch::Tensor P = torch::from_blob(const_cast<T*>(params), {int64_t(shape.param_count())}, dtype).clone().requires_grad_();
  torch::Tensor X = torch::from_blob(const_cast<T*>(x), {int64_t(batch), int64_t(dims[0])}, dtype).clone().requires_grad_(d_x != nullptr);
  torch::Tensor Y = torch::from_blob(const_cast<int*>(labels), {int64_t(batch)}, torch::kInt);
  torch::Tensor l = reference_mlp_loss(P, X, Y, shape, L);
  l.backward();
  *loss = l.item<T>();
  const T seed = *d_loss;
  *d_loss = 0;
  torch::from_blob(d_params, {int64_t(shape.param_count())}, dtype).add_(P.grad(), seed);
  if (d_x) torch::from_blob(d_x, {int64_t(batch), int64_t(dims[0])}, dtype).add_(X.grad(), seed);
}

template <Layout L, class T>
void autograd_forward(const T* params, const T* x, const int* labels, const int* dims, int n_layers, int batch,
                      T* ws, T* loss) {
  T seed = 0;
  std::vector<T> d_params(mlp_param_count(dims, n_layers));
  autograd_pullback<L, T>(params, x, labels, dims, n_layers, batch, ws, loss, d_params.data(), nullptr, nullptr, &seed);
}

template <Layout L>
MlpKernels autograd_kernels() {
  MlpKernels k{"autograd", L, "LibTorch " TORCH_VERSION " autograd"};
  k.f32 = {autograd_forward<L, float>, autograd_pullback<L, float>};
  k.f64 = {autograd_forward<L, double>, autograd_pullback<L, double>};
  return k;
}

const bool registered = register_mlp_kernels(autograd_kernels<Layout::RowMajor>()) &&
                        register_mlp_kernels(autograd_kernels<Layout::ColMajor>());

}  // namespace

torch::Tensor mlp_loss(const MlpKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                       const torch::Tensor& labels, const MlpShape& shape) {
  return MlpLossFunction::apply(params, x, labels, &kernels, shape);
}

TORCH_LIBRARY(cladbench, m) {
  m.def("mlp_loss(Tensor params, Tensor x, Tensor labels, int[] dims, str engine, str layout) -> Tensor");
}

TORCH_LIBRARY_IMPL(cladbench, CPU, m) { m.impl("mlp_loss", mlp_loss_op_cpu); }

TORCH_LIBRARY_IMPL(cladbench, Autograd, m) { m.impl("mlp_loss", mlp_loss_op_autograd); }

}  // namespace cladbench
