#include "nn.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace cladbench::nn {

namespace {

// The ops' C++ signatures (their schemas in ops.cpp's TORCH_LIBRARY).
using ForwardOp = torch::Tensor(const torch::Tensor&, const torch::Tensor&, c10::string_view, c10::IntArrayRef,
                                c10::string_view, c10::string_view);
using LossOp = torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, c10::string_view,
                             c10::IntArrayRef, c10::string_view, c10::string_view);

const auto& forward_handle() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("cladbench::forward", "").typed<ForwardOp>();
  return op;
}

const auto& loss_handle() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("cladbench::loss", "").typed<LossOp>();
  return op;
}

// What the op would refuse later, refused at construction with the module's own words.
void check_shape(const ModelShape& shape) {
  for (int d : shape.dims)
    if (d < 1) throw std::invalid_argument(shape.name() + ": every size must be positive");
  if (shape.model == "mlp" && shape.dims.size() < 2)
    throw std::invalid_argument("an MLP needs widths {in, ..., classes}, at least two");
  if (shape.model == "cnn") {
    int len = shape.dims[1];
    for (int l = 0; l < shape.count(); ++l) {
      len = cnn_conv_out(len, shape.dims[3 + 3 * l]) / shape.dims[4 + 3 * l];
      if (len < 1)
        throw std::invalid_argument(shape.name() + ": conv block " + std::to_string(l) +
                                    " leaves no output step of a window of " + std::to_string(shape.dims[1]));
    }
  }
}

}  // namespace

KernelModule::KernelModule(const std::string& name, ModelShape shape, std::string engine, std::string layout,
                           uint64_t seed)
    : torch::nn::Module(name), shape_(std::move(shape)), engine_(std::move(engine)), layout_(std::move(layout)) {
  check_shape(shape_);
  const Layout l = parse_layout(layout_);
  require_kernels(shape_.model, engine_, l);  // a missing engine fails here, with the reason
  dims_.assign(shape_.dims.begin(), shape_.dims.end());
  params = register_parameter("params", pack_params(init_params(shape_, seed), l));
}

KernelModule::KernelModule(const std::string& name, ModelShape shape, std::string engine, std::string layout,
                           const torch::Tensor& initial_params)
    : torch::nn::Module(name), shape_(std::move(shape)), engine_(std::move(engine)), layout_(std::move(layout)) {
  require_kernels(shape_.model, engine_, parse_layout(layout_));
  const std::string where = shape_.user ? shape_.name() + " (" + shape_.user->source + ")" : shape_.name();
  TORCH_CHECK_VALUE(initial_params.dim() == 1 && initial_params.numel() == shape_.param_count(), where, " has ",
                    shape_.param_count(), " parameters; the initial parameters are ", initial_params.sizes());
  TORCH_CHECK_VALUE(initial_params.scalar_type() == torch::kFloat || initial_params.scalar_type() == torch::kDouble,
                    "initial parameters must be float32 or float64, not ", initial_params.scalar_type());
  dims_.assign(shape_.dims.begin(), shape_.dims.end());
  params = register_parameter("params", initial_params.detach().to(torch::kCPU).contiguous().clone());
}

void KernelModule::check_input(const torch::Tensor& x) const {
  TORCH_CHECK(x.scalar_type() == params.scalar_type(), name(), " ", shape_.name(), " has ", params.scalar_type(),
              " parameters but x is ", x.scalar_type(), ": convert x, or the module with ->to(", x.scalar_type(), ")");
}

torch::Tensor KernelModule::forward(const torch::Tensor& x) {
  check_input(x);
  return forward_handle().call(params, x, shape_.model, dims_, engine_, layout_);
}

torch::Tensor KernelModule::loss(const torch::Tensor& x, const torch::Tensor& labels) {
  check_input(x);
  return loss_handle().call(params, x, labels.to(torch::kInt), shape_.model, dims_, engine_, layout_);
}

std::vector<torch::Tensor> KernelModule::layers() const {
  if (shape_.user) return {params};
  return unpack_params(params, shape_, parse_layout(layout_));
}

void KernelModule::pretty_print(std::ostream& stream) const {
  stream << name() << "(" << shape_.name() << ", engine=" << engine_ << ", layout=" << layout_ << ")";
}

MLPImpl::MLPImpl(std::vector<int> widths, std::string engine, std::string layout, uint64_t seed)
    : KernelModule("cladbench::nn::MLP", ModelShape{"mlp", std::move(widths)}, std::move(engine), std::move(layout),
                   seed) {}

namespace {

ModelShape cnn_shape(int channels, int length, const std::string& conv, int hidden, int classes) {
  ModelShape shape{"cnn", {channels, length}};
  for (int d : parse_conv(conv)) shape.dims.push_back(d);
  shape.dims.push_back(hidden);
  shape.dims.push_back(classes);
  return shape;
}

}  // namespace

CNNImpl::CNNImpl(int channels, int length, const std::string& conv, int hidden, int classes, std::string engine,
                 std::string layout, uint64_t seed)
    : KernelModule("cladbench::nn::CNN", cnn_shape(channels, length, conv, hidden, classes), std::move(engine),
                   std::move(layout), seed) {}

namespace {

torch::Tensor drawn_params(const UserModel& model, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn({model.sizes.params}, gen) * 0.05;
}

}  // namespace

ModelImpl::ModelImpl(const UserModel& model, const torch::Tensor& initial_params)
    : KernelModule("cladbench::nn::Model", shape_of(model.name, {}), "clad", "rowmajor", initial_params) {}

ModelImpl::ModelImpl(const UserModel& model, uint64_t seed) : ModelImpl(model, drawn_params(model, seed)) {}

}  // namespace cladbench::nn
