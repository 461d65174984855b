// cladbench._core: the C++ core for Python (tests, the pytorch engine's shared helpers, notebooks).
// Importing it also registers the torch.ops.cladbench ops (cpp/torch/ops.cpp); import cladbench.core,
// which also registers their fake kernels (cladbench/ops.py).
#include <pybind11/numpy.h>
#include <torch/extension.h>

#include "../data/datasets.hpp"
#include "../kernels/gemm_floor.hpp"
#include "../trainer/gw_metrics.hpp"
#include "../data/idx.hpp"
#include "../torch/model_torch.hpp"
#include "../trainer/trainer.hpp"

namespace py = pybind11;
using namespace cladbench;

namespace {

// Runs an engine's kernels directly: (loss, d_params, d_x), with d_* None when grad is false.
py::tuple run_pullback(const std::string& model, const std::string& engine, const std::string& layout,
                       const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                       const std::vector<int>& dims) {
  const ModelKernels& k = require_kernels(model, engine, parse_layout(layout));
  torch::Tensor p = params.detach().contiguous().clone(), xs = x.detach().contiguous().clone(),
                y = labels.to(torch::kInt).contiguous();
  torch::Tensor d_params = torch::zeros_like(p), d_x = torch::zeros_like(xs);
  const ModelShape shape = shape_of(model, dims);
  TORCH_CHECK(p.numel() == shape.param_count() && xs.dim() == 2 && xs.size(1) == shape.input_size(),
              "params and x do not match the ", shape.name());
  const int batch = int(xs.size(0));
  const long ws_size = shape.workspace_size(batch);
  torch::Tensor ws = torch::zeros({ws_size}, p.options()), d_ws = torch::zeros({ws_size}, p.options());
  torch::Tensor loss = torch::zeros({}, p.options()), seed = torch::ones({}, p.options());
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "run_pullback", [&] {
    k.fns<scalar_t>().pullback(p.data_ptr<scalar_t>(), xs.data_ptr<scalar_t>(), y.data_ptr<int>(), dims.data(),
                               shape.count(), batch, ws.data_ptr<scalar_t>(), loss.data_ptr<scalar_t>(),
                               d_params.data_ptr<scalar_t>(), d_x.data_ptr<scalar_t>(), d_ws.data_ptr<scalar_t>(),
                               seed.data_ptr<scalar_t>());
  });
  py::gil_scoped_acquire gil;  // building Python objects
  return py::make_tuple(loss, d_params, d_x);
}

torch::Tensor run_forward(const std::string& model, const std::string& engine, const std::string& layout,
                          const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
                          const std::vector<int>& dims) {
  const ModelKernels& k = require_kernels(model, engine, parse_layout(layout));
  torch::Tensor p = params.detach().contiguous(), xs = x.detach().contiguous(), y = labels.to(torch::kInt).contiguous();
  const ModelShape shape = shape_of(model, dims);
  const int batch = int(xs.size(0));
  torch::Tensor ws = torch::zeros({shape.workspace_size(batch)}, p.options());
  torch::Tensor loss = torch::zeros({}, p.options());
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "run_forward", [&] {
    k.fns<scalar_t>().forward(p.data_ptr<scalar_t>(), xs.data_ptr<scalar_t>(), y.data_ptr<int>(), dims.data(),
                              shape.count(), batch, ws.data_ptr<scalar_t>(), loss.data_ptr<scalar_t>());
  });
  return loss;
}

