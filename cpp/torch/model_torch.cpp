#include "model_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace cladbench {

int ModelShape::count() const {
  if (user) return 0;
  return model == "cnn" ? int(dims.size() - 4) / 3 : int(dims.size()) - 1;
}

long ModelShape::param_count() const {
  if (user) return user->sizes.params;
  return model == "cnn" ? cnn_param_count(dims.data(), count()) : mlp_param_count(dims.data(), count());
}

long ModelShape::workspace_size(int batch) const {
  if (user) return user->sizes.workspace * batch;
  return model == "cnn" ? cnn_workspace_size(dims.data(), count(), batch)
                        : mlp_workspace_size(dims.data(), count(), batch);
}

long ModelShape::logits_offset(int batch) const {
  if (user) return user->sizes.output_offset * batch;
  return model == "cnn" ? cnn_logits_offset(dims.data(), count(), batch)
                        : mlp_logits_offset(dims.data(), count(), batch);
}

long ModelShape::scratch_size() const { return model == "cnn" ? cnn_scratch_size(dims.data(), count()) : 0; }

int ModelShape::input_size() const {
  if (user) return int(user->sizes.inputs);
  return model == "cnn" ? dims[0] * dims[1] : dims[0];
}

int ModelShape::classes() const { return user ? int(user->sizes.outputs) : dims.back(); }

ModelShape shape_of(const std::string& model, const std::vector<int>& dims) {
  if (model == "mlp" || model == "cnn") return ModelShape{model, dims};
  const UserModel* user = find_user_model(model);
  if (!user)
    throw std::invalid_argument(
        "model must be mlp, cnn or a model loaded with cladbench.compile_model / "
        "cladbench::load_model; no model '" +
        model + "' is loaded");
  if (!dims.empty())
    throw std::invalid_argument("the user model " + model + " (" + user->source +
                                ") has fixed sizes: pass dims [], not " + std::to_string(dims.size()) + " dims");
  return ModelShape{model, dims, user};
}

