// cladbench._calib: the Z->ee calibration for Python (cladbench.calib.fit, the tests, scipy).
// NumPy in and out; the loss and its gradient run without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "sample.hpp"
#include "stages.hpp"
#include "torch_reference.hpp"

namespace py = pybind11;
using namespace cladbench::calib;

namespace {

using Doubles = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int, py::array::c_style | py::array::forcecast>;

template <class T>
std::vector<T> to_vector(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

template <class T>
py::array_t<T> to_array(const std::vector<T>& v, std::vector<py::ssize_t> shape) {
  py::array_t<T> out(shape);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

std::vector<Kernels> kernel_engines() {
  std::vector<Kernels> out;
#ifdef CLADBENCH_CALIB_CLAD
  out.push_back(clad_kernels());
#endif
  out.push_back(manual_kernels());
  return out;
}

const Kernels& kernels(const std::string& engine) {
  static const std::vector<Kernels> all = kernel_engines();
  for (const Kernels& k : all)
    if (k.engine == engine) return k;
  std::string built;
  for (const Kernels& k : all) built += k.engine + ", ";
  throw std::invalid_argument("no calibration engine '" + engine + "' in this build; built: " + built + "libtorch");
}

// A checked sample, with the LibTorch reference made on first use.
struct PySample {
  Sample sample;
  std::unique_ptr<TorchLoss> torch_loss;

  std::vector<double> checked(const Doubles& gains) const {
    std::vector<double> g = to_vector(gains);
    check_gains(g, sample.regions);
    return g;
  }

  double loss(const Doubles& gains_in) const {
    const std::vector<double> gains = checked(gains_in);
    py::gil_scoped_release nogil;
    double loss = 0;
    kernels("manual").forward(gains.data(), sample.rows.data(), sample.region.data(), nullptr, sample.regions,
                              int(sample.events), nullptr, &loss);  // the one forward every engine shares
    return loss;
  }

  py::tuple loss_and_grad(const Doubles& gains_in, const std::string& engine) {
    const std::vector<double> gains = checked(gains_in);
    std::vector<double> grad(sample.regions, 0.0);
    double loss = 0;
    if (engine == "libtorch") {
      if (!torch_loss) torch_loss = std::make_unique<TorchLoss>(sample);
      py::gil_scoped_release nogil;
      loss = (*torch_loss)(gains.data(), grad.data());
    } else {
      const Kernels& k = kernels(engine);
      py::gil_scoped_release nogil;
      double seed = 1;
      k.pullback(gains.data(), sample.rows.data(), sample.region.data(), nullptr, sample.regions, int(sample.events),
                 nullptr, &loss, grad.data(), nullptr, nullptr, &seed);
    }
    return py::make_tuple(loss, to_array(grad, {py::ssize_t(grad.size())}));
  }

  // The Hessian of the total NLL (events x the mean), from the engine's generated Hessian.
  py::array_t<double> hessian(const Doubles& gains_in, const std::string& engine) const {
    const std::vector<double> gains = checked(gains_in);
    const Kernels& k = kernels(engine);
    if (!k.hessian) throw std::invalid_argument("the " + engine + " engine has no Hessian (clad writes one)");
    std::vector<double> h(long(sample.regions) * sample.regions);
    {
      py::gil_scoped_release nogil;
      k.hessian(gains.data(), sample.rows.data(), sample.region.data(), sample.regions, int(sample.events), h.data());
    }
    for (double& v : h) v *= double(sample.events);
    return to_array(h, {py::ssize_t(sample.regions), py::ssize_t(sample.regions)});
  }

  py::array_t<double> masses(const Doubles& gains_in) const {
    const std::vector<double> gains = checked(gains_in);
    std::vector<double> out(sample.events);
    for (long i = 0; i < sample.events; ++i)
      out[i] = sample.measured_mass[i] / std::sqrt(gains[sample.region[2 * i]] * gains[sample.region[2 * i + 1]]);
    return to_array(out, {py::ssize_t(out.size())});
  }
};

}  // namespace

PYBIND11_MODULE(_calib, m) {
  m.doc() = "cladbench's Z->ee calibration: generator, detector, and the loss with clad, manual and libtorch gradients";
  m.attr("Z_MASS") = kZMass;
  m.attr("Z_WIDTH") = kZWidth;

  m.def(
      "engines",
      [] {
        py::list out;
        for (const Kernels& k : kernel_engines())
          out.append(py::dict(py::arg("engine") = k.engine, py::arg("generator") = k.generator));
        out.append(py::dict(py::arg("engine") = "libtorch", py::arg("generator") = "LibTorch autograd"));
        return out;
      },
      "The gradient engines in this build, with who writes each pullback.");

  m.def(
      "generate",
      [](long events, const Doubles& gains, const Doubles& resolution, std::uint64_t seed, double eta_max,
         double pt_min) {
        GeneratorConfig config;
        config.events = events;
        config.seed = seed;
        config.eta_max = eta_max;
        config.pt_min = pt_min;
        Electrons truth, measured;
        {
          py::gil_scoped_release nogil;
          truth = generate_z_ee(config);
          measured = detect(truth, to_vector(gains), to_vector(resolution), eta_max, seed + 1);
        }
        const std::vector<py::ssize_t> pairs{events, 2};
        py::dict out;
        out["energy"] = to_array(measured.energy, pairs);
        out["true_energy"] = to_array(truth.energy, pairs);
        out["eta"] = to_array(measured.eta, pairs);
        out["phi"] = to_array(measured.phi, pairs);
        out["region"] = to_array(measured.region, pairs);
        out["true_mass"] = to_array(truth.true_mass, {events});
        return out;
      },
      py::arg("events"), py::arg("gains"), py::arg("resolution"), py::arg("seed"), py::arg("eta_max") = 2.5,
      py::arg("pt_min") = 20.0,
      "A seeded Z->ee sample through the detector (one gain and resolution per eta region): a dict of [events, 2] "
      "arrays energy (measured), true_energy, eta, phi, region, and true_mass [events].");

  m.def(
      "region_of", [](double eta, int regions, double eta_max) { return region_of(eta, regions, eta_max); },
      py::arg("eta"), py::arg("regions"), py::arg("eta_max") = 2.5);

  py::class_<PySample>(m, "Sample", "Measured Z->ee events, checked and packed for the loss.")
      .def(py::init([](const Doubles& energy, const Doubles& eta, const Doubles& phi, const Ints& region,
                       const Doubles& resolution) {
             return new PySample{
                 Sample(to_vector(energy), to_vector(eta), to_vector(phi), to_vector(region), to_vector(resolution)),
                 nullptr};
           }),
           py::arg("energy"), py::arg("eta"), py::arg("phi"), py::arg("region"), py::arg("resolution"),
           "Arrays [events, 2] (electron 1, 2 of each event) and one resolution per region; ValueError on bad input.")
      .def_property_readonly("regions", [](const PySample& s) { return s.sample.regions; })
      .def_property_readonly("events", [](const PySample& s) { return s.sample.events; })
      .def("loss", &PySample::loss, py::arg("gains"), "The mean NLL per event at these gains.")
      .def("loss_and_grad", &PySample::loss_and_grad, py::arg("gains"), py::arg("engine") = "clad",
           "(loss, d loss / d gains) from one engine: clad, manual or libtorch.")
      .def("hessian", &PySample::hessian, py::arg("gains"), py::arg("engine") = "clad",
           "The Hessian [R, R] of the total NLL (events x the mean) from the engine's generated Hessian (clad).")
      .def("masses", &PySample::masses, py::arg("gains"), "Each event's invariant mass calibrated with these gains.");
}
