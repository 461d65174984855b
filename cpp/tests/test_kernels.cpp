// Every kernel engine linked in (clad when Clad was found, manual; both layouts; MLP and CNN)
// against LibTorch autograd in double, with no Python involved: the C++ side of the gradient checks.
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
  torch::set_num_threads(1);  // one task: the calls in the kernels' order
  const int gemms = check_step_gemms(shapes);
  return gradients || gemms;
}
