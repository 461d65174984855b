// The kernels as torch ops (torch.ops.cladbench.*), for Python and for LibTorch programs:
//
//   loss(params, x, labels, model, dims, engine, layout) -> Tensor      the fused training loss
//   forward(params, x, model, dims, engine, layout) -> Tensor           the logits [batch, classes]
//
// Each public op has a CPU kernel (no autograd: the forward alone) and an Autograd kernel, a
// torch::autograd::Function whose forward and backward call the lower ops below through the
// dispatcher, so that torch.compile traces them as ops with fake kernels (cladbench/ops.py), never
// the kernels' raw pointers:
//
//   loss_grad(..., bool input_grad) -> (loss, d_params, d_x)     the fused pullback, seeded with 1
//   forward_ws(...) -> (logits, ws)                              the logits and the activations
//   forward_vjp(params, x, ws, grad_logits, ..., bool input_grad) -> (d_params, d_x)
//
// forward_vjp is the kernels' logits pullback over the saved ws, seeded with grad_logits: a
// vector-Jacobian product that does not run the layers again (mlp.hpp's header comment).
// d_x is an empty tensor [0] when input_grad is false. docs/architecture.md, "The kernel contract".
#include <torch/library.h>

#include "model_torch.hpp"

namespace cladbench {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

ModelShape shape_from(c10::string_view model, c10::IntArrayRef dims) {
  ModelShape shape{std::string(model), std::vector<int>(dims.begin(), dims.end())};  // one allocation a step
  if (shape.model != "mlp" && shape.model != "cnn") {                                // a user's model (user_model.hpp)
    try {
      return shape_of(shape.model, shape.dims);
    } catch (const std::invalid_argument& error) {
      TORCH_CHECK_VALUE(false, error.what());
    }
  }
  TORCH_CHECK(
      shape.model == "mlp" ? shape.dims.size() >= 2 : shape.dims.size() >= 7 && (shape.dims.size() - 4) % 3 == 0,
      "dims do not describe a ", shape.model, " (see cnn.hpp / mlp.hpp)");
  for (int64_t d : dims) TORCH_CHECK(d > 0 && d <= INT32_MAX, "dims must be positive ints, got ", dims);
  if (shape.model == "cnn") {  // every block must leave at least one pooled step
    int len = shape.dims[1];
    for (int l = 0; l < shape.count(); ++l) {
      len = cnn_conv_out(len, shape.dims[3 + 3 * l]) / shape.dims[4 + 3 * l];
      TORCH_CHECK(len >= 1, "conv block ", l, " of dims ", dims, " leaves no output step");
    }
  }
  return shape;
}

// The model in messages: its name, and for a user's model where it is defined.
std::string described(const ModelShape& shape) {
  return shape.user ? shape.name() + " (" + shape.user->source + ")" : shape.name();
}

// The kernel set for the op's arguments, on the device of params.
const ModelKernels& kernels_for(c10::string_view model, c10::string_view engine, c10::string_view layout,
                                const torch::Tensor& params) {
  return require_kernels(std::string(model), std::string(engine), parse_layout(layout),
                         params.is_cuda() ? "cuda" : "cpu");
}

// ---- the fused loss ----

void check_inputs(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                  const torch::Tensor& labels, const ModelShape& shape) {
  TORCH_CHECK(params.scalar_type() == torch::kFloat || params.scalar_type() == torch::kDouble,
              "params must be float32 or float64");
  TORCH_CHECK(x.scalar_type() == params.scalar_type(), "x and params must share a dtype");
  TORCH_CHECK(labels.scalar_type() == torch::kInt, "labels must be int32");
  TORCH_CHECK(params.dim() == 1 && params.numel() == shape.param_count(), "expected ", shape.param_count(),
              " parameters for ", described(shape), ", got ", params.sizes());
  TORCH_CHECK(x.dim() == 2 && x.size(1) == shape.input_size(), "x must be [batch, ", shape.input_size(), "] for ",
              described(shape), ", got ", x.sizes());
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

// cladbench::loss without autograd: the kernels' forward.
torch::Tensor loss_op(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                      c10::string_view model, c10::IntArrayRef dims, c10::string_view engine, c10::string_view layout) {
  const ModelShape shape = shape_from(model, dims);
  return run_loss(kernels_for(model, engine, layout, params), params, x, labels, shape);
}

// cladbench::loss_grad: the loss and its gradients, from the kernels' pullback.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> loss_grad_op(
    const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels, c10::string_view model,
    c10::IntArrayRef dims, c10::string_view engine, c10::string_view layout, bool input_grad) {
  const ModelShape shape = shape_from(model, dims);
  const ModelKernels& k = kernels_for(model, engine, layout, params);
  torch::Tensor d_params = torch::zeros_like(params, torch::MemoryFormat::Contiguous);
  torch::Tensor d_x = input_grad ? torch::zeros_like(x, torch::MemoryFormat::Contiguous) : x.new_empty({0});
  torch::Tensor loss = run_loss(k, params, x, labels, shape, d_params, input_grad ? d_x : torch::Tensor());
  return {loss, d_params, d_x};
}

const auto& loss_grad_handle() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("cladbench::loss_grad", "").typed<decltype(loss_grad_op)>();
  return op;
}