std::vector<std::pair<int, int>> ModelShape::layer_sizes() const {
  std::vector<std::pair<int, int>> sizes;
  if (user) return sizes;  // its layers are its own
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
  if (user) return model;
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

std::vector<int> parse_conv(const std::string& spec) {
  std::vector<int> out;
  std::stringstream ss(spec);
  for (std::string block; std::getline(ss, block, ',');) {
    int c = 0, k = 0, p = 0;
    char rest = 0;
    if (std::sscanf(block.c_str(), "%dk%dp%d%c", &c, &k, &p, &rest) != 3 || c < 1 || k < 1 || p < 1)
      throw std::invalid_argument("conv block '" + block + "' is not <c_out>k<kernel>p<pool>, e.g. 8k16p4");
    out.insert(out.end(), {c, k, p});
  }
  if (out.empty()) throw std::invalid_argument("conv '" + spec + "' has no blocks");
  return out;
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

// The reference engine runs autograd inside a kernel: on, whatever the calling thread's state (an
// op's autograd wrapper turns grad mode off; a torch dispatch mode, as opcheck's, excludes autograd).
struct InnerAutograd {
  static c10::DispatchKeySet excluded() {
    return c10::impl::tls_local_dispatch_key_set().excluded_ - c10::autograd_dispatch_keyset_with_ADInplaceOrView;
  }
  c10::impl::ForceDispatchKeyGuard keys{c10::impl::tls_local_dispatch_key_set().included_, excluded()};
  torch::AutoGradMode grad_mode{true};
};

// The contract's pointers as the reference engine's tensors: the model's shape, and params and x as
// tensors over them; with `grad`, leaf copies that record gradients (x's only when d_x is wanted).
template <bool Cnn, class T>
struct ReferenceArgs {
  ModelShape shape;
  torch::Tensor P, X;
  torch::TensorOptions dtype = torch::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);

  ReferenceArgs(const T* params, const T* x, const int* dims, int count, int batch, bool grad, bool x_grad)
      : shape{Cnn ? "cnn" : "mlp", std::vector<int>(dims, dims + (Cnn ? 4 + 3 * count : count + 1))} {
    P = torch::from_blob(const_cast<T*>(params), {int64_t(shape.param_count())}, dtype);
    X = torch::from_blob(const_cast<T*>(x), {int64_t(batch), int64_t(shape.input_size())}, dtype);
    if (grad) {
      P = P.clone().requires_grad_();
      X = X.clone().requires_grad_(x_grad);
    }
  }
};

// The reference engine: the contract's pullback computed by LibTorch autograd.
template <bool Cnn, Layout L, class T>
void autograd_pullback(const T* params, const T* x, const int* labels, const int* dims, int count, int batch, T* ws,
                       T* loss, T* d_params, T* d_x, T* d_ws, T* d_loss) {
  (void)ws, (void)d_ws;
  const ReferenceArgs<Cnn, T> args(params, x, dims, count, batch, true, d_x != nullptr);
  const auto& [shape, P, X, dtype] = args;
  torch::Tensor Y = torch::from_blob(const_cast<int*>(labels), {int64_t(batch)}, torch::kInt);
  const InnerAutograd autograd;
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

// The logits, into ws at the model's logits offset (the reference engine uses no other part of ws).
template <bool Cnn, Layout L, class T>
void autograd_logits(const T* params, const T* x, const int* dims, int count, int batch, T* ws) {
  const torch::NoGradGuard no_grad;
  const ReferenceArgs<Cnn, T> args(params, x, dims, count, batch, false, false);
  const auto& [shape, P, X, dtype] = args;
  torch::from_blob(ws + shape.logits_offset(batch), {int64_t(batch), int64_t(shape.classes())}, dtype)
      .copy_(reference_logits(P, X, shape, L));
}

// Their pullback: autograd of the reference logits (recomputed) seeded with d_ws' logits, consumed.
template <bool Cnn, Layout L, class T>
void autograd_logits_pullback(const T* params, const T* x, const int* dims, int count, int batch, T* ws, T* d_params,
                              T* d_x, T* d_ws) {
  (void)ws;
  const ReferenceArgs<Cnn, T> args(params, x, dims, count, batch, true, d_x != nullptr);
  const auto& [shape, P, X, dtype] = args;
  torch::Tensor seed =
      torch::from_blob(d_ws + shape.logits_offset(batch), {int64_t(batch), int64_t(shape.classes())}, dtype);
  const InnerAutograd autograd;
  reference_logits(P, X, shape, L).backward(seed);
  seed.zero_();
  torch::from_blob(d_params, {int64_t(shape.param_count())}, dtype).add_(P.grad());
  if (d_x) torch::from_blob(d_x, {int64_t(batch), int64_t(shape.input_size())}, dtype).add_(X.grad());
}

template <bool Cnn, Layout L>
ModelKernels autograd_kernels() {
  ModelKernels k{Cnn ? "cnn" : "mlp", "autograd", L, "LibTorch " TORCH_VERSION " autograd"};
  k.f32 = {autograd_forward<Cnn, L, float>, autograd_pullback<Cnn, L, float>, autograd_logits<Cnn, L, float>,
           autograd_logits_pullback<Cnn, L, float>};
  k.f64 = {autograd_forward<Cnn, L, double>, autograd_pullback<Cnn, L, double>, autograd_logits<Cnn, L, double>,
           autograd_logits_pullback<Cnn, L, double>};
  return k;
}

const bool registered = register_kernels(autograd_kernels<false, Layout::RowMajor>()) &&
                        register_kernels(autograd_kernels<false, Layout::ColMajor>()) &&
                        register_kernels(autograd_kernels<true, Layout::RowMajor>()) &&
                        register_kernels(autograd_kernels<true, Layout::ColMajor>());

}  // namespace

}  // namespace cladbench
