// Every kernel engine linked in (clad when Clad was found, manual; both layouts; MLP and CNN)
// against LibTorch autograd in double, with no Python involved: the C++ side of the gradient checks.
#include <iostream>

#include "../core/model_torch.hpp"

using namespace cladbench;

int main() {
  torch::manual_seed(7);
  int failures = 0, checks = 0;
  const std::vector<ModelShape> shapes = {
      {"mlp", {37, 19, 7}}, {"mlp", {784, 128, 10}}, {"mlp", {13, 11, 9, 8, 5}},
      {"cnn", {2, 61, 3, 5, 2, 4, 3, 3, 6, 2}}, {"cnn", {1, 40, 5, 7, 3, 9, 3}}};
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
        const double err = std::max({max_rel_err(grads[0], ref_grads[0]), max_rel_err(grads[1], ref_grads[1]),
                                     std::abs(loss.item<double>() - ref.item<double>()) / std::abs(ref.item<double>())});
        ++checks;
        if (!(err < 1e-10)) {
          ++failures;
          std::cout << "FAIL " << k->model << "/" << k->engine << "/" << layout_name(k->layout) << " " << shape.name() << " batch "
                    << batch << ": max rel err " << err << std::endl;
        }
      }
    }
    std::cout << "checked " << k->model << "/" << k->engine << "/" << layout_name(k->layout) << " (" << k->generator << ")" << std::endl;
  }
  std::cout << checks - failures << " of " << checks << " gradient checks within 1e-10" << std::endl;
  return failures || checks == 0 ? 1 : 0;
}
