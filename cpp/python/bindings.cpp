// cladbench._core: the C++ core for Python (tests, the pytorch engine's shared helpers, notebooks).
// Importing it also registers torch.ops.cladbench.mlp_loss.
#include <torch/extension.h>

#include "../core/datasets.hpp"
#include "../core/idx.hpp"
#include "../core/mlp_torch.hpp"
#include "../core/trainer.hpp"

namespace py = pybind11;
using namespace cladbench;

namespace {

MlpShape shape_of(const std::vector<int>& dims) { return MlpShape{dims}; }

// Runs an engine's kernels directly: (loss, d_params, d_x), with d_* None when grad is false.
py::tuple run_pullback(const std::string& engine, const std::string& layout, const torch::Tensor& params,
                       const torch::Tensor& x, const torch::Tensor& labels, const std::vector<int>& dims) {
  const MlpKernels& k = require_mlp_kernels(engine, parse_layout(layout));
  torch::Tensor p = params.detach().contiguous().clone(), xs = x.detach().contiguous().clone(),
                y = labels.to(torch::kInt).contiguous();
  torch::Tensor d_params = torch::zeros_like(p), d_x = torch::zeros_like(xs);
  const MlpShape shape = shape_of(dims);
  TORCH_CHECK(p.numel() == shape.param_count() && xs.dim() == 2 && xs.size(1) == dims[0], "shapes do not match dims");
  const int batch = int(xs.size(0));
  const long ws_size = mlp_workspace_size(dims.data(), shape.n_layers(), batch);
  torch::Tensor ws = torch::zeros({ws_size}, p.options()), d_ws = torch::zeros({ws_size}, p.options());
  torch::Tensor loss = torch::zeros({}, p.options()), seed = torch::ones({}, p.options());
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "run_pullback", [&] {
    k.fns<scalar_t>().pullback(p.data_ptr<scalar_t>(), xs.data_ptr<scalar_t>(), y.data_ptr<int>(), dims.data(),
                               shape.n_layers(), batch, ws.data_ptr<scalar_t>(), loss.data_ptr<scalar_t>(),
                               d_params.data_ptr<scalar_t>(), d_x.data_ptr<scalar_t>(), d_ws.data_ptr<scalar_t>(),
                               seed.data_ptr<scalar_t>());
  });
  py::gil_scoped_acquire gil;  // building Python objects
  return py::make_tuple(loss, d_params, d_x);
}

torch::Tensor run_forward(const std::string& engine, const std::string& layout, const torch::Tensor& params,
                          const torch::Tensor& x, const torch::Tensor& labels, const std::vector<int>& dims) {
  const MlpKernels& k = require_mlp_kernels(engine, parse_layout(layout));
  torch::Tensor p = params.detach().contiguous(), xs = x.detach().contiguous(), y = labels.to(torch::kInt).contiguous();
  const MlpShape shape = shape_of(dims);
  const int batch = int(xs.size(0));
  torch::Tensor ws = torch::zeros({mlp_workspace_size(dims.data(), shape.n_layers(), batch)}, p.options());
  torch::Tensor loss = torch::zeros({}, p.options());
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "run_forward", [&] {
    k.fns<scalar_t>().forward(p.data_ptr<scalar_t>(), xs.data_ptr<scalar_t>(), y.data_ptr<int>(), dims.data(),
                              shape.n_layers(), batch, ws.data_ptr<scalar_t>(), loss.data_ptr<scalar_t>());
  });
  return loss;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "cladbench's C++ core: MLP kernels (clad, manual, autograd reference), data and helpers";

  m.def("engines", [] {
    py::list out;
    for (const MlpKernels* k : registered_mlp_kernels())
      out.append(py::dict(py::arg("engine") = k->engine, py::arg("layout") = layout_name(k->layout),
                          py::arg("generator") = k->generator));
    return out;
  }, "The kernel engines linked into this module, with who wrote each pullback.");
  m.def("mlp_pullback", &run_pullback, py::arg("engine"), py::arg("layout"), py::arg("params"), py::arg("x"),
        py::arg("labels"), py::arg("dims"), py::call_guard<py::gil_scoped_release>(),
        "(loss, d_params, d_x) from the engine's pullback, seeded with 1.");
  m.def("mlp_forward", &run_forward, py::arg("engine"), py::arg("layout"), py::arg("params"), py::arg("x"),
        py::arg("labels"), py::arg("dims"), py::call_guard<py::gil_scoped_release>(),
        "The loss from the engine's forward kernel.");
  m.def("reference_mlp_loss", [](const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                                 const std::vector<int>& dims, const std::string& layout) {
    return reference_mlp_loss(params, x, labels, shape_of(dims), parse_layout(layout));
  }, py::arg("params"), py::arg("x"), py::arg("labels"), py::arg("dims"), py::arg("layout") = "rowmajor");
  m.def("init_mlp_params", [](const std::vector<int>& dims, uint64_t seed) { return init_mlp_params(shape_of(dims), seed); },
        py::arg("dims"), py::arg("seed"), "Initial [W0, b0, W1, b1, ...] every engine starts from.");
  m.def("pack_params", [](const std::vector<torch::Tensor>& layers, const std::string& layout) {
    return pack_params(layers, parse_layout(layout));
  }, py::arg("layers"), py::arg("layout") = "rowmajor");
  m.def("epoch_orders", &epoch_orders, py::arg("n"), py::arg("epochs"), py::arg("seed"));
  m.def("load_mnist", [](const std::string& images, const std::string& labels) {
    Dataset d = load_mnist(images, labels);
    return py::make_tuple(d.x, d.labels);
  }, py::arg("images"), py::arg("labels"), "MNIST IDX files as (x float32 [n, 784] standardised, labels int32 [n]).");
  m.def("read_idx", [](const std::string& path) {
    IdxArray a = read_idx(path);
    return torch::from_blob(a.data.data(), a.shape, torch::kUInt8).clone();
  }, py::arg("path"));
  m.def("max_rel_err", &max_rel_err);
  m.def("train", [](const std::string& engine, const std::string& layout, const std::string& alloc,
                    std::vector<std::string> args) {
    // The C++ trainer in this process, with any engine linked into the module. Heap allocations
    // are counted only when the allocation counter is preloaded (`cladbench train` does that).
    const Variant variant{"cpu", engine, layout, alloc, "(in cladbench._core)"};
    args.insert(args.begin(), "cladbench._core.train");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return train_main(int(argv.size()), argv.data(), variant);
  }, py::arg("engine"), py::arg("layout"), py::arg("alloc"), py::arg("args"), py::call_guard<py::gil_scoped_release>(),
     "Runs cladbench-train's trainer in-process with the given flags; returns its exit status (0, 2, 3).");
  py::register_exception<IdxError>(m, "IdxError", PyExc_ValueError);
}
