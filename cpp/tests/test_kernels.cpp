// Every kernel engine linked in (clad when Clad was found, manual, both layouts) against LibTorch
// autograd in double, with no Python involved: the C++ side of the gradient checks.
#include <iostream>

#include "../core/mlp_torch.hpp"

using namespace cladbench;

int main() {
  torch::manual_seed(7);
  int failures = 0, checks = 0;
  const std::vector<std::vector<int>> shapes = {{37, 19, 7}, {784, 128, 10}, {13, 11, 9, 8, 5}};
  for (const MlpKernels* k : registered_mlp_kernels()) {
    if (k->engine == "autograd") continue;
    for (const auto& dims : shapes) {
      for (int batch : {1, 5, 64}) {
        const MlpShape shape{dims};
        torch::Tensor p = pack_params(init_mlp_params(shape, 3), k->layout).to(torch::kDouble).requires_grad_();
        torch::Tensor x = torch::randn({batch, dims[0]}, torch::kDouble).requires_grad_();
        torch::Tensor y = torch::randint(dims.back(), {batch}, torch::kInt);
        torch::Tensor ref = reference_mlp_loss(p, x, y, shape, k->layout);
        auto ref_grads = torch::autograd::grad({ref}, {p, x});
        torch::Tensor loss = mlp_loss(*k, p, x, y, shape);
        auto grads = torch::autograd::grad({loss}, {p, x});
        const double err = std::max({max_rel_err(grads[0], ref_grads[0]), max_rel_err(grads[1], ref_grads[1]),
                                     std::abs(loss.item<double>() - ref.item<double>()) / std::abs(ref.item<double>())});
        ++checks;
        if (!(err < 1e-10)) {
          ++failures;
          std::cout << "FAIL " << k->engine << "/" << layout_name(k->layout) << " " << shape.name() << " batch "
                    << batch << ": max rel err " << err << std::endl;
        }
      }
    }
    std::cout << "checked " << k->engine << "/" << layout_name(k->layout) << " (" << k->generator << ")" << std::endl;
  }
  std::cout << checks - failures << " of " << checks << " gradient checks within 1e-10" << std::endl;
  return failures || checks == 0 ? 1 : 0;
}