// The fused op's autograd wrapper, which every kernel engine's dynamic path goes through. Forward
// runs the pullback right away (Clad's gradient includes the forward sweep), so backward is a
// scaling of the saved gradients.
struct KernelLossFunction : torch::autograd::Function<KernelLossFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& params, const torch::Tensor& x,
                               const torch::Tensor& labels, c10::string_view model, c10::IntArrayRef dims,
                               c10::string_view engine, c10::string_view layout) {
    auto [loss, d_params, d_x] =
        loss_grad_handle().call(params, x, labels, model, dims, engine, layout, x.requires_grad());
    ctx->save_for_backward({d_params, d_x});
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor g = grad_out[0];
    const bool input_grad = ctx->needs_input_grad(1);
    const torch::Tensor none;
    return {saved[0] * g, input_grad ? saved[1] * g : none, none, none, none, none, none};
  }
};

torch::Tensor loss_op_autograd(const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                               c10::string_view model, c10::IntArrayRef dims, c10::string_view engine,
                               c10::string_view layout) {
  return KernelLossFunction::apply(params, x, labels, model, dims, engine, layout);
}

// ---- the composable logits ----

// What the logits kernels need, checked before any pointer is read.
template <class T>
const KernelFns<T>& logits_fns(const ModelKernels& k, const torch::Tensor& params, const torch::Tensor& x,
                               const ModelShape& shape) {
  TORCH_CHECK(params.device().is_cpu() && x.device().is_cpu(), "cladbench.forward runs on the CPU: params and x must ",
              "be CPU tensors, got ", params.device(), " and ", x.device());
  TORCH_CHECK(x.scalar_type() == params.scalar_type(), "x and params must share a dtype, got ", x.scalar_type(),
              " and ", params.scalar_type());
  TORCH_CHECK(params.dim() == 1 && params.numel() == shape.param_count(), "expected ", shape.param_count(),
              " parameters for ", described(shape), ", got ", params.sizes());
  TORCH_CHECK(x.dim() == 2 && x.size(1) == shape.input_size() && x.size(0) > 0, "x must be [batch, ",
              shape.input_size(), "] with batch >= 1 for ", described(shape), ", got ", x.sizes());
  const KernelFns<T>& fns = k.fns<T>();
  TORCH_CHECK(fns.logits && fns.logits_pullback, "the ", k.engine, " engine has no logits kernels for ", k.model);
  return fns;
}

template <class F>
auto dispatch_dtype(const torch::Tensor& params, const F& f) {
  TORCH_CHECK(params.scalar_type() == torch::kFloat || params.scalar_type() == torch::kDouble,
              "params must be float32 or float64, got ", params.scalar_type());
  return params.scalar_type() == torch::kFloat ? f(float()) : f(double());
}

