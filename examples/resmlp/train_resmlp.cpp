// A model of your own in a LibTorch program: the residual MLP of resmlp.cpp, built into
// libresmlp.so by cladbench_add_model (cpp/CMakeLists.txt), loaded with cladbench::load_model and
// used as cladbench::nn::Model, a torch::nn::Module whose backward is Clad's vector-Jacobian
// product. It first checks that product against torch autograd of the same model written in torch
// ops (double; exits 1 above 1e-10 relative), then trains with torch::optim::Adam on
// torch::nn::functional::cross_entropy and exits 1 unless the loss went down.
//
//   cladbench_example_resmlp [--library libresmlp.so] [--steps N] [--mnist IMAGES LABELS]
//
// Without --mnist it learns a synthetic 10-class problem (noisy prototypes in 784 features).
// Prints "gradient check: ..." and the loss every 10 steps, "step <i> loss <value>".
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "../../cpp/data/datasets.hpp"
#include "../../cpp/torch/nn.hpp"
#include "../../cpp/torch/user_model.hpp"

namespace {

constexpr int kIn = 784, kHidden = 64, kOut = 10;  // resmlp.cpp's sizes

// The same model in torch ops, from the same flat parameters (W [out x in] then b, per layer).
torch::Tensor resmlp_in_torch(const torch::Tensor& p, const torch::Tensor& x) {
  long at = 0;
  auto take = [&](long rows, long cols) {
    torch::Tensor t = p.narrow(0, at, rows * cols);
    at += rows * cols;
    return cols == 1 ? t : t.view({rows, cols});
  };
  const torch::Tensor W1 = take(kHidden, kIn), b1 = take(kHidden, 1), W2 = take(kHidden, kHidden),
                      b2 = take(kHidden, 1), W3 = take(kOut, kHidden), b3 = take(kOut, 1);
  const torch::Tensor h1 = torch::tanh(torch::nn::functional::linear(x, W1, b1));
  const torch::Tensor h2 = torch::tanh(torch::nn::functional::linear(h1, W2, b2));
  return torch::nn::functional::linear(h1 + h2, W3, b3);
}

// Max |a - b| / max |b| over params' and x's gradients of <cotangent, output>.
double gradient_check(const cladbench::UserModel& model) {
  cladbench::nn::Model clad_model(model, torch::randn({model.sizes.params}, torch::kDouble) * 0.1);
  const torch::Tensor x = torch::randn({7, kIn}, torch::kDouble).requires_grad_(true);
  const torch::Tensor cotangent = torch::randn({7, kOut}, torch::kDouble);
  (clad_model->forward(x) * cotangent).sum().backward();
  const torch::Tensor p = clad_model->params.detach().clone().requires_grad_(true);
  const torch::Tensor x_ref = x.detach().clone().requires_grad_(true);
  (resmlp_in_torch(p, x_ref) * cotangent).sum().backward();
  const double params_err = cladbench::max_rel_err(clad_model->params.grad(), p.grad());
  const double x_err = cladbench::max_rel_err(x.grad(), x_ref.grad());
  std::cout << "gradient check (double, vs torch autograd): params " << params_err << ", x " << x_err << "\n";
  return std::max(params_err, x_err);
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 100;
  std::string library = RESMLP_LIBRARY, images, labels;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--library") && i + 1 < argc) {
      library = argv[++i];
    } else if (!std::strcmp(argv[i], "--mnist") && i + 2 < argc) {
      images = argv[++i];
      labels = argv[++i];
    } else {
      std::cerr << "usage: " << argv[0] << " [--library libresmlp.so] [--steps N] [--mnist IMAGES LABELS]\n";
      return 2;
    }
  }
  try {
    torch::manual_seed(0);
    const cladbench::UserModel& model = cladbench::load_model(library);
    std::cout << "loaded " << model.name << " from " << model.source << " (" << model.sizes.params
              << " parameters)\n";
    if (gradient_check(model) > 1e-10) {
      std::cerr << "error: Clad's gradients differ from torch autograd's by more than 1e-10\n";
      return 1;
    }

    torch::Tensor x, y;  // the whole data set: x float32 [n, 784], y int64 [n]
    if (!images.empty()) {
      cladbench::Dataset data = cladbench::load_mnist(images, labels);
      x = data.x;
      y = data.labels.to(torch::kLong);
    } else {
      const torch::Tensor prototypes = torch::randn({kOut, kIn});
      y = torch::randint(kOut, {4096}, torch::kLong);
      x = prototypes.index_select(0, y) + torch::randn({4096, kIn});
    }
    cladbench::nn::Model net(model);
    torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(1e-3));
    const int batch = 64;
    double first = 0, last = 0;
    for (int step = 0; step < steps; ++step) {
      const long begin = (long(step) * batch) % (x.size(0) - batch + 1);
      adam.zero_grad();
      torch::Tensor loss =
          torch::nn::functional::cross_entropy(net->forward(x.narrow(0, begin, batch)), y.narrow(0, begin, batch));
      loss.backward();  // Clad's vector-Jacobian product of the model, seeded by cross_entropy's
      adam.step();
      last = loss.item<double>();
      if (step == 0) first = last;
      if (step % 10 == 0 || step == steps - 1) std::cout << "step " << step << " loss " << last << "\n";
    }
    if (!(last < first)) {
      std::cerr << "error: the loss did not go down (" << first << " -> " << last << ")\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
