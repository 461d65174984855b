// Clad's gradients in a plain LibTorch training loop: cladbench::nn::MLP (cpp/torch/nn.hpp) trained
// with torch::optim::SGD on torch::nn::functional::cross_entropy. The module's forward is the
// composable op torch.ops.cladbench.forward, so backward() runs the vector-Jacobian product Clad
// generated (or the hand-written one, with --engine manual).
//
//   cladbench_example_libtorch [--steps N] [--engine clad|manual] [--mnist IMAGES LABELS]
//
// Without --mnist it learns a synthetic 10-class problem (noisy prototypes in 64 features). Prints
// the loss of every step, "step <i> loss <value>". Built by cpp/CMakeLists.txt.
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "../cpp/data/datasets.hpp"
#include "../cpp/torch/nn.hpp"

int main(int argc, char** argv) {
  int steps = 20;
  std::string engine = "clad", images, labels;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--engine") && i + 1 < argc) {
      engine = argv[++i];
    } else if (!std::strcmp(argv[i], "--mnist") && i + 2 < argc) {
      images = argv[++i];
      labels = argv[++i];
    } else {
      std::cerr << "usage: " << argv[0] << " [--steps N] [--engine clad|manual] [--mnist IMAGES LABELS]\n";
      return 2;
    }
  }
  try {
    torch::manual_seed(0);
    torch::Tensor x, y;  // the whole data set: x float32 [n, features], y int64 [n]
    if (!images.empty()) {
      cladbench::Dataset data = cladbench::load_mnist(images, labels);
      x = data.x;
      y = data.labels.to(torch::kLong);
    } else {
      const torch::Tensor prototypes = torch::randn({10, 64});
      y = torch::randint(10, {4096}, torch::kLong);
      x = prototypes.index_select(0, y) + torch::randn({4096, 64});
    }
    const int features = int(x.size(1)), batch = 64;

    cladbench::nn::MLP model({features, 32, 10}, engine);
    std::cout << *model << "\n";
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
    model->train();  // no dropout or batch norm: train() and eval() change nothing
    for (int step = 0; step < steps; ++step) {
      const long begin = (long(step) * batch) % (x.size(0) - batch + 1);
      const torch::Tensor xb = x.narrow(0, begin, batch), yb = y.narrow(0, begin, batch);
      sgd.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(xb), yb);
      loss.backward();  // Clad's vector-Jacobian product, seeded with cross_entropy's gradient
      sgd.step();
      std::cout << "step " << step << " loss " << loss.item<double>() << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