// cladbench::forward_ws: the logits (a copy: an op's outputs do not alias) and the whole workspace.
std::tuple<torch::Tensor, torch::Tensor> forward_ws_op(const torch::Tensor& params, const torch::Tensor& x,
                                                       c10::string_view model, c10::IntArrayRef dims,
                                                       c10::string_view engine, c10::string_view layout) {
  const ModelShape shape = shape_from(model, dims);
  const ModelKernels& k = kernels_for(model, engine, layout, params);
  return dispatch_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const KernelFns<T>& fns = logits_fns<T>(k, params, x, shape);
    const torch::Tensor p = params.contiguous(), xs = x.contiguous();
    const int batch = int(xs.size(0));
    torch::Tensor ws = torch::empty({shape.workspace_size(batch)}, p.options());
    fns.logits(p.data_ptr<T>(), xs.data_ptr<T>(), shape.dims.data(), shape.count(), batch, ws.data_ptr<T>());
    torch::Tensor logits =
        ws.narrow(0, shape.logits_offset(batch), long(batch) * shape.classes()).view({batch, shape.classes()}).clone();
    return std::make_tuple(logits, ws);
  });
}

// cladbench::forward_vjp: (d_params, d_x) = grad_logits^T J, from the logits pullback over ws.
std::tuple<torch::Tensor, torch::Tensor> forward_vjp_op(const torch::Tensor& params, const torch::Tensor& x,
                                                        const torch::Tensor& ws, const torch::Tensor& grad_logits,
                                                        c10::string_view model, c10::IntArrayRef dims,
                                                        c10::string_view engine, c10::string_view layout,
                                                        bool input_grad) {
  const ModelShape shape = shape_from(model, dims);
  const ModelKernels& k = kernels_for(model, engine, layout, params);
  return dispatch_dtype(params, [&](auto zero) {
    using T = decltype(zero);
    const KernelFns<T>& fns = logits_fns<T>(k, params, x, shape);
    const int batch = int(x.size(0));
    const long n = shape.workspace_size(batch), offset = shape.logits_offset(batch);
    TORCH_CHECK(ws.dim() == 1 && ws.numel() == n && ws.is_contiguous() && ws.scalar_type() == params.scalar_type() &&
                    ws.device().is_cpu(),
                "ws must be the [", n, "] workspace forward_ws returned for this batch, got ", ws.sizes());
    TORCH_CHECK(grad_logits.sizes() == torch::IntArrayRef({batch, shape.classes()}) &&
                    grad_logits.scalar_type() == params.scalar_type() && grad_logits.device().is_cpu(),
                "grad_logits must be [", batch, ", ", shape.classes(), "] of the params' dtype, got ",
                grad_logits.sizes(), " ", grad_logits.scalar_type());
    const torch::Tensor p = params.contiguous(), xs = x.contiguous();
    torch::Tensor d_params = torch::zeros_like(p);
    torch::Tensor d_x = input_grad ? torch::zeros_like(xs) : xs.new_empty({0});
    // The seed: the logits' adjoint, the rest of d_ws zero but the CNN's scratch, which is written
    // before it is read (most of d_ws at small batches, and mostly never touched at one thread).
    const long scratch = shape.scratch_size();
    torch::Tensor d_ws = torch::empty({n}, p.options());
    d_ws.narrow(0, scratch, n - scratch).zero_();
    d_ws.narrow(0, offset, long(batch) * shape.classes()).view({batch, shape.classes()}).copy_(grad_logits);
    // The pullback only reads ws (cnn.hpp: the CNN's works in d_ws' scratch), an input of the op.
    fns.logits_pullback(p.data_ptr<T>(), xs.data_ptr<T>(), shape.dims.data(), shape.count(), batch, ws.data_ptr<T>(),
                        d_params.data_ptr<T>(), input_grad ? d_x.data_ptr<T>() : nullptr, d_ws.data_ptr<T>());
    return std::make_tuple(d_params, d_x);
  });
}

const auto& forward_ws_handle() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("cladbench::forward_ws", "").typed<decltype(forward_ws_op)>();
  return op;
}

const auto& forward_vjp_handle() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("cladbench::forward_vjp", "").typed<decltype(forward_vjp_op)>();
  return op;
}

// cladbench::forward without autograd: the logits alone.
torch::Tensor forward_op(const torch::Tensor& params, const torch::Tensor& x, c10::string_view model,
                         c10::IntArrayRef dims, c10::string_view engine, c10::string_view layout) {
  return std::get<0>(forward_ws_op(params, x, model, dims, engine, layout));
}

