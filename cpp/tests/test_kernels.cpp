// Every kernel engine linked in (clad when Clad was found, manual; both layouts; MLP and CNN)
// against LibTorch autograd in double, with no Python involved: the C++ side of the gradient checks.
// The logits kernels likewise: their pullback seeded with the cross-entropy's gradient against the
// fused pullback, the workspace it reads left alone, and kernel_logits (the composable op's autograd).
// Then the GEMM floor's list of a step's GEMMs (kernels/gemm_floor.hpp) against the BLAS calls a real
// training step of each engine makes, caught by an sgemm_ of this program's own.
#include <dlfcn.h>

#include <algorithm>
#include <iostream>
#include <tuple>

#include "../kernels/gemm_floor.hpp"
#include "../torch/model_torch.hpp"

using namespace cladbench;

namespace {

// The kernels' sgemm_ calls resolve to this definition (an executable's symbol comes first), which
// records them, as row-major (trans_a, trans_b, M, N, K), while `recording`, then calls the BLAS.
bool recording = false;
std::vector<std::tuple<bool, bool, int, int, int>> recorded;

}  // namespace

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc) {
  using Sgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);
  static const auto blas = reinterpret_cast<Sgemm>(dlsym(RTLD_NEXT, "sgemm_"));
  // blas.hpp's gemm() swaps the operands (row-major C = column-major C^T): undo that.
  if (recording) recorded.emplace_back(*transb == 'T', *transa == 'T', *n, *m, *k);
  blas(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

namespace {

int check_gradients(const std::vector<ModelShape>& shapes) {
  int failures = 0, checks = 0;
  for (const ModelKernels* k : registered_kernels()) {
    if (k->engine == "autograd") continue;
    for (const ModelShape& shape : shapes) {
      if (shape.model != k->model) continue;
      for (int batch : {1, 5, 64}) {
        torch::Tensor p = pack_params(init_params(shape, 3), k->layout).to(torch::kDouble).requires_grad_();
        torch::Tensor x = torch::randn({batch, shape.input_size()}, torch::kDouble).requires_grad_();
        torch::Tensor y = torch::randint(shape.classes(), {batch}, torch::kInt);
        torch::Tensor ref = reference_loss(p, x, y, shape, k->layout);
        auto ref_grads = torch::autograd::grad({ref}, {p, x});
        torch::Tensor loss = kernel_loss(*k, p, x, y, shape);
        auto grads = torch::autograd::grad({loss}, {p, x});
        const double err =
            std::max({max_rel_err(grads[0], ref_grads[0]), max_rel_err(grads[1], ref_grads[1]),
                      std::abs(loss.item<double>() - ref.item<double>()) / std::abs(ref.item<double>())});
        ++checks;
        if (!(err < 1e-10)) {
          ++failures;
          std::cout << "FAIL " << k->model << "/" << k->engine << "/" << layout_name(k->layout) << " " << shape.name()
                    << " batch " << batch << ": max rel err " << err << std::endl;
        }
      }
    }
    std::cout << "checked " << k->model << "/" << k->engine << "/" << layout_name(k->layout) << " (" << k->generator
              << ")" << std::endl;
  }
  std::cout << checks - failures << " of " << checks << " gradient checks within 1e-10" << std::endl;
  return failures || checks == 0 ? 1 : 0;
}

// The logits forward against the reference logits, and the logits pullback seeded with the
// cross-entropy's gradient against the fused pullback (double, 1e-10): the same gradient, from the
// ws the forward left, which it leaves as it was; d_ws left zero but for the CNN's scratch region.
// Then kernel_logits under LibTorch autograd against autograd of the reference loss.
int check_logits(const std::vector<ModelShape>& shapes) {
  int failures = 0, checks = 0;
  const auto dbl = torch::TensorOptions().dtype(torch::kDouble);
  for (const ModelKernels* k : registered_kernels()) {
    if (k->engine == "autograd" || !k->f64.logits) continue;
    for (const ModelShape& shape : shapes) {
      if (shape.model != k->model) continue;
      for (int batch : {1, 5, 64}) {
        const torch::Tensor p = pack_params(init_params(shape, 3), k->layout).to(torch::kDouble);
        const torch::Tensor x = torch::randn({batch, shape.input_size()}, dbl);
        const torch::Tensor y = torch::randint(shape.classes(), {batch}, torch::kInt);
        const long n = shape.workspace_size(batch), offset = shape.logits_offset(batch);
        torch::Tensor ws = torch::zeros({n}, dbl);
        k->f64.logits(p.data_ptr<double>(), x.data_ptr<double>(), shape.dims.data(), shape.count(), batch,
                      ws.data_ptr<double>());
        const torch::Tensor logits = ws.narrow(0, offset, long(batch) * shape.classes()).view({batch, -1});
        const double logits_err = max_rel_err(logits, reference_logits(p, x, shape, k->layout));
        // The cross-entropy's gradient w.r.t. the logits: the seed that makes the VJP the loss's gradient.
        const torch::Tensor seed =
            (torch::softmax(logits, 1) - torch::one_hot(y.to(torch::kLong), shape.classes()).to(torch::kDouble)) /
            batch;
        torch::Tensor d_ws = torch::zeros({n}, dbl), d_p = torch::zeros_like(p), d_x = torch::zeros_like(x);
        d_ws.narrow(0, offset, long(batch) * shape.classes()).copy_(seed.reshape(-1));
        const torch::Tensor saved = ws.clone();
        k->f64.logits_pullback(p.data_ptr<double>(), x.data_ptr<double>(), shape.dims.data(), shape.count(), batch,
                               ws.data_ptr<double>(), d_p.data_ptr<double>(), d_x.data_ptr<double>(),
                               d_ws.data_ptr<double>());
        torch::Tensor f_ws = torch::zeros({n}, dbl), f_d_ws = torch::zeros_like(f_ws), f_d_p = torch::zeros_like(p),
                      f_d_x = torch::zeros_like(x);
        double loss = 0, one = 1;
        k->f64.pullback(p.data_ptr<double>(), x.data_ptr<double>(), y.data_ptr<int>(), shape.dims.data(), shape.count(),
                        batch, f_ws.data_ptr<double>(), &loss, f_d_p.data_ptr<double>(), f_d_x.data_ptr<double>(),
                        f_d_ws.data_ptr<double>(), &one);
        const long scratch = shape.model == "cnn" ? cnn_scratch_size(shape.dims.data(), shape.count()) : 0;
        const double vjp_err = std::max(max_rel_err(d_p, f_d_p), max_rel_err(d_x, f_d_x));
        const bool ws_kept = torch::equal(ws, saved);
        const bool d_ws_zero = d_ws.narrow(0, scratch, n - scratch).abs().max().item<double>() == 0;
        // The composable op's C++ autograd: cross-entropy in torch after kernel_logits.
        torch::Tensor pg = p.clone().requires_grad_(), xg = x.clone().requires_grad_();
        const torch::Tensor ce =
            torch::nn::functional::cross_entropy(kernel_logits(*k, pg, xg, shape), y.to(torch::kLong));
        const auto grads = torch::autograd::grad({ce}, {pg, xg});
        const torch::Tensor pr = p.clone().requires_grad_(), xr = x.clone().requires_grad_();
        const auto ref = torch::autograd::grad({reference_loss(pr, xr, y, shape, k->layout)}, {pr, xr});
        const double op_err = std::max(max_rel_err(grads[0], ref[0]), max_rel_err(grads[1], ref[1]));
        ++checks;
        if (!(logits_err < 1e-12 && vjp_err < 1e-10 && op_err < 1e-10 && ws_kept && d_ws_zero)) {
          ++failures;
          std::cout << "FAIL logits of " << k->engine << "/" << layout_name(k->layout) << " " << shape.name()
                    << " batch " << batch << ": logits " << logits_err << ", vjp " << vjp_err << ", kernel_logits "
                    << op_err << (ws_kept ? "" : ", ws changed") << (d_ws_zero ? "" : ", d_ws not left zero")
                    << std::endl;
        }
      }
    }
  }
  std::cout << checks - failures << " of " << checks << " logits checks within 1e-10" << std::endl;
  return failures || checks == 0 ? 1 : 0;
}

// One training step's pullback (float, no input gradient, as the arena engine calls it): its GEMMs
// must be exactly step_gemms' (the floor's), in the same order at one thread.
int check_step_gemms(const std::vector<ModelShape>& shapes) {
  int failures = 0, checks = 0;
  for (const ModelKernels* k : registered_kernels()) {
    if (k->engine == "autograd") continue;
    for (const ModelShape& shape : shapes) {
      if (shape.model != k->model) continue;
      for (int batch : {1, 7, 64}) {
        torch::Tensor p = pack_params(init_params(shape, 3), k->layout);
        torch::Tensor x = torch::randn({batch, shape.input_size()});
        torch::Tensor y = torch::randint(shape.classes(), {batch}, torch::kInt);
        torch::Tensor ws = torch::zeros({shape.workspace_size(batch)}), d_ws = torch::zeros_like(ws),
                      d_p = torch::zeros_like(p);
        float loss = 0, seed = 1;
        recorded.clear();
        recording = true;
        k->f32.pullback(p.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<int>(), shape.dims.data(), shape.count(),
                        batch, ws.data_ptr<float>(), &loss, d_p.data_ptr<float>(), nullptr, d_ws.data_ptr<float>(),
                        &seed);
        recording = false;
        std::vector<std::tuple<bool, bool, int, int, int>> expected;
        for (const GemmCall& g : step_gemms(shape, k->layout, batch))
          expected.emplace_back(g.trans_a, g.trans_b, g.M, g.N, g.K);
        ++checks;
        if (recorded != expected) {
          ++failures;
          std::cout << "FAIL GEMMs of " << k->engine << "/" << layout_name(k->layout) << " " << shape.name()
                    << " batch " << batch << ": the step made " << recorded.size() << " calls, step_gemms lists "
                    << expected.size() << std::endl;
        }
        // Nothing but the pullback touched d_ws, and every pullback consumes what it reads: it is zero again.
        if (d_ws.abs().max().item<float>() != 0.f) {
          ++failures;
          std::cout << "FAIL " << k->engine << "/" << layout_name(k->layout) << " " << shape.name() << " batch "
                    << batch << ": the adjoint workspace is not left zeroed" << std::endl;
        }
      }
    }
  }
  std::cout << checks - failures << " of " << checks << " steps call exactly step_gemms' GEMMs" << std::endl;
  return failures || checks == 0 ? 1 : 0;
}

}  // namespace

int main() {
  torch::manual_seed(7);
  const std::vector<ModelShape> shapes = {
      {"mlp", {37, 19, 7}},
      {"mlp", {784, 128, 10}},
      {"mlp", {13, 11, 9, 8, 5}},
      {"cnn", {2, 61, 3, 5, 2, 4, 3, 3, 6, 2}},
      {"cnn", {1, 40, 5, 7, 3, 9, 3}},
      {"cnn", {2, 100, 4, 6, 2, 5, 4, 2, 6, 3, 2, 7, 2}},  // three blocks, as the GW classifier
      {"cnn", {2, 30, 4, 1, 2, 3, 3, 2, 5, 2}},            // kernel 1
      {"cnn", {1, 25, 3, 4, 1, 2, 3, 1, 4, 3}},            // pool 1
      {"cnn", {2, 20, 3, 3, 2, 4, 4, 6, 5, 2}},            // the last block outputs one step
      {"cnn", {2, 1100, 4, 16, 4, 5, 2}}};                 // one sample per chunk: a batch spans many chunks and tasks
  const int gradients = check_gradients(shapes);
  const int logits = check_logits(shapes);
  torch::set_num_threads(1);  // one task: the calls in the kernels' order
  const int gemms = check_step_gemms(shapes);
  return gradients || logits || gemms;
}