py::dict user_model_dict(const UserModel& u) {
  return py::dict(py::arg("name") = u.name, py::arg("source") = u.source, py::arg("library") = u.library,
                  py::arg("params") = u.sizes.params, py::arg("inputs") = u.sizes.inputs,
                  py::arg("outputs") = u.sizes.outputs, py::arg("workspace") = u.sizes.workspace,
                  py::arg("output_offset") = u.sizes.output_offset);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "cladbench's C++ core: MLP kernels (clad, manual, autograd reference), data and helpers";

  m.def(
      "engines",
      [] {
        py::list out;
        for (const ModelKernels* k : registered_kernels())
          out.append(py::dict(py::arg("model") = k->model, py::arg("engine") = k->engine,
                              py::arg("layout") = layout_name(k->layout), py::arg("generator") = k->generator));
        return out;
      },
      "The kernel engines linked into this module, with who wrote each pullback.");
  m.def("pullback", &run_pullback, py::arg("model"), py::arg("engine"), py::arg("layout"), py::arg("params"),
        py::arg("x"), py::arg("labels"), py::arg("dims"), py::call_guard<py::gil_scoped_release>(),
        "(loss, d_params, d_x) from the engine's pullback, seeded with 1.");
  m.def("forward", &run_forward, py::arg("model"), py::arg("engine"), py::arg("layout"), py::arg("params"),
        py::arg("x"), py::arg("labels"), py::arg("dims"), py::call_guard<py::gil_scoped_release>(),
        "The loss from the engine's forward kernel.");
  m.def(
      "reference_loss",
      [](const std::string& model, const torch::Tensor& params, const torch::Tensor& x, const torch::Tensor& labels,
         const std::vector<int>& dims, const std::string& layout) {
        return reference_loss(params, x, labels, shape_of(model, dims), parse_layout(layout));
      },
      py::arg("model"), py::arg("params"), py::arg("x"), py::arg("labels"), py::arg("dims"),
      py::arg("layout") = "rowmajor");
  m.def(
      "init_params",
      [](const std::string& model, const std::vector<int>& dims, uint64_t seed) {
        return init_params(shape_of(model, dims), seed);
      },
      py::arg("model"), py::arg("dims"), py::arg("seed"), "Initial [W0, b0, W1, b1, ...] every engine starts from.");
  m.def(
      "gemm_floor_seconds",
      [](const std::string& model, const std::vector<int>& dims, const std::string& layout, int batch) {
        return gemm_floor_seconds(shape_of(model, dims), parse_layout(layout), batch);
      },
      py::arg("model"), py::arg("dims"), py::arg("layout"), py::arg("batch"), py::call_guard<py::gil_scoped_release>(),
      "Median time (s) of one training step's GEMM calls alone, with the current threads.");
  m.def(
      "step_gemms",
      [](const std::string& model, const std::vector<int>& dims, const std::string& layout, int batch) {
        py::list calls;
        for (const GemmCall& g : step_gemms(shape_of(model, dims), parse_layout(layout), batch))
          calls.append(py::dict(py::arg("trans_a") = g.trans_a, py::arg("trans_b") = g.trans_b, py::arg("M") = g.M,
                                py::arg("N") = g.N, py::arg("K") = g.K, py::arg("beta") = g.beta,
                                py::arg("group") = g.group));
        return calls;
      },
      py::arg("model"), py::arg("dims"), py::arg("layout"), py::arg("batch"),
      "The GEMMs of one training step, in the order the kernels call them: C[M x N] = op(A) op(B) + beta C, "
      "row-major (the one definition every floor is timed from).");
  m.def(
      "model_name", [](const std::string& model, const std::vector<int>& dims) { return shape_of(model, dims).name(); },
      py::arg("model"), py::arg("dims"), "e.g. mlp-784-128-10, the name every run record uses");
  m.def(
      "param_count",
      [](const std::string& model, const std::vector<int>& dims) { return shape_of(model, dims).param_count(); },
      py::arg("model"), py::arg("dims"));
  m.def(
      "classes", [](const std::string& model, const std::vector<int>& dims) { return shape_of(model, dims).classes(); },
      py::arg("model"), py::arg("dims"), "The logits per sample: the ops' output is [batch, classes].");
  m.def(
      "load_model", [](const std::string& library) { return user_model_dict(load_model(library)); }, py::arg("library"),
      "Loads a user model's library (cladbench_model.hpp) and registers it with the ops; returns its name, source "
      "and sizes.");
  m.def(
      "user_model",
      [](const std::string& name) -> py::object {
        const UserModel* u = find_user_model(name);
        return u ? py::object(user_model_dict(*u)) : py::object(py::none());
      },
      py::arg("name"), "A loaded user model's name, source and sizes; None if none of that name is loaded.");
  m.def(
      "workspace_size",
      [](const std::string& model, const std::vector<int>& dims, int batch) {
        return shape_of(model, dims).workspace_size(batch);
      },
      py::arg("model"), py::arg("dims"), py::arg("batch"),
      "Elements of the kernels' workspace for a batch (what cladbench.forward_ws returns as ws).");
  m.def(
      "reference_logits",
      [](const std::string& model, const torch::Tensor& params, const torch::Tensor& x, const std::vector<int>& dims,
         const std::string& layout) {
        return reference_logits(params, x, shape_of(model, dims), parse_layout(layout));
      },
      py::arg("model"), py::arg("params"), py::arg("x"), py::arg("dims"), py::arg("layout") = "rowmajor",
      "The logits in torch ops (autograd differentiates them): the reference of cladbench.forward.");
  m.def(
      "pack_params",
      [](const std::vector<torch::Tensor>& layers, const std::string& layout) {
        return pack_params(layers, parse_layout(layout));
      },
      py::arg("layers"), py::arg("layout") = "rowmajor");
  m.def(
      "unpack_params",
      [](const torch::Tensor& flat, const std::string& model, const std::vector<int>& dims, const std::string& layout) {
        return unpack_params(flat, shape_of(model, dims), parse_layout(layout));
      },
      py::arg("flat"), py::arg("model"), py::arg("dims"), py::arg("layout") = "rowmajor",
      "[W0, b0, W1, b1, ...] as views into a flat vector, W [out, in] (conv blocks [c_out, c_in*kernel]).");
  m.def("epoch_orders", &epoch_orders, py::arg("n"), py::arg("epochs"), py::arg("seed"));
  m.def(
      "load_mnist",
      [](const std::string& images, const std::string& labels) {
        Dataset d = load_mnist(images, labels);
        return py::make_tuple(d.x, d.labels);
      },
      py::arg("images"), py::arg("labels"), "MNIST IDX files as (x float32 [n, 784] standardised, labels int32 [n]).");
  m.def(
      "load_gw_windows",
      [](const std::string& path) {
        Dataset d = load_gw_windows(path);
        py::dict out;
        out["x"] = d.x;
        out["labels"] = d.labels;
        out["snr"] = d.snr.defined() ? py::cast(d.snr) : py::none();
        out["t_start"] = d.t_start.defined() ? py::cast(d.t_start) : py::none();
        out["channels"] = d.channels;
        out["length"] = d.length;
        out["merger_offset"] = d.merger_offset;
        return out;
      },
      py::arg("path"), "GW windows (cladbench.data.gw's HDF5) as the trainers see them: x [n, channels*length], ...");
  m.def(
      "gw_metrics",
      [](const torch::Tensor& score, const torch::Tensor& labels, const torch::Tensor& snr, double merger_offset,
         std::optional<torch::Tensor> real_score, std::optional<torch::Tensor> real_t_start) {
        return gw_scores_metrics(score, labels, snr, merger_offset, real_score.value_or(torch::Tensor()),
                                 real_t_start.value_or(torch::Tensor()))
            .dump();
      },
      py::arg("score"), py::arg("labels"), py::arg("snr"), py::arg("merger_offset"), py::arg("real_score") = py::none(),
      py::arg("real_t_start") = py::none(), "The record's GW metrics, as JSON text.");
  m.def(
      "read_idx",
      [](const std::string& path) {
        IdxArray a = read_idx(path);
        return torch::from_blob(a.data.data(), a.shape, torch::kUInt8).clone();
      },
      py::arg("path"));
  m.def("max_rel_err", &max_rel_err);
  m.def(
      "train",
      [](const std::string& engine, const std::string& layout, const std::string& alloc,
         std::vector<std::string> args) {
        // The C++ trainer in this process, with any engine linked into the module. Heap allocations
        // are counted only when the allocation counter is preloaded (`cladbench train` does that).
        const Variant variant{"cpu", engine, layout, alloc, "(in cladbench._core)"};
        args.insert(args.begin(), "cladbench._core.train");
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        return train_main(int(argv.size()), argv.data(), variant);
      },
      py::arg("engine"), py::arg("layout"), py::arg("alloc"), py::arg("args"), py::call_guard<py::gil_scoped_release>(),
      "Runs cladbench-train's trainer in-process with the given flags; returns its exit status (0, 2, 3).");
  // The PyROOT path (cladbench.root): a run fed batch by batch from numpy arrays, as the ROOT macro
  // feeds one through the C ABI (cpp/capi).
  using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;
  using Ints = py::array_t<int, py::array::c_style | py::array::forcecast>;
  py::class_<FedRun>(m, "FedRun", "cladbench::FedRun: a training run whose caller feeds the batches (trainer.hpp).")
      .def(py::init([](const std::string& engine, const std::string& layout, const std::string& alloc,
                       const std::vector<std::string>& args, long n_train, int features, int classes) {
             const Variant variant{"cpu", engine, layout, alloc, "(in cladbench._core)"};
             return std::make_unique<FedRun>(args, variant, n_train, features, classes);
           }),
           py::arg("engine"), py::arg("layout"), py::arg("alloc"), py::arg("args"), py::arg("n_train"),
           py::arg("features"), py::arg("classes"))
      .def_property_readonly("batch", &FedRun::batch)
      .def_property_readonly("epochs", &FedRun::epochs)
      .def_property_readonly("steps_per_epoch", &FedRun::steps_per_epoch)
      .def(
          "epoch_order", [](const FedRun& run, int epoch) { return py::array(py::cast(run.epoch_order(epoch))); },
          py::arg("epoch"), "The training-set indices of an epoch, in the order to feed them.")
      .def(
          "set_test",
          [](FedRun& run, const Floats& x, const Ints& labels) {
            if (x.size() != long(labels.size()) * run.features())
              throw std::invalid_argument("test x and labels do not match");
            run.set_test(x.data(), labels.data(), long(labels.size()));
          },
          py::arg("x"), py::arg("labels"))
      .def("set_version", &FedRun::set_version, py::arg("name"), py::arg("value"))
      .def(
          "step",
          [](FedRun& run, const Floats& x, const Ints& labels) {
            if (long(labels.size()) != run.batch() || x.size() != long(run.batch()) * run.features())
              throw std::invalid_argument("a batch is " + std::to_string(run.batch()) + " samples of " +
                                          std::to_string(run.features()) + " floats");
            py::gil_scoped_release release;
            return run.step(x.data(), labels.data());
          },
          py::arg("x"), py::arg("labels"), "One training step; returns the batch loss (NaN: the run failed).")
      .def("end_epoch", &FedRun::end_epoch, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("failed", &FedRun::failed)
      .def_property_readonly("error", &FedRun::error)
      .def("finish", &FedRun::finish, "Writes the run record; returns 0 (trained) or 3 (training failed).");
  py::register_exception<IdxError>(m, "IdxError", PyExc_ValueError);
}