// The composable op's autograd wrapper: forward keeps the workspace, backward is the VJP over it.
struct KernelLogitsFunction : torch::autograd::Function<KernelLogitsFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& params, const torch::Tensor& x,
                               c10::string_view model, c10::IntArrayRef dims, c10::string_view engine,
                               c10::string_view layout) {
    auto [logits, ws] = forward_ws_handle().call(params, x, model, dims, engine, layout);
    ctx->save_for_backward({params, x, ws});
    ctx->saved_data["model"] = std::string(model);
    ctx->saved_data["dims"] = dims.vec();
    ctx->saved_data["engine"] = std::string(engine);
    ctx->saved_data["layout"] = std::string(layout);
    return logits;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const variable_list saved = ctx->get_saved_variables();
    const bool input_grad = ctx->needs_input_grad(1);
    const std::vector<int64_t> dims = ctx->saved_data["dims"].toIntVector();
    auto [d_params, d_x] = forward_vjp_handle().call(
        saved[0], saved[1], saved[2], grad_out[0], ctx->saved_data["model"].toStringRef(), dims,
        ctx->saved_data["engine"].toStringRef(), ctx->saved_data["layout"].toStringRef(), input_grad);
    const torch::Tensor none;
    return {d_params, input_grad ? d_x : none, none, none, none, none};
  }
};

torch::Tensor forward_op_autograd(const torch::Tensor& params, const torch::Tensor& x, c10::string_view model,
                                  c10::IntArrayRef dims, c10::string_view engine, c10::string_view layout) {
  return KernelLogitsFunction::apply(params, x, model, dims, engine, layout);
}

std::vector<int64_t> dims_of(const ModelShape& shape) { return {shape.dims.begin(), shape.dims.end()}; }

}  // namespace

torch::Tensor kernel_loss(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                          const torch::Tensor& labels, const ModelShape& shape) {
  return KernelLossFunction::apply(params, x, labels, kernels.model, dims_of(shape), kernels.engine,
                                   layout_name(kernels.layout));
}

torch::Tensor kernel_logits(const ModelKernels& kernels, const torch::Tensor& params, const torch::Tensor& x,
                            const ModelShape& shape) {
  return KernelLogitsFunction::apply(params, x, kernels.model, dims_of(shape), kernels.engine,
                                     layout_name(kernels.layout));
}

TORCH_LIBRARY(cladbench, m) {
  m.set_python_module("cladbench.ops");  // the fake kernels, for torch.compile
  m.def("loss(Tensor params, Tensor x, Tensor labels, str model, int[] dims, str engine, str layout) -> Tensor");
  m.def(
      "loss_grad(Tensor params, Tensor x, Tensor labels, str model, int[] dims, str engine, str layout, "
      "bool input_grad) -> (Tensor loss, Tensor d_params, Tensor d_x)");
  m.def("forward(Tensor params, Tensor x, str model, int[] dims, str engine, str layout) -> Tensor");
  m.def(
      "forward_ws(Tensor params, Tensor x, str model, int[] dims, str engine, str layout) -> "
      "(Tensor logits, Tensor ws)");
  m.def(
      "forward_vjp(Tensor params, Tensor x, Tensor ws, Tensor grad_logits, str model, int[] dims, str engine, "
      "str layout, bool input_grad) -> (Tensor d_params, Tensor d_x)");
}

TORCH_LIBRARY_IMPL(cladbench, CPU, m) {
  m.impl("loss", loss_op);
  m.impl("loss_grad", loss_grad_op);
  m.impl("forward", forward_op);
  m.impl("forward_ws", forward_ws_op);
  m.impl("forward_vjp", forward_vjp_op);
}

// The GPU engine's loss (cpp/cuda) runs through the same fused op, on CUDA tensors.
TORCH_LIBRARY_IMPL(cladbench, CUDA, m) {
  m.impl("loss", loss_op);
  m.impl("loss_grad", loss_grad_op);
}

// The public ops' autograd wrappers. The lower ops are their building blocks and not
// differentiable themselves: autograd passes them through (without this, its default fallback
// boxes every call's arguments, a dozen heap allocations per training step).
TORCH_LIBRARY_IMPL(cladbench, Autograd, m) {
  m.impl("loss", loss_op_autograd);
  m.impl("forward", forward_op_autograd);
  m.impl("loss_grad", torch::CppFunction::makeFallthrough());
  m.impl("forward_ws", torch::CppFunction::makeFallthrough());
  m.impl("forward_vjp", torch::CppFunction::makeFallthrough());
}

}  // namespace cladbench
